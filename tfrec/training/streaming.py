"""Training from a prepared dataset: shards streamed with ``tf.data``, never the ratings in memory.

``tfrec.train(model, prepared=PATH)`` / ``tfrec train MODEL --prepared PATH`` end here:

* :func:`configure_from_prepared` gives a Keras model what ``fit(DataFrame)`` would have derived
  from the training frame -- vocabularies (``vocabularies.json``), side tables (``items.csv``,
  ``users.csv``), the recommender state (catalog, seen items, popularity; ``state.npz``), the
  global mean, and for the two-tower its logQ counts and serving history -- from the prepared
  folder's small summary files;
* :func:`fit_prepared` streams the TFRecord shards (:func:`tfrec.data.prepared.shard_dataset`:
  files interleaved, examples shuffled within a buffer) into Keras ``fit``; ``steps_per_epoch``
  caps an epoch. There is no validation split to stop early on: epochs are what you ask for.
  Inside a ``tf.distribute`` strategy scope the shard files are split across the workers, each
  reading only its own (:func:`tfrec.models.distributed_input.file_sharded_input`), with the same
  number of steps on every synchronous worker;
* :func:`evaluate_prepared` evaluates on the prepared test split; full ranking streams users in
  batches (top-k per batch) and excludes each user's training items from the model's own state.

Peak memory is the model, the shuffle buffer and that per-user state (a few bytes per training
rating for the seen items), not the ratings log.
"""

from __future__ import annotations

import sys
import time
from typing import Optional

import numpy as np

from tfrec.data import features as F
from tfrec.data.prepared import HISTORY_ITEMS, PreparedDataset, open_prepared
from tfrec.errors import ConfigError
from tfrec.models.checks import normalise_vocabularies
from tfrec.models.distributed_input import active_strategy, is_parameter_server, keras_verbose
from tfrec.models.layers import Untracked

DEFAULT_SHUFFLE_BUFFER = 1 << 17


def _check_streamable(model, name: str) -> None:
    from tfrec.training.result import is_keras

    if not is_keras(model) or not hasattr(model, "_set_side_tables"):
        raise ConfigError(f"model {name!r} is not a Keras model: it needs the whole log in memory and cannot be "
                          "trained from --prepared shards (train it with --dataset instead)")
    if getattr(model, "resample_each_epoch", False):
        raise ConfigError(f"model {name!r} samples new negatives from the in-memory log every epoch; it cannot be "
                          "trained from --prepared shards (use objective='rating', or --dataset)")


def configure_from_prepared(model, prepared) -> PreparedDataset:
    """Build ``model`` (if needed) and set its training-derived state from a prepared folder."""
    prepared = open_prepared(prepared)
    vocabs = prepared.vocabularies()
    state = prepared.state()
    items = prepared.items() if getattr(model, "uses_side_features", False) else None
    users = prepared.users() if getattr(model, "uses_side_features", False) else None
    n_train = max(int(prepared.n_train), 1)
    if model.vocabularies is None:
        if getattr(model, "global_mean", None) is not None:
            import pandas as pd

            mean = model._global_mean_from(pd.Series([float(state["rating_sum"][0]) / n_train]))
            if mean is not None:
                model.global_mean = mean
        side = prepared.side_features  # a schema.json dataset: features typed by its schema
        use_side = model.uses_side_features and getattr(model, "use_features", True)
        if side is not None and use_side:
            model._side_features = Untracked(side)  # as fit(): specs with training-split statistics
        keep = [F.USER_ID, F.ITEM_ID] + ([k for k in vocabs if k not in (F.USER_ID, F.ITEM_ID)]
                                         if model.uses_side_features and (side is None or use_side) else [])
        model._vocabularies = Untracked(normalise_vocabularies({k: vocabs[k].values for k in keep if k in vocabs}))
        model._build()
    elif list(model.vocabularies[F.ITEM_ID]) != vocabs[F.ITEM_ID].values or \
            list(model.vocabularies[F.USER_ID]) != vocabs[F.USER_ID].values:
        raise ConfigError(f"the model's vocabularies differ from {prepared.path}/vocabularies.json: a model trained "
                          "on prepared shards must be built from that folder's vocabularies")
    model._set_side_tables(items if model.has_item_features else None, users if model.has_user_features else None)
    set_recommender_state(model, vocabs[F.USER_ID].values, vocabs[F.ITEM_ID].values, state)
    if hasattr(model, "_prepare_summary"):
        model._prepare_summary(state["item_counts"], state["history"], items, users)
    return prepared


