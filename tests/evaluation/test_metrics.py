"""Metric functions on small hand-worked examples (expected values worked out here, by hand)."""

import math

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
    precision_at_k,
    recall_at_k,
    rmse,
)

# User "a" has relevant items {1, 3, 9}; user "b" has relevant {2}; user "c" only appears in truth.
TRUE = pd.DataFrame({"user_id": ["a", "a", "a", "b", "c"], "item_id": ["1", "3", "9", "2", "7"],
                     "rating": [5.0, 4.0, 3.0, 5.0, 1.0]})
# Predictions: a ranks 1 > 2 > 3 > 4 (hits at ranks 1 and 3); b ranks 5 > 2 (hit at rank 2).
PRED = pd.DataFrame({"user_id": ["a", "a", "a", "a", "b", "b"], "item_id": ["1", "2", "3", "4", "5", "2"],
                     "prediction": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]})
K = 3


def test_precision_recall_hit_rate_mrr():
    # a: 2 hits in top 3, b: 1 hit; common users are a and b (c has no predictions).
    assert precision_at_k(TRUE, PRED, k=K) == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert recall_at_k(TRUE, PRED, k=K) == pytest.approx((2 / 3 + 1 / 1) / 2)
    assert hit_rate_at_k(TRUE, PRED, k=K) == pytest.approx(1.0)
    assert mrr_at_k(TRUE, PRED, k=K) == pytest.approx((1 / 1 + 1 / 2) / 2)


def test_ndcg_binary_gains_ideal_over_min_relevant_k():
    dcg_a = 1 / math.log2(2) + 1 / math.log2(4)
    idcg_a = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)  # min(3 relevant, k=3) = 3
    dcg_b = 1 / math.log2(3)
    idcg_b = 1 / math.log2(2)  # min(1, 3) = 1
    assert ndcg_at_k(TRUE, PRED, k=K) == pytest.approx((dcg_a / idcg_a + dcg_b / idcg_b) / 2)


def test_map_divides_by_min_relevant_k():
    ap_a = (1 / 1 + 2 / 3) / min(3, K)
    ap_b = (1 / 2) / min(1, K)
    assert map_at_k(TRUE, PRED, k=K) == pytest.approx((ap_a + ap_b) / 2)
    # With k=1 only rank 1 counts: a hits, b misses.
    assert map_at_k(TRUE, PRED, k=1) == pytest.approx((1.0 + 0.0) / 2)


def test_top_k_is_by_score_not_row_order():
    shuffled = PRED.sample(frac=1.0, random_state=3)
    assert ndcg_at_k(TRUE, shuffled, k=K) == pytest.approx(ndcg_at_k(TRUE, PRED, k=K))


def test_rmse_mae_on_inner_join():
    true = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["1", "2", "1"], "rating": [4.0, 2.0, 5.0]})
    pred = pd.DataFrame({"user_id": ["a", "a", "z"], "item_id": ["1", "2", "9"], "prediction": [3.0, 4.0, 1.0]})
    assert rmse(true, pred) == pytest.approx(math.sqrt((1 + 4) / 2))
    assert mae(true, pred) == pytest.approx((1 + 2) / 2)


def test_custom_column_names():
    true = TRUE.rename(columns={"user_id": "u", "item_id": "i"})
    pred = PRED.rename(columns={"user_id": "u", "item_id": "i", "prediction": "s"})
    assert precision_at_k(true, pred, col_user="u", col_item="i", col_prediction="s", k=K) == \
        pytest.approx(precision_at_k(TRUE, PRED, k=K))


def test_coverage_and_diversity():
    assert catalog_coverage(PRED, catalog_size=10) == pytest.approx(5 / 10)
    recs = pd.DataFrame({"user_id": ["a", "a", "b", "b"], "item_id": ["x", "y", "x", "z"]})
    vectors = {"x": [1, 0], "y": [0, 1], "z": [1, 0]}
    # a: x vs y orthogonal -> distance 1; b: x vs z identical -> distance 0.
    assert intra_list_diversity(recs, vectors) == pytest.approx(0.5)


def test_validation():
    with pytest.raises(ConfigError, match="k must be"):
        ndcg_at_k(TRUE, PRED, k=0)
    with pytest.raises(DataError, match="prediction"):
        ndcg_at_k(TRUE, PRED.drop(columns="prediction"))
