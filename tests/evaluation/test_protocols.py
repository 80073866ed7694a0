"""Protocols on tiny hand-made data with fake recommenders whose rankings we control."""

import numpy as np
import pandas as pd
import pytest

from tfrec.evaluation import full_ranking, mmr_rerank, new_users, sampled_ranking, sparse_users
from tfrec.models.base import RecommenderMixin

ITEMS = [str(i) for i in range(200)]
TRAIN = pd.DataFrame({"user_id": ["u1", "u1", "u2", "u2", "u3"], "item_id": ["0", "1", "2", "3", "4"],
                      "rating": 4.0, "timestamp": [1, 2, 3, 4, 5]})
TEST = pd.DataFrame({"user_id": ["u1", "u2", "u3"], "item_id": ["10", "20", "30"], "rating": 5.0,
                     "timestamp": [9, 9, 9]})


class Scripted(RecommenderMixin):
    """Scores chosen per test: `boost` puts the held-out item first (or last)."""

    def __init__(self, boost: float):
        self.boost = boost

    def fit(self, train, items=None, users=None):
        self._remember_training_data(train, catalog=ITEMS)
        return self

    def _score_users(self, user_ids):
        scores = np.tile(np.linspace(0.5, 0.0, len(ITEMS)), (len(user_ids), 1))
        target = dict(zip(TEST.user_id, TEST.item_id))
        for r, u in enumerate(user_ids):
            scores[r, ITEMS.index(target[u])] = self.boost
            scores[r, ITEMS.index("0")] = 10.0  # a seen item (for u1) scored highest of all
        return scores


def test_oracle_scores_perfectly_and_anti_oracle_scores_zero():
    oracle = Scripted(boost=5.0).fit(TRAIN)
    full = full_ranking(oracle, TRAIN, TEST)
    # u1's seen item "0" scores 10 but is excluded, so the test item is rank 1 for u1; for u2/u3
    # "0" is unseen and ranks first, the test item second.
    assert full["hr@10"] == 1.0
    assert full["mrr"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    anti = Scripted(boost=-1.0).fit(TRAIN)
    assert full_ranking(anti, TRAIN, TEST)["hr@10"] == 0.0
    sampled = sampled_ranking(oracle, TRAIN, TEST, n_negatives=100, seed=0)
    assert sampled["hr@10"] == 1.0
    assert sampled_ranking(anti, TRAIN, TEST, n_negatives=100, seed=0)["hr@10"] == 0.0


def test_seen_items_are_excluded():
    model = Scripted(boost=5.0).fit(TRAIN)
    # Only u1 saw "0": with exclusion its test item is first, so u1 alone has reciprocal rank 1.
    u1 = full_ranking(model, TRAIN, TEST, users=["u1"])
    assert u1["mrr"] == 1.0 and u1["n_users"] == 1


def test_constant_scores_do_not_win_sampled_ties():
    class Constant(Scripted):
        def _score_users(self, user_ids):
            return np.zeros((len(user_ids), len(ITEMS)))

    model = Constant(0.0).fit(TRAIN)
    assert sampled_ranking(model, TRAIN, TEST, n_negatives=100, seed=0)["hr@10"] == 0.0


def test_sampled_negatives_are_seeded_and_untouched():
    model = Scripted(boost=0.25).fit(TRAIN)  # mid-ranked: results depend on which negatives are drawn
    a = sampled_ranking(model, TRAIN, TEST, n_negatives=100, seed=1)
    b = sampled_ranking(model, TRAIN, TEST, n_negatives=100, seed=1)
    assert a == b and a["n_pairs"] == 3


def test_cold_start_slices():
    assert list(sparse_users(TRAIN, max_interactions=1)) == ["u3"]
    test = pd.concat([TEST, pd.DataFrame({"user_id": ["new"], "item_id": ["50"], "rating": 3.0, "timestamp": 9})])
    assert list(new_users(TRAIN, test)) == ["new"]
    model = Scripted(boost=5.0).fit(TRAIN)
    # Unknown users fall back to popularity, never an error.
    res = full_ranking(model, TRAIN, test, users=["new"])
    assert res["n_users"] == 1


def test_mmr_rerank_trades_relevance_for_diversity():
    cands = pd.DataFrame({"user_id": ["u"] * 3, "item_id": ["a", "b", "c"], "score": [1.0, 0.99, 0.5]})
    vectors = {"a": [1, 0], "b": [1, 0], "c": [0, 1]}
    assert mmr_rerank(cands, vectors, lambda_=1.0, k=2).item_id.tolist() == ["a", "b"]
    assert mmr_rerank(cands, vectors, lambda_=0.3, k=2).item_id.tolist() == ["a", "c"]
