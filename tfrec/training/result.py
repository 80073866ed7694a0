"""What :func:`tfrec.train` returns and :func:`tfrec.load_run` gives back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pandas as pd


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


def init_params(cls) -> set:
    import inspect

    try:
        return set(inspect.signature(cls.__init__).parameters)
    except (TypeError, ValueError):
        return set()


def is_keras(model) -> bool:
    try:
        import tensorflow as tf
    except ImportError:  # pragma: no cover
        return False
    return isinstance(model, tf.keras.Model)


def _is_rating_model(model) -> bool:
    # Keras rating models train on the rating label (NeuMF's implicit objective and the
    # two-tower retrieval model do not predict ratings).
    return hasattr(model, "predict_ratings") and getattr(model, "label_key", None) == "rating"


def _can_rank(model) -> bool:
    return hasattr(model, "score_users")


def is_ranked(model, split: str) -> bool:
    """Models that rank are ranked; rating models too on the ranking protocol's splits."""
    return _can_rank(model) and (not _is_rating_model(model) or split in ("leave_last_out", "cold_start"))


def rating_metrics(model, test) -> dict:
    """``rmse``/``mae`` of a rating model's predictions for the test ratings ({} for other models)."""
    if not _is_rating_model(model):
        return {}
    import numpy as np

    from tfrec.evaluation import metrics as M

    pred = test[["user_id", "item_id", "rating"]].copy()
    pred["prediction"] = np.asarray(model.predict_ratings(pred["user_id"].to_numpy(), pred["item_id"].to_numpy()),
                                    dtype=np.float64).reshape(-1)
    return {"rmse": float(M.rmse(test, pred)), "mae": float(M.mae(test, pred))}


def is_keras_class(cls) -> bool:
    """True for Keras model classes (the models a tf.distribute strategy can train)."""
    try:
        import tensorflow as tf
    except ImportError:  # pragma: no cover
        return False
    return isinstance(cls, type) and issubclass(cls, tf.keras.Model)
