"""Metric functions on small hand-worked examples (expected values worked out here, by hand)."""

import math
import random

import numpy as np
import pandas as pd
import pytest

from tfrec.errors import ConfigError, DataError
from tfrec.evaluation import (
    catalog_coverage,
    hit_rate_at_k,
    intra_list_diversity,
    mae,
    map_at_k,
    mrr_at_k,
    ndcg_at_k,
    pairwise_similarity,
    precision_at_k,
    recall_at_k,
    rmse,
    top_k_items,
)

RANKING = [precision_at_k, recall_at_k, ndcg_at_k, map_at_k, hit_rate_at_k, mrr_at_k]


def disc(rank):
    """Binary-gain discount of a hit at 1-based ``rank``."""
    return 1 / math.log2(rank + 1)


# User "a" has relevant items {1, 3, 9}; user "b" has relevant {2}; user "c" appears only in the
# truth and user "d" only in the predictions (neither is a common user).
TRUE = pd.DataFrame({"user_id": ["a", "a", "a", "b", "c"], "item_id": ["1", "3", "9", "2", "7"],
                     "rating": [5.0, 4.0, 3.0, 5.0, 1.0]})
# a ranks 1 > 2 > 3 > 4 (hits at ranks 1 and 3); b ranks 5 > 2 (hit at rank 2).
PRED = pd.DataFrame({"user_id": ["a", "a", "a", "a", "b", "b", "d"], "item_id": ["1", "2", "3", "4", "5", "2", "1"],
                     "prediction": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.9]})
K = 3


def test_precision_recall_hit_rate_mrr_by_hand():
    # Common users: a and b. a has 2 hits in its top 3, b has 1.
    assert precision_at_k(TRUE, PRED, k=K) == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert recall_at_k(TRUE, PRED, k=K) == pytest.approx((2 / 3 + 1 / 1) / 2)
    assert hit_rate_at_k(TRUE, PRED, k=K) == pytest.approx(1.0)
    assert mrr_at_k(TRUE, PRED, k=K) == pytest.approx((1 / 1 + 1 / 2) / 2)
    # With k=1 b's hit (rank 2) falls outside the list.
    assert hit_rate_at_k(TRUE, PRED, k=1) == pytest.approx(1 / 2)
    assert mrr_at_k(TRUE, PRED, k=1) == pytest.approx((1 + 0) / 2)


def test_ndcg_binary_gains_ideal_over_min_relevant_k():
    dcg_a = disc(1) + disc(3)
    idcg_a = disc(1) + disc(2) + disc(3)  # min(3 relevant, k=3) = 3 ideal hits
    dcg_b = disc(2)
    idcg_b = disc(1)  # min(1, 3) = 1
    assert ndcg_at_k(TRUE, PRED, k=K) == pytest.approx((dcg_a / idcg_a + dcg_b / idcg_b) / 2)


def test_ndcg_two_relevant_hits_at_one_and_three():
    true = pd.DataFrame({"user_id": ["u", "u"], "item_id": ["x", "z"], "rating": [1.0, 1.0]})
    pred = pd.DataFrame({"user_id": ["u"] * 4, "item_id": ["x", "y", "z", "w"], "prediction": [4.0, 3.0, 2.0, 1.0]})
    expected = (1 / math.log2(2) + 1 / math.log2(4)) / (1 / math.log2(2) + 1 / math.log2(3))
    assert ndcg_at_k(true, pred, k=10) == pytest.approx(expected)
    # Relevance is binary: the rating values do not change anything.
    assert ndcg_at_k(true.assign(rating=[5.0, 1.0]), pred, k=10) == pytest.approx(expected)


def test_map_divides_by_min_relevant_k():
    ap_a = (1 / 1 + 2 / 3) / min(3, K)
    ap_b = (1 / 2) / min(1, K)
    assert map_at_k(TRUE, PRED, k=K) == pytest.approx((ap_a + ap_b) / 2)
    # k=2: a's hits within the top 2: rank 1 only -> 1/1 over min(3, 2); b's hit at rank 2 -> (1/2)/1.
    assert map_at_k(TRUE, PRED, k=2) == pytest.approx((1 / min(3, 2) + 0.5 / 1) / 2)
    # Five relevant items, k=2, both top slots hit: (1/1 + 2/2) / min(5, 2) = 1 (not 2/5).
    true = pd.DataFrame({"user_id": ["u"] * 5, "item_id": list("abcde"), "rating": 1.0})
    pred = pd.DataFrame({"user_id": ["u"] * 2, "item_id": ["a", "b"], "prediction": [2.0, 1.0]})
    assert map_at_k(true, pred, k=2) == pytest.approx(1.0)
    assert recall_at_k(true, pred, k=2) == pytest.approx(2 / 5)


