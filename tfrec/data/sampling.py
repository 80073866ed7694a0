"""Negative sampling for implicit-feedback training."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd

from tfrec.errors import ConfigError, DataError

STRATEGIES = ("uniform", "popularity")
_MAX_ROUNDS = 64  # rejection rounds before the few stubborn rows are drawn from their exact complement


def sample_negatives(ratings: pd.DataFrame, n_negatives: int = 4, strategy: str = "uniform", seed: int = 0,
                     items: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Every positive (label 1.0) plus ``n_negatives`` sampled negatives (label 0.0) per positive.

    Args:
      ratings: interactions with ``user_id`` and ``item_id``; every row is a positive.
      n_negatives: negatives per positive (0 returns just the positives).
      strategy: ``"uniform"`` over the item pool, or ``"popularity"``: proportional to an item's
        number of interactions plus one (the distribution in-batch negatives follow; the +1 lets
        pool items without interactions be drawn).
      seed: the sample is a pure function of the inputs and the seed.
      items: the item pool (default: the items in ``ratings``).

    A negative is never one of that user's positives: vectorised rejection sampling in numpy
    (resample the rejected draws), with an exact fallback for users who rated most of the pool.
    The same item may be drawn more than once for a user.

    Returns:
      DataFrame with ``user_id``, ``item_id`` (str) and ``label`` (float32): the ``n`` positives
      in input order, then the negatives grouped by positive (rows ``n + j * n_negatives`` to
      ``n + (j + 1) * n_negatives - 1`` are the negatives of positive ``j``).

    Example:
      >>> import pandas as pd
      >>> r = pd.DataFrame({"user_id": ["1", "1", "2"], "item_id": ["a", "b", "c"]})
      >>> s = sample_negatives(r, n_negatives=2, seed=0)
      >>> len(s), int(s["label"].sum())
      (9, 3)
      >>> sorted(set(s[(s["user_id"] == "1") & (s["label"] == 0)]["item_id"]))
      ['c']
    """
    if not isinstance(ratings, pd.DataFrame):
        raise DataError(f"expected a ratings DataFrame, got {type(ratings).__name__}")
    for col in ("user_id", "item_id"):
        if col not in ratings.columns:
            raise DataError(f"ratings DataFrame is missing column {col!r}; has {list(ratings.columns)}")
    if isinstance(n_negatives, bool) or not isinstance(n_negatives, (int, np.integer)) or n_negatives < 0:
        raise ConfigError(f"n_negatives must be a non-negative integer, got {n_negatives!r}")
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")

    users = ratings["user_id"].astype(str).to_numpy(dtype=object)
    pos_items = ratings["item_id"].astype(str).to_numpy(dtype=object)
    if items is None:
        pool = np.unique(pos_items.astype(str)).astype(object)
    else:
        pool = pd.unique(pd.Series([str(i) for i in items], dtype=object)).astype(object)
    if len(pool) == 0:
        raise ConfigError("the item pool is empty; nothing to sample negatives from")
    n_pool = len(pool)
    pos_idx = pd.Index(pool).get_indexer(pos_items).astype(np.int64)  # -1: positive outside the pool
    user_codes, user_uni = pd.factorize(users)
    user_codes = user_codes.astype(np.int64)

    # (user, item) pairs as one int64 key, so "is it a positive?" is a vectorised sorted search.
    in_pool = pos_idx >= 0
    positive_keys = np.unique(user_codes[in_pool] * n_pool + pos_idx[in_pool])
    per_user = np.bincount(positive_keys // n_pool, minlength=len(user_uni))
    if n_negatives and (per_user >= n_pool).any():
        worst = user_uni[int(np.argmax(per_user))]
        raise ConfigError(f"user {worst!r} has interacted with every item in the pool ({n_pool}); "
                          "no negatives to sample")

    if strategy == "popularity":
        p = np.bincount(pos_idx[in_pool], minlength=n_pool).astype(np.float64) + 1.0
        p /= p.sum()
        cdf = np.cumsum(p)
    else:
        cdf = None
    rng = np.random.default_rng(seed)

    def draw(size: int) -> np.ndarray:
        if cdf is None:
            return rng.integers(0, n_pool, size=size)
        return np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), n_pool - 1)

    def is_positive(u: np.ndarray, i: np.ndarray) -> np.ndarray:
        keys = u * n_pool + i
        pos = np.searchsorted(positive_keys, keys)
        pos = np.minimum(pos, max(len(positive_keys) - 1, 0))
        return positive_keys[pos] == keys if len(positive_keys) else np.zeros(len(keys), dtype=bool)

    neg_users = np.repeat(user_codes, n_negatives)
    neg_items = draw(len(neg_users))
    bad = np.flatnonzero(is_positive(neg_users, neg_items))
    for _ in range(_MAX_ROUNDS):
        if not len(bad):
            break
        neg_items[bad] = draw(len(bad))
        bad = bad[is_positive(neg_users[bad], neg_items[bad])]
    for row in bad:  # users who rated nearly the whole pool: draw from their exact complement
        u = neg_users[row]
        seen = positive_keys[(positive_keys // n_pool) == u] % n_pool
        allowed = np.setdiff1d(np.arange(n_pool), seen)
        w = None if cdf is None else p[allowed] / p[allowed].sum()
        neg_items[row] = rng.choice(allowed, p=w)

    return pd.DataFrame({
        "user_id": pd.Series(np.concatenate([users, np.asarray(user_uni, dtype=object)[neg_users]]), dtype=str),
        "item_id": pd.Series(np.concatenate([pos_items, pool[neg_items]]), dtype=str),
        "label": np.concatenate([np.ones(len(users)), np.zeros(len(neg_users))]).astype(np.float32),
    })
