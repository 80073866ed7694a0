"""Beyond accuracy: Maximal Marginal Relevance re-ranking (seed 001's answer to samey lists).

Intra-list diversity, the metric that measures what MMR improves, lives in
:func:`tfrec.evaluation.metrics.intra_list_diversity` (one implementation); both use
:func:`tfrec.evaluation.metrics.pairwise_similarity`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tfrec.errors import ConfigError, DataError
from tfrec.evaluation.metrics import _check_columns, _check_k, _CosineSimilarity, pairwise_similarity

# Users re-ranked together: keeps the [users, candidates, candidates] similarity block small.
_MAX_BLOCK = 4_000_000


def mmr_rerank(candidates: pd.DataFrame, item_vectors, lambda_: float = 0.7, k: int = 10,
               col_user: str = "user_id", col_item: str = "item_id", col_score: str = "score") -> pd.DataFrame:
    """Re-rank each user's candidates by Maximal Marginal Relevance (Carbonell & Goldstein, 1998).

    Greedily picks, ``k`` times, the candidate maximising
    ``lambda_ * rel(i) - (1 - lambda_) * max_{j already picked} sim(i, j)``, where ``rel`` is the
    candidate's score min-max scaled to [0, 1] within the user's candidates (all 1 if they are
    equal), so ``lambda_`` means the same whatever the model's score scale. The first pick is
    always the best-scored candidate. Ties go to the better-scored (then earlier) candidate.

    Args:
      candidates: DataFrame with ``col_user``, ``col_item``, ``col_score``, e.g.
        ``model.recommend(users, k=50)``; a longer candidate list gives MMR more room.
      item_vectors: how similar two items are: a mapping item id -> vector (embeddings, multi-hot
        genres), a DataFrame of numeric columns indexed by item id, or a callable
        ``similarity(item_ids: np.ndarray) -> [n, n] array``. With vectors the similarity is the
        cosine, and a candidate without a vector is similar to nothing.
      lambda_: in [0, 1]; 1.0 keeps the original order, lower values trade relevance for diversity.
      k: items kept per user.

    Returns:
      DataFrame (``col_user``, ``col_item``, ``col_score``, ``rank``): ``min(k, n_candidates)`` rows
      per user in MMR order, keeping the original scores; users in order of first appearance.

    Example:
      >>> cands = pd.DataFrame({"user_id": "u", "item_id": ["a", "b", "c"], "score": [1.0, 0.99, 0.5]})
      >>> vectors = {"a": [1, 0], "b": [1, 0], "c": [0, 1]}
      >>> mmr_rerank(cands, vectors, lambda_=0.3, k=2).item_id.tolist()
      ['a', 'c']
    """
    if isinstance(lambda_, bool) or not isinstance(lambda_, (int, float, np.floating, np.integer)) \
            or not 0.0 <= float(lambda_) <= 1.0:
        raise ConfigError(f"lambda_ must be a number in [0, 1], got {lambda_!r}")
    k = _check_k(k)
    _check_columns(candidates, "candidates", [col_user, col_item, col_score])
    similarity = pairwise_similarity(item_vectors, col_item=col_item)
    frame = candidates[[col_user, col_item, col_score]].drop_duplicates([col_user, col_item])
    try:
        scores_all = frame[col_score].to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"candidates: column {col_score!r} must be numeric") from None
    if np.isnan(scores_all).any():
        raise DataError(f"candidates: column {col_score!r} has NaN scores")
    if frame.empty:
        return pd.DataFrame({col_user: [], col_item: [], col_score: [], "rank": []})
    codes, users = pd.factorize(frame[col_user])
    users = np.asarray(users, dtype=object)
    # Candidates of a user, best score first (stable, so equal scores keep their row order).
    order = np.lexsort((-scores_all, codes))
    codes, items, scores_all = codes[order], frame[col_item].to_numpy(dtype=object)[order], scores_all[order]
    starts = np.searchsorted(codes, np.arange(len(users)), side="left")
    counts = np.diff(np.append(starts, len(codes)))
    width = int(counts.max())
    per_block = max(1, _MAX_BLOCK // (width * width))
    out_user, out_item, out_score, out_rank, out_codes = [], [], [], [], []
    for b0 in range(0, len(users), per_block):
        block = np.arange(b0, min(b0 + per_block, len(users)))
        n_b = len(block)
        # Padded [users, width] layout; padding slots are never available.
        slot = np.arange(width)
        valid = slot[None, :] < counts[block][:, None]
        idx = np.where(valid, starts[block][:, None] + slot[None, :], 0)
        score = np.where(valid, scores_all[idx], 0.0)
        lo = np.where(valid, score, np.inf).min(axis=1, keepdims=True)
        hi = np.where(valid, score, -np.inf).max(axis=1, keepdims=True)
        span = hi - lo
        rel = np.where(span > 0, (score - lo) / np.where(span > 0, span, 1.0), 1.0)
        sim = _block_similarity(similarity, items, idx, valid)
        available = valid.copy()
        max_sim = np.zeros((n_b, width))
        rows = np.arange(n_b)
        for rank in range(1, min(k, width) + 1):
            value = np.where(available, lambda_ * rel - (1.0 - lambda_) * max_sim, -np.inf)
            best = np.argmax(value, axis=1)  # first maximum: the better-scored candidate wins ties
            active = available[rows, best]
            available[rows, best] = False
            max_sim = np.maximum(max_sim, sim[rows, best])
            picked = idx[rows, best][active]
            out_user.append(users[block[active]])
            out_codes.append(block[active])
            out_item.append(items[picked])
            out_score.append(scores_all[picked])
            out_rank.append(np.full(int(active.sum()), rank))
    result = pd.DataFrame({col_user: np.concatenate(out_user), col_item: np.concatenate(out_item),
                           col_score: np.concatenate(out_score), "rank": np.concatenate(out_rank)})
    # Group by user (first appearance), then rank.
    user_order = np.concatenate(out_codes)
    result = result.iloc[np.lexsort((result["rank"].to_numpy(), user_order))].reset_index(drop=True)
    result[col_user] = result[col_user].astype(candidates[col_user].dtype, copy=False)
    return result


def _block_similarity(similarity, items: np.ndarray, idx: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """[users, width, width] similarities of each user's padded candidate list."""
    n_b, width = idx.shape
    if isinstance(similarity, _CosineSimilarity):
        vecs = similarity.vectors(items[idx.ravel()]).reshape(n_b, width, -1)
        vecs = vecs * valid[:, :, None]
        return np.einsum("uid,ujd->uij", vecs, vecs)
    sim = np.zeros((n_b, width, width))
    for r in range(n_b):
        n = int(valid[r].sum())
        ids = items[idx[r, :n]]
        block = np.asarray(similarity(ids), dtype=np.float64)
        if block.shape != (n, n):
            raise DataError(f"similarity function returned shape {block.shape} for {n} items; expected ({n}, {n})")
        sim[r, :n, :n] = block
    return sim


__all__ = ["mmr_rerank"]
