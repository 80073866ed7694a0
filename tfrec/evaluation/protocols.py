"""Evaluation protocols for recommenders that follow tfrec's contract (``tfrec/models/base.py``).

A model needs ``catalog_`` (the item ids it can rank) and ``score_users(user_ids) ->
[n_users, n_catalog]`` (higher is better; unknown users are scored by the model's own fallback,
popularity or, for the two-tower model, demographics).

* :func:`full_ranking` -- rank every catalog item for each test user with the user's training
  items excluded (with a leave-last-out split: "leave-last-out full ranking"). The honest
  protocol; its top-k lists are exactly what ``model.recommend(users, k, exclude_seen=True)``
  serves when ``train`` is the model's training data (ties broken by catalog position).
* :func:`sampled_ranking` -- the NCF protocol: each test (user, item) ranked against
  ``n_negatives`` (default 100) seeded random catalog items the user never interacted with.
  Much easier than full ranking; reported because the literature (and seed 001's HR@10 > 0.65
  target) uses it.
* :func:`sparse_users`, :func:`new_users`, :func:`cold_start_slices` -- cold-start slices: users
  with few training interactions, and users absent from training (nothing is excluded for them;
  the model's unknown-user path scores them).

Every protocol builds top-k prediction frames and scores them with the metric functions of
:mod:`tfrec.evaluation.metrics` (one implementation of each metric), returning exactly
``{"hr@K", "ndcg@K", "map@K", "recall@K", "precision@K", "mrr", "coverage", "n_users"}`` with the
actual cut-off ``K`` in the names; ``mrr`` is MRR@K. A test item that is not in the model's
catalog cannot be ranked: it stays in the user's relevant set and counts as a miss.
"""

from __future__ import annotations

import sys
import time
from typing import Iterable, Optional

import numpy as np
import pandas as pd

from tfrec.errors import ConfigError, DataError
from tfrec.evaluation import metrics as M

_PRED = "prediction"


# ------------------------------------------------------------------------------------------------ helpers
def _check_model(model) -> np.ndarray:
    if not callable(getattr(model, "score_users", None)):
        raise ConfigError(f"{type(model).__name__} is not a recommender: it has no score_users(user_ids)")
    catalog = getattr(model, "catalog_", None)
    if catalog is None:
        raise ConfigError(f"{type(model).__name__} is not fitted yet (no catalog_): call fit(train) first")
    catalog = np.asarray([str(i) for i in catalog], dtype=object)
    if len(catalog) == 0:
        raise ConfigError(f"{type(model).__name__}.catalog_ is empty: nothing to rank")
    return catalog


def _pairs(frame, name: str, *, allow_empty: bool) -> pd.DataFrame:
    M._check_columns(frame, name, ["user_id", "item_id"])
    if not allow_empty and len(frame) == 0:
        raise DataError(f"{name}: no interactions to evaluate")
    return pd.DataFrame({"user_id": frame["user_id"].astype(str).to_numpy(dtype=object),
                         "item_id": frame["item_id"].astype(str).to_numpy(dtype=object)})