def test_users_in_only_one_frame_are_ignored():
    # c (truth only) and d (predictions only) leave every metric unchanged.
    common_true = TRUE[TRUE.user_id != "c"]
    common_pred = PRED[PRED.user_id != "d"]
    for metric in RANKING:
        assert metric(TRUE, PRED, k=K) == pytest.approx(metric(common_true, common_pred, k=K)), metric.__name__


def test_no_common_user_gives_zero():
    pred = PRED.assign(user_id="nobody")
    for metric in RANKING:
        assert metric(TRUE, pred, k=K) == 0.0


def test_fewer_than_k_predictions():
    # One prediction, a hit: precision still divides by k; recall and hit rate are perfect.
    true = pd.DataFrame({"user_id": ["u"], "item_id": ["x"], "rating": [1.0]})
    pred = pd.DataFrame({"user_id": ["u"], "item_id": ["x"], "prediction": [0.3]})
    assert precision_at_k(true, pred, k=10) == pytest.approx(1 / 10)
    assert recall_at_k(true, pred, k=10) == pytest.approx(1.0)
    assert ndcg_at_k(true, pred, k=10) == pytest.approx(1.0)
    assert map_at_k(true, pred, k=10) == pytest.approx(1.0)
    assert mrr_at_k(true, pred, k=10) == pytest.approx(1.0)


def test_ties_keep_row_order_and_top_k_is_by_score():
    true = pd.DataFrame({"user_id": ["u"], "item_id": ["x"], "rating": [1.0]})
    y_first = pd.DataFrame({"user_id": ["u", "u"], "item_id": ["y", "x"], "prediction": [1.0, 1.0]})
    # Equal scores: the row that comes first in rating_pred wins the single slot.
    assert hit_rate_at_k(true, y_first, k=1) == 0.0
    assert hit_rate_at_k(true, y_first.iloc[::-1], k=1) == 1.0
    assert mrr_at_k(true, y_first, k=2) == pytest.approx(1 / 2)
    # Without ties, row order does not matter.
    shuffled = PRED.sample(frac=1.0, random_state=3)
    for metric in RANKING:
        assert metric(TRUE, shuffled, k=K) == pytest.approx(metric(TRUE, PRED, k=K))


def test_duplicates():
    # A repeated truth row is one relevant item; a repeated prediction keeps its best score.
    true = pd.DataFrame({"user_id": ["u", "u", "u"], "item_id": ["x", "x", "z"], "rating": 1.0})
    pred = pd.DataFrame({"user_id": ["u"] * 4, "item_id": ["y", "x", "x", "z"], "prediction": [0.5, 0.1, 0.9, 0.2]})
    # Ranking: x (0.9), y (0.5), z (0.2): hits at ranks 1 and 3 out of 2 relevant items.
    assert recall_at_k(true, pred, k=3) == pytest.approx(2 / 2)
    assert ndcg_at_k(true, pred, k=3) == pytest.approx((disc(1) + disc(3)) / (disc(1) + disc(2)))
    assert map_at_k(true, pred, k=3) == pytest.approx((1 / 1 + 2 / 3) / 2)


def test_top_k_items():
    top = top_k_items(PRED, k=2)
    assert top[["user_id", "item_id", "rank"]].values.tolist() == [
        ["a", "1", 1], ["a", "2", 2], ["b", "5", 1], ["b", "2", 2], ["d", "1", 1]]


def _naive(true, pred, k):
    """Straightforward per-user loops over Python lists: an independent reference implementation."""
    relevant = {}
    for u, i in zip(true.user_id, true.item_id):
        relevant.setdefault(u, set()).add(i)
    lists = {}
    for row, (u, i, s) in enumerate(zip(pred.user_id, pred.item_id, pred.prediction)):
        lists.setdefault(u, []).append((-s, row, i))
    common = set(relevant) & set(lists)
    totals = dict.fromkeys(["precision", "recall", "ndcg", "map", "hr", "mrr"], 0.0)
    for u in common:
        ranked = []
        for _, _, i in sorted(lists[u]):
            if i not in ranked:
                ranked.append(i)
        hits = [r for r, i in enumerate(ranked[:k], start=1) if i in relevant[u]]
        n_rel = len(relevant[u])
        totals["precision"] += len(hits) / k
        totals["recall"] += len(hits) / n_rel
        totals["ndcg"] += sum(disc(r) for r in hits) / sum(disc(r) for r in range(1, min(n_rel, k) + 1))
        totals["map"] += sum((n + 1) / r for n, r in enumerate(hits)) / min(n_rel, k)
        totals["hr"] += 1.0 if hits else 0.0
        totals["mrr"] += 1 / hits[0] if hits else 0.0
    return {name: value / len(common) for name, value in totals.items()}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [1, 3, 10])
