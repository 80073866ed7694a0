"""The run folder: :func:`save_run` writes a :class:`TrainResult`, :func:`load_run` gives it back.

A run folder holds everything needed to rebuild, evaluate and export the fitted model without
the original data files::

    runs/<model>-<time>/
      config.json          model name, hyperparameters, model config, dataset, split, versions
      metrics.json         the test metrics (the same dict `tfrec train --json` prints)
      vocabularies.json    Keras models: the id/feature vocabularies fitted on train
      model/               Keras models: weights (TF checkpoint)
      train_ratings.csv    the training split (seen-item exclusion, refitting baselines)
      test_ratings.csv     the test split
      items.csv, users.csv side tables (genres "|"-joined); your own data (a schema.json
                           dataset): items.parquet, users.parquet, typed by config.json's "schema"
      history.json, learning_curve.png, tensorboard/   Keras models
      embedding_map.png    retrieval models: t-SNE of the item embeddings
    (a run trained from a prepared folder has no train/test CSVs: config.json names the folder)
      ann_recall_latency.png  retrieval models: ScaNN recall vs latency on the item embeddings
    (the PNGs only with ``plots=True``, the default; ``tfrec demo`` leaves them out)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from tfrec.data.tables import read_side_parquet, write_side_parquet
from tfrec.errors import DataError
from tfrec.models import registry
from tfrec.training.result import TrainResult, init_params, is_keras
from tfrec.utils.io import atomic_write_json, atomic_write_text


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
    if "rating" in frame:  # implicit feedback has none
        frame["rating"] = frame["rating"].astype(np.float32)
    if "timestamp" in frame:
        frame["timestamp"] = frame["timestamp"].astype(np.int64)
    return frame


def _map_items(items: pd.DataFrame) -> pd.DataFrame:
    """Items with a ``genres`` list to colour the embedding map by (a schema's first categorical
    or multi_categorical item feature, when the data is not MovieLens)."""
    from tfrec.data.features import feature_types

    if "genres" in items.columns and not feature_types(items):
        return items
    for name, kind in (feature_types(items) or {}).items():
        if kind in ("categorical", "multi_categorical"):
            values = items[name] if kind == "multi_categorical" else items[name].map(lambda v: [v] if v else [])
            return pd.DataFrame({"item_id": items["item_id"], "genres": list(values)})
    return pd.DataFrame({"item_id": items["item_id"], "genres": [[] for _ in range(len(items))]})


def save_run(result: TrainResult, run_dir, *, plots: bool = True) -> Path:
    """Write ``result`` as a run folder (see the module docstring).

    ``plots=False`` leaves out the PNGs (learning curve, embedding map, ANN trade-off): the t-SNE
    map and the ScaNN sweep cost tens of seconds of CPU for a two-tower run.
    """
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
    from tfrec.data.features import is_schema_data

    if is_schema_data(result.items, result.users):
        for name, table in (("items", result.items), ("users", result.users)):
            if table is not None:
                write_side_parquet(table, run_dir / f"{name}.parquet")
    else:
        if result.items is not None:
            atomic_write_text(run_dir / "items.csv", _items_to_csv(result.items))
        if result.users is not None:
            atomic_write_text(run_dir / "users.csv", result.users.to_csv(index=False))
    if is_keras(model):
        model.save_weights(str(run_dir / "model" / "weights"))
        history = getattr(model, "history_", None)
        hist = getattr(history, "history", history)
        if hist:
            atomic_write_json(run_dir / "history.json", hist)
        if hist and plots:
            from tfrec.reports.learning_curve import plot_learning_curve

            plot_learning_curve(hist, run_dir / "learning_curve.png", title=result.model_name)
    if plots and hasattr(model, "candidate_embeddings") and result.items is not None:
        try:
            from tfrec.reports.ann_tradeoff import plot_ann_tradeoff
            from tfrec.reports.embedding_map import plot_embedding_map

            ids, emb = model.candidate_embeddings()
            plot_embedding_map(ids, emb, _map_items(result.items), run_dir / "embedding_map.png")
            plot_ann_tradeoff(model, run_dir / "ann_recall_latency.png")
        except Exception as exc:  # a plot must never lose a trained run
            print(f"[tfrec] warning: retrieval plots not written: {exc}", file=sys.stderr)
    return run_dir


def load_run(run_dir) -> TrainResult:
    """Rebuild a :class:`TrainResult` (with the fitted model) from a run folder."""
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not cfg_path.is_file():
        raise DataError(f"{run_dir}: not a tfrec run folder (no config.json)")
    config = json.loads(cfg_path.read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").is_file() else {}
    if config.get("prepared"):
        from tfrec.training.streaming import load_prepared_run

        return load_prepared_run(run_dir, config, metrics)
    train_df = _ratings_from_csv(run_dir / "train_ratings.csv")
    test_df = _ratings_from_csv(run_dir / "test_ratings.csv") if (run_dir / "test_ratings.csv").is_file() else None
    items = _items_from_csv(run_dir / "items.csv") if (run_dir / "items.csv").is_file() else None
    users = None
    schema = config.get("schema") or {}
    if (run_dir / "items.parquet").is_file() or (run_dir / "users.parquet").is_file():  # your own data
        types = {k: (schema.get(k) or {}).get("features", {}) for k in ("items", "users")}
        if (run_dir / "items.parquet").is_file():
            items = read_side_parquet(run_dir / "items.parquet", "item_id", types["items"])
        if (run_dir / "users.parquet").is_file():
            users = read_side_parquet(run_dir / "users.parquet", "user_id", types["users"])
    elif (run_dir / "users.csv").is_file():
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
        hp = {k: v for k, v in config.get("hyperparameters", {}).items() if k in init_params(cls)}
        model = registry.create_model(name, **hp)
        model.fit(train_df, items=items, users=users)
    return TrainResult(model=model, metrics=metrics, model_name=name, run_dir=run_dir, train=train_df,
                       test=test_df, items=items, users=users, config=config)
