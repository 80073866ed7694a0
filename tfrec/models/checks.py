"""Argument checks shared by tfrec's models: each returns the value coerced, or raises ConfigError
naming the argument and what was expected (validation at the boundary: the constructors)."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from tfrec.data import features as F
from tfrec.errors import ConfigError


def check_positive_int(name: str, value) -> int:
    """``value`` as int, or ConfigError naming ``name`` unless it is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_non_negative(name: str, value) -> float:
    """``value`` as float, or ConfigError naming ``name`` unless it is a number >= 0."""
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be a non-negative number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a non-negative number, got {value!r}") from None
    if not v >= 0.0 or math.isinf(v):
        raise ConfigError(f"{name} must be a non-negative number, got {value!r}")
    return v


def check_positive(name: str, value) -> float:
    """``value`` as float, or ConfigError naming ``name`` unless it is a number > 0."""
    v = check_non_negative(name, value)
    if v <= 0.0:
        raise ConfigError(f"{name} must be a positive number, got {value!r}")
    return v


def check_fraction(name: str, value, *, allow_zero: bool = True) -> float:
    """``value`` as float in [0, 1) (or (0, 1)), else ConfigError naming ``name``."""
    v = check_non_negative(name, value)
    if v >= 1.0 or (v == 0.0 and not allow_zero):
        interval = "[0, 1)" if allow_zero else "(0, 1)"
        raise ConfigError(f"{name} must be in {interval}, got {value!r}")
    return v


def check_layer_sizes(name: str, value) -> list:
    """A list of positive ints, or ConfigError naming ``name``."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ConfigError(f"{name} must be a list of positive integers, got {value!r}")
    sizes = list(value)
    if any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in sizes):
        raise ConfigError(f"{name} must be a list of positive integers, got {value!r}")
    return [int(s) for s in sizes]


def check_non_negative_int(name: str, value) -> int:
    """``value`` as int, or ConfigError naming ``name`` unless it is an integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def check_seed(value) -> int:
    return check_non_negative_int("seed", value)


def to_str_list(values) -> list:
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def as_str_array(values) -> np.ndarray:
    flat = np.asarray(values, dtype=object).reshape(-1)
    return np.asarray(to_str_list(flat), dtype=object)


def normalise_vocabularies(vocabularies) -> Optional[dict]:
    """``{name: [str, ...]}`` from lists or :class:`tfrec.data.vocab.Vocabulary` objects."""
    if vocabularies is None:
        return None
    if not isinstance(vocabularies, dict):
        raise ConfigError(f"vocabularies must be a dict of feature name -> list of values, got "
                          f"{type(vocabularies).__name__}")
    out = {}
    for name, vocab in vocabularies.items():
        values = vocab.values if hasattr(vocab, "lookup") else vocab  # a tfrec Vocabulary
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise ConfigError(f"vocabularies[{name!r}] must be a list of strings, got {values!r}")
        out[str(name)] = to_str_list(values)
    for name in (F.USER_ID, F.ITEM_ID):
        if not out.get(name):
            raise ConfigError(f"vocabularies must include a non-empty {name!r} list, got keys {sorted(out)}")
    return out
