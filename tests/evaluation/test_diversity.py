"""MMR re-ranking on hand-worked examples, and its effect on intra-list diversity."""

import math

import numpy as np
import pandas as pd
import pytest

from tfrec.errors import ConfigError, DataError
from tfrec.evaluation import intra_list_diversity, mmr_rerank

# Scores a=1.0, b=0.8, c=0.6, d=0.0 -> min-max relevance 1, 0.8, 0.6, 0.
CANDS = pd.DataFrame({"user_id": "u", "item_id": ["a", "b", "c", "d"], "score": [1.0, 0.8, 0.6, 0.0]})
# cos(a,b) = 1, cos(a,c) = cos(c,d) = 1/sqrt(2), cos(a,d) = cos(b,d) = 0.
VECTORS = {"a": [1, 0], "b": [1, 0], "c": [1, 1], "d": [0, 1]}
R2 = 1 / math.sqrt(2)


def test_lambda_one_keeps_the_score_order():
    out = mmr_rerank(CANDS.iloc[::-1], VECTORS, lambda_=1.0, k=4)
    assert out.item_id.tolist() == ["a", "b", "c", "d"]
    assert out["rank"].tolist() == [1, 2, 3, 4]
    assert out.score.tolist() == [1.0, 0.8, 0.6, 0.0]  # original scores are kept


def test_hand_worked_lambda_half():
    # Pick 1: a (highest relevance). Pick 2, value = 0.5 * rel - 0.5 * max sim to {a}:
    #   b: 0.5*0.8 - 0.5*1 = -0.1;  c: 0.5*0.6 - 0.5*R2 = -0.054;  d: 0.5*0 - 0.5*0 = 0  -> d
    # Pick 3, max sim to {a, d}: b: max(1, 0) = 1 -> -0.1;  c: max(R2, R2) -> -0.054  -> c; then b.
    assert 0.5 * 0.6 - 0.5 * R2 > 0.5 * 0.8 - 0.5 * 1
    assert mmr_rerank(CANDS, VECTORS, lambda_=0.5, k=4).item_id.tolist() == ["a", "d", "c", "b"]


def test_hand_worked_lambda_point_seven():
    # Pick 2: b: 0.7*0.8 - 0.3*1 = 0.26;  c: 0.7*0.6 - 0.3*R2 = 0.208;  d: 0 -> b.
    # Pick 3: c: 0.42 - 0.3*R2 = 0.208;  d: 0 - 0.3*0 = 0 -> c.
    assert mmr_rerank(CANDS, VECTORS, lambda_=0.7, k=3).item_id.tolist() == ["a", "b", "c"]


def test_callable_similarity_and_missing_vectors():
    def sim(ids):
        v = np.array([VECTORS[i] for i in ids], dtype=float)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        return v @ v.T

    assert mmr_rerank(CANDS, sim, lambda_=0.5, k=4).item_id.tolist() == ["a", "d", "c", "b"]
    # Without a vector, b is similar to nothing: at lambda 0.5 its value 0.5*0.8 = 0.4 beats d and c.
    partial = {k: v for k, v in VECTORS.items() if k != "b"}
    assert mmr_rerank(CANDS, partial, lambda_=0.5, k=2).item_id.tolist() == ["a", "b"]


def test_users_are_reranked_independently():
    other = pd.DataFrame({"user_id": "v", "item_id": ["d", "c", "a"], "score": [3.0, 2.0, 1.0]})
    both = pd.concat([other, CANDS], ignore_index=True)
    out = mmr_rerank(both, VECTORS, lambda_=0.5, k=2)
    assert out.user_id.tolist() == ["v", "v", "u", "u"]  # users in order of first appearance
    # v: d first; then c: 0.5*0.5 - 0.5*R2 < 0, a: 0.5*0 - 0.5*0 = 0 -> a.
    assert out.item_id.tolist() == ["d", "a", "a", "d"]
    assert len(mmr_rerank(both, VECTORS, k=10)) == 3 + 4  # fewer candidates than k


def test_mmr_raises_intra_list_diversity():
    rng = np.random.default_rng(0)
    # The 10 best-scored candidates all come from cluster 0; the rest alternate clusters 1 and 2.
    items = [f"i{j}" for j in range(40)]
    cluster = [0 if j < 10 else 1 + j % 2 for j in range(40)]
    vectors = {i: np.eye(3)[c] + 0.05 * rng.normal(size=3) for i, c in zip(items, cluster)}
    cands = pd.DataFrame({"user_id": np.repeat(["u", "v"], 40), "item_id": items * 2,
                          "score": np.tile(np.linspace(1, 0, 40), 2)})
    plain = cands.groupby("user_id").head(10)
    reranked = mmr_rerank(cands, vectors, lambda_=0.3, k=10)
    # MMR brings in the best item of each other cluster (i10, i11) right after the top one.
    assert reranked[reranked.user_id == "u"].item_id.tolist()[:3] == ["i0", "i10", "i11"]
    # Plain lists are near-zero diverse; 8 + 1 + 1 items give 17 of 45 dissimilar pairs (~0.38).
    assert intra_list_diversity(plain, vectors) < 0.05
    assert intra_list_diversity(reranked, vectors) == pytest.approx(17 / 45, abs=0.06)


def test_validation():
    with pytest.raises(ConfigError, match="lambda_"):
        mmr_rerank(CANDS, VECTORS, lambda_=1.5)
    with pytest.raises(ConfigError, match="k must be"):
        mmr_rerank(CANDS, VECTORS, k=0)
    with pytest.raises(DataError, match="score"):
        mmr_rerank(CANDS.drop(columns="score"), VECTORS)
    with pytest.raises(ConfigError, match="item_features"):
        mmr_rerank(CANDS, 42)
    with pytest.raises(DataError, match="shape"):
        mmr_rerank(CANDS, lambda ids: np.eye(2))
