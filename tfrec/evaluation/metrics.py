"""Rating and ranking metrics: pure functions over pandas DataFrames.

Conventions (the same as Microsoft Recommenders' ``python_evaluation`` module, so numbers are
comparable with theirs):

* ``rmse``/``mae`` are computed on the inner join of truth and predictions on (user, item).
* Ranking metrics take each user's top-``k`` predictions by score (ties broken by item id, then
  order of appearance), treat every item in that user's truth as relevant (binary relevance), and
  average over the users present in both frames.
* precision@k divides the hits by ``k``; recall@k by the user's number of relevant items.
* NDCG@k uses binary gains ``1 / log2(rank + 1)``; the ideal DCG is over ``min(n_relevant, k)``.
* MAP@k divides each user's sum of precisions at the hit ranks by ``min(n_relevant, k)``.
* hit rate@k: the share of users with at least one relevant item in their top k.
* MRR@k: mean over users of ``1 / rank`` of the first relevant item in the top k (0 if none).

Every function takes ``col_user="user_id", col_item="item_id", col_rating="rating",
col_prediction="prediction"`` keywords; ranking functions also take ``k=10``.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd

from tfrec.errors import ConfigError, DataError

DEFAULT_USER_COL = "user_id"
DEFAULT_ITEM_COL = "item_id"
DEFAULT_RATING_COL = "rating"
DEFAULT_PREDICTION_COL = "prediction"


def _check_columns(frame: pd.DataFrame, name: str, cols) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{name}: expected a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise DataError(f"{name}: missing column(s) {missing}; has {list(frame.columns)}")


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _joined(rating_true, rating_pred, col_user, col_item, col_rating, col_prediction) -> pd.DataFrame:
    _check_columns(rating_true, "rating_true", [col_user, col_item, col_rating])
    _check_columns(rating_pred, "rating_pred", [col_user, col_item, col_prediction])
    true = rating_true[[col_user, col_item, col_rating]]
    pred = rating_pred[[col_user, col_item, col_prediction]]
    if col_rating == col_prediction:
        pred = pred.rename(columns={col_prediction: "__prediction"})
        col_prediction = "__prediction"
    joined = true.merge(pred, on=[col_user, col_item], how="inner")
    if joined.empty:
        raise DataError("rating_true and rating_pred share no (user, item) pairs")
    return joined.rename(columns={col_rating: "__y", col_prediction: "__yhat"})


def rmse(rating_true: pd.DataFrame, rating_pred: pd.DataFrame, *, col_user: str = DEFAULT_USER_COL,
         col_item: str = DEFAULT_ITEM_COL, col_rating: str = DEFAULT_RATING_COL,
         col_prediction: str = DEFAULT_PREDICTION_COL) -> float:
    """Root mean squared error over the (user, item) pairs present in both frames."""
    j = _joined(rating_true, rating_pred, col_user, col_item, col_rating, col_prediction)
    err = j["__y"].to_numpy(dtype=np.float64) - j["__yhat"].to_numpy(dtype=np.float64)
    return float(np.sqrt(np.mean(err ** 2)))


def mae(rating_true: pd.DataFrame, rating_pred: pd.DataFrame, *, col_user: str = DEFAULT_USER_COL,
        col_item: str = DEFAULT_ITEM_COL, col_rating: str = DEFAULT_RATING_COL,
        col_prediction: str = DEFAULT_PREDICTION_COL) -> float:
    """Mean absolute error over the (user, item) pairs present in both frames."""
    j = _joined(rating_true, rating_pred, col_user, col_item, col_rating, col_prediction)
    err = j["__y"].to_numpy(dtype=np.float64) - j["__yhat"].to_numpy(dtype=np.float64)
    return float(np.mean(np.abs(err)))


# ------------------------------------------------------------------------------------------------ ranking
def _hits(rating_true, rating_pred, col_user, col_item, col_rating, col_prediction, k):
    """Per common user: ranks (1-based) of relevant items within the top k, and n_relevant.

    Returns (hit_frame with columns user, rank; n_relevant Series indexed by user; n_users).
    """
    k = _check_k(k)
    _check_columns(rating_true, "rating_true", [col_user, col_item])
    _check_columns(rating_pred, "rating_pred", [col_user, col_item, col_prediction])
    common = np.intersect1d(rating_true[col_user].unique(), rating_pred[col_user].unique())
    if len(common) == 0:
        return pd.DataFrame({"user": [], "rank": []}), pd.Series(dtype=np.int64), 0
    true = rating_true.loc[rating_true[col_user].isin(common), [col_user, col_item]].drop_duplicates()
    pred = rating_pred.loc[rating_pred[col_user].isin(common), [col_user, col_item, col_prediction]]
    pred = pred.drop_duplicates(subset=[col_user, col_item])
    # Top k per user by score; ties broken by item id so results do not depend on row order.
    pred = pred.sort_values([col_user, col_prediction, col_item], ascending=[True, False, True], kind="mergesort")
    pred = pred.assign(__rank=pred.groupby(col_user, sort=False).cumcount() + 1)
    top = pred[pred["__rank"] <= k]
    hits = top.merge(true, on=[col_user, col_item], how="inner")
    n_relevant = true.groupby(col_user).size()
    return (pd.DataFrame({"user": hits[col_user].to_numpy(), "rank": hits["__rank"].to_numpy()}),
            n_relevant, len(common))


def precision_at_k(rating_true: pd.DataFrame, rating_pred: pd.DataFrame, *, col_user: str = DEFAULT_USER_COL,
                   col_item: str = DEFAULT_ITEM_COL, col_rating: str = DEFAULT_RATING_COL,
                   col_prediction: str = DEFAULT_PREDICTION_COL, k: int = 10) -> float:
    """Mean over common users of (relevant items in the top k) / k."""
    hits, _, n_users = _hits(rating_true, rating_pred, col_user, col_item, col_rating, col_prediction, k)
    return float(len(hits) / (k * n_users)) if n_users else 0.0


def recall_at_k(rating_true: pd.DataFrame, rating_pred: pd.DataFrame, *, col_user: str = DEFAULT_USER_COL,
                col_item: str = DEFAULT_ITEM_COL, col_rating: str = DEFAULT_RATING_COL,
                col_prediction: str = DEFAULT_PREDICTION_COL, k: int = 10) -> float:
    """Mean over common users of (relevant items in the top k) / (number of relevant items)."""
    hits, n_rel, n_users = _hits(rating_true, rating_pred, col_user, col_item, col_rating, col_prediction, k)
    if not n_users:
        return 0.0
    per_user = hits.groupby("user").size() / n_rel.reindex(hits["user"].unique()).to_numpy()
    return float(per_user.sum() / n_users)


def ndcg_at_k(rating_true: pd.DataFrame, rating_pred: pd.DataFrame, *, col_user: str = DEFAULT_USER_COL,
              col_item: str = DEFAULT_ITEM_COL, col_rating: str = DEFAULT_RATING_COL,
              col_prediction: str = DEFAULT_PREDICTION_COL, k: int = 10) -> float:
    """Mean over common users of DCG@k / IDCG@k with binary gains (ideal over min(n_rel, k))."""
    hits, n_rel, n_users = _hits(rating_true, rating_pred, col_user, col_item, col_rating, col_prediction, k)
    if not n_users:
        return 0.0
    dcg = (1.0 / np.log2(hits["rank"].to_numpy(dtype=np.float64) + 1.0))
    dcg = pd.Series(dcg).groupby(hits["user"].to_numpy()).sum()
    discounts = np.cumsum(1.0 / np.log2(np.arange(1, k + 1) + 1.0))
    ideal = discounts[np.minimum(n_rel.reindex(dcg.index).to_numpy(), k) - 1]
    return float((dcg.to_numpy() / ideal).sum() / n_users)


def map_at_k(rating_true: pd.DataFrame, rating_pred: pd.DataFrame, *, col_user: str = DEFAULT_USER_COL,
             col_item: str = DEFAULT_ITEM_COL, col_rating: str = DEFAULT_RATING_COL,
             col_prediction: str = DEFAULT_PREDICTION_COL, k: int = 10) -> float:
    """Mean over common users of (sum of precision@rank at each hit) / min(n_relevant, k)."""
    hits, n_rel, n_users = _hits(rating_true, rating_pred, col_user, col_item, col_rating, col_prediction, k)
    if not n_users:
        return 0.0
    hits = hits.sort_values(["user", "rank"], kind="mergesort")
    nth_hit = hits.groupby("user").cumcount() + 1
    prec = nth_hit.to_numpy(dtype=np.float64) / hits["rank"].to_numpy(dtype=np.float64)
    per_user = pd.Series(prec).groupby(hits["user"].to_numpy()).sum()
    denom = np.minimum(n_rel.reindex(per_user.index).to_numpy(), k)
    return float((per_user.to_numpy() / denom).sum() / n_users)


def hit_rate_at_k(rating_true: pd.DataFrame, rating_pred: pd.DataFrame, *, col_user: str = DEFAULT_USER_COL,
                  col_item: str = DEFAULT_ITEM_COL, col_rating: str = DEFAULT_RATING_COL,
                  col_prediction: str = DEFAULT_PREDICTION_COL, k: int = 10) -> float:
    """Share of common users with at least one relevant item in their top k."""
    hits, _, n_users = _hits(rating_true, rating_pred, col_user, col_item, col_rating, col_prediction, k)
    return float(hits["user"].nunique() / n_users) if n_users else 0.0


def mrr_at_k(rating_true: pd.DataFrame, rating_pred: pd.DataFrame, *, col_user: str = DEFAULT_USER_COL,
             col_item: str = DEFAULT_ITEM_COL, col_rating: str = DEFAULT_RATING_COL,
             col_prediction: str = DEFAULT_PREDICTION_COL, k: int = 10) -> float:
    """Mean over common users of 1 / (rank of the first relevant item in the top k); 0 if none."""
    hits, _, n_users = _hits(rating_true, rating_pred, col_user, col_item, col_rating, col_prediction, k)
    if not n_users:
        return 0.0
    first = hits.groupby("user")["rank"].min().to_numpy(dtype=np.float64)
    return float((1.0 / first).sum() / n_users)


# ------------------------------------------------------------------------------------------------ beyond accuracy
def catalog_coverage(rating_pred: pd.DataFrame, catalog_size: int, *, col_user: str = DEFAULT_USER_COL,
                     col_item: str = DEFAULT_ITEM_COL, col_prediction: str = DEFAULT_PREDICTION_COL,
                     k: Optional[int] = None) -> float:
    """Share of the catalog that appears in at least one user's (top-k) recommendations."""
    _check_columns(rating_pred, "rating_pred", [col_user, col_item])
    if isinstance(catalog_size, bool) or not isinstance(catalog_size, (int, np.integer)) or catalog_size < 1:
        raise ConfigError(f"catalog_size must be a positive integer, got {catalog_size!r}")
    pred = rating_pred
    if k is not None:
        k = _check_k(k)
        _check_columns(rating_pred, "rating_pred", [col_prediction])
        pred = pred.sort_values([col_user, col_prediction, col_item], ascending=[True, False, True], kind="mergesort")
        pred = pred[pred.groupby(col_user, sort=False).cumcount() < k]
    return float(pred[col_item].nunique() / catalog_size)


def intra_list_diversity(rating_pred: pd.DataFrame, item_vectors: dict, *, col_user: str = DEFAULT_USER_COL,
                         col_item: str = DEFAULT_ITEM_COL) -> float:
    """Mean over users of the average pairwise cosine *distance* between their recommended items.

    Args:
      rating_pred: recommendations (one row per user and item).
      item_vectors: item id -> feature/embedding vector (e.g. multi-hot genres or embeddings).
        Items without a vector are skipped; users with fewer than two vectors are skipped.
    """
    _check_columns(rating_pred, "rating_pred", [col_user, col_item])
    values = []
    for _, items in rating_pred.groupby(col_user, sort=False)[col_item]:
        vecs = [np.asarray(item_vectors[i], dtype=np.float64) for i in items if i in item_vectors]
        if len(vecs) < 2:
            continue
        m = np.stack(vecs)
        norms = np.linalg.norm(m, axis=1, keepdims=True)
        m = m / np.where(norms == 0, 1.0, norms)
        sim = m @ m.T
        n = len(m)
        values.append(1.0 - (sim.sum() - np.trace(sim)) / (n * (n - 1)))
    return float(np.mean(values)) if values else 0.0