def set_recommender_state(model, user_vocab, item_vocab, state: dict) -> None:
    """The :class:`~tfrec.models.base.RecommenderMixin` state (catalog_, seen_, user_index_,
    popularity_, item_index_) from vocabularies and the prepared per-user seen items (CSR)."""
    items = np.asarray(item_vocab, dtype=object)
    order = np.argsort(items.astype(str), kind="stable")  # np.unique's order: the catalog is sorted
    catalog = items[order]
    position = np.empty(len(items) + 1, dtype=np.int32)
    position[0] = -1
    position[1 + order] = np.arange(len(items), dtype=np.int32)
    indptr, seen_items = state["seen_indptr"], state["seen_items"]
    seen_pos = position[seen_items]
    seen = {}
    for j, user in enumerate(user_vocab, start=1):
        part = seen_pos[indptr[j]:indptr[j + 1]]
        if len(part):
            seen[user] = np.sort(part)
    model.catalog_ = catalog
    model.item_index_ = {it: k for k, it in enumerate(catalog)}
    model.seen_ = seen
    model.user_index_ = {u: k for k, u in enumerate(seen)}
    counts = np.asarray(state["item_counts"], dtype=np.float64)
    popularity = np.zeros(len(catalog), dtype=np.float64)
    popularity[position[1:]] = counts[1:]
    model.popularity_ = popularity


def training_features(model, prepared: PreparedDataset) -> list:
    """The prepared features ``model`` trains on (its inputs, plus the two-tower's history)."""
    names = [n for n in model._feature_subset() if n in prepared.features]
    if getattr(model, "history_length", 0) and HISTORY_ITEMS in prepared.features:
        names.append(HISTORY_ITEMS)
    return names


def prepared_training_dataset(model, prepared: PreparedDataset, *, batch_size: int, seed,
                              steps_per_epoch: Optional[int] = None, shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER,
                              files=None, repeat: bool = False):
    """Shuffled training batches for ``model`` from the prepared shards (repeated when
    ``steps_per_epoch`` caps an epoch or ``repeat``; otherwise one epoch = one pass over the shards).

    ``files`` reads only those shards (paths, or a dataset of them: a distributed worker's share).
    """
    import tensorflow as tf

    from tfrec.data.prepared import shard_dataset

    label = model.label_key
    drop = label is None  # in-batch softmax models (two-tower) train on full batches, as in memory
    repeat = repeat or steps_per_epoch is not None
    ds = shard_dataset(prepared.shard_files if files is None else files, prepared.features, batch_size=batch_size,
                       features=training_features(model, prepared), label_key=label, shuffle=True,
                       shuffle_buffer=shuffle_buffer, seed=seed, drop_remainder=drop, repeat=repeat,
                       block_rows=prepared.block_rows)
    n_hist = getattr(model, "history_length", 0)
    if n_hist and HISTORY_ITEMS in prepared.features and prepared.history_length > n_hist:
        def last_n(*elem):
            feats = dict(elem[0])
            feats[HISTORY_ITEMS] = feats[HISTORY_ITEMS][:, -n_hist:]  # right-aligned: the latest n
            return (feats,) + tuple(elem[1:]) if len(elem) > 1 else feats
        ds = ds.map(last_n)
    if not repeat:
        n = prepared.n_train
        batches = n // batch_size if drop else -(-n // batch_size)
        ds = ds.apply(tf.data.experimental.assert_cardinality(max(1, batches)))
    return ds


