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
from tfrec.errors import ConfigError


def _keys(frame):
    return set(zip(frame.user_id, frame.item_id, frame.timestamp))


def test_random_split_sizes_disjoint_deterministic(ml100k):
    r = ml100k.ratings
    train, test = random_split(r, test_fraction=0.2, seed=0)
    assert len(test) == 20_000 and len(train) == 80_000
    assert not (_keys(train) & _keys(test)) and len(_keys(train) | _keys(test)) == len(_keys(r))
    again, _ = random_split(r, 0.2, 0)
    pd.testing.assert_frame_equal(train, again)
    other, _ = random_split(r, 0.2, 1)
    assert not train.equals(other)


def test_temporal_split_has_no_future_in_train(ml100k):
    train, val, test = temporal_split(ml100k.ratings)
    assert (len(train), len(val), len(test)) == (75_000, 15_000, 10_000)
    assert train.timestamp.max() <= val.timestamp.min()
    assert val.timestamp.max() <= test.timestamp.min()


def test_leave_last_out_picks_latest(ml100k):
    r = ml100k.ratings
    train, test = leave_last_out_split(r)
    assert len(test) == r.user_id.nunique() == 943
    assert test.user_id.is_unique
    latest = r.groupby("user_id").timestamp.max()
    assert (test.set_index("user_id").timestamp == latest.reindex(test.user_id).to_numpy()).all()
    merged = train.merge(test[["user_id", "timestamp"]], on="user_id", suffixes=("", "_test"))
    assert (merged.timestamp <= merged.timestamp_test).all()
    assert len(train) + len(test) == len(r)


def test_leave_last_out_ties_and_single_rating_users():
    r = pd.DataFrame({"user_id": ["a", "a", "a", "b"], "item_id": ["1", "3", "2", "9"],
                      "rating": [5.0] * 4, "timestamp": [1, 5, 5, 7]})
    train, test = leave_last_out_split(r)
    assert test.to_dict("records") == [{"user_id": "a", "item_id": "3", "rating": 5.0, "timestamp": 5}]
    assert "b" in set(train.user_id)  # a single rating stays in train


def test_cold_start_users_absent_from_train(ml100k):
    train, test = cold_start_user_split(ml100k.ratings, test_fraction=0.1, seed=3)
    assert not set(train.user_id) & set(test.user_id)
    assert test.user_id.nunique() == round(943 * 0.1)
    assert len(train) + len(test) == 100_000


def test_filter_min_interactions_fixed_point():
    r = pd.DataFrame({"user_id": list("aaabbc"), "item_id": list("xyzxyx"), "rating": 1.0, "timestamp": 0})
    out = filter_min_interactions(r, min_user=2, min_item=2)
    assert (out.groupby("user_id").size() >= 2).all() and (out.groupby("item_id").size() >= 2).all()
    assert set(out.user_id) == {"a", "b"} and set(out.item_id) == {"x", "y"}


def test_bad_arguments():
    r = pd.DataFrame({"user_id": ["a"], "item_id": ["x"], "timestamp": [1]})
    with pytest.raises(ConfigError, match="test_fraction"):
        random_split(r, test_fraction=1.5)
    with pytest.raises(ConfigError, match="fractions"):
        temporal_split(r, fractions=(0.5, 0.5, 0.5))
