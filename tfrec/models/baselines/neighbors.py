"""Neighbourhood models: item-based and user-based kNN over the interaction matrix."""

from __future__ import annotations

from typing import Optional

import numpy as np
from sklearn.preprocessing import normalize

from tfrec.models.baselines.common import Baseline, check_bool, check_float, check_int
from tfrec.models.baselines.recency import check_recency_decay, recency_matrix
from tfrec.models.baselines.sparse import as_dense, cosine, recent_matrix, top_n_per_row


class ItemKNN(Baseline):
    """Item-based collaborative filtering over the sparse user x item matrix.

    ``sim(i, j) = <x_i, x_j> / (|x_i| |x_j| + shrinkage)`` where ``x_i`` is item ``i``'s column
    (1/0, or the ratings when ``weighted``): cosine similarity (scikit-learn's
    ``cosine_similarity`` when ``shrinkage=0``) with the classic shrink term. ``N_k(i)`` is the
    ``n_neighbors`` items most similar to ``i``, and a user's score for a candidate ``i`` sums its
    similarity to the items of their history that are among its neighbours (Sarwar et al.)::

        score(u, i) = sum_{j in H_u, j in N_k(i)} sim(i, j)     # all users: H @ S_k^T

    ``H_u`` is the user's ``history`` most recent interactions (by timestamp; None = all of them):
    recent items predict the next one far better than old ones. ``similar_items`` ranks by the
    untruncated shrunk cosine.

    Args:
      n_neighbors: neighbours kept per candidate item (0 keeps all).
      shrinkage: >= 0; damps similarities supported by few users.
      weighted: use ratings instead of 1/0 as the matrix values.
      history: score from the user's latest ``history`` items (None = all).
      recency_decay: None, or a number in (0, 1]: the history items weigh ``decay**position``
        from the newest (:mod:`tfrec.models.baselines.recency`) instead of 1 each.

    Shapes: ``score_users(ids)`` -> ``[len(ids), n_catalog]``; ``S_k`` is ``[n_catalog, n_catalog]``
    sparse with at most ``n_neighbors`` entries per row.

    Example:
      >>> model = ItemKNN(n_neighbors=100).fit(train)       # doctest: +SKIP
      >>> model.similar_items("50", k=5)                    # doctest: +SKIP
    """

    _param_names = ("n_neighbors", "shrinkage", "weighted", "history", "recency_decay")
    _state_names = ("_matrix", "_history", "_sim")

    def __init__(self, n_neighbors: int = 400, shrinkage: float = 5.0, weighted: bool = False,
                 history: Optional[int] = 5, recency_decay: Optional[float] = None):
        self.n_neighbors = check_int("n_neighbors", n_neighbors, 0)
        self.shrinkage = check_float("shrinkage", shrinkage)
        self.weighted = check_bool("weighted", weighted)
        self.history = check_int("history", history, 1, allow_none=True)
        self.recency_decay = check_recency_decay(recency_decay)

    def _fit(self, train, items, users) -> None:
        self._matrix = self._interaction_matrix(train, self.weighted)
        rows, cols = self._positions(train)
        if self.recency_decay is None:
            self._history = recent_matrix(train, rows, cols, self._matrix.shape, self.history)
        else:
            self._history = recency_matrix(train, rows, cols, self._matrix.shape, self.recency_decay, self.history)
        sim = cosine(self._matrix, self.shrinkage)
        # Row i of `sim` holds i's neighbours; transposed so that H @ _sim sums over them.
        self._sim = (top_n_per_row(sim, self.n_neighbors) if self.n_neighbors else sim).T.tocsr()

    def _score_users(self, user_ids) -> np.ndarray:
        return as_dense(self._history[self._rows(user_ids)] @ self._sim)

    def _similar_scores(self, item_positions) -> np.ndarray:
        cols = self._matrix.T.tocsr()
        dots = as_dense(cols[item_positions] @ cols.T)
        norms = np.sqrt(np.asarray(cols.multiply(cols).sum(axis=1)).ravel())
        return dots / np.maximum(norms[item_positions][:, None] * norms[None, :] + self.shrinkage, 1e-12)


class UserKNN(Baseline):
    """User-based collaborative filtering over the sparse user x item matrix.

    ``sim(u, v) = <h_u, x_v> / (|h_u| |x_v| + shrinkage)``: the cosine between user ``u``'s
    ``history`` most recent interactions ``h_u`` (all of them when None, the classic symmetric
    user-user cosine) and user ``v``'s whole row ``x_v``. Each user keeps their ``n_neighbors``
    most similar users, and ``score(u, i) = sum_v sim(u, v) * x_vi``::

        scores [n_users, n_items] = S_k @ X

    ``similar_items`` is the plain item-item cosine over users (who interacted with both).

    Args:
      n_neighbors: neighbours kept per user (0 keeps all).
      shrinkage: >= 0; damps similarities supported by few items.
      weighted: use ratings instead of 1/0 as the matrix values.
      history: match users on their latest ``history`` items (None = all).
      recency_decay: None, or a number in (0, 1]: ``h_u`` weighs its items ``decay**position``
        from the newest instead of 1 each.

    Example:
      >>> UserKNN(n_neighbors=50).fit(train).recommend(["1", "2"], k=10)   # doctest: +SKIP
    """

    _param_names = ("n_neighbors", "shrinkage", "weighted", "history", "recency_decay")
    _state_names = ("_matrix", "_sim")

    def __init__(self, n_neighbors: int = 30, shrinkage: float = 0.0, weighted: bool = False,
                 history: Optional[int] = 5, recency_decay: Optional[float] = None):
        self.n_neighbors = check_int("n_neighbors", n_neighbors, 0)
        self.shrinkage = check_float("shrinkage", shrinkage)
        self.weighted = check_bool("weighted", weighted)
        self.history = check_int("history", history, 1, allow_none=True)
        self.recency_decay = check_recency_decay(recency_decay)

    def _fit(self, train, items, users) -> None:
        self._matrix = x = self._interaction_matrix(train, self.weighted)
        rows, cols = self._positions(train)
        if self.recency_decay is not None:
            h = x.multiply(recency_matrix(train, rows, cols, x.shape, self.recency_decay, self.history)).tocsr()
        elif self.history:
            h = x.multiply(recent_matrix(train, rows, cols, x.shape, self.history)).tocsr()
        else:
            h = x
        sim = (h @ x.T).tocsr()
        norm_h = np.sqrt(np.asarray(h.multiply(h).sum(axis=1)).ravel())
        norm_x = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
        row_of = np.repeat(np.arange(sim.shape[0]), np.diff(sim.indptr))
        sim.data = sim.data / np.maximum(norm_h[row_of] * norm_x[sim.indices] + self.shrinkage, 1e-12)
        sim.setdiag(0)  # a user is not their own neighbour
        sim.eliminate_zeros()
        self._sim = top_n_per_row(sim, self.n_neighbors) if self.n_neighbors else sim

    def _score_users(self, user_ids) -> np.ndarray:
        return as_dense(self._sim[self._rows(user_ids)] @ self._matrix)

    def _similar_scores(self, item_positions) -> np.ndarray:
        cols = normalize(self._matrix.T.tocsr().astype(np.float64))
        return as_dense(cols[item_positions] @ cols.T)
