"""`tfrec.train`: dataset -> split -> model -> fit -> evaluate -> run folder; `tfrec.load_run`.

A run folder holds everything needed to rebuild, evaluate and export the fitted model without
the original data files::

    runs/<model>-<time>/
      config.json          model name, hyperparameters, model config, dataset, split, versions
      metrics.json         the test metrics (the same dict `tfrec train --json` prints)
      vocabularies.json    Keras models: the id/feature vocabularies fitted on train
      model/               Keras models: weights (TF checkpoint)
      train_ratings.csv    the training split (seen-item exclusion, refitting baselines)
      test_ratings.csv     the test split
      items.csv, users.csv side tables (genres "|"-joined)
      history.json, learning_curve.png, tensorboard/   Keras models
      embedding_map.png    retrieval models: t-SNE of the item embeddings
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd

from tfrec.data.dataset import MovieLensData
from tfrec.errors import ConfigError, DataError
from tfrec.models import registry
from tfrec.utils.io import atomic_write_json, atomic_write_text

SPLITS = ("random", "temporal", "leave_last_out", "cold_start")
# Hyperparameters every tfrec Keras model accepts through fit(); the rest go to the constructor.
_FIT_KEYS = ("epochs", "batch_size", "pipeline", "verbose", "validation_fraction", "callbacks")


@dataclass
class TrainResult:
    """What :func:`train` returns and :func:`load_run` gives back.

    Attributes:
      model: the fitted model (Keras models and baselines alike follow the recommender contract
        when they can rank).
      metrics: the test metrics dict (``rmse``/``mae`` for rating models; ``full``/``sampled_100``
        for ranking; ``fit_seconds``; ``hyperparameters``).
      model_name: registry name, e.g. ``"mf"``.
      run_dir: the run folder, when one was written.
      train, test: the split used (ratings DataFrames).
      items, users: side tables (users is None for datasets without demographics).
      config: what config.json holds.
    """

    model: Any
    metrics: dict
    model_name: str
    run_dir: Optional[Path] = None
    train: Optional[pd.DataFrame] = None
    test: Optional[pd.DataFrame] = None
    items: Optional[pd.DataFrame] = None
    users: Optional[pd.DataFrame] = None
    config: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        where = f", run_dir={str(self.run_dir)!r}" if self.run_dir else ""
        return f"TrainResult(model_name={self.model_name!r}, metrics={_short(self.metrics)}{where})"


def _short(metrics: dict) -> dict:
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items() if k != "hyperparameters"}


# ------------------------------------------------------------------------------------------------
def resolve_dataset(dataset, data_dir=None, seed: int = 0) -> MovieLensData:
    """A loaded dataset from a name (``"ml-100k"``, ``"synthetic"``) or a MovieLensData."""
    if isinstance(dataset, MovieLensData):
        return dataset
    if not isinstance(dataset, str):
        raise ConfigError(f"dataset must be a name such as 'ml-100k' or a MovieLensData, got {type(dataset).__name__}")
    from tfrec import data as tdata

    if dataset == "synthetic" or dataset.startswith("synthetic"):
        return tdata.synthetic_movielens(seed=seed)
    return tdata.load_movielens(dataset, data_dir=data_dir)


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


def _is_rating_model(model) -> bool:
    # Keras rating models train on the rating label (NeuMF's implicit objective and the
    # two-tower retrieval model do not predict ratings).
    return hasattr(model, "predict_ratings") and getattr(model, "label_key", None) == "rating"


def _can_rank(model) -> bool:
    return hasattr(model, "score_users")


def evaluate_model(model, train, test, *, model_name: str, split: str, k: int = 10, seed: int = 0,
                   users: Optional[pd.DataFrame] = None, verbose: int = 0) -> dict:
    """Test metrics for a fitted model: rating metrics and/or ranking protocols.

    Rating models report ``rmse``/``mae`` on the test ratings; models that rank report
    ``full`` (full ranking, training items excluded) and ``sampled_100`` (the NCF protocol).
    Rating models are ranked too when the split is ``leave_last_out`` (the ranking protocol's split).
    """
    from tfrec.evaluation import metrics as M
    from tfrec.evaluation import protocols as P

    out: dict = {}
    if _is_rating_model(model):
        pred = test[["user_id", "item_id", "rating"]].copy()
        pred["prediction"] = np.asarray(model.predict_ratings(pred["user_id"].to_numpy(), pred["item_id"].to_numpy()),
                                        dtype=np.float64).reshape(-1)
        out["rmse"] = float(M.rmse(test, pred))
        out["mae"] = float(M.mae(test, pred))
    rank = _can_rank(model) and (not _is_rating_model(model) or split in ("leave_last_out", "cold_start"))
    if rank:
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
    verbose: int = 1,
    **hyperparameters,
) -> TrainResult:
    """Train ``model_name`` on ``dataset`` and evaluate it once on the test split.

    Args:
      model_name: a registry name (``tfrec.models.registry.model_names()``), e.g. ``"mf"``,
        ``"two_tower"``, ``"item_knn"``.
      dataset: a dataset name (``"ml-100k"``, ``"ml-latest-small"``, ..., or ``"synthetic"``) or a
        loaded :class:`tfrec.data.MovieLensData`.
      data_dir: where to find the dataset (as for :func:`tfrec.data.load_movielens`).
      split: ``"random"`` (``test_fraction``, ``seed``; the same split as
        ``tfrec.data.random_split(ratings, test_fraction, seed)``), ``"temporal"`` (75/15/10 in
        global time order; the 15% is the validation set), ``"leave_last_out"`` or
        ``"cold_start"``.
      output: a run folder to write (None: write nothing).
      tensorboard: write TensorBoard logs into ``output/tensorboard`` (Keras models).
      **hyperparameters: passed to the model (``epochs``, ``batch_size``, ``pipeline``, ... go to
        its ``fit``; the rest to its constructor).

    Early stopping (Keras models) uses a validation set carved from the training split only; the
    test split is touched once, at the end.

    Example:
      >>> result = tfrec.train("mf", "ml-100k", data_dir="../shared/data", epochs=5)  # doctest: +SKIP
      >>> result.metrics["rmse"]  # doctest: +SKIP
    """
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; expected one of: {', '.join(SPLITS)}")
    if not (0.0 < float(test_fraction) < 1.0):
        raise ConfigError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    cls = registry.get_model_class(model_name)  # fails fast on unknown names, before loading data
    data = resolve_dataset(dataset, data_dir=data_dir, seed=seed)
    train_df, val_df, test_df = make_split(data.ratings, split, test_fraction=test_fraction, seed=seed)
    if len(test_df) == 0:
        raise DataError(f"the {split!r} split of {data.name} left no test ratings")

    ctor_hp = {k: v for k, v in hyperparameters.items() if k not in _FIT_KEYS}
    fit_hp = {k: v for k, v in hyperparameters.items() if k in _FIT_KEYS}
    if "seed" in _init_params(cls) and "seed" not in ctor_hp:
        ctor_hp["seed"] = seed
    model = registry.create_model(model_name, **ctor_hp)

    run_dir = Path(output) if output is not None else None
    fit_kwargs = dict(fit_hp)
    if _is_keras(model):
        fit_kwargs.setdefault("verbose", verbose)
        if val_df is not None and len(val_df):
            fit_kwargs["validation_data"] = val_df
        if tensorboard and run_dir is not None:
            import tensorflow as tf

            fit_kwargs["callbacks"] = list(fit_kwargs.get("callbacks") or []) + [
                tf.keras.callbacks.TensorBoard(log_dir=str(run_dir / "tensorboard"))
            ]
    elif fit_hp:
        unknown = ", ".join(sorted(fit_hp))
        raise ConfigError(f"model {model_name!r} is not trained with Keras; it takes no {unknown}")

    if verbose:
        print(f"[tfrec] training {model_name} on {data.name} ({len(train_df)} train / {len(test_df)} test ratings, "
              f"split={split})", file=sys.stderr)
    t0 = time.perf_counter()
    model.fit(train_df, items=data.items, users=data.users, **fit_kwargs)
    fit_seconds = time.perf_counter() - t0

    metrics = evaluate_model(model, train_df, test_df, model_name=model_name, split=split, seed=seed,
                             users=data.users, verbose=verbose)
    metrics["fit_seconds"] = round(fit_seconds, 3)
    metrics["hyperparameters"] = _hyperparameters(model, hyperparameters)

    config = {
        "model_name": model_name,
        "dataset": data.name,
        "synthetic": bool(data.synthetic),
        "data_source": data.source,
        "split": split,
        "test_fraction": test_fraction,
        "seed": seed,
        "hyperparameters": metrics["hyperparameters"],
        "versions": _versions(),
    }
    result = TrainResult(model=model, metrics=metrics, model_name=model_name, run_dir=run_dir,
                         train=train_df, test=test_df, items=data.items, users=data.users, config=config)
    if run_dir is not None:
        save_run(result, run_dir)
    return result


def _init_params(cls) -> set:
    import inspect

    try:
        return set(inspect.signature(cls.__init__).parameters)
    except (TypeError, ValueError):
        return set()


def _is_keras(model) -> bool:
    try:
        import tensorflow as tf
    except ImportError:  # pragma: no cover
        return False
    return isinstance(model, tf.keras.Model)


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


def _versions() -> dict:
    import importlib.metadata as md

    out = {}
    for pkg in ("tfrec", "tensorflow", "tf-keras", "tensorflow-recommenders", "scann"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


# ------------------------------------------------------------------------------------------------
def _items_to_csv(items: pd.DataFrame) -> str:
    frame = items.copy()
    frame["genres"] = ["|".join(g) for g in frame["genres"]]
    return frame.to_csv(index=False)


def _items_from_csv(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype={"item_id": str, "title": str}, keep_default_na=False)
    frame["year"] = pd.to_numeric(frame["year"], errors="coerce").fillna(0).astype(np.int64)
    frame["genres"] = [[g for g in str(s).split("|") if g] for s in frame["genres"]]
    return frame


def _ratings_from_csv(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype={"user_id": str, "item_id": str})
    frame["rating"] = frame["rating"].astype(np.float32)
    frame["timestamp"] = frame["timestamp"].astype(np.int64)
    return frame


def save_run(result: TrainResult, run_dir) -> Path:
    """Write ``result`` as a run folder (see the module docstring)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    model = result.model
    config = dict(result.config)
    if hasattr(model, "get_config"):
        config["model_config"] = model.get_config()
    atomic_write_json(run_dir / "config.json", config)
    atomic_write_json(run_dir / "metrics.json", result.metrics)
    if result.train is not None:
        atomic_write_text(run_dir / "train_ratings.csv", result.train.to_csv(index=False))
    if result.test is not None:
        atomic_write_text(run_dir / "test_ratings.csv", result.test.to_csv(index=False))
    if result.items is not None:
        atomic_write_text(run_dir / "items.csv", _items_to_csv(result.items))
    if result.users is not None:
        atomic_write_text(run_dir / "users.csv", result.users.to_csv(index=False))
    if _is_keras(model):
        model.save_weights(str(run_dir / "model" / "weights"))
        history = getattr(model, "history_", None)
        hist = getattr(history, "history", history)
        if hist:
            atomic_write_json(run_dir / "history.json", hist)
            from tfrec.reports.learning_curve import plot_learning_curve

            plot_learning_curve(hist, run_dir / "learning_curve.png", title=result.model_name)
    if hasattr(model, "candidate_embeddings") and result.items is not None:
        try:
            from tfrec.reports.embedding_map import plot_embedding_map

            ids, emb = model.candidate_embeddings()
            plot_embedding_map(ids, emb, result.items, run_dir / "embedding_map.png")
            _plot_ann_tradeoff(model, run_dir / "ann_recall_latency.png")
        except Exception as exc:  # a plot must never lose a trained run
            print(f"[tfrec] warning: retrieval plots not written: {exc}", file=sys.stderr)
    return run_dir


def _plot_ann_tradeoff(model, path: Path) -> None:
    """Recall@10 vs latency of ScaNN settings on this model's own embeddings (a leaves-searched sweep)."""
    import scann  # noqa: F401
    import tensorflow_recommenders as tfrs
    import tensorflow as tf

    from tfrec.export.savedmodel import brute_force_top_k
    from tfrec.reports.embedding_map import plot_recall_latency

    _, cand = model.candidate_embeddings()
    cand = np.asarray(cand, dtype=np.float32)
    users = list(model.user_index_)[:500]
    queries = np.asarray(model.user_embeddings(users), dtype=np.float32)
    exact = brute_force_top_k(queries, cand, 10)
    leaves = int(max(2, round(np.sqrt(len(cand)))))
    trials = []
    for search in sorted({max(1, leaves // 20), max(1, leaves // 10), max(1, leaves // 4), max(1, leaves // 2), leaves}):
        layer = tfrs.layers.factorized_top_k.ScaNN(k=10, num_leaves=leaves, num_leaves_to_search=search,
                                                   num_reordering_candidates=100)
        layer.index(tf.constant(cand), tf.range(len(cand), dtype=tf.int64))
        layer(tf.constant(queries[:8]))
        t0 = time.perf_counter()
        _, ids = layer(tf.constant(queries))
        seconds = (time.perf_counter() - t0) / len(queries)
        recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids.numpy(), exact)]))
        trials.append({"num_leaves": leaves, "num_leaves_to_search": search, "recall_at_k": recall,
                       "seconds_per_query_batch": seconds})
    plot_recall_latency(trials, path, title=f"ScaNN on this model's {len(cand)} item embeddings")


