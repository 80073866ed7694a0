"""Protocols on tiny hand-made data with fake recommenders whose rankings we control."""

import numpy as np
import pandas as pd
import pytest

from tfrec.errors import ConfigError, DataError
from tfrec.evaluation import (
    cold_start_slices,
    full_ranking,
    full_ranking_predictions,
    new_users,
    sampled_ranking,
    sparse_users,
)
from tfrec.evaluation.protocols import sample_negatives_for_pairs
from tfrec.models.base import RecommenderMixin

CATALOG = [str(i) for i in range(200)]
TRAIN = pd.DataFrame({"user_id": ["u1", "u1", "u2", "u2", "u3"], "item_id": ["0", "1", "2", "3", "4"],
                      "rating": 4.0, "timestamp": [1, 2, 3, 4, 5]})
TEST = pd.DataFrame({"user_id": ["u1", "u2", "u3"], "item_id": ["10", "20", "30"], "rating": 5.0,
                     "timestamp": [9, 9, 9]})
KEYS = {"hr@10", "ndcg@10", "map@10", "recall@10", "precision@10", "mrr", "coverage", "n_users"}


class Fake(RecommenderMixin):
    """A recommender over CATALOG whose score matrix is given by ``score_fn(user_ids) -> array``."""

    def __init__(self, score_fn, catalog=CATALOG):
        self.score_fn, self.catalog = score_fn, catalog

    def fit(self, train, items=None, users=None):
        self._remember_training_data(train, catalog=self.catalog)
        return self

    def _score_users(self, user_ids):
        return np.asarray(self.score_fn(list(user_ids)), dtype=np.float64)


def background(n_users):
    """Distinct decreasing scores in (0, 0.5]: item "0" best, item "199" worst."""
    return np.tile(np.linspace(0.5, 0.001, len(CATALOG)), (n_users, 1))


def held_out_at(value, test=TEST):
    """Scores with each user's held-out item set to ``value`` (5 = first, -1 = last)."""
    target = dict(zip(test.user_id, test.item_id))

    def score(users):
        s = background(len(users))
        for r, u in enumerate(users):
            s[r, CATALOG.index(target[u])] = value
        return s

    return score


def test_oracle_scores_perfectly_and_anti_oracle_scores_zero():
    oracle = Fake(held_out_at(5.0)).fit(TRAIN)
    for report in (full_ranking(oracle, TRAIN, TEST), sampled_ranking(oracle, TRAIN, TEST, n_negatives=100, seed=0)):
        assert set(report) == KEYS
        assert report["hr@10"] == 1.0 and report["ndcg@10"] == 1.0 and report["mrr"] == 1.0
        assert report["map@10"] == 1.0 and report["recall@10"] == 1.0
        assert report["precision@10"] == pytest.approx(1 / 10)  # one relevant item per user
        assert report["n_users"] == 3
    anti = Fake(held_out_at(-1.0)).fit(TRAIN)
    for report in (full_ranking(anti, TRAIN, TEST), sampled_ranking(anti, TRAIN, TEST, n_negatives=100, seed=0)):
        assert all(report[key] == 0.0 for key in KEYS - {"coverage", "n_users"})


def test_metrics_of_a_known_rank():
    # Each held-out item is scored just below the user's 3rd-best unseen background item, so after
    # excluding training items it is 4th for every user.
    def score(users):
        s = background(len(users))
        target = dict(zip(TEST.user_id, TEST.item_id))
        for r, u in enumerate(users):
            unseen = [i for i in range(len(CATALOG)) if CATALOG[i] not in set(TRAIN.item_id[TRAIN.user_id == u])]
            s[r, CATALOG.index(target[u])] = s[r, unseen[2]] - 1e-6
        return s

    report = full_ranking(Fake(score).fit(TRAIN), TRAIN, TEST, k=10)
    assert report["mrr"] == pytest.approx(1 / 4)
    assert report["ndcg@10"] == pytest.approx(1 / np.log2(4 + 1))
    assert report["map@10"] == pytest.approx(1 / 4)
    assert full_ranking(Fake(score).fit(TRAIN), TRAIN, TEST, k=3)["hr@3"] == 0.0


