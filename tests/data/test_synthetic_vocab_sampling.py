import numpy as np
import pandas as pd
import pytest

from tfrec.data import Vocabulary, fit_vocabularies, load_vocabularies, sample_negatives, save_vocabularies
from tfrec.data import synthetic_movielens
from tfrec.errors import ConfigError


def test_synthetic_is_deterministic_and_labelled():
    a = synthetic_movielens(100, 80, 2000, seed=5)
    b = synthetic_movielens(100, 80, 2000, seed=5)
    c = synthetic_movielens(100, 80, 2000, seed=6)
    pd.testing.assert_frame_equal(a.ratings, b.ratings)
    assert not a.ratings.equals(c.ratings)
    assert a.synthetic and "synthetic" in a.source
    assert not a.ratings.duplicated(["user_id", "item_id"]).any()
    assert set(a.users.columns) == {"user_id", "gender", "age", "occupation", "zip"}


def test_synthetic_ratings_carry_the_generating_signal():
    data = synthetic_movielens(400, 200, 16000, seed=0)
    means = data.ratings.groupby("item_id").rating.mean()
    bias = pd.Series(data.extras["item_bias"], index=data.items.item_id)
    assert np.corrcoef(means, bias.reindex(means.index))[0, 1] > 0.2
    counts = data.ratings.item_id.value_counts()
    assert counts.iloc[0] > 4 * counts.median()  # popularity is skewed


def test_vocabulary_layout_and_roundtrip(tmp_path):
    v = Vocabulary.fit(["b", "a", "b", "c", "c", "c", ""])
    assert v.values == ["c", "b", "a"] and v.size == 4
    assert v.lookup(["c", "a", "nope"]).tolist() == [1, 3, 0]
    v.save(tmp_path / "v.json")
    assert Vocabulary.load(tmp_path / "v.json") == v


def test_vocabulary_matches_stringlookup():
    import tensorflow as tf

    v = Vocabulary.fit(["x", "y", "y", "z"])
    layer = tf.keras.layers.StringLookup(vocabulary=v.values, num_oov_indices=1)
    probe = ["y", "x", "z", "unknown"]
    assert layer(tf.constant(probe)).numpy().tolist() == v.lookup(probe).tolist()


def test_fit_vocabularies_uses_train_only(synthetic_data, tmp_path):
    train = synthetic_data.ratings.iloc[:1000]
    vocabs = fit_vocabularies(train, synthetic_data.items, synthetic_data.users)
    assert set(vocabs["user_id"].values) == set(train.user_id)
    assert {"gender", "occupation", "zip", "genres"} <= set(vocabs)
    save_vocabularies(vocabs, tmp_path / "vocabularies.json")
    assert load_vocabularies(tmp_path / "vocabularies.json")["item_id"] == vocabs["item_id"]


@pytest.mark.parametrize("strategy", ["uniform", "popularity"])
def test_negatives_never_positive(synthetic_data, strategy):
    r = synthetic_data.ratings
    out = sample_negatives(r, n_negatives=3, strategy=strategy, seed=1)
    assert (out.label == 1).sum() == len(r) and (out.label == 0).sum() == 3 * len(r)
    positives = set(zip(r.user_id, r.item_id))
    negs = out[out.label == 0]
    assert not any(pair in positives for pair in zip(negs.user_id, negs.item_id))
    again = sample_negatives(r, n_negatives=3, strategy=strategy, seed=1)
    pd.testing.assert_frame_equal(out, again)


def test_negatives_bad_args(synthetic_data):
    with pytest.raises(ConfigError, match="strategy"):
        sample_negatives(synthetic_data.ratings, strategy="nope")