def load_run(run_dir) -> TrainResult:
    """Rebuild a :class:`TrainResult` (with the fitted model) from a run folder."""
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not cfg_path.is_file():
        raise DataError(f"{run_dir}: not a tfrec run folder (no config.json)")
    config = json.loads(cfg_path.read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").is_file() else {}
    train_df = _ratings_from_csv(run_dir / "train_ratings.csv")
    test_df = _ratings_from_csv(run_dir / "test_ratings.csv") if (run_dir / "test_ratings.csv").is_file() else None
    items = _items_from_csv(run_dir / "items.csv") if (run_dir / "items.csv").is_file() else None
    users = None
    if (run_dir / "users.csv").is_file():
        users = pd.read_csv(run_dir / "users.csv", dtype={"user_id": str, "gender": str, "occupation": str, "zip": str},
                            keep_default_na=False)
        users["age"] = users["age"].astype(np.int64)
    name = config["model_name"]
    cls = registry.get_model_class(name)
    if "model_config" in config and hasattr(cls, "from_config") and (run_dir / "model").is_dir():
        model = cls.from_config(config["model_config"])
        model.restore(train_df, items=items, users=users, weights=str(run_dir / "model" / "weights"))
    else:
        # Baselines are cheap and deterministic: refit them from the stored training split.
        hp = {k: v for k, v in config.get("hyperparameters", {}).items() if k in _init_params(cls)}
        model = registry.create_model(name, **hp)
        model.fit(train_df, items=items, users=users)
    return TrainResult(model=model, metrics=metrics, model_name=name, run_dir=run_dir, train=train_df,
                       test=test_df, items=items, users=users, config=config)
