"""Cost of the query tower's history encoders: one training step's forward + backward, in one process.

    python benchmarks/history_encoders.py [--batch-size 1024] [--history-length 20] [--dim 64]
                                          [--steps 50] [--json FILE]

Each row times a compiled (``tf.function``) step on the same random [batch, N, d] history
embeddings with mixed history lengths (a tenth of the rows empty): the encoder in training mode
(dropout on), the gradient of a scalar loss with respect to its variables and to the embeddings
(as in a fit, where the embeddings are trained). Rows:

* ``mean``: the query tower's learned-recency-weighted mean (``history_encoder="mean"``);
* ``attention``: ``AttentionHistoryEncoder`` as ``TwoTower`` runs it (the last block at the newest
  position only);
* ``attention (all positions)``: the same layer's reference computation (every position of every
  block, then position N-1: what ``"attention"`` ran before the single-query last block);
* ``gru``: ``GRUHistoryEncoder``.

It prints the median milliseconds per step over ``--steps`` steps (after two warm-up steps) and the
ratio to the mean row. On a shared machine read the ratios, which come from adjacent runs.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tfrec  # noqa: E402,F401  (Keras 2 before TensorFlow)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfrec.models.history_encoders import (  # noqa: E402
    AttentionHistoryEncoder,
    GRUHistoryEncoder,
    recency_weighted_mean,
)


def _mean_encoder(n: int):
    logits = tf.Variable(tf.zeros([n]), name="history_position_logits")
    return (lambda items, mask, training: recency_weighted_mean(items, mask, logits)), [logits]


def _time_step(encode, variables, items, mask, steps: int) -> float:
    """Median seconds of one compiled forward + backward step."""
    variables = list(variables)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            tape.watch(items)
            out = encode(items, mask, True)
            loss = tf.reduce_sum(tf.square(out))
        grads = tape.gradient(loss, variables + [items])
        return loss, tf.add_n([tf.reduce_sum(g) for g in grads if g is not None])

    times = []
    for i in range(steps + 2):
        start = time.perf_counter()
        _, total = step()
        total.numpy()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--history-length", type=int, default=20)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    b, n, d = args.batch_size, args.history_length, args.dim
    rng = np.random.default_rng(0)
    items = tf.constant(rng.normal(size=(b, n, d)), tf.float32)
    lengths = rng.integers(1, n + 1, size=b)
    lengths[rng.random(b) < 0.1] = 0
    mask = tf.constant(np.arange(n)[None, :] >= n - lengths[:, None])

    attention = AttentionHistoryEncoder(n, d)
    attention(items, mask)  # builds it, so both attention rows use the same variables
    gru = GRUHistoryEncoder(d)
    gru(items, mask)
    mean, mean_vars = _mean_encoder(n)
    has_any = tf.cast(tf.reduce_any(mask, axis=1, keepdims=True), tf.float32)
    rows = {
        "mean": (mean, mean_vars),
        "attention": (lambda x, m, t: attention(x, m, training=t), attention.trainable_variables),
        "attention (all positions)": (lambda x, m, t: attention._all_positions(x, m, training=t)[:, -1] * has_any,
                                      attention.trainable_variables),
        "gru": (lambda x, m, t: gru(x, m, training=t), gru.trainable_variables),
    }
    print(f"batch {b}, history length {n}, dim {d}; {os.cpu_count()} CPUs, load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    result = {}
    for name, (encode, variables) in rows.items():
        result[name] = _time_step(encode, variables, items, mask, args.steps) * 1000.0
    print(f"| encoder | ms per step (forward + backward) | vs mean |\n|---|---:|---:|")
    for name, ms in result.items():
        print(f"| {name} | {ms:.2f} | {ms / result['mean']:.2f}x |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"batch_size": b, "history_length": n, "dim": d, "ms_per_step": result}, f, indent=2)
    return result


if __name__ == "__main__":
    main()
