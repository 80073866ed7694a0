"""Split properties: sizes, disjointness, union = input, no leakage, determinism, purity."""

import numpy as np
import pandas as pd
import pytest

from tfrec.data import (
    cold_start_user_split,
    filter_min_interactions,
    leave_last_out_split,
    random_split,
    temporal_split,
)
from tfrec.errors import ConfigError, DataError


def _keys(frame):
    return set(zip(frame.user_id, frame.item_id, frame.timestamp))


def _assert_partition(parts, whole):
    assert sum(len(p) for p in parts) == len(whole)
    keys = [_keys(p) for p in parts]
    for i in range(len(keys)):
        for j in range(i + 1, len(keys)):
            assert not keys[i] & keys[j]
    assert set().union(*keys) == _keys(whole)
    for p in parts:
        assert list(p.columns) == list(whole.columns)
        assert (p.index == np.arange(len(p))).all()  # index reset
        assert p.dtypes.equals(whole.dtypes)


@pytest.fixture()
def frozen(synthetic_data):
    """The synthetic ratings plus a copy to check that splits do not mutate their input."""
    r = synthetic_data.ratings
    return r, r.copy(deep=True)


def test_random_split_sizes_disjoint_deterministic(ml100k):
    r = ml100k.ratings
    train, test = random_split(r, test_fraction=0.2, seed=0)
    assert len(test) == 20_000 and len(train) == 80_000
    _assert_partition((train, test), r)
    again, again_test = random_split(r, 0.2, 0)
    pd.testing.assert_frame_equal(train, again)
    pd.testing.assert_frame_equal(test, again_test)
    other, _ = random_split(r, 0.2, 1)
    assert not train.equals(other)


def test_temporal_split_has_no_future_in_train(ml100k):
    train, val, test = temporal_split(ml100k.ratings)
    assert (len(train), len(val), len(test)) == (75_000, 15_000, 10_000)
    _assert_partition((train, val, test), ml100k.ratings)
    assert train.timestamp.max() <= val.timestamp.min()
    assert val.timestamp.max() <= test.timestamp.min()


def test_temporal_split_ties_are_deterministic():
    # Six ratings at the same second: the cut follows (user_id, item_id) order, whatever the row order.
    r = pd.DataFrame({"user_id": list("cbaabc"), "item_id": list("121212"), "rating": 1.0, "timestamp": 5})
    train, val, test = temporal_split(r, fractions=(0.5, 0.25, 0.25))
    assert set(zip(train.user_id, train.item_id)) == {("a", "1"), ("a", "2"), ("b", "1")}
    shuffled = r.sample(frac=1.0, random_state=3).reset_index(drop=True)
    train2, _, _ = temporal_split(shuffled, fractions=(0.5, 0.25, 0.25))
    assert set(zip(train2.user_id, train2.item_id)) == set(zip(train.user_id, train.item_id))


def test_leave_last_out_picks_latest(ml100k):
    r = ml100k.ratings
    train, test = leave_last_out_split(r)
    assert len(test) == r.user_id.nunique() == 943
    assert test.user_id.is_unique
    _assert_partition((train, test), r)
    latest = r.groupby("user_id").timestamp.max()
    assert (test.set_index("user_id").timestamp == latest.reindex(test.user_id).to_numpy()).all()
    merged = train.merge(test[["user_id", "timestamp"]], on="user_id", suffixes=("", "_test"))
    assert (merged.timestamp <= merged.timestamp_test).all()


def test_leave_last_out_ties_and_single_rating_users():
    r = pd.DataFrame({"user_id": ["a", "a", "a", "b"], "item_id": ["1", "3", "2", "9"],
                      "rating": [5.0] * 4, "timestamp": [1, 5, 5, 7]})
    train, test = leave_last_out_split(r)
    # Tie on the latest timestamp: the larger item_id wins, independent of row order.
    assert test.to_dict("records") == [{"user_id": "a", "item_id": "3", "rating": 5.0, "timestamp": 5}]
    assert "b" in set(train.user_id) and "b" not in set(test.user_id)  # a single rating stays in train
    _, test2 = leave_last_out_split(r.iloc[::-1].reset_index(drop=True))
    pd.testing.assert_frame_equal(test, test2)


def test_cold_start_users_absent_from_train(ml100k):
    train, test = cold_start_user_split(ml100k.ratings, test_fraction=0.1, seed=3)
    assert not set(train.user_id) & set(test.user_id)
    assert test.user_id.nunique() == round(943 * 0.1)
    _assert_partition((train, test), ml100k.ratings)
    again, _ = cold_start_user_split(ml100k.ratings, test_fraction=0.1, seed=3)
    pd.testing.assert_frame_equal(train, again)
    _, other = cold_start_user_split(ml100k.ratings, test_fraction=0.1, seed=4)
    assert set(other.user_id) != set(test.user_id)


def test_splits_are_pure(frozen):
    r, before = frozen
    random_split(r, 0.3, seed=1)
    temporal_split(r)
    leave_last_out_split(r)
    cold_start_user_split(r, 0.2, seed=1)
    filter_min_interactions(r, min_user=20, min_item=20)
    pd.testing.assert_frame_equal(r, before)


def test_filter_min_interactions_fixed_point():
    r = pd.DataFrame({"user_id": list("aaabbc"), "item_id": list("xyzxyx"), "rating": 1.0, "timestamp": 0})
    out = filter_min_interactions(r, min_user=2, min_item=2)
    assert (out.groupby("user_id").size() >= 2).all() and (out.groupby("item_id").size() >= 2).all()
    assert set(out.user_id) == {"a", "b"} and set(out.item_id) == {"x", "y"}
    pd.testing.assert_frame_equal(filter_min_interactions(r), r)  # the defaults keep everything


def test_filter_min_interactions_needs_iteration(ml100k):
    out = filter_min_interactions(ml100k.ratings, min_user=50, min_item=50)
    assert out.groupby("user_id").size().min() >= 50 and out.groupby("item_id").size().min() >= 50
    # One pass of each filter is not enough on ML-100K: removing items drops users below 50.
    items_ok = ml100k.ratings.groupby("item_id").item_id.transform("size") >= 50
    once = ml100k.ratings[items_ok]
    assert once.groupby("user_id").size().min() < 50 and len(out) < len(once)


def test_bad_arguments():
    r = pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"], "timestamp": [1, 2]})
    for bad in (0, 1, 1.5, -0.1, "x", None):
        with pytest.raises(ConfigError, match="test_fraction"):
            random_split(r, test_fraction=bad)
        with pytest.raises(ConfigError, match="test_fraction"):
            cold_start_user_split(r, test_fraction=bad)
    for bad in ((0.5, 0.5, 0.5), (0.5, 0.5), (1.0, 0.0, 0.0), ("a", 0.5, 0.5), 3):
        with pytest.raises(ConfigError, match="fractions"):
            temporal_split(r, fractions=bad)
    with pytest.raises(ConfigError, match="min_user"):
        filter_min_interactions(r, min_user=0)
    with pytest.raises(DataError, match="missing column"):
        random_split(r.drop(columns="user_id"))
    with pytest.raises(DataError, match="timestamp"):
        leave_last_out_split(r.drop(columns="timestamp"))
    with pytest.raises(DataError, match="timestamp"):
        temporal_split(r.assign(timestamp=["late", "early"]))
    with pytest.raises(DataError, match="DataFrame"):
        random_split([("a", "x")])
