"""Classic baselines (seed 003): popularity, item/user kNN, TF-IDF content, co-visitation.

All follow the recommender contract of :mod:`tfrec.models.base` and need no TensorFlow. They are
cheap and deterministic, so a run folder stores their training split and ``load_run`` refits them.

Example:
  >>> from tfrec.models.baselines import ItemKNN
  >>> model = ItemKNN(n_neighbors=50).fit(train)            # doctest: +SKIP
  >>> model.recommend(["1", "2"], k=10)                      # doctest: +SKIP
  >>> model.similar_items(["50"], k=5)                       # doctest: +SKIP
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from tfrec.errors import ConfigError, DataError
from tfrec.models.base import RecommenderMixin, validate_ratings_frame


def _check_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_float(name: str, value, minimum: float = 0.0) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number >= {minimum}, got {value!r}") from None
    if not v >= minimum:
        raise ConfigError(f"{name} must be a number >= {minimum}, got {value!r}")
    return v


class _Baseline(RecommenderMixin):
    """Shared fit plumbing: the sparse user x item matrix over the training catalog."""

    def get_params(self) -> dict:
        return {k: getattr(self, k) for k in self._param_names}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._param_names)
        return f"{type(self).__name__}({args})"

    def _interaction_matrix(self, train: pd.DataFrame, weighted: bool = False) -> sp.csr_matrix:
        users = train["user_id"].astype(str).to_numpy(dtype=object)
        rows = np.fromiter((self.user_index_[u] for u in users), dtype=np.int64, count=len(users))
        cols = np.fromiter((self.item_index_[i] for i in train["item_id"].astype(str)), dtype=np.int64,
                           count=len(users))
        vals = train["rating"].to_numpy(dtype=np.float64) if weighted and "rating" in train else np.ones(len(users))
        m = sp.csr_matrix((vals, (rows, cols)), shape=(len(self.user_index_), len(self.catalog_)))
        m.sum_duplicates()
        if not weighted:
            m.data[:] = 1.0
        return m

    def _rows(self, user_ids) -> np.ndarray:
        return np.fromiter((self.user_index_[u] for u in user_ids), dtype=np.int64, count=len(user_ids))

    def fit(self, train: pd.DataFrame, items: Optional[pd.DataFrame] = None, users: Optional[pd.DataFrame] = None):
        validate_ratings_frame(train)
        self._remember_training_data(train)
        self._fit(train, items, users)
        return self

    def _fit(self, train, items, users) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class Popularity(_Baseline):
    """Recommends the items with the most training interactions to everyone.

    ``similar_items`` returns the items most often co-rated with the given item (a popularity-
    weighted neighbourhood), so the verb is meaningful even for this baseline.
    """

    _param_names = ()

    def _fit(self, train, items, users) -> None:
        self._matrix = self._interaction_matrix(train)

    def _score_users(self, user_ids) -> np.ndarray:
        return np.tile(self.popularity_, (len(user_ids), 1))

    def _similar_scores(self, item_positions) -> np.ndarray:
        cols = self._matrix[:, item_positions]
        return np.asarray((cols.T @ self._matrix).todense(), dtype=np.float64)


class ItemKNN(_Baseline):
    """Item-based collaborative filtering: cosine similarity over the user x item matrix.

    score(u, i) = sum over the user's items j of sim(i, j), with each item keeping only its
    ``n_neighbors`` most similar items and similarities shrunk by ``co / (co + shrinkage)``.

    Args:
      n_neighbors: neighbourhood size per item (0 keeps all).
      shrinkage: shrinks similarities of rarely co-rated pairs.
      weighted: use ratings as weights instead of binary interactions.
    """

    _param_names = ("n_neighbors", "shrinkage", "weighted")

    def __init__(self, n_neighbors: int = 100, shrinkage: float = 10.0, weighted: bool = False):
        self.n_neighbors = _check_int("n_neighbors", n_neighbors, 0)
        self.shrinkage = _check_float("shrinkage", shrinkage)
        self.weighted = bool(weighted)

    def _fit(self, train, items, users) -> None:
        self._matrix = self._interaction_matrix(train, self.weighted)
        self._sim = _knn_similarity(self._matrix, self.n_neighbors, self.shrinkage)

    def _score_users(self, user_ids) -> np.ndarray:
        return np.asarray((self._matrix[self._rows(user_ids)] @ self._sim).todense(), dtype=np.float64)

    def _similar_scores(self, item_positions) -> np.ndarray:
        return self._full_sim[item_positions]

    @property
    def _full_sim(self) -> np.ndarray:
        if not hasattr(self, "_dense_sim"):
            self._dense_sim = _knn_similarity(self._matrix, 0, self.shrinkage).toarray()
        return self._dense_sim


class UserKNN(_Baseline):
    """User-based collaborative filtering: score(u, i) = sum of sim(u, v) over neighbours v who
    rated i, with the ``n_neighbors`` most similar users (cosine, shrunk like :class:`ItemKNN`)."""

    _param_names = ("n_neighbors", "shrinkage", "weighted")

    def __init__(self, n_neighbors: int = 50, shrinkage: float = 10.0, weighted: bool = False):
        self.n_neighbors = _check_int("n_neighbors", n_neighbors, 0)
        self.shrinkage = _check_float("shrinkage", shrinkage)
        self.weighted = bool(weighted)

    def _fit(self, train, items, users) -> None:
        self._matrix = self._interaction_matrix(train, self.weighted)
        self._sim = _knn_similarity(self._matrix.T.tocsr(), self.n_neighbors, self.shrinkage)

    def _score_users(self, user_ids) -> np.ndarray:
        return np.asarray((self._sim[self._rows(user_ids)] @ self._matrix).todense(), dtype=np.float64)

    def _similar_scores(self, item_positions) -> np.ndarray:
        norm = normalize(self._matrix.T.tocsr())
        return np.asarray((norm[item_positions] @ norm.T).todense(), dtype=np.float64)


class ContentTFIDF(_Baseline):
    """Content-based: scikit-learn TF-IDF over each item's genres and title words.

    A user's profile is the rating-weighted mean of the TF-IDF rows of their training items
    (ratings centred on the user's mean, so disliked items push away); scores are cosine
    similarities between the profile and every item. Needs ``items`` in ``fit``.
    """

    _param_names = ("genre_weight", "min_df")

    def __init__(self, genre_weight: int = 3, min_df: int = 2):
        self.genre_weight = _check_int("genre_weight", genre_weight, 0)
        self.min_df = _check_int("min_df", min_df, 1)

    def _fit(self, train, items, users) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        if items is None:
            raise DataError("ContentTFIDF needs the items table (titles and genres): fit(train, items=...)")
        table = items.assign(item_id=items["item_id"].astype(str)).set_index("item_id")
        docs = []
        for iid in self.catalog_:
            if iid in table.index:
                row = table.loc[iid]
                genre_tokens = " ".join(("genre_" + g.replace(" ", "_").replace("-", "_").replace("'", "")) for g in row["genres"])
                title = str(row["title"]).rsplit("(", 1)[0]
                docs.append(" ".join([genre_tokens] * self.genre_weight) + " " + title)
            else:
                docs.append("")
        vec = TfidfVectorizer(min_df=min(self.min_df, max(len(docs) - 1, 1)), token_pattern=r"(?u)\b\w[\w']+\b")
        self._tfidf = normalize(vec.fit_transform(docs).tocsr())
        m = self._interaction_matrix(train, weighted=True).tocsr().astype(np.float64)
        if "rating" in train:
            # Centre each user's ratings so a 1-star rating counts against similar items.
            counts = np.diff(m.indptr)
            sums = np.asarray(m.sum(axis=1)).ravel()
            means = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
            m.data = m.data - np.repeat(means, counts) + 0.5
        self._profiles = normalize(m @ self._tfidf)

    def _score_users(self, user_ids) -> np.ndarray:
        return np.asarray((self._profiles[self._rows(user_ids)] @ self._tfidf.T).todense(), dtype=np.float64)

    def _similar_scores(self, item_positions) -> np.ndarray:
        return np.asarray((self._tfidf[item_positions] @ self._tfidf.T).todense(), dtype=np.float64)


class CoVisitation(_Baseline):
    """Item-to-item co-visitation: how often two items appear close together in users' histories.

    Each user's interactions are ordered by timestamp; pairs within ``window`` positions of each
    other count ``1 / distance`` (weighting by distance when ``decay`` is true). A user's score
    for an item is the sum of co-visitation with the ``history`` most recent items they rated.
    """

    _param_names = ("window", "history", "decay")

    def __init__(self, window: int = 10, history: int = 30, decay: bool = True):
        self.window = _check_int("window", window, 1)
        self.history = _check_int("history", history, 1)
        self.decay = bool(decay)

    def _fit(self, train, items, users) -> None:
        ts = train["timestamp"].to_numpy() if "timestamp" in train else np.arange(len(train))
        frame = pd.DataFrame({"u": train["user_id"].astype(str).to_numpy(),
                              "i": [self.item_index_[i] for i in train["item_id"].astype(str)], "t": ts})
        frame = frame.sort_values(["u", "t", "i"], kind="mergesort")
        u = frame["u"].to_numpy()
        i = frame["i"].to_numpy()
        rows, cols, vals = [], [], []
        for d in range(1, self.window + 1):
            same = u[d:] == u[:-d]
            a, b = i[:-d][same], i[d:][same]
            w = np.full(len(a), 1.0 / d if self.decay else 1.0)
            rows += [a, b]
            cols += [b, a]
            vals += [w, w]
        n = len(self.catalog_)
        co = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
        co.sum_duplicates()
        co.setdiag(0)
        co.eliminate_zeros()
        self._co = co
        # Each user's most recent items (the "history" their next item is predicted from).
        recent = frame.groupby("u", sort=False).tail(self.history)
        r_rows = np.fromiter((self.user_index_[x] for x in recent["u"]), dtype=np.int64, count=len(recent))
        self._recent = sp.csr_matrix((np.ones(len(recent)), (r_rows, recent["i"].to_numpy())),
                                     shape=(len(self.user_index_), n))

    def _score_users(self, user_ids) -> np.ndarray:
        scores = np.asarray((self._recent[self._rows(user_ids)] @ self._co).todense(), dtype=np.float64)
        # Break ties (and fill items never co-visited) with a tiny popularity prior.
        return scores + 1e-6 * self.popularity_ / max(self.popularity_.max(), 1.0)

    def _similar_scores(self, item_positions) -> np.ndarray:
        return np.asarray(self._co[item_positions].todense(), dtype=np.float64)


def _knn_similarity(matrix: sp.csr_matrix, n_neighbors: int, shrinkage: float) -> sp.csr_matrix:
    """Column-column cosine similarity of ``matrix`` (shrunk, top-n per row, no self-similarity)."""
    norm = normalize(matrix.T.tocsr().astype(np.float64))
    sim = (norm @ norm.T).tocsr()
    if shrinkage > 0:
        binary = matrix.copy()
        binary.data[:] = 1.0
        co = (binary.T @ binary).tocsr()
        sim = sim.multiply(_shrink(co, shrinkage)).tocsr()
    sim.setdiag(0)
    sim.eliminate_zeros()
    if n_neighbors and n_neighbors < sim.shape[1]:
        sim = _top_n_per_row(sim, n_neighbors)
    # Score(u, i) sums sim(i, j) over the user's items j: use the transpose of the neighbour lists.
    return sim.T.tocsr()


def _shrink(co: sp.csr_matrix, shrinkage: float) -> sp.csr_matrix:
    out = co.copy().astype(np.float64)
    out.data = out.data / (out.data + shrinkage)
    return out


def _top_n_per_row(m: sp.csr_matrix, n: int) -> sp.csr_matrix:
    m = m.tocsr()
    indptr, indices, data = [0], [], []
    for r in range(m.shape[0]):
        start, end = m.indptr[r], m.indptr[r + 1]
        vals = m.data[start:end]
        cols = m.indices[start:end]
        if len(vals) > n:
            keep = np.argpartition(-vals, n - 1)[:n]
            vals, cols = vals[keep], cols[keep]
        indices.append(cols)
        data.append(vals)
        indptr.append(indptr[-1] + len(vals))
    return sp.csr_matrix((np.concatenate(data) if data else [], np.concatenate(indices) if indices else [], indptr),
                         shape=m.shape)