def test_matches_naive_reference_on_random_frames(seed, k):
    rnd = random.Random(seed)
    users, items = [f"u{i}" for i in range(12)], [f"i{i}" for i in range(15)]
    true = pd.DataFrame([(rnd.choice(users[:10]), rnd.choice(items)) for _ in range(40)],
                        columns=["user_id", "item_id"])
    true["rating"] = 1.0
    # Integer scores in a small range give many ties; users u10, u11 exist only in the predictions.
    pred = pd.DataFrame([(rnd.choice(users[2:]), rnd.choice(items), float(rnd.randint(0, 4))) for _ in range(90)],
                        columns=["user_id", "item_id", "prediction"])
    ref = _naive(true, pred, k)
    got = {"precision": precision_at_k(true, pred, k=k), "recall": recall_at_k(true, pred, k=k),
           "ndcg": ndcg_at_k(true, pred, k=k), "map": map_at_k(true, pred, k=k),
           "hr": hit_rate_at_k(true, pred, k=k), "mrr": mrr_at_k(true, pred, k=k)}
    assert got == pytest.approx(ref)


def test_recommenders_published_vectors():
    """Frames and expected values from Microsoft Recommenders' own unit tests
    (tests/unit/recommenders/evaluation/conftest.py and test_python_evaluation.py)."""
    true = pd.DataFrame({
        "user_id": [1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 1, 1],
        "item_id": [3, 1, 4, 5, 6, 7, 2, 5, 6, 8, 9, 10, 11, 12, 13, 14, 1, 2],
        "rating": [3, 5, 5, 3, 3, 1, 5, 5, 5, 4, 4, 3, 3, 3, 2, 1, 5, 4]})
    pred = pd.DataFrame({
        "user_id": [1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 1, 1],
        "item_id": [12, 10, 3, 5, 11, 13, 4, 10, 7, 13, 1, 3, 5, 2, 11, 14, 3, 10],
        "prediction": [12, 14, 13, 12, 11, 10, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 14, 13],
        "rating": [3, 5, 5, 3, 3, 1, 5, 5, 5, 4, 4, 3, 3, 3, 2, 1, 5, 4]})
    tol = dict(rel=1e-4)
    assert rmse(true, pred) == pytest.approx(7.254309, **tol)
    assert mae(true, pred) == pytest.approx(6.375, **tol)
    assert precision_at_k(true, pred, k=10) == pytest.approx(0.26666, **tol)
    assert recall_at_k(true, pred, k=10) == pytest.approx(0.37777, **tol)
    assert ndcg_at_k(true, pred, k=10) == pytest.approx(0.38172, **tol)
    assert map_at_k(true, pred, k=10) == pytest.approx(0.23613, **tol)
    # Truth scored against itself.
    assert precision_at_k(true, true, col_prediction="rating", k=10) == pytest.approx(0.6)
    for metric in (recall_at_k, ndcg_at_k, map_at_k):
        assert metric(true, true, col_prediction="rating", k=10) == pytest.approx(1.0)
    assert rmse(true, true, col_prediction="rating") == 0.0
    nohit = pred.assign(item_id=100)
    assert all(metric(true, nohit, k=10) == 0.0 for metric in RANKING)
    # Coverage and feature-vector diversity (their diversity_data fixture).
    train = pd.DataFrame({"UserId": [1, 1, 1, 2, 2, 3, 3, 3], "ItemId": [1, 2, 4, 3, 4, 3, 4, 5]})
    reco = pd.DataFrame({"UserId": [1, 1, 2, 2, 3, 3], "ItemId": [3, 5, 2, 5, 1, 2]})
    features = pd.DataFrame({"ItemId": [1, 2, 3, 4, 5], "features": [
        np.array([0.0, 1, 1, 0, 0]), np.array([0.0, 1, 0, 1, 0]), np.array([0.0, 0, 1, 1, 0]),
        np.array([0.0, 0, 1, 0, 1]), np.array([0.0, 0, 0, 1, 1])]})
    assert catalog_coverage(reco, train, col_user="UserId", col_item="ItemId") == pytest.approx(0.8)
    assert intra_list_diversity(reco, features, col_user="UserId", col_item="ItemId") == pytest.approx(0.5)


