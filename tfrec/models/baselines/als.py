"""Implicit-feedback ALS (Hu, Koren & Volinsky 2008) through the ``implicit`` library (CPU).

Confidence ``c_ui = 1 + alpha * x_ui`` on the binary users x catalog matrix; ``implicit``'s
conjugate-gradient ALS alternates closed-form user and item factor updates minimising
``sum c_ui (p_ui - u_u . v_i)^2 + regularization (|U|^2 + |V|^2)``.
"""

from __future__ import annotations

import numpy as np
from sklearn.preprocessing import normalize

from tfrec.errors import ConfigError
from tfrec.models.baselines.common import Baseline, check_float, check_int


class ImplicitALS(Baseline):
    """Weighted matrix factorisation by ALS: ``scores [n_users, n_catalog] = U @ V^T``.

    Args:
      factors: latent dimension ``d`` (U is ``[n_users, d]``, V ``[n_catalog, d]``).
      regularization: L2 strength on both factor matrices (>= 0).
      alpha: confidence scale on observed interactions (> 0).
      iterations: ALS sweeps.
      seed: seeds the factor initialisation.
      num_threads: threads for ``implicit`` (1 keeps two fits with the same seed identical;
        0 = all cores).

    ``similar_items`` ranks by the cosine of item factors.

    Example:
      >>> ImplicitALS(factors=64).fit(train).recommend("1", k=10)   # doctest: +SKIP
    """

    _param_names = ("factors", "regularization", "alpha", "iterations", "seed", "num_threads")
    _state_names = ("_user_factors", "_item_factors")

    def __init__(self, factors: int = 64, regularization: float = 0.05, alpha: float = 1.0, iterations: int = 15,
                 seed: int = 0, num_threads: int = 1):
        self.factors = check_int("factors", factors, 1)
        self.regularization = check_float("regularization", regularization)
        self.alpha = check_float("alpha", alpha, strict=True)
        self.iterations = check_int("iterations", iterations, 1)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ConfigError(f"seed must be an integer, got {seed!r}")
        self.seed = int(seed)
        self.num_threads = check_int("num_threads", num_threads, 0)

    def _fit(self, train, items, users) -> None:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        x = self._interaction_matrix(train).astype(np.float32)
        x.data *= self.alpha  # implicit adds the 1: confidence = 1 + alpha * x
        # implicit warns (and slows down) when BLAS runs its own threads inside its loops.
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(factors=self.factors, regularization=self.regularization, alpha=1.0,
                                            iterations=self.iterations, random_state=self.seed,
                                            num_threads=self.num_threads, calculate_training_loss=False)
            model.fit(x, show_progress=False)
        self._user_factors = np.asarray(model.user_factors, dtype=np.float32)
        self._item_factors = np.asarray(model.item_factors, dtype=np.float32)

    def _score_users(self, user_ids) -> np.ndarray:
        return (self._user_factors[self._rows(user_ids)] @ self._item_factors.T).astype(np.float64)

    def _similar_scores(self, item_positions) -> np.ndarray:
        v = normalize(self._item_factors.astype(np.float64))
        return v[item_positions] @ v.T


__all__ = ["ImplicitALS"]
