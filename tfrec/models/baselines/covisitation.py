"""Co-visitation: items consumed close together in users' sequences."""

from __future__ import annotations

from typing import Optional

import numpy as np
import scipy.sparse as sp

from tfrec.errors import DataError
from tfrec.models.baselines.common import Baseline, check_bool, check_float, check_int
from tfrec.models.baselines.sparse import as_dense, recent_matrix


class CoVisitation(Baseline):
    """Item-item co-visitation counts within users' time-ordered histories.

    Each user's interactions are ordered by ``timestamp`` (ties by item); two interactions of the
    same user form a pair when they are at most ``window`` positions apart (None: anywhere in the
    history), at most ``time_window`` seconds apart (None: no limit) and, with ``session_gap``, in
    the same session (a session ends where consecutive interactions are more than ``session_gap``
    seconds apart). A pair at distance ``d`` adds ``1 / d`` to ``C[a, b]`` and ``C[b, a]`` when
    ``decay`` is true, else 1. A user's score for item ``i`` sums ``C[j, i]`` over the ``history``
    most recent items ``j`` they interacted with (None: all)::

        scores [n_users, n_items] = H @ C   (+ a 1e-6 popularity tie-breaker)

    ``similar_items(i)`` ranks by ``C[i]``.

    Args:
      window: max distance in positions (None = whole history).
      time_window: max distance in seconds (None = unlimited); needs a ``timestamp`` column.
      session_gap: seconds of inactivity that end a session (None = one session per user).
      history: recent items a user is scored from (None = all).
      decay: weight pairs by 1 / distance.

    Example:
      >>> CoVisitation(window=10).fit(train).recommend("1", k=10)   # doctest: +SKIP
    """

    _param_names = ("window", "time_window", "session_gap", "history", "decay")
    _state_names = ("_co", "_history")

    def __init__(self, window: Optional[int] = 10, time_window: Optional[float] = None,
                 session_gap: Optional[float] = None, history: Optional[int] = 5, decay: bool = True):
        self.window = check_int("window", window, 1, allow_none=True)
        self.time_window = check_float("time_window", time_window, allow_none=True)
        self.session_gap = check_float("session_gap", session_gap, allow_none=True)
        self.history = check_int("history", history, 1, allow_none=True)
        self.decay = check_bool("decay", decay)

    def _fit(self, train, items, users) -> None:
        timed = self.time_window is not None or self.session_gap is not None
        if timed and "timestamp" not in train.columns:
            raise DataError("CoVisitation: time_window/session_gap need a 'timestamp' column in train")
        rows, cols = self._positions(train)
        ts = train["timestamp"].to_numpy(dtype=np.float64) if "timestamp" in train.columns else np.zeros(len(rows))
        order = np.lexsort((cols, ts, rows))
        u, i, t = rows[order], cols[order], ts[order]
        # Session id per interaction: a new one at each user change or (optionally) a long gap.
        new = np.r_[True, u[1:] != u[:-1]]
        if self.session_gap is not None:
            new[1:] |= (t[1:] - t[:-1]) > self.session_gap
        session = np.cumsum(new)
        n = len(self.catalog_)
        if self.window is None and self.time_window is None and not self.decay:
            # Every pair within a session counts 1: a sessions x items product, no loop.
            b = sp.csr_matrix((np.ones(len(i)), (session - 1, i)), shape=(int(session[-1]), n))
            co = (b.T @ b).tocsr()
            # (Repeated items count once per pair of copies, as in the loop; self-pairs are dropped.)
            co.setdiag(0)
            co.eliminate_zeros()
            self._co = co
            self._history = recent_matrix(train, rows, cols, (len(self.user_index_), n), self.history)
            return
        pair_rows, pair_cols, pair_vals = [], [], []
        max_d = self.window if self.window is not None else len(u)
        for d in range(1, max_d + 1):
            ok = session[d:] == session[:-d]
            if self.time_window is not None:
                ok &= (t[d:] - t[:-d]) <= self.time_window
            if not ok.any():
                # Sessions are contiguous and time-sorted: nothing pairs at d, so nothing beyond d.
                break
            a, b = i[:-d][ok], i[d:][ok]
            w = np.full(len(a), 1.0 / d if self.decay else 1.0)
            pair_rows += [a, b]
            pair_cols += [b, a]
            pair_vals += [w, w]
        if pair_rows:
            co = sp.csr_matrix((np.concatenate(pair_vals), (np.concatenate(pair_rows), np.concatenate(pair_cols))),
                               shape=(n, n))
        else:
            co = sp.csr_matrix((n, n))
        co.sum_duplicates()
        co.setdiag(0)  # an item re-rated later is not its own neighbour
        co.eliminate_zeros()
        self._co = co
        self._history = recent_matrix(train, rows, cols, (len(self.user_index_), n), self.history)

    def _score_users(self, user_ids) -> np.ndarray:
        scores = as_dense(self._history[self._rows(user_ids)] @ self._co)
        # Items never co-visited with the history still get a (tiny) popularity order.
        return scores + 1e-6 * self.popularity_ / max(self.popularity_.max(), 1.0)

    def _similar_scores(self, item_positions) -> np.ndarray:
        return as_dense(self._co[item_positions])
