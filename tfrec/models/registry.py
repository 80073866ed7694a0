"""Model names -> classes, so `tfrec.train("mf", ...)` and `tfrec train mf` find them.

Classes are imported lazily: naming a baseline should not import TensorFlow.
"""

from __future__ import annotations

import importlib

from tfrec.errors import ConfigError

# name -> (module, class, fixed keyword arguments)
_MODELS = {
    "mf": ("tfrec.models.mf", "MatrixFactorization", {}),
    "fm": ("tfrec.models.fm", "FactorizationMachine", {}),
    "wide_deep": ("tfrec.models.wide_deep", "WideAndDeep", {}),
    "neumf": ("tfrec.models.neumf", "NeuMF", {}),
    "two_tower": ("tfrec.models.two_tower", "TwoTower", {}),
    "two_tower_id": ("tfrec.models.two_tower", "TwoTower", {"use_features": False, "history_length": 0}),
    "popularity": ("tfrec.models.baselines", "Popularity", {}),
    "item_knn": ("tfrec.models.baselines", "ItemKNN", {}),
    "user_knn": ("tfrec.models.baselines", "UserKNN", {}),
    "content_tfidf": ("tfrec.models.baselines", "ContentTFIDF", {}),
    "covisitation": ("tfrec.models.baselines", "CoVisitation", {}),
    "ease": ("tfrec.models.baselines", "EASE", {}),
    "als": ("tfrec.models.baselines", "ImplicitALS", {}),
}

RATING_MODELS = ("mf", "fm", "wide_deep", "neumf")
RETRIEVAL_MODELS = ("two_tower", "two_tower_id")
BASELINES = ("popularity", "item_knn", "user_knn", "content_tfidf", "covisitation", "ease", "als")


def model_names() -> list[str]:
    return list(_MODELS)


def get_model_class(name: str):
    """The class registered under ``name`` (ConfigError listing the choices if unknown)."""
    if name not in _MODELS:
        raise ConfigError(f"unknown model {name!r}; expected one of: {', '.join(_MODELS)}")
    module, cls, _ = _MODELS[name]
    return getattr(importlib.import_module(module), cls)


def create_model(name: str, **hyperparameters):
    """Instantiate model ``name`` with its fixed arguments plus ``hyperparameters``."""
    cls = get_model_class(name)
    kwargs = dict(_MODELS[name][2])
    kwargs.update(hyperparameters)
    return cls(**kwargs)
