"""Rating and ranking metrics: pure functions over pandas DataFrames.

Conventions (those of Microsoft Recommenders' ``recommenders.evaluation.python_evaluation`` with
``relevancy_method="top_k"``, so numbers are comparable with theirs):

* ``rmse``/``mae`` are computed on the inner join of truth and predictions on (user, item).
* Ranking metrics take each user's top-``k`` rows of ``rating_pred`` by ``col_prediction``
  (descending; ties keep their order of appearance in ``rating_pred``, which is what pandas' stable
  multi-column sort in Recommenders' ``get_top_k_items`` does), treat every item in that user's
  ``rating_true`` as relevant (binary relevance; the rating value is ignored), and average over
  the users present in *both* frames ("common users"). A common user without hits scores 0.
* precision@k divides the user's hits by ``k`` (so a user with fewer than ``k`` predictions
  cannot reach 1); recall@k divides by the user's number of relevant items.
* NDCG@k uses binary gains ``1 / log2(rank + 1)``; the ideal DCG is that of ``min(n_relevant, k)``
  hits at ranks 1, 2, ... (the log base cancels in the ratio).
* MAP@k divides each user's sum of precision@rank over the hit ranks by ``min(n_relevant, k)``
  (Recommenders' ``map_at_k``, Spark's ``meanAveragePrecisionAt``).
* hit rate@k: the share of common users with at least one relevant item in their top ``k``.
* MRR@k: mean over common users of ``1 / rank`` of the first relevant item within the top ``k``
  (0 if there is none).

Two deliberate deviations, both for malformed input only: duplicate (user, item) rows in
``rating_true`` count once (Recommenders would count them twice), and a (user, item) pair repeated
in ``rating_pred`` keeps its best-scored row. If no user is common to both frames every ranking
metric is 0.0, as in Recommenders.

Every function takes ``col_user="user_id", col_item="item_id", col_rating="rating",
col_prediction="prediction"``; the ranking functions also take ``k=10``. Errors: a missing column
raises :class:`tfrec.errors.DataError` naming it; ``k < 1`` raises :class:`tfrec.errors.ConfigError`.

Example:
  >>> truth = pd.DataFrame({"user_id": [1, 1], "item_id": [10, 30], "rating": [5.0, 4.0]})
  >>> pred = pd.DataFrame({"user_id": [1, 1, 1], "item_id": [10, 20, 30], "prediction": [0.9, 0.8, 0.7]})
  >>> round(precision_at_k(truth, pred, k=2), 3)  # one hit in the top 2
  0.5
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Callable, Optional, Union

import numpy as np
import pandas as pd

from tfrec.errors import ConfigError, DataError

DEFAULT_USER_COL = "user_id"
DEFAULT_ITEM_COL = "item_id"
DEFAULT_RATING_COL = "rating"
DEFAULT_PREDICTION_COL = "prediction"
DEFAULT_K = 10


# ------------------------------------------------------------------------------------------------ validation
def _check_columns(frame, name: str, cols) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{name}: expected a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in dict.fromkeys(cols) if c not in frame.columns]
    if missing:
        raise DataError(f"{name}: missing column(s) {missing}; it has {list(frame.columns)}")


def _check_k(k, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"{name} must be a positive integer, got {k!r}")
    return int(k)


def _check_id_dtypes(true: pd.DataFrame, pred: pd.DataFrame, cols) -> None:
    # Integer ids on one side and string ids on the other never match: every metric would silently
    # be 0 (Recommenders raises ColumnTypeMismatchError for the same reason).
    for col in cols:
        a, b = pd.api.types.is_numeric_dtype(true[col]), pd.api.types.is_numeric_dtype(pred[col])
        if a != b:
            raise DataError(f"column {col!r} is {true[col].dtype} in rating_true but {pred[col].dtype} in "
                            f"rating_pred; ids must have the same type in both frames (e.g. both str)")


# ------------------------------------------------------------------------------------------------ rating
def _joined(rating_true, rating_pred, col_user, col_item, col_rating, col_prediction) -> tuple:
    _check_columns(rating_true, "rating_true", [col_user, col_item, col_rating])
    _check_columns(rating_pred, "rating_pred", [col_user, col_item, col_prediction])
    _check_id_dtypes(rating_true, rating_pred, [col_user, col_item])
    true = rating_true[[col_user, col_item, col_rating]].rename(columns={col_rating: "__y"})
    pred = rating_pred[[col_user, col_item, col_prediction]].rename(columns={col_prediction: "__yhat"})
    joined = true.merge(pred, on=[col_user, col_item], how="inner")
    if joined.empty:
        raise DataError("rating_true and rating_pred share no (user, item) pairs to compare")
    y = joined["__y"].to_numpy(dtype=np.float64)
    yhat = joined["__yhat"].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(yhat)
    if bad.any():
        raise DataError(f"rating_pred: column {col_prediction!r} has {int(bad.sum())} non-finite value(s) "
                        f"on the compared pairs")
    return y, yhat


def rmse(rating_true: pd.DataFrame, rating_pred: pd.DataFrame, col_user: str = DEFAULT_USER_COL,
         col_item: str = DEFAULT_ITEM_COL, col_rating: str = DEFAULT_RATING_COL,
         col_prediction: str = DEFAULT_PREDICTION_COL) -> float:
    """Root mean squared error on the inner join of truth and predictions on (user, item).

    Args:
      rating_true: true ratings (``col_user``, ``col_item``, ``col_rating``).
      rating_pred: predictions (``col_user``, ``col_item``, ``col_prediction``); pairs absent from
        ``rating_true`` are ignored, and so are true pairs without a prediction.

    Returns:
      ``sqrt(mean((rating - prediction) ** 2))`` over the joined pairs.
    """
    y, yhat = _joined(rating_true, rating_pred, col_user, col_item, col_rating, col_prediction)
    return float(np.sqrt(np.mean((y - yhat) ** 2)))


def mae(rating_true: pd.DataFrame, rating_pred: pd.DataFrame, col_user: str = DEFAULT_USER_COL,
        col_item: str = DEFAULT_ITEM_COL, col_rating: str = DEFAULT_RATING_COL,
        col_prediction: str = DEFAULT_PREDICTION_COL) -> float:
    """Mean absolute error on the inner join of truth and predictions on (user, item)."""
    y, yhat = _joined(rating_true, rating_pred, col_user, col_item, col_rating, col_prediction)
    return float(np.mean(np.abs(y - yhat)))


# ------------------------------------------------------------------------------------------------ ranking
def _rank_order(user_codes: np.ndarray, scores: np.ndarray) -> tuple:
    """Row order sorting by user, then score descending (stable), and the 1-based rank in that order."""
    order = np.lexsort((-scores, user_codes))  # lexsort is stable: ties keep their row order
    sorted_users = user_codes[order]
    group_start = np.searchsorted(sorted_users, sorted_users, side="left")
    return order, np.arange(len(order)) - group_start + 1


def _scores(frame: pd.DataFrame, col_prediction: str) -> np.ndarray:
    try:
        return frame[col_prediction].to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"rating_pred: column {col_prediction!r} must be numeric, "
                        f"got dtype {frame[col_prediction].dtype}") from None


def top_k_items(rating_pred: pd.DataFrame, col_user: str = DEFAULT_USER_COL,
                col_prediction: str = DEFAULT_PREDICTION_COL, k: int = DEFAULT_K) -> pd.DataFrame:
    """Each user's ``k`` best rows by ``col_prediction`` with a 1-based ``rank`` column.

    Ties keep their order of appearance in ``rating_pred`` (a stable sort, as pandas' multi-column
    sort in Recommenders' ``get_top_k_items``); rows come out sorted by user, then rank. This is the
    selection every ranking metric here uses.
    """
    k = _check_k(k)
    _check_columns(rating_pred, "rating_pred", [col_user, col_prediction])
    codes, _ = pd.factorize(rating_pred[col_user], sort=True)
    order, rank = _rank_order(codes, _scores(rating_pred, col_prediction))
    keep = rank <= k
    return rating_pred.iloc[order[keep]].assign(rank=rank[keep]).reset_index(drop=True)


def _per_user(rating_true, rating_pred, col_user, col_item, col_prediction, k):
    """Per common user: n_relevant, hits, DCG, sum of precisions at hits, first hit rank.

    Returns (DataFrame with one row per common user, k). Users without hits have hits = 0,
    dcg = 0, ap_sum = 0 and first_rank = inf. Works on integer codes (fast on 100K-row frames).
    """
    k = _check_k(k)
    _check_columns(rating_true, "rating_true", [col_user, col_item])
    _check_columns(rating_pred, "rating_pred", [col_user, col_item, col_prediction])
    _check_id_dtypes(rating_true, rating_pred, [col_user, col_item])
    n_true = len(rating_true)
    user_codes, users = pd.factorize(pd.concat([rating_true[col_user], rating_pred[col_user]], ignore_index=True))
    item_codes, items = pd.factorize(pd.concat([rating_true[col_item], rating_pred[col_item]], ignore_index=True))
    tu, pu = user_codes[:n_true], user_codes[n_true:]
    ti, pi = item_codes[:n_true], item_codes[n_true:]
    n_items = max(len(items), 1)
    in_true = np.zeros(len(users), dtype=bool)
    in_true[tu[tu >= 0]] = True
    in_pred = np.zeros(len(users), dtype=bool)
    in_pred[pu[pu >= 0]] = True
    common = in_true & in_pred
    columns = ["n_relevant", "hits", "dcg", "ap_sum", "first_rank"]
    if not common.any():
        return pd.DataFrame(columns=columns, dtype=np.float64), k
    # Relevant set: distinct (user, item) pairs of the common users.
    keep_t = (tu >= 0) & (ti >= 0)
    keep_t[keep_t] = common[tu[keep_t]]
    true_keys = np.unique(tu[keep_t].astype(np.int64) * n_items + ti[keep_t])
    n_relevant = np.bincount((true_keys // n_items).astype(np.int64), minlength=len(users))
    # Predictions of common users, ranked; a repeated (user, item) keeps its best row.
    keep_p = (pu >= 0) & (pi >= 0)
    keep_p[keep_p] = common[pu[keep_p]]
    pu, pi = pu[keep_p], pi[keep_p]
    scores = _scores(rating_pred, col_prediction)[keep_p]
    order, _ = _rank_order(pu, scores)
    keys = pu[order].astype(np.int64) * n_items + pi[order]
    first = np.zeros(len(keys), dtype=bool)
    first[np.unique(keys, return_index=True)[1]] = True
    keys, u_sorted = keys[first], pu[order][first]
    rank = np.arange(len(keys)) - np.searchsorted(u_sorted, u_sorted, side="left") + 1
    top = rank <= k
    keys, u_top, rank = keys[top], u_sorted[top], rank[top].astype(np.float64)
    hit = np.isin(keys, true_keys)
    hu, hrank = u_top[hit], rank[hit]  # in (user, rank) order
    nth_hit = np.arange(len(hu)) - np.searchsorted(hu, hu, side="left") + 1.0
    n = len(users)
    first_rank = np.full(n, np.inf)
    np.minimum.at(first_rank, hu, hrank)
    stats = pd.DataFrame({
        "n_relevant": n_relevant,
        "hits": np.bincount(hu, minlength=n),
        "dcg": np.bincount(hu, weights=1.0 / np.log2(hrank + 1.0), minlength=n),
        "ap_sum": np.bincount(hu, weights=nth_hit / hrank, minlength=n),
        "first_rank": first_rank,
    }, index=pd.Index(users, name=col_user))
    return stats[common], k


def precision_at_k(rating_true: pd.DataFrame, rating_pred: pd.DataFrame, col_user: str = DEFAULT_USER_COL,
                   col_item: str = DEFAULT_ITEM_COL, col_rating: str = DEFAULT_RATING_COL,
                   col_prediction: str = DEFAULT_PREDICTION_COL, k: int = DEFAULT_K) -> float:
    """Precision@k: mean over common users of (relevant items in the top k) / k.

    The divisor is ``k`` even when a user has fewer than ``k`` predictions (Recommenders/Spark).
    ``col_rating`` is accepted for a uniform signature; relevance is binary (every true item).
    """
    stats, k = _per_user(rating_true, rating_pred, col_user, col_item, col_prediction, k)
    return float((stats["hits"] / k).sum() / len(stats)) if len(stats) else 0.0


def recall_at_k(rating_true: pd.DataFrame, rating_pred: pd.DataFrame, col_user: str = DEFAULT_USER_COL,
                col_item: str = DEFAULT_ITEM_COL, col_rating: str = DEFAULT_RATING_COL,
                col_prediction: str = DEFAULT_PREDICTION_COL, k: int = DEFAULT_K) -> float:
    """Recall@k: mean over common users of (relevant items in the top k) / (relevant items)."""
    stats, k = _per_user(rating_true, rating_pred, col_user, col_item, col_prediction, k)
    return float((stats["hits"] / stats["n_relevant"]).sum() / len(stats)) if len(stats) else 0.0


def ndcg_at_k(rating_true: pd.DataFrame, rating_pred: pd.DataFrame, col_user: str = DEFAULT_USER_COL,
              col_item: str = DEFAULT_ITEM_COL, col_rating: str = DEFAULT_RATING_COL,
              col_prediction: str = DEFAULT_PREDICTION_COL, k: int = DEFAULT_K) -> float:
    """NDCG@k with binary gains, averaged over common users.

    ``DCG = sum over hits in the top k of 1 / log2(rank + 1)``; the ideal DCG is that of
    ``min(n_relevant, k)`` hits at ranks ``1..min(n_relevant, k)``.
    """
    stats, k = _per_user(rating_true, rating_pred, col_user, col_item, col_prediction, k)
    if not len(stats):
        return 0.0
    ideal = np.cumsum(1.0 / np.log2(np.arange(1, k + 1) + 1.0))
    idcg = ideal[np.minimum(stats["n_relevant"].to_numpy(dtype=np.int64), k) - 1]
    return float((stats["dcg"].to_numpy() / idcg).sum() / len(stats))


def map_at_k(rating_true: pd.DataFrame, rating_pred: pd.DataFrame, col_user: str = DEFAULT_USER_COL,
             col_item: str = DEFAULT_ITEM_COL, col_rating: str = DEFAULT_RATING_COL,
             col_prediction: str = DEFAULT_PREDICTION_COL, k: int = DEFAULT_K) -> float:
    """MAP@k: mean over common users of (sum of precision@rank at each hit) / min(n_relevant, k).

    For a user whose hits in the top k are at ranks ``r_1 < r_2 < ...`` the numerator is
    ``1/r_1 + 2/r_2 + ...`` (Recommenders' ``map_at_k``; its older ``map`` divides by n_relevant).
    """
    stats, k = _per_user(rating_true, rating_pred, col_user, col_item, col_prediction, k)
    if not len(stats):
        return 0.0
    denom = np.minimum(stats["n_relevant"].to_numpy(dtype=np.float64), k)
    return float((stats["ap_sum"].to_numpy() / denom).sum() / len(stats))


def hit_rate_at_k(rating_true: pd.DataFrame, rating_pred: pd.DataFrame, col_user: str = DEFAULT_USER_COL,
                  col_item: str = DEFAULT_ITEM_COL, col_rating: str = DEFAULT_RATING_COL,
                  col_prediction: str = DEFAULT_PREDICTION_COL, k: int = DEFAULT_K) -> float:
    """Hit rate (HR@k): share of common users with at least one relevant item in their top k."""
    stats, k = _per_user(rating_true, rating_pred, col_user, col_item, col_prediction, k)
    return float((stats["hits"] > 0).sum() / len(stats)) if len(stats) else 0.0


def mrr_at_k(rating_true: pd.DataFrame, rating_pred: pd.DataFrame, col_user: str = DEFAULT_USER_COL,
             col_item: str = DEFAULT_ITEM_COL, col_rating: str = DEFAULT_RATING_COL,
             col_prediction: str = DEFAULT_PREDICTION_COL, k: int = DEFAULT_K) -> float:
    """MRR@k: mean over common users of 1 / (rank of the first relevant item in the top k); 0 if none."""
    stats, k = _per_user(rating_true, rating_pred, col_user, col_item, col_prediction, k)
    return float((1.0 / stats["first_rank"]).sum() / len(stats)) if len(stats) else 0.0


# ------------------------------------------------------------------------------------------------ beyond accuracy
def _maybe_top_k(frame, col_user, col_prediction, k):
    if k is None:
        return frame
    _check_columns(frame, "rating_pred", [col_prediction])
    return top_k_items(frame, col_user=col_user, col_prediction=col_prediction, k=k)


def catalog_coverage(rating_pred: pd.DataFrame, catalog: Union[int, Iterable, pd.DataFrame],
                     col_user: str = DEFAULT_USER_COL, col_item: str = DEFAULT_ITEM_COL,
                     col_prediction: str = DEFAULT_PREDICTION_COL, k: Optional[int] = None) -> float:
    """Catalog coverage: share of the catalog recommended to at least one user.

    Args:
      rating_pred: recommendations (``col_user``, ``col_item``; ``col_prediction`` if ``k`` is set).
      catalog: the number of catalog items (int), the catalog's item ids (any iterable), or a
        DataFrame whose ``col_item`` column lists them (e.g. the training interactions, as
        Recommenders' ``catalog_coverage(train_df, reco_df)``). With ids, recommended items outside
        the catalog are not counted.
      k: if set, only each user's top-``k`` rows by ``col_prediction`` count.

    Returns:
      ``distinct recommended catalog items / catalog size``, in [0, 1] when ids are given.
    """
    _check_columns(rating_pred, "rating_pred", [col_user, col_item])
    pred = _maybe_top_k(rating_pred, col_user, col_prediction, k)
    if isinstance(catalog, (int, np.integer)) and not isinstance(catalog, bool):
        if catalog < 1:
            raise ConfigError(f"catalog size must be a positive integer, got {catalog!r}")
        return float(pred[col_item].nunique() / int(catalog))
    if isinstance(catalog, pd.DataFrame):
        _check_columns(catalog, "catalog", [col_item])
        ids = pd.Index(pd.unique(catalog[col_item]))
    elif isinstance(catalog, (str, bytes, bool)) or not isinstance(catalog, Iterable):
        raise ConfigError(f"catalog must be an item count, an iterable of item ids or a DataFrame, "
                          f"got {type(catalog).__name__}")
    else:
        ids = pd.Index(pd.unique(np.asarray(list(catalog), dtype=object)))
    if len(ids) == 0:
        raise DataError("catalog: no items")
    return float(ids.isin(pred[col_item]).sum() / len(ids))


SimilarityFn = Callable[[np.ndarray], np.ndarray]


def _feature_table(item_features, col_item: str, col_features: str):
    """(item index, unit-norm float matrix) from a mapping, a DataFrame, or a feature-column frame."""
    if isinstance(item_features, Mapping):
        ids = list(item_features.keys())
        rows = [np.asarray(item_features[i], dtype=np.float64).reshape(-1) for i in ids]
    elif isinstance(item_features, pd.DataFrame):
        if col_item in item_features.columns and col_features in item_features.columns:
            # Recommenders' item_feature_df layout: one vector per row in a "features" column.
            ids = list(item_features[col_item])
            rows = [np.asarray(v, dtype=np.float64).reshape(-1) for v in item_features[col_features]]
        else:
            # Numeric columns, one row per item, indexed by item id (e.g. multi-hot genres).
            ids = list(item_features.index)
            try:
                matrix = item_features.to_numpy(dtype=np.float64)
            except (TypeError, ValueError) as e:
                raise DataError(f"item_features: expected numeric feature columns indexed by item id, or "
                                f"columns {col_item!r} and {col_features!r}: {e}") from None
            rows = list(matrix)
    else:
        raise ConfigError(f"item_features must be a mapping item id -> vector, a DataFrame, or a similarity "
                          f"function; got {type(item_features).__name__}")
    if not rows:
        raise DataError("item_features: no items")
    dims = {len(r) for r in rows}
    if len(dims) != 1:
        raise DataError(f"item_features: vectors have different lengths {sorted(dims)}")
    matrix = np.stack(rows)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    # A zero vector has no direction: its cosine with anything is taken as 0.
    matrix = matrix / np.where(norms == 0, 1.0, norms)
    return pd.Index(ids), matrix


def pairwise_similarity(item_features, col_item: str = DEFAULT_ITEM_COL,
                        col_features: str = "features") -> SimilarityFn:
    """A function ``ids -> [n, n]`` similarity matrix from features or a similarity function.

    ``item_features`` is a mapping item id -> vector, a DataFrame (numeric columns indexed by item
    id, or ``col_item`` + ``col_features`` columns), or already a callable ``ids -> [n, n]`` array. With
    vectors the similarity is the cosine; items without a vector get similarity 0 to everything.
    Shared by :func:`intra_list_diversity` and :func:`tfrec.evaluation.mmr_rerank`.
    """
    if callable(item_features) and not isinstance(item_features, (Mapping, pd.DataFrame)):
        return item_features
    index, matrix = _feature_table(item_features, col_item, col_features)
    return _CosineSimilarity(index, matrix)


class _CosineSimilarity:
    """Cosine similarity over a fixed unit-norm feature table; unknown ids are all-zero rows."""

    def __init__(self, index: pd.Index, matrix: np.ndarray):
        self.index, self.matrix = index, matrix

    def vectors(self, ids) -> np.ndarray:
        pos = self.index.get_indexer(np.asarray(ids, dtype=object))
        out = self.matrix[np.maximum(pos, 0)].copy()
        out[pos < 0] = 0.0
        return out

    def known(self, ids) -> np.ndarray:
        return self.index.get_indexer(np.asarray(ids, dtype=object)) >= 0

    def __call__(self, ids) -> np.ndarray:
        v = self.vectors(ids)
        return v @ v.T


def intra_list_diversity(rating_pred: pd.DataFrame, item_features, col_user: str = DEFAULT_USER_COL,
                         col_item: str = DEFAULT_ITEM_COL, col_prediction: str = DEFAULT_PREDICTION_COL,
                         col_features: str = "features", k: Optional[int] = None) -> float:
    """Intra-list diversity: mean over users of ``1 - mean pairwise similarity`` of their list.

    The same quantity as Recommenders' ``diversity`` with ``item_sim_measure="item_feature_vector"``
    (Ziegler et al. 2005): for each user, the similarity is averaged over all unordered pairs of
    distinct recommended items; users with fewer than two scorable items are skipped.

    Args:
      rating_pred: recommendations (one row per user and item).
      item_features: how similar two items are; either
        * a mapping item id -> vector, a DataFrame of numeric columns indexed by item id (e.g.
          multi-hot genres or embeddings), or a DataFrame with ``col_item`` and ``col_features``
          (one vector per row, Recommenders' layout): cosine similarity. Items without a vector
          are skipped.
        * a callable ``similarity(item_ids: np.ndarray) -> [n, n] array`` (e.g. co-occurrence).
      k: if set, only each user's top-``k`` rows by ``col_prediction`` count.

    Returns:
      The mean diversity in [0, 1] for non-negative similarities (0.0 if no user qualifies).
    """
    _check_columns(rating_pred, "rating_pred", [col_user, col_item])
    pred = _maybe_top_k(rating_pred, col_user, col_prediction, k)
    pred = pred[[col_user, col_item]].drop_duplicates()
    if callable(item_features) and not isinstance(item_features, (Mapping, pd.DataFrame)):
        values = []
        for _, items in pred.groupby(col_user, sort=False)[col_item]:
            ids = items.to_numpy(dtype=object)
            n = len(ids)
            if n < 2:
                continue
            sim = np.asarray(item_features(ids), dtype=np.float64)
            if sim.shape != (n, n):
                raise DataError(f"similarity function returned shape {sim.shape} for {n} items; expected ({n}, {n})")
            values.append(1.0 - (sim.sum() - np.trace(sim)) / (n * (n - 1)))
        return float(np.mean(values)) if values else 0.0
    index, matrix = _feature_table(item_features, col_item, col_features)
    pos = index.get_indexer(pred[col_item].to_numpy(dtype=object))
    keep = pos >= 0
    users, pos = pred[col_user].to_numpy()[keep], pos[keep]
    if len(pos) == 0:
        return 0.0
    codes, _ = pd.factorize(users)
    n_users = codes.max() + 1
    # Sum of all ordered pairwise cosines of unit vectors = |sum of vectors|^2 - sum of |v|^2.
    sums = np.zeros((n_users, matrix.shape[1]))
    np.add.at(sums, codes, matrix[pos])
    counts = np.bincount(codes, minlength=n_users).astype(np.float64)
    self_sim = np.bincount(codes, weights=(matrix[pos] ** 2).sum(axis=1), minlength=n_users)
    ok = counts >= 2
    if not ok.any():
        return 0.0
    pair_sum = (sums[ok] ** 2).sum(axis=1) - self_sim[ok]
    ils = pair_sum / (counts[ok] * (counts[ok] - 1))
    return float(np.mean(1.0 - ils))


__all__ = [
    "catalog_coverage",
    "hit_rate_at_k",
    "intra_list_diversity",
    "mae",
    "map_at_k",
    "mrr_at_k",
    "ndcg_at_k",
    "pairwise_similarity",
    "precision_at_k",
    "recall_at_k",
    "rmse",
    "top_k_items",
]
