"""Distributed two-tower training on loopback: 1 process vs 2 multi_worker workers vs parameter server.

Each configuration trains ``tfrec.train("two_tower", ...)`` with the same settings (same global
batch) in fresh processes on 127.0.0.1 and reports, as a markdown table:

* seconds per epoch (median of the epochs after the first, which includes tracing) and training
  examples per second (training rows / seconds per epoch);
* bytes exchanged per training step between processes, computed from the model's variables and
  the batch (not sniffed from the wire): multi_worker all-reduces the dense gradients (ring:
  ``2 (N-1)/N`` of their size sent per worker), all-gathers the embedding-gradient rows (sparse
  gradients) and the candidate batch (``GlobalRetrieval``); a parameter-server worker reads every
  dense variable and the embedding rows of its batch from the ps tasks and sends the same amount
  of gradient back;
* the full-ranking NDCG@10 each run reached (the runs must learn the same thing).

Usage::

    python benchmarks/distributed.py                         # synthetic data, 3 epochs
    python benchmarks/distributed.py --dataset ml-100k --data-dir ../shared/data --epochs 3

On one machine the processes share its cores, so no speed-up is expected (see the README's
"Training on several machines" for what N real machines give and why).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "distributed"))


def _settings(args) -> dict:
    return {"ensemble_size": 1, "embedding_dim": args.embedding_dim, "layer_sizes": [args.embedding_dim * 2],
            "batch_size": args.batch_size, "epochs": args.epochs, "validation_fraction": 0.0}


# ------------------------------------------------------------------------------------------------ one process's run
def _run(args) -> None:
    """--role train / ps-chief: train once, print a JSON line with timings, metrics and traffic."""
    import tfrec  # noqa: F401  (legacy Keras before TensorFlow)
    import tensorflow as tf

    servers = []
    if args.role == "ps-chief":  # this process hosts the 2 ps and 2 worker servers and is the chief
        cluster = json.loads(os.environ["TF_CONFIG"])["cluster"]
        spec = tf.train.ClusterSpec(cluster)
        config = tf.compat.v1.ConfigProto(inter_op_parallelism_threads=8)  # in-process tasks share the pool
        servers = [tf.distribute.Server(spec, job_name=job, task_index=i, config=config, protocol="grpc", start=True)
                   for job in ("worker", "ps") for i in range(len(cluster[job]))]

    class EpochTimer(tf.keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self._t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._t0)

    timer = EpochTimer()
    seen = {}

    from tfrec.training import distribute, trainer

    original = distribute.local_copy

    def record(model, train, **kwargs):
        seen["traffic"] = _traffic(model, args)
        return original(model, train, **kwargs)

    trainer.local_copy = record
    result = tfrec.train("two_tower", args.dataset, data_dir=args.data_dir, split="leave_last_out", verbose=0,
                         strategy=args.strategy, callbacks=[timer], **_settings(args))
    rows = len(result.train)
    out = {"epoch_seconds": timer.seconds, "train_rows": rows,
           "ndcg": result.metrics.get("full", {}).get("ndcg@10"), "traffic": seen.get("traffic")}
    print("RESULT " + json.dumps(out), flush=True)
    if servers:
        os._exit(0)  # in-process servers have no clean shutdown


def _traffic(model, args) -> dict:
    """Bytes per training step a worker sends (computed from the variables and the batch)."""
    import numpy as np

    cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {})
    workers = max(1, len(cluster.get("worker", [])))
    batch = args.batch_size
    dense = sparse_rows = 0
    emb_dim = args.embedding_dim
    # tfrec's DenseGradientAdam turns embedding gradients into dense tables before they are reduced.
    dense_embeddings = type(getattr(model, "optimizer", None)).__name__ == "DenseGradientAdam"
    for v in model.trainable_variables:
        size = int(np.prod(v.shape)) * 4
        if "embedding" in v.name and not dense_embeddings:
            continue
        dense += size
    if dense_embeddings and args.strategy == "multi_worker":
        per_example_rows = 0  # no sparse all-gather: the tables are all-reduced whole
    else:  # rows a step looks up (sent one per lookup): user, item, history, user side, genres (<= 3)
        per_example_rows = 2 + model.history_length + 4 + 3
    sparse_rows = batch * per_example_rows
    row_bytes = emb_dim * 4 + 8  # values + int64 index
    out_dim = model.output_dim
    if args.strategy == "multi_worker":
        ring = 2 * (workers - 1) / workers
        local = batch // workers
        gather = (workers - 1) * local * (out_dim + 2) * 4  # GlobalRetrieval: candidates, logQ, ids
        return {"dense_allreduce": int(ring * dense), "sparse_allgather": int((workers - 1) * local * per_example_rows
                                                                              * row_bytes),
                "candidate_allgather": int(gather)}
    if args.strategy == "parameter_server":
        return {"dense_read_and_push": 2 * dense, "embedding_rows_read_and_push": 2 * sparse_rows * row_bytes}
    return {}


# ------------------------------------------------------------------------------------------------ orchestration
def _launch(args, role: str, strategy: str, n: int, log_dir: Path) -> list:
    import _cluster as C

    base = [sys.executable, __file__, "--role", role, "--strategy", strategy, "--dataset", args.dataset,
            "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
            "--embedding-dim", str(args.embedding_dim)] + (["--data-dir", args.data_dir] if args.data_dir else [])
    if strategy == "multi_worker":
        ports = C.free_ports(n)
        cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
        specs = [(f"{strategy}{i}", base, C.env_with(TF_CONFIG=C.tf_config(cluster, "worker", i))) for i in range(n)]
    elif strategy == "parameter_server":
        ports = C.free_ports(5)
        addr = [f"127.0.0.1:{p}" for p in ports]
        cluster = {"chief": addr[:1], "worker": addr[1:3], "ps": addr[3:]}
        specs = [(strategy, base, C.env_with(TF_CONFIG=C.tf_config(cluster, "chief", 0)))]
    else:
        specs = [(strategy, base, C.env_with())]
    t0 = time.perf_counter()
    with C.processes(specs, log_dir) as procs:
        codes = C.wait_all(procs, timeout=args.timeout)
    wall = time.perf_counter() - t0
    results = []
    for name, code in codes.items():
        text = (log_dir / f"{name}.log").read_text(errors="replace")
        if code != 0:
            raise SystemExit(f"{name} exited {code}:\n{text[-3000:]}")
        results += [json.loads(line[len("RESULT "):]) for line in text.splitlines() if line.startswith("RESULT ")]
    return results, wall


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="synthetic")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--embedding-dim", type=int, default=32)
    p.add_argument("--timeout", type=float, default=1800, help="seconds per configuration before giving up")
    p.add_argument("--role", default="orchestrate", choices=("orchestrate", "train", "ps-chief"))
    p.add_argument("--strategy", default="none")
    args = p.parse_args(argv)
    if args.role != "orchestrate":
        _run(args)
        return 0
    import tempfile

    log_dir = Path(tempfile.mkdtemp(prefix="tfrec-distributed-bench-"))
    rows = []
    for label, role, strategy, n in (("1 process", "train", "none", 1),
                                     ("2 workers (multi_worker)", "train", "multi_worker", 2),
                                     ("parameter server (2 workers, 2 ps)", "ps-chief", "parameter_server", 1)):
        results, wall = _launch(args, role, strategy, n, log_dir)
        chief = next(r for r in results if r["ndcg"] is not None)
        later = chief["epoch_seconds"][1:] or chief["epoch_seconds"]
        per_epoch = statistics.median(later)
        traffic = chief["traffic"] or {}
        rows.append((label, per_epoch, chief["train_rows"] / per_epoch, chief["epoch_seconds"][0],
                     sum(traffic.values()), chief["ndcg"], wall))
        print(f"[bench] {label}: {per_epoch:.2f} s/epoch, traffic {traffic}", file=sys.stderr, flush=True)
    print(f"\ntwo_tower on {args.dataset}, global batch {args.batch_size}, {args.epochs} epochs, "
          f"{os.cpu_count()} CPU cores shared by all processes\n")
    print("| configuration | s/epoch | examples/s | first epoch s (with tracing) | bytes/step per worker "
          "(computed) | full NDCG@10 | wall s |")
    print("|---|---|---|---|---|---|---|")
    for label, per_epoch, eps, first, traffic, ndcg, wall in rows:
        print(f"| {label} | {per_epoch:.2f} | {eps:,.0f} | {first:.1f} | {traffic / 1e6:.2f} MB | {ndcg:.4f} "
              f"| {wall:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
