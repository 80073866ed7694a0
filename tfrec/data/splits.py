"""Splits: pure functions of a ratings DataFrame (and a seed). Inputs are never mutated.

* :func:`random_split` -- ratings shuffled with a seed, ``test_fraction`` held out.
* :func:`temporal_split` -- global time order, 75/15/10 by default (seed 002's protocol): nothing
  in train is later than validation, nothing in validation later than test.
* :func:`leave_last_out_split` -- per user, the latest interaction is test (the NCF protocol).
* :func:`cold_start_user_split` -- whole users held out: test users are absent from train.
* :func:`validation_split` -- a validation part carved from a *training* part (model selection and
  tuning never look at the test rows).
* :func:`filter_min_interactions` -- k-core style filtering to a fixed point.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from tfrec.errors import ConfigError, DataError

_REQUIRED = ("user_id", "item_id")
#: the error of a time-ordered split on data without timestamps (in memory and in `tfrec data prepare`).
NEEDS_TIME_ORDER = ("this split needs time order, but the ratings have no 'timestamp' column (a schema.json with "
                    "\"timestamp\": null); use the random or cold_start split, or name a timestamp column")


def _check_ratings(ratings: pd.DataFrame, need_timestamp: bool = False) -> None:
    if not isinstance(ratings, pd.DataFrame):
        raise DataError(f"expected a ratings DataFrame, got {type(ratings).__name__}")
    need = list(_REQUIRED) + (["timestamp"] if need_timestamp else [])
    missing = [c for c in need if c not in ratings.columns]
    if missing == ["timestamp"]:
        raise DataError(NEEDS_TIME_ORDER)
    if missing:
        raise DataError(f"ratings DataFrame is missing column(s) {missing}; has {list(ratings.columns)}")
    if need_timestamp and ratings["timestamp"].dtype.kind not in "iuf":
        raise DataError(f"ratings column 'timestamp' must be numeric (seconds), got dtype {ratings['timestamp'].dtype}")
    if need_timestamp and ratings["timestamp"].isna().any():
        row = int(np.flatnonzero(ratings["timestamp"].isna().to_numpy())[0])
        raise DataError(f"ratings column 'timestamp' has a missing value at row {row}")


def _check_fraction(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number in (0, 1), got {value!r}") from None
    if not 0.0 < v < 1.0:
        raise ConfigError(f"{name} must be in (0, 1), got {value!r}")
    return v


def random_split(ratings: pd.DataFrame, test_fraction: float = 0.2, seed: int = 0):
    """``(train, test)``: a seeded random ``test_fraction`` of the rows is test.

    The test size is ``round(len(ratings) * test_fraction)``; rows keep their original order
    within each part and the index is reset.
    """
    _check_ratings(ratings)
    frac = _check_fraction("test_fraction", test_fraction)
    n = len(ratings)
    n_test = int(round(n * frac))
    perm = np.random.default_rng(seed).permutation(n)
    is_test = np.zeros(n, dtype=bool)
    is_test[perm[:n_test]] = True
    return ratings[~is_test].reset_index(drop=True), ratings[is_test].reset_index(drop=True)


def _time_order(ratings: pd.DataFrame) -> np.ndarray:
    # Ties broken by (user_id, item_id) so the order, and the split, is deterministic.
    return np.lexsort((ratings["item_id"].astype(str).to_numpy(), ratings["user_id"].astype(str).to_numpy(),
                       ratings["timestamp"].to_numpy()))


def temporal_split(ratings: pd.DataFrame, fractions: Sequence[float] = (0.75, 0.15, 0.10)):
    """``(train, validation, test)`` in global time order.

    Rows are sorted by timestamp (ties by user_id, item_id) and cut at the cumulative fractions.
    Every train timestamp <= every validation timestamp <= every test timestamp.
    """
    _check_ratings(ratings, need_timestamp=True)
    try:
        fr = [_check_fraction("each of fractions", f) for f in fractions]
    except TypeError:
        raise ConfigError(f"fractions must be three numbers in (0, 1) summing to 1, got {fractions!r}") from None
    if len(fr) != 3 or abs(sum(fr) - 1.0) > 1e-6:
        raise ConfigError(f"fractions must be three numbers in (0, 1) summing to 1 (train, validation, test), "
                          f"got {tuple(fractions)!r}")
    order = _time_order(ratings)
    n = len(order)
    a = int(round(n * fr[0]))
    b = int(round(n * (fr[0] + fr[1])))
    parts = (order[:a], order[a:b], order[b:])
    return tuple(ratings.iloc[np.sort(p)].reset_index(drop=True) for p in parts)


def leave_last_out_split(ratings: pd.DataFrame):
    """``(train, test)``: each user's latest interaction is test.

    Ties on the latest timestamp are broken by the largest item_id (as a string), so the result is
    deterministic. Users with a single interaction stay entirely in train.
    """
    _check_ratings(ratings, need_timestamp=True)
    order = _time_order(ratings)
    users = ratings["user_id"].to_numpy()[order]
    # In time order, the last row of each user is their latest interaction.
    frame = pd.DataFrame({"pos": order, "user": users})
    last_pos = frame.groupby("user", sort=False)["pos"].last()
    counts = frame.groupby("user", sort=False)["pos"].size()
    test_pos = last_pos[counts[last_pos.index] > 1].to_numpy()
    is_test = np.zeros(len(ratings), dtype=bool)
    is_test[test_pos] = True
    return ratings[~is_test].reset_index(drop=True), ratings[is_test].reset_index(drop=True)


def validation_split(train: pd.DataFrame, seed: int = 0):
    """``(fit_part, validation)`` carved from training rows only, for model selection.

    With a ``timestamp`` column it is :func:`leave_last_out_split` applied to ``train`` (each
    user's latest training interaction validates, mirroring the leave-last-out test protocol);
    without one, one seeded random interaction per user with at least two. Users with a single
    interaction stay entirely in the fit part.
    """
    _check_ratings(train)
    if "timestamp" in train.columns:
        return leave_last_out_split(train)
    users = train["user_id"].astype(str).to_numpy()
    counts = pd.Series(users).map(pd.Series(users).value_counts()).to_numpy()
    noise = np.random.default_rng(seed).random(len(train))
    frame = pd.DataFrame({"user": users, "noise": noise, "pos": np.arange(len(train))})[counts > 1]
    held = frame.loc[frame.groupby("user", sort=False)["noise"].idxmax(), "pos"].to_numpy()
    is_val = np.zeros(len(train), dtype=bool)
    is_val[held] = True
    return train[~is_val].reset_index(drop=True), train[is_val].reset_index(drop=True)


def cold_start_user_split(ratings: pd.DataFrame, test_fraction: float = 0.1, seed: int = 0):
    """``(train, test)`` where a seeded ``test_fraction`` of *users* (all their ratings) is test.

    No test user appears in train: these are the wholly new users a model can only serve from
    their demographics (or popularity).
    """
    _check_ratings(ratings)
    frac = _check_fraction("test_fraction", test_fraction)
    users = np.sort(ratings["user_id"].astype(str).unique())
    n_test = max(1, int(round(len(users) * frac)))
    if n_test >= len(users):
        raise ConfigError(f"test_fraction={test_fraction} leaves no training users ({len(users)} users)")
    chosen = set(np.random.default_rng(seed).permutation(users)[:n_test])
    is_test = ratings["user_id"].astype(str).isin(chosen).to_numpy()
    return ratings[~is_test].reset_index(drop=True), ratings[is_test].reset_index(drop=True)


def filter_min_interactions(ratings: pd.DataFrame, min_user: int = 1, min_item: int = 1) -> pd.DataFrame:
    """Keep users with >= ``min_user`` and items with >= ``min_item`` ratings, to a fixed point."""
    _check_ratings(ratings)
    for name, v in (("min_user", min_user), ("min_item", min_item)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ConfigError(f"{name} must be a positive integer, got {v!r}")
    out = ratings
    while True:
        uc = out["user_id"].map(out["user_id"].value_counts())
        ic = out["item_id"].map(out["item_id"].value_counts())
        keep = (uc >= min_user) & (ic >= min_item)
        if keep.all():
            return out.reset_index(drop=True)
        out = out[keep.to_numpy()]
