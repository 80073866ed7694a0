"""Training input under a ``tf.distribute`` strategy (what :meth:`KerasFitMixin._train` hands Keras).

* Mirrored / multi-worker (synchronous): Keras distributes the model's ordinary dataset. Its
  batches are *global* batches of ``batch_size``; each step every replica takes ``batch_size / N``
  rows of the same global batch, and each worker keeps only its replicas' rows (auto-shard policy
  ``DATA``: in-memory tensors have no files to split). The union of one step's per-replica batches
  is exactly the single-process batch, which is what lets N workers train like one (see
  :mod:`tfrec.models.retrieval` for the loss side). Datasets read from files can be sharded by file
  with ``shard_policy="file"``.
* Parameter server: workers run steps independently, so each builds its own dataset from a
  function (``DatasetCreator``) that the coordinator ships to it (each keeps every n-th batch of
  the seeded order, from a draw counter on a ps task); Keras then needs ``steps_per_epoch``.
  Validation sets are not supported there (pass ``validation_fraction=0``).
* Files (prepared TFRecord shards, :func:`file_sharded_input`): every input pipeline reads a
  disjoint share of the files. Synchronous strategies get one pipeline per worker
  (``distribute_datasets_from_function``: pipeline ``i`` of ``n`` reads files ``i, i+n, ...``) and
  the same number of steps on every worker; parameter-server workers, which TensorFlow hands the
  same input context, draw their share and their shuffling seed from a counter on the ps tasks.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Optional

import tensorflow as tf

from tfrec.errors import ConfigError


def active_strategy():
    """The strategy of the enclosing ``strategy.scope()``, or None outside one (the default)."""
    return tf.distribute.get_strategy() if tf.distribute.has_strategy() else None


def is_parameter_server(strategy) -> bool:
    return isinstance(strategy, tf.distribute.experimental.ParameterServerStrategy)


def keras_verbose(strategy, verbose):
    """Keras ``fit``'s ``verbose`` under ``strategy``: the per-step progress bar (1) becomes one line
    per epoch (2) under a parameter server, where Keras refuses 1."""
    return 2 if strategy is not None and is_parameter_server(strategy) and verbose == 1 else verbose


def _with_shard_policy(ds, policy):
    if ds is None:
        return None
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = policy
    return ds.with_options(options)


def check_batch_size(strategy, batch_size: int) -> None:
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise ConfigError(f"batch_size={batch_size} must be a multiple of the {replicas} replicas in sync, so every "
                          "replica gets the same number of rows of each global batch")


def distributed_fit_input(strategy, train_ds, val_ds, *, make_train_dataset=None, n_rows=None, batch_size: int,
                          shard_policy: str = "data"):
    """(x, validation_data, extra Keras ``fit`` kwargs) for training under ``strategy``.

    Args:
      train_ds, val_ds: the model's ordinary datasets (global batches; val_ds may be None).
      make_train_dataset: ``() -> tf.data.Dataset`` building the training dataset from scratch
        (needed by the parameter-server strategy, whose workers each build their own).
      n_rows: training rows (parameter server: ``steps_per_epoch = n_rows // batch_size``).
      shard_policy: ``"data"`` (every worker reads all rows, keeps its share) or ``"file"``.
    """
    check_batch_size(strategy, batch_size)
    if not is_parameter_server(strategy):
        policy = {"data": tf.data.experimental.AutoShardPolicy.DATA,
                  "file": tf.data.experimental.AutoShardPolicy.FILE}[shard_policy]
        return _with_shard_policy(train_ds, policy), _with_shard_policy(val_ds, policy), {}
    if val_ds is not None:
        raise ConfigError("parameter_server training takes no validation set: pass validation_fraction=0 (the "
                          "workers run steps on their own; early stopping would need a separate evaluator)")
    if make_train_dataset is None or not n_rows:
        raise ConfigError("this model's training input cannot be rebuilt on parameter-server workers")

    n = input_pipelines(strategy)
    draws = _draw_counter(strategy)

    def dataset_fn(input_context):
        del input_context  # the same for every worker (see _draw_counter)
        # Every worker builds the same seeded order; each keeps every n-th batch of it from its
        # draw, so an epoch (n_rows // batch_size steps, handed to whichever worker is free) is
        # about one pass, not n copies of the first 1/n of it.
        draw = draws.assign_add(1) - 1
        return make_train_dataset().shard(n, draw % n).repeat()

    steps = max(1, n_rows // batch_size)
    creator = tf.keras.utils.experimental.DatasetCreator(dataset_fn)
    creator.draws = draws
    return creator, None, {"steps_per_epoch": steps}


def _draw_counter(strategy):
    """An int64 counter on a ps task: a worker's dataset function takes ``assign_add(1) - 1`` as its
    draw (0, 1, ...) when the worker creates its dataset. ParameterServerStrategy hands every worker
    the same ``InputContext`` (pipeline 0 of 1) and traces the dataset function once, so this is
    how each worker's input can differ."""
    with strategy.scope():
        return tf.Variable(tf.constant(0, tf.int64), trainable=False, name="tfrec_input_draws")


@dataclass(frozen=True)
class InputPlan:
    """How :func:`file_sharded_input` splits the files: ``shards[k]`` is pipeline k's file list,
    ``examples[k]`` its examples, each step takes ``rows_per_step`` rows from each synchronous
    pipeline (parameter server: from one worker), ``steps_per_epoch`` global steps an epoch,
    ``replicas`` the replicas in sync."""

    strategy: str
    shards: tuple
    examples: tuple
    rows_per_step: int
    steps_per_epoch: int
    replicas: int = 1

    def to_dict(self) -> dict:
        return {"strategy": self.strategy, "replicas": self.replicas, "pipelines": len(self.shards),
                "shards": [[os.path.basename(f) for f in fs] for fs in self.shards],
                "examples": list(self.examples), "rows_per_step": self.rows_per_step,
                "steps_per_epoch": self.steps_per_epoch}


def input_pipelines(strategy) -> int:
    """How many input pipelines read the files: the workers of a multi-worker or parameter-server
    cluster (chief included for multi-worker), 1 on one machine."""
    # ParameterServerStrategy keeps its resolver on itself, not where the public property looks.
    resolver = getattr(strategy, "cluster_resolver", None) or getattr(strategy, "_cluster_resolver", None)
    spec = resolver.cluster_spec().as_dict() if resolver is not None else {}
    if is_parameter_server(strategy):
        return len(spec.get("worker", [])) or 1
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return max(1, len(spec.get("worker", [])) + len(spec.get("chief", [])))
    return 1


def plan_file_shards(strategy, files, counts, *, batch_size: int, steps_per_epoch: Optional[int] = None) -> InputPlan:
    """The :class:`InputPlan` for ``files`` (with ``counts`` examples each) under ``strategy``.

    Pipeline ``k`` of ``n`` reads ``files[k::n]``. Synchronous strategies: a step takes
    ``batch_size / n`` rows from every pipeline, and an epoch is as many steps as the smallest share
    fills (so every worker runs the same number of steps; with a number of files that is a multiple
    of ``n`` the shares differ by at most one block). Parameter server: a step is ``batch_size`` rows
    of one worker, an epoch ``sum(counts) // batch_size`` steps. ``steps_per_epoch`` overrides the
    count (the pipelines repeat their files).
    """
    check_batch_size(strategy, batch_size)
    files, counts = [str(f) for f in files], [int(c) for c in counts]
    n = input_pipelines(strategy)
    if len(files) < n:
        raise ConfigError(f"the prepared folder has {len(files)} shard file(s) for {n} workers: every worker reads "
                          f"its own files, so prepare it again with --num-shards {n} (or a multiple of {n})")
    shards = tuple(tuple(files[k::n]) for k in range(n))
    examples = tuple(sum(counts[k::n]) for k in range(n))
    ps = is_parameter_server(strategy)
    rows = batch_size if ps else batch_size // n
    if steps_per_epoch is None:
        steps_per_epoch = sum(examples) // batch_size if ps else min(examples) // rows
    name = "parameter_server" if ps else (
        "multi_worker" if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) else "mirrored")
    return InputPlan(name, shards, examples, rows, max(1, int(steps_per_epoch)), int(strategy.num_replicas_in_sync))


