"""ANN benchmark: the exported ScaNN signature vs its brute-force twin, loaded side by side.

    python benchmarks/ann.py [--n-items 1000000] [--dim 64] [--queries 300]

For each catalog (clustered synthetic embeddings, like learned ones; plain Gaussian, the worst
case): export both variants with tfrec's own RetrievalModule (raw string ids, seen-item
exclusion: every user has 5 rated items), load them with tf.saved_model.load in this process, and
call `serving_default` with raw user ids. Reports recall@10 of the ScaNN export against exact top-k
(numpy, same exclusions), single-query p50/p99, batch-of-256 latency, build/export time, export
size and load time, with the targets beside them.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import tfrec  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import tensorflow as tf

from tfrec.export.retrieval import RetrievalModule, retrieval_signatures
from tfrec.export.savedmodel import save_module


class _EmbeddingModel:
    """The minimal retrieval-model surface RetrievalModule reads (fixed embeddings)."""

    use_features = False
    _side: dict = {}

    def __init__(self, users: np.ndarray, items: np.ndarray, seen: np.ndarray):
        self.catalog_ = np.array([f"i{j}" for j in range(len(items))], dtype=object)
        self._users = users
        self._items = items
        self.user_index_ = {f"u{j}": j for j in range(len(users))}
        self.seen_ = {f"u{j}": seen[j] for j in range(len(users))}
        self.popularity_ = np.zeros(len(items))

    def candidate_embeddings(self):
        return self.catalog_, self._items

    def user_embeddings(self, user_ids):
        return self._users[[self.user_index_[u] for u in user_ids]]


def make_catalog(kind: str, n: int, d: int, rng) -> np.ndarray:
    if kind == "gaussian":
        x = rng.standard_normal((n, d), dtype=np.float32)
    else:  # clustered: a Gaussian mixture of 1,000 centres, like learned embeddings
        centres = rng.standard_normal((1000, d), dtype=np.float32)
        x = centres[rng.integers(0, 1000, n)] + 0.35 * rng.standard_normal((n, d), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact_top10(queries, items, seen) -> np.ndarray:
    out = []
    for s in range(0, len(queries), 64):
        scores = queries[s:s + 64] @ items.T
        rows = np.arange(len(scores))[:, None]
        scores[rows, seen[s:s + 64]] = -np.inf
        top = np.argpartition(-scores, 10, axis=1)[:, :10]
        order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1)
        out.append(np.take_along_axis(top, order, 1))
    return np.concatenate(out)


def size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def bench(fn, ids, repeats):
    times = []
    fn(user_id=tf.constant(ids))  # warm up
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(user_id=tf.constant(ids))
        times.append((time.perf_counter() - t0) * 1e3)
    return np.percentile(times, 50), np.percentile(times, 99)


def run_case(kind, n, d, n_queries, params, workdir, rng):
    items = make_catalog(kind, n, d, rng)
    users = make_catalog(kind, 2000, d, rng)
    seen = rng.integers(0, n, size=(len(users), 5))
    model = _EmbeddingModel(users, items, seen)
    rows = {}
    loaded = {}
    for variant in ("bruteforce", "scann"):
        path = workdir / f"{kind}_{variant}" / "1"
        t0 = time.perf_counter()
        module = RetrievalModule(model, k=10, k_max=10, use_scann=variant == "scann", scann_params=params)
        save_module(module, path, retrieval_signatures(module), scann=variant == "scann")
        build = time.perf_counter() - t0
        del module
        t0 = time.perf_counter()
        m = tf.saved_model.load(str(path))
        load = time.perf_counter() - t0
        loaded[variant] = m.signatures["serving_default"]
        rows[variant] = {"build_s": build, "size_mb": size_mb(path), "load_s": load}
    qids = [f"u{j}" for j in range(n_queries)]
    exact = exact_top10(users[:n_queries], items, seen[:n_queries])
    got = np.array([[int(x[1:]) for x in row] for row in
                    loaded["scann"](user_id=tf.constant([s.encode() for s in qids]))["item_ids"].numpy().astype(str)])
    rows["scann"]["recall@10"] = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, exact)]))
    got_bf = np.array([[int(x[1:]) for x in row] for row in
                       loaded["bruteforce"](user_id=tf.constant(qids))["item_ids"].numpy().astype(str)])
    rows["bruteforce"]["recall@10"] = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got_bf, exact)]))
    for variant, fn in loaded.items():
        single = [bench(fn, [q], 1) for q in qids[:n_queries]]
        lat = np.array([s[0] for s in single])
        rows[variant]["single_p50_ms"] = float(np.percentile(lat, 50))
        rows[variant]["single_p99_ms"] = float(np.percentile(lat, 99))
        rows[variant]["batch256_ms"] = float(bench(fn, qids[:256] if n_queries >= 256 else (qids * 256)[:256], 10)[0])
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-items", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--num-leaves", type=int, default=1000)
    p.add_argument("--num-leaves-to-search", type=int, default=60)
    p.add_argument("--reorder", type=int, default=400)
    p.add_argument("--kinds", default="clustered,gaussian")
    args = p.parse_args(argv)
    import scann  # noqa: F401

    rng = np.random.default_rng(0)
    # Anisotropic quantization and a spherical tree, as the export uses for unit-norm catalogs.
    params = {"num_leaves": min(args.num_leaves, args.n_items), "num_leaves_to_search": args.num_leaves_to_search,
              "num_reordering_candidates": args.reorder, "anisotropic_quantization_threshold": 0.2,
              "spherical": True}
    workdir = Path(tempfile.mkdtemp(prefix="tfrec-ann-"))
    try:
        print(f"| catalog | variant | recall@10 | single p50 ms | single p99 ms | batch-256 ms | build s | size MB | "
              f"load s |\n|---|---|---:|---:|---:|---:|---:|---:|---:|")
        summary = []
        for kind in args.kinds.split(","):
            print(f"[ann] {kind}: {args.n_items} x {args.dim} ...", file=sys.stderr, flush=True)
            rows = run_case(kind, args.n_items, args.dim, args.queries, params, workdir, rng)
            for variant, r in rows.items():
                print(f"| {kind} {args.n_items:,}x{args.dim} | {variant} | {r['recall@10']:.3f} | "
                      f"{r['single_p50_ms']:.2f} | {r['single_p99_ms']:.2f} | {r['batch256_ms']:.1f} | "
                      f"{r['build_s']:.1f} | {r['size_mb']:.0f} | {r['load_s']:.1f} |", flush=True)
            bf, sc = rows["bruteforce"], rows["scann"]
            summary.append((kind, sc["recall@10"], bf["single_p50_ms"] / sc["single_p50_ms"],
                            bf["batch256_ms"] / sc["batch256_ms"], sc["single_p50_ms"]))
            shutil.rmtree(workdir, ignore_errors=True)
            workdir.mkdir(parents=True, exist_ok=True)
        print(f"\nScaNN params: {params}\n")
        print("| catalog | recall@10 (>= 0.98) | single-query speed-up (>= 12x) | batch-256 speed-up (>= 15x) | "
              "single p50 (<= 1 ms) |\n|---|---:|---:|---:|---:|")
        for kind, rec, s1, s256, p50 in summary:
            print(f"| {kind} | {rec:.3f} | {s1:.1f}x | {s256:.1f}x | {p50:.2f} ms |")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
