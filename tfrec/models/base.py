"""The recommender contract every model that can rank follows.

``fit(train)`` -> self; ``recommend(user_ids, k=10, exclude_seen=True)`` -> DataFrame with columns
``user_id, item_id, score, rank`` (rank 1 = best; k rows per user); ``similar_items(item_ids, k=10)``
-> DataFrame with columns ``item_id, similar_item_id, score, rank``.

Subclasses implement three small hooks and inherit the rest (exclusions, top-k, unknown users,
DataFrame shape), so every model behaves the same at the boundary:

* ``_fit(train, items, users)``: learn from the ratings DataFrame (side tables may be None).
* ``_score_users(user_ids)``: float array ``[n_users, n_catalog]`` of scores over
  ``self.catalog_`` for *known* user ids (higher is better).
* ``_similar_scores(item_index)``: float array ``[n, n_catalog]`` of item-item similarities.

Unknown users (not in the training data) are served the most popular training items -- a
documented fallback, never an error. Models with a feature path (TwoTower) override
``_score_unknown_users`` to use demographics instead.
"""

from __future__ import annotations

from typing import Iterable, Optional

import numpy as np
import pandas as pd

from tfrec.errors import ConfigError, DataError

RECOMMEND_COLUMNS = ["user_id", "item_id", "score", "rank"]
SIMILAR_COLUMNS = ["item_id", "similar_item_id", "score", "rank"]


def validate_ratings_frame(train: pd.DataFrame, *, name: str = "train", need_rating: bool = False) -> None:
    """Raise DataError unless ``train`` is a DataFrame with the rating-log columns."""
    if not isinstance(train, pd.DataFrame):
        raise DataError(f"{name}: expected a pandas DataFrame of ratings, got {type(train).__name__}")
    needed = ["user_id", "item_id"] + (["rating"] if need_rating else [])
    missing = [c for c in needed if c not in train.columns]
    if missing == ["rating"]:
        raise DataError(f"{name}: no 'rating' column: this model predicts ratings and cannot train on implicit "
                        "feedback (a schema.json with \"rating\": null); use a ranking model such as two_tower, "
                        "item_knn or popularity, or name the rating column in schema.json")
    if missing:
        raise DataError(f"{name}: missing column(s) {missing}; expected user_id, item_id, rating, timestamp")
    if len(train) == 0:
        raise DataError(f"{name}: the ratings DataFrame is empty")