def file_sharded_input(strategy, plan: InputPlan, make_dataset, *, seed: int, log=None):
    """A Keras ``DatasetCreator`` reading the files of ``plan`` (see :func:`plan_file_shards`).

    Args:
      make_dataset: ``(files, seed, batch_size) -> tf.data.Dataset`` of shuffled batches of
        ``batch_size`` rows that repeats forever; ``files`` is a list of paths or a dataset of them,
        ``seed`` an int.
      seed: pipeline k shuffles with ``seed + k`` (parameter server: ``seed``, on a file order
        shuffled by ``(seed, draw)``).
      log: ``(message) -> None`` told what each pipeline reads (default: nothing; under a parameter
        server each worker also prints its share to its own stderr).

    Pass ``steps_per_epoch=plan.steps_per_epoch`` to Keras ``fit``.
    """
    n = len(plan.shards)
    if is_parameter_server(strategy):
        all_files = [f for k in range(n) for f in plan.shards[k]]
        share = tf.constant([k for k in range(n) for _ in plan.shards[k]], dtype=tf.int64)
        draws = _draw_counter(strategy)

        def ps_dataset_fn(input_context):
            del input_context
            draw = draws.assign_add(1) - 1
            mine = tf.boolean_mask(tf.constant(all_files), tf.equal(share, draw % n))
            # tf.data shuffles take only Python seeds; a share's file order seeded by the draw
            # makes every worker's (and a restarted worker's) stream differ from the others'.
            mine = tf.random.experimental.stateless_shuffle(mine, seed=tf.stack([tf.constant(seed, tf.int64), draw]))
            if log is not None:  # printed where the dataset is made: in the worker's own log
                with tf.control_dependencies([tf.print("[tfrec] parameter_server input: draw", draw, "reads share",
                                                       draw % n, "of", n, ":", mine, summarize=-1,
                                                       output_stream=sys.stderr)]):
                    mine = tf.identity(mine)
            return make_dataset(tf.data.Dataset.from_tensor_slices(mine), seed, plan.rows_per_step)

        if log is not None:
            sizes = sorted({len(fs) for fs in plan.shards})
            log(f"parameter_server: each of {n} workers reads its own share of the {len(all_files)} shard files "
                f"({'-'.join(map(str, sizes))} files, drawn when its dataset is made); {plan.steps_per_epoch} steps "
                f"of {plan.rows_per_step} rows an epoch, from whichever worker is free")
        creator = tf.keras.utils.experimental.DatasetCreator(ps_dataset_fn)
        creator.draws = draws  # how many worker datasets were made (for inspection)
        return creator

    def dataset_fn(input_context):
        k, pipelines = input_context.input_pipeline_id, input_context.num_input_pipelines
        if pipelines != n:
            raise ConfigError(f"the input plan has {n} pipelines but the strategy runs {pipelines}")
        rows = input_context.get_per_replica_batch_size(n * plan.rows_per_step)
        if log is not None:
            names = ", ".join(os.path.basename(f) for f in plan.shards[k])
            log(f"input pipeline {k} of {n} reads {len(plan.shards[k])} shard file(s) ({plan.examples[k]} examples): "
                f"{names}; {plan.steps_per_epoch} steps of {plan.rows_per_step} rows an epoch")
        return make_dataset(list(plan.shards[k]), seed + k, rows)

    return tf.keras.utils.experimental.DatasetCreator(dataset_fn)
