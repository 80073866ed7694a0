"""Evaluation protocols for recommenders that follow tfrec's contract.

* :func:`full_ranking` -- rank every catalog item for each test user, the user's training items
  excluded (the honest protocol; with a leave-last-out split it is "leave-last-out full ranking").
* :func:`sampled_ranking` -- the NCF protocol: each test item ranked against ``n_negatives``
  (default 100) seeded random items the user never interacted with. Much easier than full
  ranking; reported because the literature (and seed 001's HR@10 > 0.65 target) uses it.
* :func:`sparse_users` / :func:`new_users` -- cold-start slices: users with few training
  interactions, and users absent from training (served by the model's unknown-user path:
  demographics for the two-tower model, popularity otherwise).

Every protocol returns ``{"hr@K", "ndcg@K", "map@K", "recall@K", "precision@K", "mrr", "coverage",
"n_users"}`` computed with the metric functions in :mod:`tfrec.evaluation.metrics`. A test item that
is not in the model's catalog cannot be ranked and counts as a miss.
"""

from __future__ import annotations

import sys
from typing import Iterable, Optional

import numpy as np
import pandas as pd

from tfrec.errors import ConfigError, DataError
from tfrec.evaluation import metrics as M


def _check(model, test: pd.DataFrame) -> None:
    if not hasattr(model, "score_users") or not hasattr(model, "catalog_"):
        raise ConfigError(f"{type(model).__name__} is not a fitted recommender (needs score_users and catalog_)")
    M._check_columns(test, "test", ["user_id", "item_id"])
    if len(test) == 0:
        raise DataError("test: no interactions to evaluate")


def _report(truth: pd.DataFrame, top: pd.DataFrame, k: int, n_users: int, catalog_size: int) -> dict:
    kw = dict(col_user="user_id", col_item="item_id", col_prediction="prediction", k=k)
    return {
        f"hr@{k}": M.hit_rate_at_k(truth, top, **kw),
        f"ndcg@{k}": M.ndcg_at_k(truth, top, **kw),
        f"map@{k}": M.map_at_k(truth, top, **kw),
        f"recall@{k}": M.recall_at_k(truth, top, **kw),
        f"precision@{k}": M.precision_at_k(truth, top, **kw),
        "mrr": M.mrr_at_k(truth, top, **kw),
        "coverage": M.catalog_coverage(top, catalog_size, col_user="user_id", col_item="item_id") if len(top) else 0.0,
        "n_users": int(n_users),
    }


def _progress(verbose: bool, label: str, done: int, total: int) -> None:
    if verbose:
        print(f"\r[tfrec] {label}: {done}/{total} users", end="" if done < total else "\n", file=sys.stderr, flush=True)


def full_ranking(model, train: pd.DataFrame, test: pd.DataFrame, *, k: int = 10, users: Optional[Iterable] = None,
                 batch_size: int = 256, verbose: bool = False) -> dict:
    """Rank all catalog items for each test user, excluding the user's training items.

    Args:
      model: a fitted recommender (``score_users``, ``catalog_``).
      train: the training interactions (their items are excluded per user).
      test: held-out interactions; every test item of a user is relevant.
      k: cut-off.
      users: evaluate only these users (a cold-start slice); default all test users.
      batch_size: users scored at once.
    """
    _check(model, test)
    k = M._check_k(k)
    truth = test[["user_id", "item_id"]].astype(str)
    if users is not None:
        wanted = {str(u) for u in users}
        truth = truth[truth["user_id"].isin(wanted)]
    user_ids = np.asarray(pd.unique(truth["user_id"]), dtype=object)
    if len(user_ids) == 0:
        raise DataError("full_ranking: no test users to evaluate")
    catalog = np.asarray(model.catalog_, dtype=object)
    index = {it: i for i, it in enumerate(catalog)}
    seen = {u: np.fromiter((index[i] for i in g if i in index), dtype=np.int64)
            for u, g in train.astype({"user_id": str, "item_id": str}).groupby("user_id")["item_id"]}
    rows_u, rows_i, rows_s = [], [], []
    kk = min(k, len(catalog))
    for start in range(0, len(user_ids), batch_size):
        batch = user_ids[start:start + batch_size]
        scores = np.array(model.score_users(list(batch)), dtype=np.float64)
        for r, u in enumerate(batch):
            s = seen.get(u)
            if s is not None and len(s):
                scores[r, s] = -np.inf
        top = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        top_scores = np.take_along_axis(scores, top, axis=1)
        for r, u in enumerate(batch):
            ok = np.isfinite(top_scores[r])
            rows_u.append(np.full(int(ok.sum()), u, dtype=object))
            rows_i.append(catalog[top[r][ok]])
            rows_s.append(top_scores[r][ok])
        _progress(verbose, "full ranking", min(start + batch_size, len(user_ids)), len(user_ids))
    top_frame = pd.DataFrame({"user_id": np.concatenate(rows_u), "item_id": np.concatenate(rows_i),
                              "prediction": np.concatenate(rows_s)})
    return _report(truth, top_frame, k, len(user_ids), len(catalog))


