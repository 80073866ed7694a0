"""Negative sampling for implicit-feedback training."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd

from tfrec.errors import ConfigError

STRATEGIES = ("uniform", "popularity")


def sample_negatives(ratings: pd.DataFrame, n_negatives: int = 4, strategy: str = "uniform", seed: int = 0,
                     items: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Every positive (label 1.0) plus ``n_negatives`` sampled negatives (label 0.0) per positive.

    Args:
      ratings: interactions (user_id, item_id); every row is a positive.
      n_negatives: negatives per positive.
      strategy: ``"uniform"`` over the item pool, or ``"popularity"`` (proportional to the number
        of interactions, the distribution in-batch negatives follow).
      seed: the sample is deterministic per seed.
      items: the item pool (default: items in ``ratings``).

    A negative is never one of the user's positives (rejection sampling, vectorised).

    Returns:
      DataFrame with columns user_id, item_id, label (float32), positives first.
    """
    if isinstance(n_negatives, bool) or not isinstance(n_negatives, (int, np.integer)) or n_negatives < 0:
        raise ConfigError(f"n_negatives must be a non-negative integer, got {n_negatives!r}")
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    users = ratings["user_id"].astype(str).to_numpy(dtype=object)
    pos_items = ratings["item_id"].astype(str).to_numpy(dtype=object)
    pool = np.asarray(sorted(set(pos_items)) if items is None else [str(i) for i in items], dtype=object)
    index = {it: i for i, it in enumerate(pool)}
    user_codes, user_uni = pd.factorize(users)
    pos_idx = np.fromiter((index.get(i, -1) for i in pos_items), dtype=np.int64, count=len(pos_items))
    n_pool = len(pool)
    # Encode (user, item) pairs as one int64 so membership tests are a vectorised isin.
    positive_keys = np.unique(user_codes.astype(np.int64) * n_pool + pos_idx[pos_idx >= 0])
    per_user = np.bincount(user_codes, minlength=len(user_uni))
    if (per_user >= n_pool).any() and n_negatives:
        worst = user_uni[int(np.argmax(per_user))]
        raise ConfigError(f"user {worst!r} has interacted with every item; no negatives to sample")
    if strategy == "popularity":
        p = np.bincount(pos_idx[pos_idx >= 0], minlength=n_pool).astype(np.float64) + 1.0
        p /= p.sum()
    else:
        p = None
    rng = np.random.default_rng(seed)
    neg_users = np.repeat(user_codes, n_negatives)
    neg_items = rng.choice(n_pool, size=len(neg_users), p=p)
    bad = np.isin(neg_users.astype(np.int64) * n_pool + neg_items, positive_keys)
    while bad.any():
        neg_items[bad] = rng.choice(n_pool, size=int(bad.sum()), p=p)
        bad = np.isin(neg_users.astype(np.int64) * n_pool + neg_items, positive_keys)
    return pd.DataFrame({
        "user_id": np.concatenate([users, np.asarray(user_uni, dtype=object)[neg_users]]),
        "item_id": np.concatenate([pos_items, pool[neg_items]]),
        "label": np.concatenate([np.ones(len(users)), np.zeros(len(neg_users))]).astype(np.float32),
    })