def _check_positive(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _select_users(truth: pd.DataFrame, users, protocol: str) -> pd.DataFrame:
    if users is not None:
        wanted = [str(u) for u in ([users] if isinstance(users, (str, bytes, int, np.integer)) else users)]
        truth = truth[truth["user_id"].isin(wanted)]
    if truth.empty:
        raise DataError(f"{protocol}: none of the requested users has test interactions")
    return truth


def _scores(model, user_ids, n_catalog: int) -> np.ndarray:
    scores = np.array(model.score_users(list(user_ids)), dtype=np.float64)
    if scores.shape != (len(user_ids), n_catalog):
        raise ConfigError(f"{type(model).__name__}.score_users returned shape {scores.shape} for "
                          f"{len(user_ids)} users; expected ({len(user_ids)}, {n_catalog}), one column per catalog_ "
                          f"item")
    scores[np.isnan(scores)] = -np.inf  # an unscorable item is never recommended
    return scores


class _Progress:
    """One self-overwriting stderr line: ``[tfrec] full ranking: 512/943 users (1.2 s)``."""

    def __init__(self, verbose: bool, label: str, total: int, unit: str = "users"):
        self.verbose, self.label, self.total, self.unit = bool(verbose), label, total, unit
        self.t0 = time.perf_counter()

    def __call__(self, done: int) -> None:
        if self.verbose:
            end = "\n" if done >= self.total else ""
            print(f"\r[tfrec] {self.label}: {done}/{self.total} {self.unit} ({time.perf_counter() - self.t0:.1f} s)",
                  end=end, file=sys.stderr, flush=True)


def _top_k_positions(scores: np.ndarray, k: int) -> tuple:
    """Per row, the catalog positions of the ``k`` best scores, best first, ties by position.

    Returns (positions [rows, k'], scores [rows, k']) with ``k' = min(k, n_catalog)``; entries with
    score ``-inf`` (excluded) are left for the caller to drop.
    """
    rows, n = scores.shape
    kk = min(k, n)
    if kk < n:
        part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        kth = np.take_along_axis(scores, part, axis=1).min(axis=1, keepdims=True)
        above = scores > kth
        at = scores == kth
        # argpartition picks arbitrary items among those tied with the k-th score; take the
        # lowest catalog positions instead so the result is the one recommend() serves.
        room = kk - above.sum(axis=1, keepdims=True)
        chosen = above | (at & (np.cumsum(at, axis=1) <= room))
        cols = np.nonzero(chosen)[1].reshape(rows, kk)  # ascending position within each row
    else:
        cols = np.tile(np.arange(n), (rows, 1))
    top = np.take_along_axis(scores, cols, axis=1)
    order = np.argsort(-top, axis=1, kind="stable")
    return np.take_along_axis(cols, order, axis=1), np.take_along_axis(top, order, axis=1)


def _report(truth: pd.DataFrame, top: pd.DataFrame, k: int, catalog_size: int, n_users: int,
            n_queries: int) -> dict:
    """The protocol dict from a truth frame and a top-k prediction frame (metric functions only).

    ``n_queries`` is the number of rankings evaluated (users, or pairs for sampled ranking). The
    metric functions average over users present in both frames; a query whose list came out empty
    (every item excluded or scored -inf) is added back as a zero so it cannot inflate the scores.
    """
    kw = dict(col_user="user_id", col_item="item_id", col_prediction=_PRED, k=k)
    empty = top.empty
    share = top["user_id"].nunique() / n_queries if n_queries else 0.0
    report = {
        f"hr@{k}": 0.0 if empty else M.hit_rate_at_k(truth, top, **kw),
        f"ndcg@{k}": 0.0 if empty else M.ndcg_at_k(truth, top, **kw),
        f"map@{k}": 0.0 if empty else M.map_at_k(truth, top, **kw),
        f"recall@{k}": 0.0 if empty else M.recall_at_k(truth, top, **kw),
        f"precision@{k}": 0.0 if empty else M.precision_at_k(truth, top, **kw),
        "mrr": 0.0 if empty else M.mrr_at_k(truth, top, **kw),
        "coverage": 0.0 if empty else M.catalog_coverage(top, catalog_size, col_user="user_id", col_item="item_id"),
        "n_users": int(n_users),
    }
    if share < 1.0:
        for key in report:
            if key not in ("coverage", "n_users"):
                report[key] *= share
    return report


# ------------------------------------------------------------------------------------------------ full ranking
def full_ranking_predictions(model, train: pd.DataFrame, user_ids, k: int = 10, batch_size: int = 256,
                             verbose: bool = False) -> pd.DataFrame:
    """Top-``k`` over the whole catalog for each user, the user's ``train`` items excluded.

    Returns a DataFrame (user_id, item_id, prediction, rank), best first. Users absent from
    ``train`` have nothing excluded. Ties are broken by catalog position. ``train=None`` excludes
    the items in the model's own ``seen_`` state instead (what ``recommend(exclude_seen=True)``
    removes; a model trained from prepared shards has no ratings frame). Memory is one batch of
    ``batch_size x n_catalog`` scores plus the top-k lists, whatever the number of users.
    """
    catalog = _check_model(model)
    k = M._check_k(k)
    batch_size = _check_positive(batch_size, "batch_size")
    user_ids = np.asarray(pd.unique(np.asarray([str(u) for u in user_ids], dtype=object)), dtype=object)
    if train is None:
        seen_state = getattr(model, "seen_", None)
        if seen_state is None:
            raise ConfigError(f"{type(model).__name__} has no seen_ state: pass train= to exclude training items")
        parts = [(row, seen_state.get(u)) for row, u in enumerate(user_ids)]
        parts = [(row, p) for row, p in parts if p is not None and len(p)]
        rows = np.concatenate([np.full(len(p), row, dtype=np.int64) for row, p in parts]) if parts else \
            np.zeros(0, np.int64)
        cols = np.concatenate([np.asarray(p, dtype=np.int64) for _, p in parts]) if parts else np.zeros(0, np.int64)
    else:
        seen = _pairs(train, "train", allow_empty=True)
        # Seen (row, catalog position) pairs, sorted by row so each batch takes a contiguous slice.
        rows = pd.Index(user_ids).get_indexer(seen["user_id"])
        cols = pd.Index(catalog).get_indexer(seen["item_id"])
        keep = (rows >= 0) & (cols >= 0)
        rows, cols = rows[keep], cols[keep]
        order = np.argsort(rows, kind="stable")
        rows, cols = rows[order], cols[order]
    progress = _Progress(verbose, "full ranking", len(user_ids))
    out_u, out_i, out_s, out_r = [], [], [], []
    for start in range(0, len(user_ids), batch_size):
        batch = user_ids[start:start + batch_size]
        scores = _scores(model, batch, len(catalog))
        lo, hi = np.searchsorted(rows, [start, start + len(batch)])
        scores[rows[lo:hi] - start, cols[lo:hi]] = -np.inf
        pos, top = _top_k_positions(scores, k)
        ok = top > -np.inf
        out_u.append(np.repeat(batch, ok.sum(axis=1)))
        out_i.append(catalog[pos[ok]])
        out_s.append(top[ok])
        out_r.append(np.tile(np.arange(1, pos.shape[1] + 1), (len(batch), 1))[ok])
        progress(start + len(batch))
    return pd.DataFrame({"user_id": np.concatenate(out_u), "item_id": np.concatenate(out_i),
                         _PRED: np.concatenate(out_s), "rank": np.concatenate(out_r)})


def full_ranking(model, train: pd.DataFrame, test: pd.DataFrame, k: int = 10, users: Optional[Iterable] = None,
                 batch_size: int = 256, verbose: bool = False) -> dict:
    """Full ranking: every catalog item ranked for each test user, training items excluded.

    For each evaluated user the model scores the whole catalog (``score_users``), the user's items
    in ``train`` are removed, and the top ``k`` (ties by catalog position) form the prediction
    frame; every item of the user in ``test`` is relevant. Metrics follow
    :mod:`tfrec.evaluation.metrics`. A test item outside ``model.catalog_`` cannot be ranked and
    counts as a miss (it stays in the user's relevant set). Users absent from ``train`` (new users)
    have nothing excluded and are scored by the model's unknown-user path.

    Args:
      model: a fitted recommender (``score_users``, ``catalog_``).
      train: the interactions whose items are excluded per user (normally the model's training
        data); columns user_id, item_id. None: the model's own ``seen_`` items are excluded.
      test: held-out interactions (user_id, item_id); with a leave-last-out split, one per user.
      k: cut-off.
      users: evaluate only these user ids (a slice, e.g. :func:`sparse_users`); default all test users.
      batch_size: users scored per ``score_users`` call.
      verbose: print a progress line on stderr.

    Returns:
      ``{"hr@K", "ndcg@K", "map@K", "recall@K", "precision@K", "mrr", "coverage", "n_users"}``;
      ``coverage`` is the share of the catalog in at least one top-k list, ``n_users`` the number
      of users evaluated.
    """
    catalog = _check_model(model)
    k = M._check_k(k)
    if train is not None:
        _pairs(train, "train", allow_empty=True)
    truth = _select_users(_pairs(test, "test", allow_empty=False), users, "full_ranking").drop_duplicates()
    user_ids = pd.unique(truth["user_id"])
    top = full_ranking_predictions(model, train, user_ids, k=k, batch_size=batch_size, verbose=verbose)
    return _report(truth, top, k, len(catalog), n_users=len(user_ids), n_queries=len(user_ids))


# ------------------------------------------------------------------------------------------------ sampled
def sample_negatives_for_pairs(catalog_size: int, pair_users: np.ndarray, touched: dict, n_negatives: int,
                               seed: int) -> np.ndarray:
    """``[n_pairs, n_negatives]`` catalog positions, uniform without replacement per pair.

    ``pair_users`` must be grouped by user (consecutive); ``touched[user]`` holds the catalog
    positions that user may never get as negatives. Deterministic for a seed and input order.
    """
    rng = np.random.default_rng(seed)
    out = np.empty((len(pair_users), n_negatives), dtype=np.int64)
    if len(pair_users) == 0:
        return out
    starts = np.flatnonzero(np.r_[True, pair_users[1:] != pair_users[:-1]])
    ends = np.r_[starts[1:], len(pair_users)]
    for a, b in zip(starts, ends):
        user = pair_users[a]
        banned = touched.get(user, np.empty(0, dtype=np.int64))
        available = catalog_size - len(banned)
        if available < n_negatives:
            raise DataError(f"sampled_ranking: user {user!r} has only {available} catalog items they never "
                            f"interacted with, fewer than n_negatives={n_negatives}")
        # Random keys with banned items pushed to the end: the n smallest keys are a uniform
        # sample without replacement of the allowed items.
        keys = rng.random((b - a, catalog_size), dtype=np.float32)
        keys[:, banned] = np.inf
        out[a:b] = np.argpartition(keys, n_negatives - 1, axis=1)[:, :n_negatives]
    return out


def sampled_ranking(model, train: pd.DataFrame, test: pd.DataFrame, n_negatives: int = 100, k: int = 10,
                    seed: int = 0, users: Optional[Iterable] = None, batch_size: int = 256,
                    verbose: bool = False) -> dict:
    """The NCF protocol: each test (user, item) ranked against ``n_negatives`` sampled items.

    For every distinct test pair, ``n_negatives`` catalog items are drawn uniformly without
    replacement, with ``seed``, from the items the user never interacted with (neither in ``train``
    nor anywhere in ``test``). The test item and its negatives are scored with ``score_users``
    (columns picked from the full score row) and the top ``k`` of these ``1 + n_negatives``
    candidates form one prediction list. A negative scoring the same as the test item is ranked
    above it, so a constant model scores 0, not 1. Each pair is one ranking "query": the metrics
    average over pairs (with a leave-last-out split, one pair per user). A test item outside the
    catalog cannot be scored and counts as a miss.

    Args:
      model: a fitted recommender (``score_users``, ``catalog_``).
      train, test: interactions (user_id, item_id).
      n_negatives: sampled negatives per test pair (100 in the NCF paper).
      k: cut-off.
      seed: the sampling seed; pairs are processed in sorted (user, item) order, so the negatives
        depend only on the data and the seed, not on row order.
      users: evaluate only these user ids.
      batch_size: users scored per ``score_users`` call.
      verbose: print a progress line on stderr.

    Returns:
      ``{"hr@K", "ndcg@K", "map@K", "recall@K", "precision@K", "mrr", "coverage", "n_users"}``;
      ``n_users`` counts distinct users, ``coverage`` the share of the catalog in some top-k list.
    """
    catalog = _check_model(model)
    k = M._check_k(k)
    n_negatives = _check_positive(n_negatives, "n_negatives")
    batch_size = _check_positive(batch_size, "batch_size")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    train_pairs = _pairs(train, "train", allow_empty=True)
    test_pairs = _pairs(test, "test", allow_empty=False)
    truth = _select_users(test_pairs, users, "sampled_ranking").drop_duplicates()
    truth = truth.sort_values(["user_id", "item_id"], kind="stable").reset_index(drop=True)
    pair_users = truth["user_id"].to_numpy(dtype=object)
    n_cat = len(catalog)
    cat_index = pd.Index(catalog)

    # Items each evaluated user touched anywhere (train or test): never a negative.
    touched_frame = pd.concat([train_pairs, test_pairs], ignore_index=True)
    touched_frame = touched_frame[touched_frame["user_id"].isin(pd.unique(pair_users))]
    pos = cat_index.get_indexer(touched_frame["item_id"])
    touched_frame = pd.DataFrame({"user_id": touched_frame["user_id"].to_numpy()[pos >= 0], "pos": pos[pos >= 0]})
    touched = {u: np.unique(g.to_numpy()) for u, g in touched_frame.groupby("user_id", sort=False)["pos"]}
    negatives = sample_negatives_for_pairs(n_cat, pair_users, touched, n_negatives, int(seed))

    # Candidate scores [pairs, n_negatives + 1]; the last column is the test item.
    positive = cat_index.get_indexer(truth["item_id"])
    cand_scores = np.empty((len(truth), 1 + n_negatives))
    unique_users = pd.unique(pair_users)
    user_row = pd.Index(unique_users).get_indexer(pair_users)
    progress = _Progress(verbose, "sampled ranking", len(unique_users))
    for start in range(0, len(unique_users), batch_size):
        batch = unique_users[start:start + batch_size]
        scores = _scores(model, batch, n_cat)
        sel = (user_row >= start) & (user_row < start + len(batch))
        rows = user_row[sel] - start
        pos_scores = np.where(positive[sel] >= 0, scores[rows, np.maximum(positive[sel], 0)], -np.inf)
        cand_scores[sel, -1] = pos_scores
        cand_scores[sel, :-1] = scores[rows[:, None], negatives[sel]]
        progress(start + len(batch))

    # Order each candidate list by score, the test item after any negative with an equal score:
    # a stable sort with the test item in the last column puts it after every equal negative.
    order = np.argsort(-cand_scores, axis=1, kind="stable")[:, :k]
    top_scores = np.take_along_axis(cand_scores, order, axis=1)
    cand_pos = np.concatenate([negatives, positive[:, None]], axis=1)
    top_pos = np.take_along_axis(cand_pos, order, axis=1)
    ok = top_scores > -np.inf
    ranks = np.tile(np.arange(1, order.shape[1] + 1), (len(truth), 1))
    query = np.repeat(np.arange(len(truth)), ok.sum(axis=1))
    # One pseudo-user per pair, items as catalog positions (-1: the test item is not in the catalog,
    # matching no prediction; each pair has a single relevant item, so nothing collapses). The
    # prediction is -rank so the metric's own sort keeps this order.
    top = pd.DataFrame({"user_id": query, "item_id": top_pos[ok], _PRED: -ranks[ok].astype(np.float64)})
    truth_q = pd.DataFrame({"user_id": np.arange(len(truth)), "item_id": positive})
    return _report(truth_q, top, k, n_cat, n_users=len(unique_users), n_queries=len(truth))


# ------------------------------------------------------------------------------------------------ cold start
def sparse_users(train: pd.DataFrame, max_interactions: int = 5) -> np.ndarray:
    """Sorted user ids (str) with at least one and at most ``max_interactions`` training interactions."""
    max_interactions = _check_positive(max_interactions, "max_interactions")
    counts = _pairs(train, "train", allow_empty=True)["user_id"].value_counts()
    return np.asarray(sorted(counts.index[counts.to_numpy() <= max_interactions]), dtype=object)


def new_users(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """Sorted test user ids (str) absent from ``train`` (the wholly-new-user slice)."""
    known = set(_pairs(train, "train", allow_empty=True)["user_id"])
    return np.asarray(sorted(set(_pairs(test, "test", allow_empty=True)["user_id"]) - known), dtype=object)


def cold_start_slices(model, train: pd.DataFrame, test: pd.DataFrame, k: int = 10, max_interactions: int = 5,
                      batch_size: int = 256, verbose: bool = False) -> dict:
    """Full-ranking metrics on the cold-start slices of ``test``.

    Returns ``{"sparse_users": {...}, "new_users": {...}}``, each a :func:`full_ranking` dict:
    ``sparse_users`` are test users with at most ``max_interactions`` interactions in ``train``;
    ``new_users`` are test users absent from ``train`` (nothing is excluded for them: the model's
    unknown-user path, e.g. the two-tower's demographics or the popularity fallback, ranks the
    whole catalog). A slice without users is omitted.
    """
    test_users = set(_pairs(test, "test", allow_empty=False)["user_id"])
    out = {}
    sparse = [u for u in sparse_users(train, max_interactions) if u in test_users]
    if sparse:
        out["sparse_users"] = full_ranking(model, train, test, k=k, users=sparse, batch_size=batch_size,
                                           verbose=verbose)
    fresh = new_users(train, test)
    if len(fresh):
        out["new_users"] = full_ranking(model, train, test, k=k, users=fresh, batch_size=batch_size, verbose=verbose)
    return out


cold_start_report = cold_start_slices  # earlier name, kept for existing callers


__all__ = [
    "cold_start_report",
    "cold_start_slices",
    "full_ranking",
    "full_ranking_predictions",
    "new_users",
    "sample_negatives_for_pairs",
    "sampled_ranking",
    "sparse_users",
]
