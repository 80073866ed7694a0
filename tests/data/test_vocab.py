"""Vocabularies: StringLookup layout, deterministic order, JSON round trip, fitted on train only."""

import json

import numpy as np
import pytest

from tfrec.data import Vocabulary, fit_vocabularies, load_vocabularies, save_vocabularies
from tfrec.data.vocab import OOV_TOKEN
from tfrec.errors import ConfigError, DataError


def test_layout_order_and_roundtrip(tmp_path):
    v = Vocabulary.fit(["b", "a", "b", "c", "c", "c", "", "d", "a"])
    # Frequency first, ties by value; "" (padding) is never a value; index 0 is OOV.
    assert v.values == ["c", "a", "b", "d"] and v.size == 5 and len(v) == 4
    assert v.lookup(["c", "d", "nope", ""]).tolist() == [1, 4, 0, 0]
    assert v.lookup(np.array([["a", "b"], ["x", "c"]], dtype=object)).tolist() == [[2, 3], [0, 1]]
    assert v.lookup([b"a"]).tolist() == [2]  # bytes from tf.data decode as UTF-8
    assert v.lookup(["a"]).dtype == np.int64
    assert "a" in v and "zz" not in v
    v.save(tmp_path / "v.json")
    assert json.loads((tmp_path / "v.json").read_text()) == {"oov_token": OOV_TOKEN, "values": v.values}
    assert Vocabulary.load(tmp_path / "v.json") == v
    assert Vocabulary.from_dict(v.to_dict()) == v
    assert [p.name for p in tmp_path.iterdir()] == ["v.json"]  # atomic write leaves no temp file


def test_min_count_and_non_string_values():
    v = Vocabulary.fit([1, 1, 2, 3, 3, 3], min_count=2)
    assert v.values == ["3", "1"] and v.lookup([2, 3]).tolist() == [0, 1]
    with pytest.raises(ConfigError, match="min_count"):
        Vocabulary.fit(["a"], min_count=0)


def test_matches_stringlookup():
    import tensorflow as tf

    v = Vocabulary.fit(["x", "y", "y", "z", "é"])
    layer = tf.keras.layers.StringLookup(vocabulary=v.values, num_oov_indices=1)
    probe = ["y", "x", "z", "é", "unknown", ""]
    assert layer(tf.constant(probe)).numpy().tolist() == v.lookup(probe).tolist()
    assert layer.vocabulary_size() == v.size


def test_invalid_vocabularies_and_files(tmp_path):
    with pytest.raises(DataError, match="unique"):
        Vocabulary(["a", "b", "a"])
    with pytest.raises(DataError, match="OOV"):
        Vocabulary(["a", OOV_TOKEN])
    with pytest.raises(DataError, match="single string"):
        Vocabulary("abc")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match=r"bad\.json: not a valid JSON"):
        Vocabulary.load(tmp_path / "bad.json")
    (tmp_path / "wrong.json").write_text('{"values": "abc"}')
    with pytest.raises(DataError, match=r"wrong\.json: expected an object with a 'values' list"):
        Vocabulary.load(tmp_path / "wrong.json")
    with pytest.raises(DataError, match="not found"):
        load_vocabularies(tmp_path / "missing.json")


def test_fit_vocabularies_uses_train_only(synthetic_data, tmp_path):
    r = synthetic_data.ratings
    train_users = sorted(set(r.user_id))[:50]
    train = r[r.user_id.isin(train_users)]
    vocabs = fit_vocabularies(train, items=synthetic_data.items, users=synthetic_data.users)
    assert set(vocabs) == {"user_id", "item_id", "gender", "occupation", "zip", "genres"}
    assert set(vocabs["user_id"].values) == set(train.user_id)
    assert set(vocabs["item_id"].values) == set(train.item_id)
    users = synthetic_data.users.set_index("user_id")
    assert set(vocabs["zip"].values) == {z[:3] for z in users.loc[train_users, "zip"]}  # prefixes, train users
    assert set(vocabs["occupation"].values) == set(users.loc[train_users, "occupation"])
    items = synthetic_data.items.set_index("item_id")
    expected_genres = {g for gs in items.loc[sorted(set(train.item_id)), "genres"] for g in gs}
    assert set(vocabs["genres"].values) == expected_genres and "" not in vocabs["genres"]
    save_vocabularies(vocabs, tmp_path / "vocabularies.json")
    loaded = load_vocabularies(tmp_path / "vocabularies.json")
    assert loaded.keys() == vocabs.keys() and all(loaded[k] == vocabs[k] for k in vocabs)


def test_fit_vocabularies_without_side_tables(synthetic_data):
    vocabs = fit_vocabularies(synthetic_data.ratings)
    assert set(vocabs) == {"user_id", "item_id"}
    with pytest.raises(DataError, match="user_id"):
        fit_vocabularies(synthetic_data.ratings.drop(columns="user_id"))
