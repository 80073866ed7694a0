"""EASE^R (Steck, WWW 2019): a closed-form item-item linear autoencoder.

    B = argmin_B ||X - X B||^2 + l2 ||B||^2  subject to diag(B) = 0
    P = (X^T X + l2 I)^-1,   B_ij = -P_ij / P_jj  (B_jj = 0)
    score(u, .) = x_u B

``X`` is the binary users x catalog matrix of the training data. ``x_u`` is the user's row:
binary by default, or recency-weighted (``recency_decay``: ``decay**position`` from the newest
item, :mod:`tfrec.models.baselines.recency`), which on next-item data is a large gain for no training cost.

``l2=None`` picks the regularisation from ``l2_grid`` on a validation split carved from the
training data (:func:`tfrec.data.validation_split`: each user's latest training interaction),
by full-ranking NDCG@10 -- never on test rows. The chosen value is ``l2_``.

Cost: one ``n_catalog x n_catalog`` Gram matrix and one inverse per fit (per grid value when
``l2`` is chosen), i.e. O(n_catalog^3); fine up to a few tens of thousands of items.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd
import scipy.linalg

from tfrec.errors import ConfigError
from tfrec.models.baselines.common import Baseline, check_float
from tfrec.models.baselines.recency import check_recency_decay, recency_matrix
from tfrec.models.baselines.sparse import as_dense

DEFAULT_L2_GRID = (50.0, 100.0, 200.0, 400.0, 800.0, 1600.0)


class EASE(Baseline):
    """EASE^R: ``scores [n_users, n_catalog] = W @ B`` with ``B`` the closed-form item weights.

    Args:
      l2: ridge strength (> 0); None = chosen from ``l2_grid`` on a validation split carved from
        the training data (NDCG@10, full ranking).
      recency_decay: None (binary user rows) or a number in (0, 1]: user row weights
        ``decay**position`` from the newest item.
      l2_grid: candidate values when ``l2`` is None.

    Shapes: ``B`` is ``[n_catalog, n_catalog]`` dense float32; ``score_users(ids)`` ->
    ``[len(ids), n_catalog]``. ``similar_items`` ranks by ``B[i, :]`` (how much item ``i`` in a
    history raises each other item).

    Example:
      >>> EASE(recency_decay=0.8).fit(train).recommend(["1"], k=10)   # doctest: +SKIP
    """

    _param_names = ("l2", "recency_decay", "l2_grid")
    _state_names = ("_B", "_rows_matrix", "_l2_chosen")

    def __init__(self, l2: Optional[float] = None, recency_decay: Optional[float] = None,
                 l2_grid: Sequence[float] = DEFAULT_L2_GRID):
        self.l2 = check_float("l2", l2, 0.0, allow_none=True, strict=True)
        self.recency_decay = check_recency_decay(recency_decay)
        try:
            grid = [check_float("each l2_grid value", v, 0.0, strict=True) for v in l2_grid]
        except TypeError:
            raise ConfigError(f"l2_grid must be a list of numbers > 0, got {l2_grid!r}") from None
        if not grid:
            raise ConfigError("l2_grid must hold at least one value")
        self.l2_grid = grid

    @property
    def l2_(self) -> float:
        """The regularisation the fitted model uses (``l2``, or the value chosen on validation)."""
        self._check_fitted()
        return float(self._l2_chosen)

    def _fit(self, train: pd.DataFrame, items, users) -> None:
        l2 = self.l2 if self.l2 is not None else self._choose_l2(train)
        rows, cols = self._positions(train)
        x = self._interaction_matrix(train)
        self._B = _ease_weights(x, l2)
        self._rows_matrix = recency_matrix(train, rows, cols, x.shape, self.recency_decay)
        self._l2_chosen = np.asarray(l2, dtype=np.float64)

    def _choose_l2(self, train: pd.DataFrame) -> float:
        from tfrec.data import validation_split
        from tfrec.evaluation import full_ranking

        fit_part, val = validation_split(train)
        if len(val) == 0 or len(self.l2_grid) == 1:
            return float(self.l2_grid[0])
        inner = EASE(l2=self.l2_grid[0], recency_decay=self.recency_decay)
        inner._remember_training_data(fit_part)
        rows, cols = inner._positions(fit_part)
        x = inner._interaction_matrix(fit_part)
        gram = _gram(x)
        inner._rows_matrix = recency_matrix(fit_part, rows, cols, x.shape, self.recency_decay)
        best, best_l2 = -1.0, float(self.l2_grid[0])
        for l2 in self.l2_grid:
            inner._B = _weights_from_gram(gram, l2)
            score = full_ranking(inner, fit_part, val, k=10)["ndcg@10"]
            if score > best + 1e-12:  # ties keep the smaller value (grid order)
                best, best_l2 = score, float(l2)
        return best_l2

    def _score_users(self, user_ids) -> np.ndarray:
        return as_dense(self._rows_matrix[self._rows(user_ids)] @ self._B)

    def _similar_scores(self, item_positions) -> np.ndarray:
        return np.asarray(self._B[item_positions], dtype=np.float64)


def _gram(x) -> np.ndarray:
    return np.asarray((x.T @ x).toarray(), dtype=np.float64)


def _weights_from_gram(gram: np.ndarray, l2: float) -> np.ndarray:
    g = gram.copy()
    g[np.diag_indices_from(g)] += l2
    # G + l2 I is symmetric positive definite: a Cholesky-based inverse is ~2x a general one.
    p = _spd_inverse(g)
    b = -p / np.diag(p)[None, :]
    b[np.diag_indices_from(b)] = 0.0
    return b.astype(np.float32)


def _spd_inverse(g: np.ndarray) -> np.ndarray:
    c, low = scipy.linalg.cho_factor(g, overwrite_a=True, check_finite=False)
    return scipy.linalg.cho_solve((c, low), np.eye(len(g)), overwrite_b=True, check_finite=False)


def _ease_weights(x, l2: float) -> np.ndarray:
    return _weights_from_gram(_gram(x), l2)


__all__ = ["EASE", "DEFAULT_L2_GRID"]
