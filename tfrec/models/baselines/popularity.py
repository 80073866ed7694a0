"""Popularity: the most-interacted training items for everyone."""

from __future__ import annotations

import numpy as np

from tfrec.models.baselines.common import Baseline
from tfrec.models.baselines.sparse import as_dense


class Popularity(Baseline):
    """Recommends the most-interacted training items to everyone.

    ``score(u, i)`` = number of training interactions with item ``i`` (the same for every user;
    seen items are still excluded per user by ``recommend``).

    ``similar_items(i)`` scores item ``j`` by the number of users who interacted with both ``i`` and
    ``j`` ("people who watched i also watched"), which leans to popular items -- the natural
    popularity-flavoured neighbourhood.

    Example:
      >>> Popularity().fit(train).recommend("1", k=5)     # doctest: +SKIP
    """

    _state_names = ("_matrix",)

    def _fit(self, train, items, users) -> None:
        self._matrix = self._interaction_matrix(train)

    def _score_users(self, user_ids) -> np.ndarray:
        return np.tile(self.popularity_, (len(user_ids), 1))

    def _similar_scores(self, item_positions) -> np.ndarray:
        cols = self._matrix[:, item_positions]
        return as_dense(cols.T @ self._matrix)
