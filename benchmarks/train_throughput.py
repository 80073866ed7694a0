"""Training throughput of every Keras model beside bare TensorFlow references, in one process.

    python benchmarks/train_throughput.py [--ratings 300000] [--batch-size N] [--models mf,two_tower,...]
                                          [--repeats 1] [--json FILE] [--n-users N --n-items M]

Data: ``synthetic_movielens(n_users=6040, n_items=3706, n_ratings=300000)`` (ML-1M-shaped, with
demographics, genres, years and timestamps). ``--n-users/--n-items`` set other table sizes, e.g.
ML-32M's ``--n-users 200948 --n-items 87585`` with the default 300,000 ratings: the cost of a step
that grows with the tables (an optimizer that touches every row) shows at a few ratings per user
without hours of data. Those rows come from :func:`tfrec.data.synthesize.write_synthetic_dataset`
(the streaming generator, in ml-32m's CSV layout, written to a temporary folder and read back:
genres, years and timestamps, no user demographics; the in-memory generator keeps a users x items
matrix). Every model's vocabularies, and so its tables, hold the ids of the ratings (every user;
the items rated at least once): the header prints both sizes. Every row trains ONE epoch on all of it (no validation
split) and reports ``examples / wall seconds``, where the wall time is the whole
``model.fit(ratings, items=..., users=..., epochs=1, validation_fraction=0)`` call: vocabularies,
side tables, the input pipeline, tracing and the epoch. The references are timed the same way
(vocabularies, ``tf.data`` pipeline, model construction, tracing and the epoch), written here in
plain TFRS / Keras:

* ``bare TFRS retrieval``: two towers, each ``StringLookup`` + ``Embedding(64)``, trained with
  ``tfrs.tasks.Retrieval()`` and Adam (the TFRS basic-retrieval tutorial's model) -- the reference
  of the two-tower rows;
* ``bare Keras MF``: ``StringLookup`` + ``Embedding(32)`` user and item factors plus biases and a
  global bias, MSE, Adam -- the reference of the rating rows.

``--models fm,fm_dense_adam`` (likewise ``wide_deep``, ``neumf``, ``two_tower``) also times the model
compiled with ``DenseGradientAdam`` (its optimizer before ``LazyAdam``: every row of every table
updated at every step) beside today's default in the same process.

Each model row runs at the model's own default batch size (or ``--batch-size`` for all) and is
compared with its reference run at that same batch size and learning rate, timed right before the
row's fit (with ``--repeats``, once before each fit; medians). The header prints the CPU count and
load average: on a shared machine compare ratios, which come from adjacent runs, not absolute
numbers across runs. The table also gives each fit's process CPU seconds (all threads; the
reference's in parentheses) and the CPU ratio (reference CPU / model CPU), which moves less with
other jobs' load than wall time does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tfrec  # noqa: E402,F401  (Keras 2 before TensorFlow)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_recommenders as tfrs  # noqa: E402

from tfrec.data import synthetic_movielens  # noqa: E402
from tfrec.data.movielens import load_movielens  # noqa: E402
from tfrec.data.synthesize import write_synthetic_dataset  # noqa: E402
from tfrec.models.optimizers import DenseGradientAdam  # noqa: E402
from tfrec.models.registry import create_model  # noqa: E402

RATING_ROWS = ["mf", "fm", "wide_deep", "neumf"]
RETRIEVAL_ROWS = ["two_tower", "two_tower_single", "two_tower_id"]
# Rows compiled with another optimizer than the model's default (not in the default --models):
# fm, wide_deep, neumf and the two-tower with DenseGradientAdam, their optimizer before LazyAdam
# (every table row updated at every step).
DENSE_ADAM_ROWS = {f"{m}_dense_adam": m for m in ("fm", "wide_deep", "neumf", "two_tower")}
# Rows that are a registry model with other settings.
VARIANTS = {"two_tower_single": ("two_tower", {"ensemble_size": 1}),
            **{row: (m, {}) for row, m in DENSE_ADAM_ROWS.items()}}
OPTIMIZERS = {row: DenseGradientAdam for row in DENSE_ADAM_ROWS}
REFERENCE = {**{m: "bare Keras MF" for m in RATING_ROWS}, **{m: "bare TFRS retrieval" for m in RETRIEVAL_ROWS}}
REFERENCE.update({row: REFERENCE[m] for row, m in DENSE_ADAM_ROWS.items()})
TARGETS = {"two_tower": 1.0, "mf": 1.0}  # examples/s ratio to the reference, issue 14


# -- the bare references -----------------------------------------------------------------------------
class BareRetrieval(tfrs.Model):
    """The TFRS basic-retrieval model: StringLookup + Embedding(64) per tower, Retrieval task."""

    def __init__(self, users, items, dim: int = 64):
        super().__init__()
        self.query = tf.keras.Sequential([tf.keras.layers.StringLookup(vocabulary=users, mask_token=None),
                                          tf.keras.layers.Embedding(len(users) + 1, dim)])
        self.candidate = tf.keras.Sequential([tf.keras.layers.StringLookup(vocabulary=items, mask_token=None),
                                              tf.keras.layers.Embedding(len(items) + 1, dim)])
        self.task = tfrs.tasks.Retrieval()

    def compute_loss(self, features, training=False):
        return self.task(self.query(features["user_id"]), self.candidate(features["item_id"]))


def bare_mf(users, items, dim: int = 32) -> tf.keras.Model:
    """Keras MF with biases: mu + b_u + b_i + <p_u, q_i> from raw string ids."""
    u_in = tf.keras.Input(shape=(), dtype=tf.string, name="user_id")
    i_in = tf.keras.Input(shape=(), dtype=tf.string, name="item_id")
    u = tf.keras.layers.StringLookup(vocabulary=users, mask_token=None)(u_in)
    i = tf.keras.layers.StringLookup(vocabulary=items, mask_token=None)(i_in)
    init = tf.keras.initializers.RandomNormal(stddev=0.01)
    pu = tf.keras.layers.Embedding(len(users) + 1, dim, embeddings_initializer=init)(u)
    qi = tf.keras.layers.Embedding(len(items) + 1, dim, embeddings_initializer=init)(i)
    bu = tf.keras.layers.Embedding(len(users) + 1, 1, embeddings_initializer="zeros")(u)
    bi = tf.keras.layers.Embedding(len(items) + 1, 1, embeddings_initializer="zeros")(i)
    dot = tf.keras.layers.Dot(axes=1)([pu, qi])
    out = tf.keras.layers.Add()([dot, bu, bi])
    out = tf.keras.layers.Dense(1, kernel_initializer="ones", trainable=True, name="global_bias")(out)
    return tf.keras.Model({"user_id": u_in, "item_id": i_in}, tf.squeeze(out, -1))


def run_reference(kind: str, ratings, *, batch_size: int, learning_rate: float, seed: int = 0):
    """(wall seconds, process CPU seconds) of one epoch of a bare reference, set-up and tracing included."""
    tf.keras.utils.set_random_seed(seed)
    t0, c0 = time.perf_counter(), time.process_time()
    users = np.unique(ratings["user_id"].astype(str).to_numpy())
    items = np.unique(ratings["item_id"].astype(str).to_numpy())
    order = np.random.default_rng(seed).permutation(len(ratings))
    cols = {"user_id": ratings["user_id"].astype(str).to_numpy()[order],
            "item_id": ratings["item_id"].astype(str).to_numpy()[order]}
    if kind == "bare TFRS retrieval":
        ds = tf.data.Dataset.from_tensor_slices(cols).batch(batch_size).prefetch(tf.data.AUTOTUNE)
        model = BareRetrieval(users, items)
        model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate))
    else:
        y = ratings["rating"].to_numpy(np.float32)[order]
        ds = tf.data.Dataset.from_tensor_slices((cols, y)).batch(batch_size).prefetch(tf.data.AUTOTUNE)
        model = bare_mf(users, items)
        model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate), loss="mse")
    model.fit(ds, epochs=1, verbose=0)
    return time.perf_counter() - t0, time.process_time() - c0


def load_data(n_ratings: int, n_users=None, n_items=None):
    """(data, description): the ML-1M-shaped in-memory synthetic data, or with table sizes the
    streaming generator's (ml-32m's CSV layout) written to a temporary folder and read back."""
    if n_users is None:
        return (synthetic_movielens(n_users=6040, n_items=3706, n_ratings=n_ratings, seed=0),
                "synthetic_movielens(n_users=6040, n_items=3706)")
    with tempfile.TemporaryDirectory(prefix="tfrec-throughput-") as tmp:
        folder = Path(tmp) / "data"
        write_synthetic_dataset(folder, layout="ml-32m", n_users=n_users, n_items=n_items, n_ratings=n_ratings, seed=0)
        data = load_movielens("ml-32m", data_dir=folder, download=False)
    return data, f"write_synthetic_dataset(layout='ml-32m', n_users={n_users}, n_items={n_items})"


def make_model(name: str, *, batch_size=None, seed: int = 0):
    """The unfitted registry model of row ``name``."""
    base, overrides = VARIANTS.get(name, (name, {}))
    kwargs = {**overrides, "epochs": 1, "seed": seed}
    if batch_size:
        kwargs["batch_size"] = batch_size
    if base == "neumf":
        kwargs["objective"] = "rating"
    model = create_model(base, **kwargs)
    if name in OPTIMIZERS:  # the model's own default compile, with another optimizer
        model._default_optimizer = lambda: OPTIMIZERS[name](model.learning_rate)
    return model


def run_model(name: str, data, *, batch_size=None, seed: int = 0):
    """(wall seconds, process CPU seconds, the model) of a one-epoch fit of registry row ``name``."""
    model = make_model(name, batch_size=batch_size, seed=seed)
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(data.ratings, items=data.items, users=data.users, validation_fraction=0.0, verbose=0)
    return time.perf_counter() - t0, time.process_time() - c0, model


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ratings", type=int, default=300_000, help="synthetic ratings (default: %(default)s)")
    p.add_argument("--models", default=",".join(RATING_ROWS + RETRIEVAL_ROWS))
    p.add_argument("--batch-size", type=int, default=None, help="one batch size for every row (default: each "
                   "model's own default; the reference then runs at that size too)")
    p.add_argument("--repeats", type=int, default=1, help="time every row this many times; report the median")
    p.add_argument("--json", help="also write the rows to this JSON file")
    p.add_argument("--n-users", type=int, default=None, help="users of the synthetic data (with --n-items; "
                   "default: ML-1M's 6,040 from the in-memory generator)")
    p.add_argument("--n-items", type=int, default=None, help="items of the synthetic data (with --n-users; "
                   "default: ML-1M's 3,706)")
    args = p.parse_args(argv)
    names = [m for m in args.models.split(",") if m]
    unknown = sorted(set(names) - set(REFERENCE))
    if unknown:
        print(f"unknown model(s) {unknown}; expected some of {sorted(REFERENCE)}", file=sys.stderr)
        return 2
    if (args.n_users is None) != (args.n_items is None):
        print("--n-users and --n-items go together", file=sys.stderr)
        return 2
    data, source = load_data(args.ratings, args.n_users, args.n_items)
    n = len(data.ratings)
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    print(f"# Training throughput: {source}, {n} ratings ({data.ratings['user_id'].nunique():,} users and "
          f"{data.ratings['item_id'].nunique():,} items rated), one epoch; {os.cpu_count()} CPUs, load average "
          f"{load[0]:.2f} at start\n")
    # An untimed warm-up so TensorFlow's one-off start-up is charged to no row.
    warm = synthetic_movielens(n_users=50, n_items=40, n_ratings=600, seed=0)
    create_model("mf", epochs=1).fit(warm.ratings, verbose=0, validation_fraction=0.0)
    run_reference("bare Keras MF", warm.ratings, batch_size=256, learning_rate=1e-3)

    rows = []
    for name in names:
        settings = make_model(name, batch_size=args.batch_size)
        batch, lr = settings.batch_size, settings.learning_rate
        times, cpu, ref_times, ref_cpu, model = [], [], [], [], None
        for _ in range(max(1, args.repeats)):
            # The reference right before each fit: on a shared machine the load drifts within
            # minutes, and a reference timed once for all rows made their ratios drift with it.
            wall, used = run_reference(REFERENCE[name], data.ratings, batch_size=batch, learning_rate=lr)
            ref_times.append(wall)
            ref_cpu.append(used)
            wall, used, model = run_model(name, data, batch_size=args.batch_size)
            times.append(wall)
            cpu.append(used)
        secs, ref = float(np.median(times)), float(np.median(ref_times))
        row = {"model": name, "batch_size": int(model.batch_size), "seconds": secs, "examples_per_s": n / secs,
               "reference": REFERENCE[name], "reference_examples_per_s": n / ref, "ratio": ref / secs,
               "cpu_seconds": float(np.median(cpu)), "reference_cpu_seconds": float(np.median(ref_cpu)),
               "cpu_ratio": float(np.median(ref_cpu) / np.median(cpu)),
               "optimizer": type(model.optimizer).__name__}
        rows.append(row)
        print(f"{name} ({row['optimizer']}): {row['examples_per_s']:,.0f} examples/s, {row['ratio']:.2f}x "
              f"{row['reference']} ({n / ref:,.0f} examples/s just before)", file=sys.stderr, flush=True)
    print("| model | batch | examples/s | reference | reference examples/s | ratio | CPU s (ref) | CPU ratio |")
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['batch_size']} | {r['examples_per_s']:,.0f} | {r['reference']} | "
              f"{r['reference_examples_per_s']:,.0f} | {r['ratio']:.2f}x | {r['cpu_seconds']:.1f} "
              f"({r['reference_cpu_seconds']:.1f}) | {r['cpu_ratio']:.2f}x |")
    by = {r["model"]: r for r in rows}
    checks = [f"{m} {by[m]['ratio']:.2f}x >= {t:.1f}x: {'yes' if by[m]['ratio'] >= t else 'NO'}"
              for m, t in TARGETS.items() if m in by]
    if checks:
        print("\nTargets: " + "; ".join(checks))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