def sampled_ranking(model, train: pd.DataFrame, test: pd.DataFrame, *, n_negatives: int = 100, k: int = 10,
                    seed: int = 0, users: Optional[Iterable] = None, batch_size: int = 256) -> dict:
    """The NCF protocol: each test item against ``n_negatives`` seeded items the user never touched.

    Each (user, test item) pair is one ranking of ``1 + n_negatives`` candidates; negatives are
    drawn uniformly from the catalog minus the user's train and test items, with ``seed``. HR@k is
    the share of pairs whose test item lands in the top k. Test items outside the catalog count
    as misses.
    """
    _check(model, test)
    k = M._check_k(k)
    if isinstance(n_negatives, bool) or not isinstance(n_negatives, (int, np.integer)) or n_negatives < 1:
        raise ConfigError(f"n_negatives must be a positive integer, got {n_negatives!r}")
    truth = test[["user_id", "item_id"]].astype(str)
    if users is not None:
        wanted = {str(u) for u in users}
        truth = truth[truth["user_id"].isin(wanted)]
    catalog = np.asarray(model.catalog_, dtype=object)
    index = {it: i for i, it in enumerate(catalog)}
    touched = pd.concat([train[["user_id", "item_id"]].astype(str), truth])
    touched_idx = {u: set(index[i] for i in g if i in index) for u, g in touched.groupby("user_id")["item_id"]}
    rng = np.random.default_rng(seed)
    n_cat = len(catalog)
    # One "query" per (user, test item): a pseudo-user key keeps pairs apart in the metric frames.
    pair_user, pair_item, pair_cands = [], [], []
    for q, (u, it) in enumerate(zip(truth["user_id"].to_numpy(), truth["item_id"].to_numpy())):
        excluded = touched_idx.get(u, set())
        available = n_cat - len(excluded)
        if available < n_negatives:
            raise DataError(f"sampled_ranking: user {u!r} has only {available} untouched items, "
                            f"fewer than n_negatives={n_negatives}")
        negs: list = []
        while len(negs) < n_negatives:
            draw = rng.integers(0, n_cat, size=2 * n_negatives)
            for d in draw:
                if d not in excluded and d not in negs:
                    negs.append(int(d))
                    if len(negs) == n_negatives:
                        break
        pair_user.append(u)
        pair_item.append(it)
        pair_cands.append(np.asarray(negs, dtype=np.int64))
    rows_q, rows_i, rows_s = [], [], []
    users_unique = list(dict.fromkeys(pair_user))
    score_rows = {}
    for start in range(0, len(users_unique), batch_size):
        batch = users_unique[start:start + batch_size]
        scores = np.asarray(model.score_users(batch), dtype=np.float64)
        for r, u in enumerate(batch):
            score_rows[u] = scores[r]
    for q, (u, it, negs) in enumerate(zip(pair_user, pair_item, pair_cands)):
        s = score_rows[u]
        key = f"{u}\x1f{q}"
        pos = index.get(it)
        # An item outside the catalog gets -inf: it can never be ranked, so it is a miss.
        rows_q.append(np.full(len(negs) + 1, key, dtype=object))
        rows_i.append(np.concatenate([[it], catalog[negs]]))
        rows_s.append(np.concatenate([[s[pos] if pos is not None else -np.inf], s[negs]]))
    cand = pd.DataFrame({"user_id": np.concatenate(rows_q), "item_id": np.concatenate(rows_i),
                         "prediction": np.concatenate(rows_s)})
    # Ties with the held-out item are resolved against it (a constant model must not score 1.0).
    cand["is_pos"] = cand.groupby("user_id", sort=False).cumcount() == 0
    cand = cand.sort_values(["user_id", "prediction", "is_pos"], ascending=[True, False, True], kind="mergesort")
    cand["prediction"] = -cand.groupby("user_id", sort=False).cumcount().astype(np.float64)
    cand = cand[np.isfinite(cand["prediction"])].drop(columns="is_pos")
    truth_q = pd.DataFrame({"user_id": [f"{u}\x1f{q}" for q, u in enumerate(pair_user)], "item_id": pair_item})
    report = _report(truth_q, cand[cand.groupby("user_id", sort=False).cumcount() < k], k, len(truth_q), n_cat)
    report["n_users"] = int(len(set(pair_user)))
    report["n_pairs"] = int(len(truth_q))
    return report


def sparse_users(train: pd.DataFrame, max_interactions: int = 5) -> np.ndarray:
    """User ids with at most ``max_interactions`` training interactions (the sparse-user slice)."""
    counts = train["user_id"].astype(str).value_counts()
    return np.asarray(sorted(counts[counts <= max_interactions].index), dtype=object)


def new_users(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """Test user ids absent from training (the wholly-new-user slice)."""
    known = set(train["user_id"].astype(str))
    return np.asarray(sorted(set(test["user_id"].astype(str)) - known), dtype=object)


def cold_start_report(model, train: pd.DataFrame, test: pd.DataFrame, *, k: int = 10,
                      max_interactions: int = 5) -> dict:
    """Full-ranking metrics on the sparse-user and new-user slices (a slice with no users is omitted)."""
    out = {}
    sparse = np.intersect1d(sparse_users(train, max_interactions), test["user_id"].astype(str).unique())
    if len(sparse):
        out[f"sparse_users_le{max_interactions}"] = full_ranking(model, train, test, k=k, users=sparse)
    fresh = new_users(train, test)
    if len(fresh):
        out["new_users"] = full_ranking(model, train, test, k=k, users=fresh)
    return out