def test_seen_items_are_excluded():
    def score(users):
        s = held_out_at(5.0)(users)
        s[:, CATALOG.index("0")] = 10.0  # item "0" outscores everything; only u1 saw it
        return s

    model = Fake(score).fit(TRAIN)
    # u1: "0" excluded -> held-out item first; u2, u3: "0" first, held-out item second.
    assert full_ranking(model, TRAIN, TEST)["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 2) / 3)
    u1 = full_ranking(model, TRAIN, TEST, users=["u1"])
    assert u1["mrr"] == 1.0 and u1["n_users"] == 1
    top = full_ranking_predictions(model, TRAIN, ["u1", "u2", "u3"], k=10)
    seen = set(zip(TRAIN.user_id, TRAIN.item_id))
    assert not any((u, i) in seen for u, i in zip(top.user_id, top.item_id))
    # The protocol's lists are what the model itself serves.
    served = model.recommend(["u1", "u2", "u3"], k=10, exclude_seen=True)
    assert top[["user_id", "item_id"]].values.tolist() == served[["user_id", "item_id"]].values.tolist()


def test_full_ranking_ties_broken_by_catalog_position():
    constant = Fake(lambda users: np.zeros((len(users), len(CATALOG)))).fit(TRAIN)
    top = full_ranking_predictions(constant, TRAIN, ["u1"], k=5)
    assert top.item_id.tolist() == ["2", "3", "4", "5", "6"]  # "0" and "1" are u1's training items
    # Held-out "3" for u1 then ranks 2nd.
    test = pd.DataFrame({"user_id": ["u1"], "item_id": ["3"]})
    assert full_ranking(constant, TRAIN, test, k=5)["mrr"] == pytest.approx(1 / 2)


def test_key_names_follow_k_and_batching_does_not_matter():
    model = Fake(held_out_at(0.3)).fit(TRAIN)
    report = full_ranking(model, TRAIN, TEST, k=20)
    assert set(report) == {"hr@20", "ndcg@20", "map@20", "recall@20", "precision@20", "mrr", "coverage", "n_users"}
    assert full_ranking(model, TRAIN, TEST, batch_size=1) == full_ranking(model, TRAIN, TEST, batch_size=256)
    assert set(sampled_ranking(model, TRAIN, TEST, k=5)) >= {"hr@5", "ndcg@5"}


def test_coverage_counts_distinct_recommended_items():
    # Background order is the same for everyone: u1 gets 2..11, u2 gets 0,1,4..11, u3 gets 0..3,5..10
    # (each minus its own training items) plus nothing else -> the union is items 0..11.
    model = Fake(lambda users: background(len(users))).fit(TRAIN)
    assert full_ranking(model, TRAIN, TEST)["coverage"] == pytest.approx(12 / len(CATALOG))


def test_test_items_outside_the_catalog_are_misses():
    test = pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["10", "not-in-catalog"]})
    model = Fake(held_out_at(5.0, test=test.assign(item_id=["10", "20"]))).fit(TRAIN)
    report = full_ranking(model, TRAIN, test)
    assert report["n_users"] == 2 and report["hr@10"] == pytest.approx(1 / 2)
    sampled = sampled_ranking(model, TRAIN, test, n_negatives=50)
    assert sampled["hr@10"] == pytest.approx(1 / 2)


def test_user_with_every_catalog_item_seen_counts_as_a_miss():
    catalog = ["a", "b", "c"]
    train = pd.DataFrame({"user_id": ["x", "x", "x", "y"], "item_id": ["a", "b", "c", "a"]})
    test = pd.DataFrame({"user_id": ["x", "y"], "item_id": ["a", "b"]})
    model = Fake(lambda users: np.tile([3.0, 2.0, 1.0], (len(users), 1)), catalog=catalog).fit(train)
    report = full_ranking(model, train, test)
    # x has nothing left to rank; y gets b first.
    assert report["n_users"] == 2 and report["hr@10"] == pytest.approx(1 / 2)


def test_constant_scores_do_not_win_sampled_ties():
    model = Fake(lambda users: np.zeros((len(users), len(CATALOG)))).fit(TRAIN)
    assert sampled_ranking(model, TRAIN, TEST, n_negatives=100, seed=0)["hr@10"] == 0.0


def test_sampled_negatives_are_never_the_users_items():
    # u1 has 20 training items and two test items, all scored above everything else; the test item
    # under evaluation is scored just below them. If any of them were drawn as a negative, it would
    # outrank the test item and MRR would drop below 1.
    train = pd.DataFrame({"user_id": "u1", "item_id": [str(i) for i in range(20)]})
    test = pd.DataFrame({"user_id": ["u1", "u1"], "item_id": ["50", "60"]})

    def score(users):
        s = background(len(users))
        s[:, :20] = 10.0
        s[:, CATALOG.index("50")] = 8.0
        s[:, CATALOG.index("60")] = 9.0
        return s

    model = Fake(score).fit(train)
    for seed in range(5):
        report = sampled_ranking(model, train, test, n_negatives=150, seed=seed)
        assert report["mrr"] == 1.0 and report["n_users"] == 1
    with pytest.raises(DataError, match="fewer than n_negatives"):
        sampled_ranking(model, train, test, n_negatives=179, seed=0)  # 200 - 20 - 2 = 178 allowed


