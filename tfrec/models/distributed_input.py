"""Training input under a ``tf.distribute`` strategy (what :meth:`KerasFitMixin._train` hands Keras).

* Mirrored / multi-worker (synchronous): Keras distributes the model's ordinary dataset. Its
  batches are *global* batches of ``batch_size``; each step every replica takes ``batch_size / N``
  rows of the same global batch, and each worker keeps only its replicas' rows (auto-shard policy
  ``DATA``: in-memory tensors have no files to split). The union of one step's per-replica batches
  is exactly the single-process batch, which is what lets N workers train like one (see
  :mod:`tfrec.models.retrieval` for the loss side). Datasets read from files can be sharded by file
  with ``shard_policy="file"``.
* Parameter server: workers run steps independently, so each builds its own dataset from a
  function (``DatasetCreator``) that the coordinator ships to it; Keras then needs
  ``steps_per_epoch``. Validation sets are not supported there (pass ``validation_fraction=0``).
"""

from __future__ import annotations

import tensorflow as tf

from tfrec.errors import ConfigError


def active_strategy():
    """The strategy of the enclosing ``strategy.scope()``, or None outside one (the default)."""
    return tf.distribute.get_strategy() if tf.distribute.has_strategy() else None


def is_parameter_server(strategy) -> bool:
    return isinstance(strategy, tf.distribute.experimental.ParameterServerStrategy)


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

    def dataset_fn(input_context):
        del input_context  # every worker reads all rows in its own order; steps are handed out per batch
        return make_train_dataset().repeat()

    steps = max(1, n_rows // batch_size)
    return tf.keras.utils.experimental.DatasetCreator(dataset_fn), None, {"steps_per_epoch": steps}