def test_rmse_mae_on_inner_join():
    true = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["1", "2", "1"], "rating": [4.0, 2.0, 5.0]})
    pred = pd.DataFrame({"user_id": ["a", "a", "z"], "item_id": ["1", "2", "9"], "prediction": [3.0, 4.0, 1.0]})
    # Only (a,1) and (a,2) are in both: errors 1 and -2.
    assert rmse(true, pred) == pytest.approx(math.sqrt((1 + 4) / 2))
    assert mae(true, pred) == pytest.approx((1 + 2) / 2)
    with pytest.raises(DataError, match="share no"):
        rmse(true, pred.assign(user_id="nobody"))
    with pytest.raises(DataError, match="non-finite"):
        mae(true, pred.assign(prediction=[np.nan, 1.0, 1.0]))


def test_custom_column_names():
    true = TRUE.rename(columns={"user_id": "u", "item_id": "i", "rating": "r"})
    pred = PRED.rename(columns={"user_id": "u", "item_id": "i", "prediction": "s"})
    names = dict(col_user="u", col_item="i", col_rating="r", col_prediction="s")
    for metric in RANKING:
        assert metric(true, pred, k=K, **names) == pytest.approx(metric(TRUE, PRED, k=K))
    # Positional arguments follow the documented order.
    assert ndcg_at_k(true, pred, "u", "i", "r", "s", K) == pytest.approx(ndcg_at_k(TRUE, PRED, k=K))


def test_catalog_coverage():
    # Recommended items: 1, 2, 3, 4, 5 (five distinct ones).
    assert catalog_coverage(PRED, 10) == pytest.approx(5 / 10)
    # Catalog given as ids: item "5" is outside it and does not count -> {1, 2, 3, 4} of 8.
    assert catalog_coverage(PRED, [str(i) for i in range(1, 5)] + ["6", "7", "8", "9"]) == pytest.approx(4 / 8)
    # Top-1 per user only: a -> 1, b -> 5, d -> 1: two distinct items.
    assert catalog_coverage(PRED, 10, k=1) == pytest.approx(2 / 10)
    with pytest.raises(ConfigError):
        catalog_coverage(PRED, 0)


def test_intra_list_diversity():
    recs = pd.DataFrame({"user_id": ["a", "a", "a", "b", "b", "c"], "item_id": ["x", "y", "z", "x", "w", "x"]})
    vectors = {"x": [1, 0], "y": [0, 1], "z": [1, 1], "w": [2, 0]}
    # a: cos(x,y)=0, cos(x,z)=cos(y,z)=1/sqrt(2) -> mean sim (0 + 2/sqrt(2))/3; b: cos(x,w)=1 -> 0.
    # c has a single item and is skipped.
    div_a = 1 - (0 + 2 / math.sqrt(2)) / 3
    expected = (div_a + 0.0) / 2
    assert intra_list_diversity(recs, vectors) == pytest.approx(expected)
    frame = pd.DataFrame.from_dict(vectors, orient="index", columns=["f0", "f1"])
    assert intra_list_diversity(recs, frame) == pytest.approx(expected)
    assert intra_list_diversity(recs, pairwise_similarity(vectors)) == pytest.approx(expected)

    # A callable similarity: everything equally similar at 0.25 -> diversity 0.75 for a and b.
    def quarter(ids):
        return np.full((len(ids), len(ids)), 0.25)

    assert intra_list_diversity(recs, quarter) == pytest.approx(0.75)
    # Items without a vector are skipped: b is left with one item.
    assert intra_list_diversity(recs, {k: v for k, v in vectors.items() if k != "w"}) == pytest.approx(div_a)


def test_validation():
    for metric in RANKING:
        with pytest.raises(ConfigError, match="k must be"):
            metric(TRUE, PRED, k=0)
        with pytest.raises(ConfigError, match="k must be"):
            metric(TRUE, PRED, k=2.5)
        with pytest.raises(DataError, match="prediction"):
            metric(TRUE, PRED.drop(columns="prediction"))
        with pytest.raises(DataError, match="item_id"):
            metric(TRUE.drop(columns="item_id"), PRED)
    with pytest.raises(DataError, match="rating"):
        rmse(TRUE.drop(columns="rating"), PRED)
    with pytest.raises(DataError, match="DataFrame"):
        ndcg_at_k([("a", "1")], PRED)
    # Integer ids in one frame and strings in the other would silently never match.
    with pytest.raises(DataError, match="user_id"):
        ndcg_at_k(TRUE.assign(user_id=range(len(TRUE))), PRED)
