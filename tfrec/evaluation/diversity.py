"""Beyond accuracy: Maximal Marginal Relevance re-ranking (seed 001's answer to samey lists)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tfrec.errors import ConfigError, DataError


def mmr_rerank(candidates: pd.DataFrame, item_vectors: dict, *, lambda_: float = 0.7, k: int = 10,
               col_user: str = "user_id", col_item: str = "item_id", col_score: str = "score") -> pd.DataFrame:
    """Re-rank each user's candidates by Maximal Marginal Relevance.

    Greedily picks ``argmax_i  lambda_ * rel(i) - (1 - lambda_) * max_{j in picked} cos(i, j)``
    where ``rel`` is the candidate score min-max scaled to [0, 1] per user, and ``cos`` the cosine
    similarity of the item vectors (embeddings or multi-hot genres).

    Args:
      candidates: e.g. ``model.recommend(users, k=50)`` (user_id, item_id, score).
      item_vectors: item id -> vector. Candidates without a vector are treated as dissimilar to all.
      lambda_: 1.0 keeps the original order; lower values trade relevance for diversity.
      k: items kept per user.

    Returns:
      DataFrame (user_id, item_id, score, rank) with ``k`` rows per user (fewer if fewer candidates).
    """
    if not 0.0 <= float(lambda_) <= 1.0:
        raise ConfigError(f"lambda_ must be in [0, 1], got {lambda_!r}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    missing = [c for c in (col_user, col_item, col_score) if c not in candidates.columns]
    if missing:
        raise DataError(f"candidates: missing column(s) {missing}")
    rows = []
    for user, group in candidates.groupby(col_user, sort=False):
        items = group[col_item].to_numpy()
        scores = group[col_score].to_numpy(dtype=np.float64)
        span = scores.max() - scores.min()
        rel = (scores - scores.min()) / span if span > 0 else np.ones_like(scores)
        dim = next((len(item_vectors[i]) for i in items if i in item_vectors), 1)
        vecs = np.stack([np.asarray(item_vectors.get(i, np.zeros(dim)), dtype=np.float64) for i in items])
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        vecs = vecs / np.where(norms == 0, 1.0, norms)
        sim = vecs @ vecs.T
        picked: list = []
        max_sim = np.zeros(len(items))
        available = np.ones(len(items), dtype=bool)
        for rank in range(1, min(k, len(items)) + 1):
            value = lambda_ * rel - (1.0 - lambda_) * max_sim
            value[~available] = -np.inf
            best = int(np.argmax(value))
            picked.append(best)
            available[best] = False
            max_sim = np.maximum(max_sim, sim[best])
            rows.append((user, items[best], float(scores[best]), rank))
    return pd.DataFrame(rows, columns=[col_user, col_item, col_score, "rank"])
