"""Negative sampling: never a user's positive, right counts, deterministic, popularity-shaped."""

import numpy as np
import pandas as pd
import pytest

from tfrec.data import sample_negatives
from tfrec.errors import ConfigError, DataError


@pytest.mark.parametrize("strategy", ["uniform", "popularity"])
def test_negatives_never_positive(synthetic_data, strategy):
    r = synthetic_data.ratings
    out = sample_negatives(r, n_negatives=3, strategy=strategy, seed=1)
    assert list(out.columns) == ["user_id", "item_id", "label"] and out.label.dtype == np.float32
    assert (out.label == 1).sum() == len(r) and (out.label == 0).sum() == 3 * len(r)
    pos = out.iloc[: len(r)]
    assert (pos.user_id.to_numpy() == r.user_id.to_numpy()).all() and (pos.item_id.to_numpy() == r.item_id.to_numpy()).all()
    negs = out.iloc[len(r):]
    # Negatives are grouped by positive: each positive's user, n_negatives times.
    assert (negs.user_id.to_numpy() == np.repeat(r.user_id.to_numpy(), 3)).all()
    positives = set(zip(r.user_id, r.item_id))
    assert not any(pair in positives for pair in zip(negs.user_id, negs.item_id))
    assert set(negs.item_id) <= set(r.item_id)
    pd.testing.assert_frame_equal(out, sample_negatives(r, n_negatives=3, strategy=strategy, seed=1))
    assert not out.equals(sample_negatives(r, n_negatives=3, strategy=strategy, seed=2))


def test_popularity_strategy_prefers_popular_items(synthetic_data):
    r = synthetic_data.ratings
    counts = r.item_id.value_counts()
    top, bottom = set(counts.index[:15]), set(counts.index[-15:])

    def share(strategy):
        negs = sample_negatives(r, n_negatives=4, strategy=strategy, seed=0).query("label == 0")
        return negs.item_id.isin(top).mean(), negs.item_id.isin(bottom).mean()

    uni_top, uni_bottom = share("uniform")
    pop_top, pop_bottom = share("popularity")
    assert pop_top > 2 * uni_top and pop_bottom < uni_bottom
    # Uniform: each negative is uniform over the items the user has not rated.
    pos = r.groupby("user_id").item_id.agg(set)
    n_items = len(counts)
    expected = np.mean([len(bottom - pos[u]) / (n_items - len(pos[u])) for u in r.user_id])
    assert abs(uni_bottom - expected) < 0.01


def test_item_pool_and_dense_users():
    # User "a" has rated all but one item of the pool: rejection sampling alone would struggle.
    pool = [str(i) for i in range(50)]
    r = pd.DataFrame({"user_id": ["a"] * 49 + ["b"], "item_id": pool[:49] + ["0"]})
    out = sample_negatives(r, n_negatives=5, strategy="popularity", seed=0, items=pool + ["extra"])
    negs = out[(out.label == 0) & (out.user_id == "a")]
    assert set(negs.item_id) <= {"49", "extra"} and len(negs) == 49 * 5
    assert "0" not in set(out[(out.label == 0) & (out.user_id == "b")].item_id)


def test_zero_negatives_and_errors(synthetic_data):
    r = synthetic_data.ratings
    out = sample_negatives(r, n_negatives=0)
    assert len(out) == len(r) and (out.label == 1).all()
    with pytest.raises(ConfigError, match="strategy"):
        sample_negatives(r, strategy="nope")
    with pytest.raises(ConfigError, match="n_negatives"):
        sample_negatives(r, n_negatives=-1)
    with pytest.raises(DataError, match="item_id"):
        sample_negatives(r.drop(columns="item_id"))
    full = pd.DataFrame({"user_id": ["a", "a"], "item_id": ["x", "y"]})
    with pytest.raises(ConfigError, match="every item"):
        sample_negatives(full, n_negatives=1)
