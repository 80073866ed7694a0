"""Models: rating models, the two-tower retrieval model and the classic baselines.

Every class is an attribute of this package, imported on first use, so ``import tfrec.models``
(and the baselines) never import TensorFlow; touching a Keras model class does::

    rating (Keras)       MatrixFactorization ("mf"), FactorizationMachine ("fm"), WideAndDeep
                         ("wide_deep"), NeuMF ("neumf")
    retrieval (TFRS)     TwoTower ("two_tower", "two_tower_id")
    baselines (no TF)    Popularity, ItemKNN, UserKNN, ContentTFIDF, CoVisitation, EASE, ImplicitALS

The names in brackets are the registry's (:mod:`tfrec.models.registry`: ``create_model``,
``get_model_class``, ``model_names``), as ``tfrec.train`` and ``tfrec train`` take them.
"""

from __future__ import annotations

import importlib

_CLASSES = {
    "MatrixFactorization": "tfrec.models.mf",
    "FactorizationMachine": "tfrec.models.fm",
    "WideAndDeep": "tfrec.models.wide_deep",
    "NeuMF": "tfrec.models.neumf",
    "TwoTower": "tfrec.models.two_tower",
    "Popularity": "tfrec.models.baselines",
    "ItemKNN": "tfrec.models.baselines",
    "UserKNN": "tfrec.models.baselines",
    "ContentTFIDF": "tfrec.models.baselines",
    "CoVisitation": "tfrec.models.baselines",
    "EASE": "tfrec.models.baselines",
    "ImplicitALS": "tfrec.models.baselines",
}
_REGISTRY_FUNCTIONS = ("create_model", "get_model_class", "model_names")


def __getattr__(name):
    if name in _CLASSES:
        return getattr(importlib.import_module(_CLASSES[name]), name)
    if name in _REGISTRY_FUNCTIONS:
        return getattr(importlib.import_module("tfrec.models.registry"), name)
    try:  # a submodule not imported yet: tfrec.models.registry, tfrec.models.layers, ...
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
    raise AttributeError(f"module 'tfrec.models' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_CLASSES) | set(_REGISTRY_FUNCTIONS))


__all__ = sorted(_CLASSES) + list(_REGISTRY_FUNCTIONS)