def fit_prepared(model, prepared, *, epochs: Optional[int] = None, batch_size: Optional[int] = None,
                 steps_per_epoch: Optional[int] = None, shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER,
                 verbose=0, callbacks=None, name: str = "model"):
    """Fit a Keras recommender on a prepared folder's shards; returns the model (``history_``,
    ``fit_seconds_`` and ``examples_per_second_`` set)."""
    import tensorflow as tf

    from tfrec.models.checks import check_positive_int

    _check_streamable(model, name)
    t0 = time.perf_counter()
    prepared = configure_from_prepared(model, prepared)
    epochs = check_positive_int("epochs", epochs) if epochs is not None else model.epochs
    batch_size = check_positive_int("batch_size", batch_size) if batch_size is not None else model.batch_size
    if steps_per_epoch is not None:
        steps_per_epoch = check_positive_int("steps_per_epoch", steps_per_epoch)
    tf.keras.utils.set_random_seed(model.seed)
    if not getattr(model, "_is_compiled", False):
        model._compile_default()
    model._prebuild_for_training()
    strategy = active_strategy()
    if strategy is None:
        ds = prepared_training_dataset(model, prepared, batch_size=batch_size, seed=model.seed,
                                       steps_per_epoch=steps_per_epoch, shuffle_buffer=shuffle_buffer)
    else:
        ds, steps_per_epoch = _distributed_dataset(model, prepared, strategy, batch_size=batch_size,
                                                   steps_per_epoch=steps_per_epoch, shuffle_buffer=shuffle_buffer,
                                                   verbose=verbose)
    if hasattr(model, "_cand_cache"):
        model._cand_cache = None
    t_fit = time.perf_counter()
    meter = _Throughput()
    # Keras refuses batch-level callbacks under a parameter server: the rate includes start-up there.
    metered = [] if strategy is not None and is_parameter_server(strategy) else [meter.callback]
    history = tf.keras.Model.fit(model, ds, epochs=epochs, steps_per_epoch=steps_per_epoch,
                                 verbose=keras_verbose(strategy, verbose), callbacks=list(callbacks or []) + metered)
    train_seconds = time.perf_counter() - t_fit
    model.history_ = {k: [float(v) for v in vs] for k, vs in history.history.items()}
    steps = steps_per_epoch if steps_per_epoch is not None else (
        prepared.n_train // batch_size if model.label_key is None else -(-prepared.n_train // batch_size))
    # Steady state: from the end of the first step call (tracing, buffer filling) to the last.
    model.examples_per_second_ = meter.steps_per_second(steps * epochs / max(train_seconds, 1e-9)) * batch_size
    model.examples_per_second_with_startup_ = steps * epochs * batch_size / max(train_seconds, 1e-9)
    model.fit_seconds_ = time.perf_counter() - t0
    return model


def _distributed_dataset(model, prepared: PreparedDataset, strategy, *, batch_size: int,
                         steps_per_epoch: Optional[int], shuffle_buffer: int, verbose):
    """(Keras ``DatasetCreator``, steps per epoch) reading the shards split by file across the
    strategy's workers (:func:`tfrec.models.distributed_input.plan_file_shards`); sets
    ``model.input_plan_``."""
    from tfrec.models.distributed_input import file_sharded_input, plan_file_shards

    counts = [int(s["examples"]) for s in prepared.meta["shards"]]
    plan = plan_file_shards(strategy, prepared.shard_files, counts, batch_size=batch_size,
                            steps_per_epoch=steps_per_epoch)

    def make_dataset(files, seed, rows):
        return prepared_training_dataset(model, prepared, batch_size=rows, seed=seed, files=files, repeat=True,
                                         shuffle_buffer=shuffle_buffer)

    model.input_plan_ = plan  # a dataclass: Keras would wrap a dict attribute
    creator = file_sharded_input(strategy, plan, make_dataset, seed=model.seed,
                                 log=(lambda message: log(verbose, message)) if verbose else None)
    return creator, plan.steps_per_epoch


class _Throughput:
    """Keras callback: steps per second between the first and the last training-step call of a fit
    (so tracing and the shuffle buffer's first fill are not counted)."""

    def __init__(self):
        import tensorflow as tf

        class _Callback(tf.keras.callbacks.Callback):
            def __init__(inner):
                super().__init__()
                inner.marks = []  # (global step, time)
                inner.base = 0

            def on_epoch_begin(inner, epoch, logs=None):
                inner.base = inner.marks[-1][0] if inner.marks else 0

            def on_train_batch_end(inner, batch, logs=None):
                inner.marks.append((inner.base + batch + 1, time.perf_counter()))

        self.callback = _Callback()

    def steps_per_second(self, fallback: float) -> float:
        marks = self.callback.marks
        if len(marks) < 2 or marks[-1][1] <= marks[0][1]:
            return fallback
        return (marks[-1][0] - marks[0][0]) / (marks[-1][1] - marks[0][1])


def evaluate_prepared(model, prepared, *, k: int = 10, eval_users: Optional[int] = None, seed: int = 0,
                      verbose: int = 0) -> dict:
    """Test metrics on the prepared test split: ``rmse``/``mae`` for rating models; ``full``
    ranking (the model's training items excluded, users scored in batches) for models that rank.

    ``eval_users`` evaluates a seeded random sample of that many test users (ranking only).
    """
    from tfrec.evaluation import protocols as P
    from tfrec.training.result import is_ranked, rating_metrics

    prepared = open_prepared(prepared)
    test = prepared.test()
    out = rating_metrics(model, test)
    if is_ranked(model, prepared.meta["split"]):
        users = None
        test_users = np.asarray(sorted(set(test["user_id"].astype(str))), dtype=object)
        if eval_users is not None and eval_users < len(test_users):
            users = np.random.default_rng(seed).choice(test_users, size=int(eval_users), replace=False)
        t0 = time.perf_counter()
        out["full"] = P.full_ranking(model, None, test, k=k, users=users, verbose=bool(verbose))
        seconds = time.perf_counter() - t0
        out["full"]["seconds"] = round(seconds, 3)
        out["full"]["seconds_per_1000_users"] = round(1000.0 * seconds / max(out["full"]["n_users"], 1), 3)
    return out


def log(verbose, message: str) -> None:
    if verbose:
        print(f"[tfrec] {message}", file=sys.stderr, flush=True)


def load_prepared_run(run_dir, config: dict, metrics: dict):
    """:func:`tfrec.training.load_run` for a run trained from a prepared folder (config ``prepared``)."""
    from pathlib import Path

    from tfrec.errors import DataError
    from tfrec.models import registry
    from tfrec.training.result import TrainResult

    run_dir = Path(run_dir)
    name = config["model_name"]
    cls = registry.get_model_class(name)
    try:
        prepared = open_prepared(config["prepared"])
    except DataError as exc:
        raise DataError(f"{run_dir}: the run was trained from the prepared folder {config['prepared']}, which "
                        f"cannot be opened: {exc}") from None
    model = cls.from_config(config["model_config"])
    configure_from_prepared(model, prepared)
    model._build_all_variables()
    model.load_weights(str(run_dir / "model" / "weights")).expect_partial()
    return TrainResult(model=model, metrics=metrics, model_name=name, run_dir=run_dir, items=prepared.items(),
                       users=prepared.users(), config=config)
