"""Throughput of the two tf.data pipelines on MovieLens 100K, printed as a markdown table.

For each pipeline (``tensor``: from_tensor_slices, ``generator``: from_generator yielding one
example at a time), batch size and cache setting, the script runs full epochs over the batched
ML-100K ratings with all features (ids, rating, timestamp, user and item features) and reports
examples per second for the first epoch and for the later ones (from the cache when caching).

Usage::

    python benchmarks/data_pipeline.py                       # $TFREC_DATA_DIR or ../shared/data
    python benchmarks/data_pipeline.py --data-dir DIR --batch-sizes 256 4096 --epochs 2
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tfrec  # noqa: E402,F401  (Keras 2 before TensorFlow)

REPO = Path(__file__).resolve().parents[1]


def _default_data_dir() -> str:
    return os.environ.get("TFREC_DATA_DIR") or str(REPO.parent / "shared" / "data")


def _epoch(ds) -> tuple[int, float]:
    """Examples and seconds for one full pass."""
    n = 0
    start = time.perf_counter()
    for batch in ds:
        n += int(batch["user_id"].shape[0])
    return n, time.perf_counter() - start


def run(data_dir: str, batch_sizes, epochs: int, pipelines, seed: int = 0) -> list[dict]:
    import tensorflow as tf

    from tfrec.data import load_movielens, make_dataset

    data = load_movielens("ml-100k", data_dir=data_dir)
    rows = []
    for pipeline in pipelines:
        for batch_size in batch_sizes:
            for cache in (False, True):
                start = time.perf_counter()
                ds = make_dataset(data.ratings, items=data.items, users=data.users, pipeline=pipeline,
                                  batch_size=batch_size, shuffle=True, seed=seed, cache=cache)
                build = time.perf_counter() - start
                times = []
                for _ in range(epochs):
                    n, seconds = _epoch(ds)
                    times.append(seconds)
                first = n / times[0]
                later = n / (sum(times[1:]) / len(times[1:])) if len(times) > 1 else float("nan")
                rows.append({"pipeline": pipeline, "batch_size": batch_size, "cache": cache, "examples": n,
                             "build_s": build, "epoch1": first, "later": later})
                print(f"  {pipeline:9s} batch={batch_size:<5d} cache={str(cache):5s} build {build:5.2f}s  "
                      f"epoch 1 {first:12,.0f} ex/s  later {later:12,.0f} ex/s", file=sys.stderr, flush=True)
                del ds
        tf.keras.backend.clear_session()
    return rows


def markdown(rows) -> str:
    lines = [
        "| pipeline | batch size | cache | build (s) | epoch 1 (examples/s) | later epochs (examples/s) |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['pipeline']} | {r['batch_size']} | {'yes' if r['cache'] else 'no'} | "
                     f"{r['build_s']:.2f} | {r['epoch1']:,.0f} | {r['later']:,.0f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=_default_data_dir(),
                        help="folder holding ml-100k/ (default: $TFREC_DATA_DIR or ../shared/data)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 4096])
    parser.add_argument("--epochs", type=int, default=2, help="full epochs per configuration (>= 2 to see the cache)")
    parser.add_argument("--pipelines", nargs="+", default=["tensor", "generator"], choices=["tensor", "generator"])
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be >= 1")

    import tensorflow as tf

    rows = run(args.data_dir, args.batch_sizes, args.epochs, args.pipelines)
    print(f"ML-100K (100,000 ratings, all features), shuffle with a full buffer, {args.epochs} epochs per row; "
          f"TensorFlow {tf.__version__}, Python {platform.python_version()}, {os.cpu_count()} CPUs.\n")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