class RecommenderMixin:
    """Implements the recommender verbs on top of the ``_score_users`` hook.

    State set by :meth:`_remember_training_data` (call it from ``fit``):
      catalog_: np.ndarray of item id strings, the items a model can recommend.
      user_index_: dict user id -> row in the training data.
      seen_: dict user id -> np.ndarray of catalog positions rated in training.
      popularity_: np.ndarray [n_catalog] of training interaction counts.
    """

    catalog_: np.ndarray
    user_index_: dict
    item_index_: dict
    seen_: dict
    popularity_: np.ndarray

    # -- state ---------------------------------------------------------------------------------
    def _remember_training_data(self, train: pd.DataFrame, catalog: Optional[Iterable[str]] = None) -> None:
        users = train["user_id"].astype(str).to_numpy(dtype=object)
        items = train["item_id"].astype(str).to_numpy(dtype=object)
        if catalog is None:
            catalog = np.sort(pd.unique(items))  # np.unique(items), without sorting every row
        self.catalog_ = np.asarray(list(catalog), dtype=object)
        self.item_index_ = {it: i for i, it in enumerate(self.catalog_)}
        index = pd.Index(self.catalog_, dtype=object)
        if index.is_unique:  # vectorised; a catalog with repeats keeps the dict's last-position rule
            pos = index.get_indexer(pd.Index(items, dtype=object)).astype(np.int64)
        else:
            pos = np.fromiter((self.item_index_.get(it, -1) for it in items), dtype=np.int64, count=len(items))
        keep = pos >= 0
        # Each user's sorted, distinct catalog positions, users in order of first appearance: one
        # sort of all (user, position) pairs instead of a groupby with a np.unique per user.
        codes, seen_users = pd.factorize(pd.Index(users[keep], dtype=object), sort=False)
        order = np.lexsort((pos[keep], codes))
        u, p = codes[order], pos[keep][order]
        new = np.ones(len(u), dtype=bool)
        new[1:] = (u[1:] != u[:-1]) | (p[1:] != p[:-1])
        u, p = u[new], p[new]
        bounds = np.searchsorted(u, np.arange(len(seen_users) + 1))
        self.seen_ = {user: p[bounds[j]:bounds[j + 1]] for j, user in enumerate(seen_users)}
        self.user_index_ = {u: i for i, u in enumerate(self.seen_)}
        self.popularity_ = np.bincount(pos[keep], minlength=len(self.catalog_)).astype(np.float64)

    def _check_fitted(self) -> None:
        if not hasattr(self, "catalog_"):
            raise ConfigError(f"{type(self).__name__} is not fitted yet: call fit(train) first")

    # -- hooks -----------------------------------------------------------------------------------
    def _score_users(self, user_ids: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _score_unknown_users(self, user_ids: np.ndarray) -> np.ndarray:
        """Scores for users absent from training: item popularity (the documented fallback)."""
        return np.tile(self.popularity_, (len(user_ids), 1))

    def _similar_scores(self, item_positions: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError(f"{type(self).__name__} does not support similar_items")

    # -- public verbs ----------------------------------------------------------------------------
    def score_users(self, user_ids) -> np.ndarray:
        """Scores ``[len(user_ids), len(catalog_)]`` for any user ids (unknown ones via fallback)."""
        self._check_fitted()
        ids = np.asarray([str(u) for u in _as_list(user_ids)], dtype=object)
        scores = np.empty((len(ids), len(self.catalog_)), dtype=np.float64)
        known = np.array([u in self.user_index_ for u in ids], dtype=bool)
        if known.any():
            scores[known] = self._score_users(ids[known])
        if (~known).any():
            scores[~known] = self._score_unknown_users(ids[~known])
        return scores

    def recommend(self, user_ids, k: int = 10, exclude_seen: bool = True) -> pd.DataFrame:
        """Top-``k`` items per user as a DataFrame (user_id, item_id, score, rank).

        Args:
          user_ids: one id or an iterable of ids (str or int; compared as strings).
          k: items per user (fewer only if the catalog, minus exclusions, is smaller).
          exclude_seen: drop items the user rated in the training data.
        """
        k = _check_k(k)
        ids = [str(u) for u in _as_list(user_ids)]
        if not ids:
            return pd.DataFrame(columns=RECOMMEND_COLUMNS)
        scores = self.score_users(ids)
        if exclude_seen:
            for row, u in enumerate(ids):
                seen = self.seen_.get(u)
                if seen is not None and len(seen):
                    scores[row, seen] = -np.inf
        return _top_k_frame(ids, scores, self.catalog_, k, key="user_id", other="item_id")

    def similar_items(self, item_ids, k: int = 10) -> pd.DataFrame:
        """The ``k`` most similar catalog items to each item (the item itself excluded).

        Returns a DataFrame (item_id, similar_item_id, score, rank). Unknown item ids raise
        DataError naming them.
        """
        self._check_fitted()
        k = _check_k(k)
        ids = [str(i) for i in _as_list(item_ids)]
        unknown = [i for i in ids if i not in self.item_index_]
        if unknown:
            raise DataError(f"similar_items: unknown item_id(s) {unknown[:5]} (not in the training catalog)")
        if not ids:
            return pd.DataFrame(columns=SIMILAR_COLUMNS)
        pos = np.array([self.item_index_[i] for i in ids], dtype=np.int64)
        scores = np.array(self._similar_scores(pos), dtype=np.float64, copy=True)
        scores[np.arange(len(pos)), pos] = -np.inf
        return _top_k_frame(ids, scores, self.catalog_, k, key="item_id", other="similar_item_id")


def _as_list(values) -> list:
    if isinstance(values, (str, bytes, int, np.integer)):
        return [values]
    return list(values)


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _top_k_frame(keys, scores: np.ndarray, catalog: np.ndarray, k: int, *, key: str, other: str) -> pd.DataFrame:
    n = scores.shape[1]
    kk = min(k, n)
    part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk] if kk < n else np.tile(np.arange(n), (len(keys), 1))
    rows = []
    for r, kid in enumerate(keys):
        cand = part[r]
        s = scores[r, cand]
        # Stable tie-break by catalog position so results are deterministic.
        order = np.lexsort((cand, -s))
        cand, s = cand[order], s[order]
        finite = np.isfinite(s)
        cand, s = cand[finite], s[finite]
        for rank, (c, sc) in enumerate(zip(cand, s), start=1):
            rows.append((kid, catalog[c], float(sc), rank))
    return pd.DataFrame(rows, columns=[key, other, "score", "rank"])
