"""`tfrec.train`: dataset -> split -> model -> fit -> evaluate (-> run folder, see run_folder.py).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Optional

import pandas as pd

from tfrec.data.dataset import MovieLensData
from tfrec.errors import ConfigError, DataError
from tfrec.models import registry
from tfrec.training.result import (
    TrainResult,
    _is_rating_model,
    init_params,
    is_keras,
    is_keras_class,
    is_ranked,
    rating_metrics,
)
from tfrec.training.distribute import DEFAULT_CONNECT_TIMEOUT, local_copy, make_strategy
from tfrec.training.run_folder import save_run
from tfrec.utils.versions import package_versions

SPLITS = ("random", "temporal", "leave_last_out", "cold_start")
# Hyperparameters every tfrec Keras model accepts through fit(); the rest go to the constructor.
_FIT_KEYS = ("epochs", "batch_size", "pipeline", "verbose", "validation_fraction", "callbacks")


# ------------------------------------------------------------------------------------------------
def resolve_dataset(dataset, data_dir=None, seed: int = 0) -> MovieLensData:
    """A loaded dataset from a name (``"ml-100k"``, ``"synthetic"``), a folder with ``schema.json``
    (your own data), or a loaded dataset (see :func:`tfrec.data.open_dataset`)."""
    from tfrec.data.own import open_dataset

    return open_dataset(dataset, data_dir=data_dir, seed=seed)


def make_split(ratings: pd.DataFrame, split: str, *, test_fraction: float = 0.2, seed: int = 0):
    """(train, validation or None, test) for a split name in SPLITS."""
    from tfrec import data as tdata

    if split == "random":
        train, test = tdata.random_split(ratings, test_fraction=test_fraction, seed=seed)
        return train, None, test
    if split == "temporal":
        return tdata.temporal_split(ratings)
    if split == "leave_last_out":
        train, test = tdata.leave_last_out_split(ratings)
        return train, None, test
    if split == "cold_start":
        train, test = tdata.cold_start_user_split(ratings, test_fraction=test_fraction, seed=seed)
        return train, None, test
    raise ConfigError(f"unknown split {split!r}; expected one of: {', '.join(SPLITS)}")


def evaluate_model(model, train, test, *, model_name: str, split: str, k: int = 10, seed: int = 0,
                   users: Optional[pd.DataFrame] = None, verbose: int = 0) -> dict:
    """Test metrics for a fitted model: rating metrics and/or ranking protocols.

    Rating models report ``rmse``/``mae`` on the test ratings; models that rank report
    ``full`` (full ranking, training items excluded) and ``sampled_100`` (the NCF protocol).
    Rating models are ranked too when the split is ``leave_last_out`` (the ranking protocol's split).
    """
    from tfrec.evaluation import protocols as P

    out = rating_metrics(model, test)
    if is_ranked(model, split):
        out["full"] = P.full_ranking(model, train, test, k=k, verbose=bool(verbose))
        out["sampled_100"] = P.sampled_ranking(model, train, test, n_negatives=100, k=k, seed=seed)
    return out


# ------------------------------------------------------------------------------------------------
def train(
    model_name: str,
    dataset="ml-100k",
    *,
    data_dir=None,
    split: str = "random",
    test_fraction: float = 0.2,
    seed: int = 0,
    output=None,
    tensorboard: bool = False,
    plots: bool = True,
    verbose: int = 1,
    prepared=None,
    steps_per_epoch: Optional[int] = None,
    eval_users: Optional[int] = None,
    strategy: str = "none",
    backup_dir=None,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    **hyperparameters,
) -> TrainResult:
    """Train ``model_name`` on ``dataset`` and evaluate it once on the test split.

    Args:
      model_name: a registry name (``tfrec.models.registry.model_names()``), e.g. ``"mf"``,
        ``"two_tower"``, ``"item_knn"``.
      dataset: a dataset name (``"ml-100k"``, ``"ml-latest-small"``, ..., or ``"synthetic"``), a
        folder holding ``schema.json`` and the CSV/Parquet files it names (your own data, see
        :func:`tfrec.data.load_dataset`), or a loaded :class:`tfrec.data.InteractionData`.
      data_dir: where to find the dataset (as for :func:`tfrec.data.load_movielens`).
      split: ``"random"`` (``test_fraction``, ``seed``; the same split as
        ``tfrec.data.random_split(ratings, test_fraction, seed)``), ``"temporal"`` (75/15/10 in
        global time order; the 15% is the validation set), ``"leave_last_out"`` or
        ``"cold_start"``.
      output: a run folder to write (None: write nothing).
      tensorboard: write TensorBoard logs into ``output/tensorboard`` (Keras models).
      prepared: a PREPARED folder written by ``tfrec data prepare`` (:mod:`tfrec.data.prepared`):
        train by streaming its TFRecord shards (Keras models only; ``dataset``, ``data_dir``,
        ``split``, ``test_fraction`` are the folder's). Peak memory does not grow with the number
        of ratings; there is no early stopping (no validation split): ``epochs`` epochs are run.
        Under a ``strategy`` the shard files are split across the workers (each reads its own;
        prepare at least as many shards as workers), see
        :func:`tfrec.models.distributed_input.plan_file_shards`; ``config.json`` records the plan.
      steps_per_epoch: with ``prepared``, cap an epoch at this many batches (global steps).
      eval_users: with ``prepared``, rank a seeded sample of this many test users (default all).
      plots: write the run folder's PNGs (learning curve; retrieval models: t-SNE embedding map
        and ScaNN recall/latency sweep).
      strategy: ``"none"`` (default), ``"mirrored"``, ``"multi_worker"`` or ``"parameter_server"``
        (Keras models; the cluster comes from ``TF_CONFIG``, see :mod:`tfrec.training.distribute`).
        Only the chief evaluates and writes ``output``; other multi_worker processes return a
        result with empty ``metrics`` and no run folder, having written nothing outside a
        temporary directory. The returned model is always an ordinary single-process copy.
      backup_dir: a folder for Keras ``BackupAndRestore``: an interrupted run restarted with the
        same arguments resumes after its last completed epoch (multi_worker: every worker). Not
        with ``prepared`` yet.
      connect_timeout: seconds a distributed run waits for its peers before failing.
      **hyperparameters: passed to the model (``epochs``, ``batch_size``, ``pipeline``, ... go to
        its ``fit``; the rest to its constructor).

    Early stopping (Keras models) uses a validation set carved from the training split only; the
    test split is touched once, at the end.

    Example:
      >>> result = tfrec.train("mf", "ml-100k", data_dir="../shared/data", epochs=5)  # doctest: +SKIP
      >>> result.metrics["rmse"]  # doctest: +SKIP
    """
    if prepared is not None:
        if backup_dir is not None:
            raise ConfigError("backup_dir does not apply to training from prepared shards yet (prepared=PATH): "
                              "rerun the job from the start, or train from --dataset with --backup-dir")
        return _train_prepared(model_name, prepared, seed=seed, output=output, tensorboard=tensorboard,
                               plots=plots, verbose=verbose, steps_per_epoch=steps_per_epoch, eval_users=eval_users,
                               strategy=strategy, connect_timeout=connect_timeout,
                               **hyperparameters)
    if steps_per_epoch is not None or eval_users is not None:
        raise ConfigError("steps_per_epoch and eval_users apply to training from prepared shards (prepared=PATH)")
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; expected one of: {', '.join(SPLITS)}")
    if not (0.0 < float(test_fraction) < 1.0):
        raise ConfigError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    cls = registry.get_model_class(model_name)  # fails fast on unknown names, before loading data
    if strategy != "none" and not is_keras_class(cls):
        raise ConfigError(f"model {model_name!r} is not trained with Keras; it takes no strategy (use 'none')")
    # Before any other TensorFlow work: a multi-worker strategy configures the runtime.
    dist = make_strategy(strategy, connect_timeout=connect_timeout)
    data = resolve_dataset(dataset, data_dir=data_dir, seed=seed)
    train_df, val_df, test_df = make_split(data.ratings, split, test_fraction=test_fraction, seed=seed)
    if len(test_df) == 0:
        raise DataError(f"the {split!r} split of {data.name} left no test ratings")

    ctor_hp = {k: v for k, v in hyperparameters.items() if k not in _FIT_KEYS}
    fit_hp = {k: v for k, v in hyperparameters.items() if k in _FIT_KEYS}
    if "seed" in init_params(cls) and "seed" not in ctor_hp:
        ctor_hp["seed"] = seed
    model = registry.create_model(model_name, **ctor_hp)
    _check_has_ratings(model, model_name, data.name, data.has_ratings)

    run_dir = Path(output) if output is not None else None
    fit_kwargs = dict(fit_hp)
    if is_keras(model):
        import tensorflow as tf

        fit_kwargs.setdefault("verbose", verbose)
        if val_df is not None and len(val_df):
            fit_kwargs["validation_data"] = val_df
        if dist.name == "parameter_server":
            fit_kwargs.setdefault("validation_fraction", 0.0)  # no early stopping there (see distributed_input)
        callbacks = list(fit_kwargs.get("callbacks") or [])
        if tensorboard and run_dir is not None and dist.is_chief:
            callbacks.append(tf.keras.callbacks.TensorBoard(log_dir=str(run_dir / "tensorboard")))
        if backup_dir is not None:
            callbacks.append(tf.keras.callbacks.BackupAndRestore(backup_dir=str(backup_dir)))
        if callbacks:
            fit_kwargs["callbacks"] = callbacks
    elif fit_hp or dist.strategy is not None or backup_dir is not None:
        given = sorted(fit_hp) + (["strategy"] if dist.strategy is not None else []) + \
            (["backup_dir"] if backup_dir is not None else [])
        raise ConfigError(f"model {model_name!r} is not trained with Keras; it takes no {', '.join(given)}")

    if verbose:
        print(f"[tfrec] training {model_name} on {data.name} ({len(train_df)} train / {len(test_df)} test ratings, "
              f"split={split})", file=sys.stderr)
    t0 = time.perf_counter()
    if dist.strategy is None:
        model.fit(train_df, items=data.items, users=data.users, **fit_kwargs)
    else:
        with dist.scope():
            model.fit(train_df, items=data.items, users=data.users, **fit_kwargs)
        model = local_copy(model, train_df, items=data.items, users=data.users)
    fit_seconds = time.perf_counter() - t0
    if not dist.is_chief:
        # Only the chief evaluates and writes the run folder.
        return TrainResult(model=model, metrics={}, model_name=model_name, run_dir=None, train=train_df,
                           test=test_df, items=data.items, users=data.users)

    metrics = evaluate_model(model, train_df, test_df, model_name=model_name, split=split, seed=seed,
                             users=data.users, verbose=verbose)
    metrics["fit_seconds"] = round(fit_seconds, 3)
    metrics["hyperparameters"] = _hyperparameters(model, hyperparameters)

    config = {
        "model_name": model_name,
        "dataset": data.name,
        "synthetic": bool(data.synthetic),
        "data_source": data.source,
        "schema": data.schema.to_dict() if data.schema is not None else None,
        "split": split,
        "test_fraction": test_fraction,
        "seed": seed,
        "hyperparameters": metrics["hyperparameters"],
        "strategy": dist.name,
        **({"cluster": dist.cluster.cluster} if dist.cluster is not None else {}),
        "versions": package_versions(),
    }
    result = TrainResult(model=model, metrics=metrics, model_name=model_name, run_dir=run_dir,
                         train=train_df, test=test_df, items=data.items, users=data.users, config=config)
    if run_dir is not None:
        save_run(result, run_dir, plots=plots)
    return result


def _check_has_ratings(model, model_name: str, dataset: str, has_ratings: bool) -> None:
    if _is_rating_model(model) and not has_ratings:
        raise DataError(f"model {model_name!r} predicts ratings, but dataset {dataset!r} has no 'rating' column "
                        "(implicit feedback: schema.json interactions.rating is null); train a ranking model such "
                        "as two_tower, item_knn or popularity, or name the rating column in schema.json")


def _train_prepared(model_name: str, prepared, *, seed: int, output, tensorboard: bool, plots: bool, verbose: int,
                    steps_per_epoch: Optional[int], eval_users: Optional[int], strategy: str,
                    connect_timeout: float, **hyperparameters) -> TrainResult:
    """:func:`train` on a PREPARED folder: stream the shards (split by file across the workers of a
    strategy), evaluate on its test split."""
    from tfrec.data.prepared import open_prepared
    from tfrec.training import streaming

    cls = registry.get_model_class(model_name)
    prep = open_prepared(prepared)
    if strategy != "none" and not is_keras_class(cls):
        raise ConfigError(f"model {model_name!r} is not trained with Keras; it takes no strategy (use 'none')")
    # Before any other TensorFlow work: a multi-worker strategy configures the runtime.
    dist = make_strategy(strategy, connect_timeout=connect_timeout)
    fit_hp = {k: hyperparameters.pop(k) for k in ("epochs", "batch_size", "callbacks") if k in hyperparameters}
    for key in ("pipeline", "validation_fraction"):
        if hyperparameters.pop(key, None) is not None:
            raise ConfigError(f"{key} does not apply to training from prepared shards")
    ctor_hp = dict(hyperparameters)
    if "seed" in init_params(cls) and "seed" not in ctor_hp:
        ctor_hp["seed"] = seed
    model = registry.create_model(model_name, **ctor_hp)
    _check_has_ratings(model, model_name, prep.meta["dataset"], "rating" in prep.features)
    run_dir = Path(output) if output is not None else None
    callbacks = list(fit_hp.pop("callbacks", None) or [])
    if tensorboard and run_dir is not None and dist.is_chief:
        import tensorflow as tf

        callbacks.append(tf.keras.callbacks.TensorBoard(log_dir=str(run_dir / "tensorboard")))
    if verbose:
        c = prep.meta["counts"]
        print(f"[tfrec] training {model_name} on {prep.path} ({c['train']:,} train / {c.get('test', 0):,} test "
              f"ratings in {len(prep.shard_files)} shards, split={prep.meta['split']})", file=sys.stderr)
    with dist.scope():
        streaming.fit_prepared(model, prep, steps_per_epoch=steps_per_epoch, verbose=verbose, callbacks=callbacks,
                               name=model_name, **fit_hp)
    if dist.strategy is not None:
        model = local_copy(model, prepared=prep)
    if not dist.is_chief:
        # Only the chief evaluates and writes the run folder.
        return TrainResult(model=model, metrics={}, model_name=model_name, run_dir=None, items=prep.items(),
                           users=prep.users())
    metrics = streaming.evaluate_prepared(model, prep, eval_users=eval_users, seed=seed, verbose=verbose)
    metrics["fit_seconds"] = round(model.fit_seconds_, 3)
    metrics["examples_per_second"] = round(model.examples_per_second_, 1)
    metrics["examples_per_second_with_startup"] = round(model.examples_per_second_with_startup_, 1)
    given = dict(hyperparameters, **{k: v for k, v in fit_hp.items()})
    if steps_per_epoch is not None:
        given["steps_per_epoch"] = steps_per_epoch
    metrics["hyperparameters"] = _hyperparameters(model, given)
    config = {
        "model_name": model_name,
        "dataset": prep.meta["dataset"],
        "synthetic": bool(prep.meta.get("synthetic")),
        "data_source": prep.meta.get("source"),
        "prepared": str(prep.path.resolve()),
        "schema": prep.schema,
        "split": prep.meta["split"],
        "test_fraction": prep.meta.get("test_fraction"),
        "seed": seed,
        "hyperparameters": metrics["hyperparameters"],
        "strategy": dist.name,
        **({"cluster": dist.cluster.cluster} if dist.cluster is not None else {}),
        **({"input_plan": model.input_plan_.to_dict()} if getattr(model, "input_plan_", None) else {}),
        "versions": package_versions(),
    }
    result = TrainResult(model=model, metrics=metrics, model_name=model_name, run_dir=run_dir,
                         items=prep.items(), users=prep.users(), config=config)
    if run_dir is not None:
        save_run(result, run_dir, plots=plots)
    return result


def _hyperparameters(model, given: dict) -> dict:
    params: dict = {}
    if hasattr(model, "get_params"):
        params.update(model.get_params())
    elif hasattr(model, "get_config"):
        cfg = model.get_config()
        params.update({k: v for k, v in cfg.items() if "vocab" not in k and k not in ("name", "trainable", "dtype")})
    params.update({k: v for k, v in given.items() if k != "callbacks"})
    return json.loads(json.dumps(params, default=_jsonable))


def _jsonable(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return repr(obj)
