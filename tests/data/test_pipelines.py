import numpy as np
import pytest
import tensorflow as tf

from tfrec.data import features as F
from tfrec.data import make_dataset, output_signature
from tfrec.errors import ConfigError


def _collect(ds):
    out = {}
    for batch in ds:
        for k, v in batch.items():
            out.setdefault(k, []).append(v.numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


@pytest.mark.parametrize("shuffle", [False, True])
def test_generator_and_tensor_pipelines_yield_identical_elements(synthetic_data, shuffle):
    r = synthetic_data.ratings.iloc[:3000]
    kw = dict(items=synthetic_data.items, users=synthetic_data.users, batch_size=256, shuffle=shuffle, seed=7)
    a = _collect(make_dataset(r, pipeline="tensor", **kw))
    b = _collect(make_dataset(r, pipeline="generator", **kw))
    assert a.keys() == b.keys() == set(F.FEATURE_NAMES)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_feature_values_and_shapes(ml100k):
    r = ml100k.ratings.iloc[:5]
    batch = next(iter(make_dataset(r, items=ml100k.items, users=ml100k.users, batch_size=5, shuffle=False)))
    assert batch["genres"].shape == (5, F.MAX_GENRES)
    assert batch["user_id"].numpy()[0] == b"196"
    assert batch["age"].numpy()[0] == 45  # user 196 is 49 years old -> the 45-49 group
    assert batch["zip"].numpy()[0] == b"551"  # 55105
    assert batch["genres"].numpy()[0].tolist()[:2] == [b"Comedy", b""]
    spec = output_signature(True, True)
    for k, v in batch.items():
        assert v.dtype == spec[k].dtype


def test_label_key_and_without_side_tables(synthetic_data):
    ds = make_dataset(synthetic_data.ratings, batch_size=64, label_key="rating")
    x, y = next(iter(ds))
    assert set(x) == {"user_id", "item_id", "timestamp"} and y.dtype == tf.float32
    with pytest.raises(ConfigError, match="pipeline"):
        make_dataset(synthetic_data.ratings, pipeline="spark")
    with pytest.raises(ConfigError, match="batch_size"):
        make_dataset(synthetic_data.ratings, batch_size=0)


def test_shuffle_changes_order_each_epoch(synthetic_data):
    ds = make_dataset(synthetic_data.ratings.iloc[:500], batch_size=500, seed=1)
    first = next(iter(ds))["item_id"].numpy()
    second = next(iter(ds))["item_id"].numpy()
    assert sorted(first) == sorted(second) and not np.array_equal(first, second)