def test_negative_sampler_is_uniform_distinct_and_seeded():
    users = np.array(["a"] * 3 + ["b"] * 2, dtype=object)
    banned = {"a": np.arange(0, 50), "b": np.array([7])}
    neg = sample_negatives_for_pairs(200, users, banned, 100, seed=3)
    assert neg.shape == (5, 100)
    assert all(len(set(row)) == 100 for row in neg)
    assert not np.isin(neg[:3], banned["a"]).any() and not np.isin(neg[3:], banned["b"]).any()
    assert np.array_equal(neg, sample_negatives_for_pairs(200, users, banned, 100, seed=3))
    assert not np.array_equal(neg, sample_negatives_for_pairs(200, users, banned, 100, seed=4))
    # Roughly uniform over the allowed items: many draws hit every allowed item about equally.
    many = sample_negatives_for_pairs(60, np.array(["a"] * 400, dtype=object), {"a": np.arange(10)}, 25, seed=0)
    counts = np.bincount(many.ravel(), minlength=60)
    assert counts[:10].sum() == 0
    assert counts[10:].min() > 0.7 * 400 * 25 / 50 and counts[10:].max() < 1.3 * 400 * 25 / 50


def test_sampled_ranking_is_deterministic_per_seed_and_row_order():
    # About 7% of the catalog outscores the held-out item: its rank depends on the negatives drawn.
    model = Fake(held_out_at(0.465)).fit(TRAIN)
    a = sampled_ranking(model, TRAIN, TEST, n_negatives=100, seed=1)
    assert a == sampled_ranking(model, TRAIN, TEST, n_negatives=100, seed=1)
    assert a == sampled_ranking(model, TRAIN, TEST.iloc[::-1], n_negatives=100, seed=1)
    assert 0.0 < a["mrr"] < 1.0
    assert len({sampled_ranking(model, TRAIN, TEST, seed=s)["mrr"] for s in range(5)}) > 1


def test_sampled_ranking_averages_over_test_pairs():
    # u1 has two test items, one ranked first and one last; u2 one item ranked first.
    test = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "item_id": ["10", "11", "20"]})

    def score(users):
        s = background(len(users))
        s[:, CATALOG.index("10")] = 5.0
        s[:, CATALOG.index("11")] = -1.0
        s[:, CATALOG.index("20")] = 5.0
        return s

    report = sampled_ranking(Fake(score).fit(TRAIN), TRAIN, test, n_negatives=100)
    assert report["hr@10"] == pytest.approx(2 / 3) and report["n_users"] == 2


def test_cold_start_slices():
    assert list(sparse_users(TRAIN, max_interactions=1)) == ["u3"]
    assert list(sparse_users(TRAIN, max_interactions=2)) == ["u1", "u2", "u3"]
    # "new" has no training data; its held-out item "0" is the most popular training item, which
    # other users saw. The popularity fallback must rank it first: nothing is excluded for "new".
    train = pd.concat([TRAIN, pd.DataFrame({"user_id": ["u2", "u3"], "item_id": ["0", "0"]})], ignore_index=True)
    test = pd.concat([TEST, pd.DataFrame({"user_id": ["new"], "item_id": ["0"]})], ignore_index=True)
    assert list(new_users(train, test)) == ["new"]
    model = Fake(held_out_at(5.0, test=TEST)).fit(train)
    fresh = full_ranking(model, train, test, users=new_users(train, test))
    assert fresh["n_users"] == 1 and fresh["mrr"] == 1.0
    slices = cold_start_slices(model, train, test, max_interactions=1)
    assert set(slices) == {"new_users"}  # every known user has >= 2 training rows now
    assert slices["new_users"] == fresh
    slices = cold_start_slices(model, train, test, max_interactions=2)
    assert slices["sparse_users"]["n_users"] == 2  # u1 (2 rows) and u3 (2 rows); u2 has 3


def test_verbose_progress_goes_to_stderr(capsys):
    model = Fake(held_out_at(5.0)).fit(TRAIN)
    full_ranking(model, TRAIN, TEST, batch_size=2, verbose=True)
    sampled_ranking(model, TRAIN, TEST, verbose=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "full ranking: 3/3 users" in captured.err and "sampled ranking: 3/3 users" in captured.err


def test_validation():
    model = Fake(held_out_at(5.0)).fit(TRAIN)
    with pytest.raises(ConfigError, match="not fitted"):
        full_ranking(Fake(held_out_at(5.0)), TRAIN, TEST)
    with pytest.raises(ConfigError, match="k must be"):
        full_ranking(model, TRAIN, TEST, k=0)
    with pytest.raises(ConfigError, match="n_negatives"):
        sampled_ranking(model, TRAIN, TEST, n_negatives=0)
    with pytest.raises(DataError, match="item_id"):
        full_ranking(model, TRAIN, TEST.drop(columns="item_id"))
    with pytest.raises(DataError, match="test"):
        full_ranking(model, TRAIN, TEST.iloc[:0])
    with pytest.raises(DataError, match="none of the requested users"):
        full_ranking(model, TRAIN, TEST, users=["nobody"])

    class WrongShape:
        catalog_ = np.array(CATALOG, dtype=object)

        def score_users(self, user_ids):
            return np.zeros((len(user_ids), 3))

    with pytest.raises(ConfigError, match="shape"):
        full_ranking(WrongShape(), TRAIN, TEST)
    with pytest.raises(ConfigError, match="not a recommender"):
        full_ranking(object(), TRAIN, TEST)
