"""tf.data pipelines: the generator and tensor builders yield identical, correctly typed feature dicts."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tfrec.data import features as F
from tfrec.data import generator_dataset, make_dataset, output_signature, sample_negatives, tensor_dataset
from tfrec.errors import ConfigError, DataError


def _collect(ds):
    out = {}
    for batch in ds:
        if isinstance(batch, tuple):
            batch = {**batch[0], "__label__": batch[1]}
        for k, v in batch.items():
            out.setdefault(k, []).append(v.numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize("shuffle, cache", [(False, True), (True, True), (True, False)])
def test_generator_and_tensor_pipelines_yield_identical_elements(synthetic_data, shuffle, cache):
    r = synthetic_data.ratings.iloc[:3000]
    kw = dict(items=synthetic_data.items, users=synthetic_data.users, batch_size=256, shuffle=shuffle, seed=7,
              cache=cache)
    tensor_ds = make_dataset(r, pipeline="tensor", **kw)
    generator_ds = make_dataset(r, pipeline="generator", **kw)
    a, b = _collect(tensor_ds), _collect(generator_ds)
    assert list(a) == list(F.FEATURE_NAMES)
    _assert_same(a, b)
    if not shuffle:  # in input order, with the ratings' own values
        assert a["user_id"].tolist() == [u.encode() for u in r.user_id]
        np.testing.assert_array_equal(a["rating"], r.rating.to_numpy())
        np.testing.assert_array_equal(a["timestamp"], r.timestamp.to_numpy())
    else:  # a permutation of the same examples; the second epoch is reshuffled identically in both
        assert sorted(a["item_id"].tolist()) == sorted(i.encode() for i in r.item_id)
        a2, b2 = _collect(tensor_ds), _collect(generator_ds)
        _assert_same(a2, b2)
        assert not np.array_equal(a2["item_id"], a["item_id"])


def test_feature_values_and_shapes(ml100k):
    r = ml100k.ratings.iloc[:5]
    batch = next(iter(make_dataset(r, items=ml100k.items, users=ml100k.users, batch_size=5, shuffle=False)))
    assert batch["genres"].shape == (5, F.MAX_GENRES)
    assert batch["user_id"].numpy()[0] == b"196" and batch["item_id"].numpy()[0] == b"242"
    assert batch["age"].numpy()[0] == 45  # user 196 is 49 years old -> the 45-49 group
    assert batch["zip"].numpy()[0] == b"551"  # 55105
    assert batch["gender"].numpy()[0] == b"M" and batch["occupation"].numpy()[0] == b"writer"
    assert batch["genres"].numpy()[0].tolist()[:2] == [b"Comedy", b""]  # item 242 (Kolya, 1996)
    title = ml100k.items.set_index("item_id").loc["242", "title"]
    assert title == "Kolya (1996)" and batch["year"].numpy()[0] == 1996
    spec = output_signature(True, True)
    for k, v in batch.items():
        assert v.dtype == spec[k].dtype and v.shape[1:] == spec[k].shape


@pytest.mark.parametrize("builder", [tensor_dataset, generator_dataset])
def test_element_spec_is_the_contract(synthetic_data, builder):
    ds = builder(synthetic_data.ratings.iloc[:50], items=synthetic_data.items, users=synthetic_data.users,
                 batch_size=8)
    expected = output_signature(has_users=True, has_items=True)
    assert list(ds.element_spec) == list(expected)
    for name, spec in ds.element_spec.items():
        assert spec.dtype == expected[name].dtype
        assert spec.shape.as_list() == [None] + expected[name].shape.as_list()
    assert set(output_signature(False, False)) == {"user_id", "item_id", "rating", "timestamp"}
    assert set(output_signature(False, True, features=["item_id", "genres"])) == {"item_id", "genres"}


def test_label_key_features_and_without_side_tables(synthetic_data):
    ds = make_dataset(synthetic_data.ratings, batch_size=64, label_key="rating")
    x, y = next(iter(ds))
    assert set(x) == {"user_id", "item_id", "timestamp"} and y.dtype == tf.float32 and y.shape == (64,)
    ds = make_dataset(synthetic_data.ratings, users=synthetic_data.users, batch_size=16, label_key="rating",
                      features=["user_id", "gender"], pipeline="generator")
    x, y = next(iter(ds))
    assert set(x) == {"user_id", "gender"} and y.shape == (16,)


def test_negatives_stream_with_label(synthetic_data):
    r = synthetic_data.ratings.iloc[:200]
    frame = sample_negatives(r, n_negatives=2, seed=0)
    kw = dict(items=synthetic_data.items, batch_size=100, shuffle=False, label_key="label")
    a = _collect(make_dataset(frame, pipeline="tensor", **kw))
    b = _collect(make_dataset(frame, pipeline="generator", **kw))
    _assert_same(a, b)
    assert set(a) == {"user_id", "item_id", "genres", "year", "__label__"}
    np.testing.assert_array_equal(a["__label__"], frame.label.to_numpy())


def test_batching_options(synthetic_data):
    r = synthetic_data.ratings.iloc[:100]
    sizes = [int(b["user_id"].shape[0]) for b in make_dataset(r, batch_size=30, shuffle=False)]
    assert sizes == [30, 30, 30, 10]
    sizes = [int(b["user_id"].shape[0]) for b in make_dataset(r, batch_size=30, drop_remainder=True)]
    assert sizes == [30, 30, 30]
    repeated = make_dataset(r, batch_size=40, repeat=True, pipeline="generator").take(7)
    assert sum(int(b["user_id"].shape[0]) for b in repeated) == 280  # more than one epoch


def test_unknown_ids_get_neutral_features(synthetic_data):
    r = pd.DataFrame({"user_id": ["no-such-user", "1"], "item_id": ["é-item", "1"], "rating": [3.0, 4.0],
                      "timestamp": [1, 2]})
    a = _collect(make_dataset(r, items=synthetic_data.items, users=synthetic_data.users, shuffle=False))
    b = _collect(make_dataset(r, items=synthetic_data.items, users=synthetic_data.users, shuffle=False,
                              pipeline="generator"))
    _assert_same(a, b)
    assert a["item_id"][0] == "é-item".encode("utf-8")
    assert a["gender"][0] == b"" and a["age"][0] == 0 and a["year"][0] == 0
    assert a["genres"][0].tolist() == [b""] * F.MAX_GENRES
    assert a["gender"][1] in (b"M", b"F") and a["year"][1] > 0


def test_bad_arguments(synthetic_data):
    r = synthetic_data.ratings
    with pytest.raises(ConfigError, match="pipeline"):
        make_dataset(r, pipeline="spark")
    with pytest.raises(ConfigError, match="batch_size"):
        make_dataset(r, batch_size=0)
    with pytest.raises(ConfigError, match="label_key"):
        make_dataset(r, label_key="label")
    with pytest.raises(ConfigError, match="unknown feature"):
        make_dataset(r, features=["user_id", "colour"])
    with pytest.raises(ConfigError, match="not available"):
        make_dataset(r, features=["user_id", "gender"])  # no users table given
    with pytest.raises(DataError, match="item_id"):
        make_dataset(r.drop(columns="item_id"))


def test_shuffle_changes_order_each_epoch(synthetic_data):
    ds = make_dataset(synthetic_data.ratings.iloc[:500], batch_size=500, seed=1)
    first = next(iter(ds))["item_id"].numpy()
    second = next(iter(ds))["item_id"].numpy()
    assert sorted(first) == sorted(second) and not np.array_equal(first, second)


def test_importing_the_data_package_does_not_import_tensorflow():
    code = "import sys, tfrec.data; sys.exit(1 if 'tensorflow' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
