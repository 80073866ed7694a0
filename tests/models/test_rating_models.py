"""Behaviour shared by the four Keras rating models (MF, FM, Wide & Deep, NeuMF) on synthetic data."""

import json

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tfrec.data import features as F
from tfrec.data import make_dataset
from tfrec.errors import ConfigError
from tfrec.models.fm import FactorizationMachine
from tfrec.models.mf import MatrixFactorization
from tfrec.models.neumf import NeuMF
from tfrec.models.wide_deep import WideAndDeep

# Small and quick settings; the behaviour under test does not depend on them.
FAST = dict(epochs=4, batch_size=512, steps_per_execution=4)
SPECS = {
    "mf": (MatrixFactorization, dict(embedding_dim=8), False),
    "fm": (FactorizationMachine, dict(embedding_dim=8), True),
    "wide_deep": (WideAndDeep, dict(embedding_dim=8, layer_sizes=[16], cross_buckets=64), True),
    "neumf_rating": (NeuMF, dict(embedding_dim=8, layer_sizes=[16, 8], objective="rating", learning_rate=5e-3),
                     False),
}


def _fit(name, data, **overrides):
    cls, kwargs, side = SPECS[name]
    model = cls(**{**FAST, **kwargs, **overrides})
    extra = dict(items=data.items, users=data.users) if side else {}
    return model.fit(data.ratings, verbose=0, **extra)


@pytest.fixture(scope="module", params=list(SPECS))
def fitted(request, synthetic_data):
    return request.param, _fit(request.param, synthetic_data)


def _pairs(model, data, n=40):
    """Known (user, item) pairs plus an unknown user and an unknown item."""
    r = data.ratings.iloc[:n]
    users = r.user_id.astype(str).tolist() + ["no-such-user", r.user_id.iloc[0]]
    items = r.item_id.astype(str).tolist() + [r.item_id.iloc[0], "no-such-item"]
    return users, items


def test_training_lowers_the_loss_and_beats_the_mean(fitted, synthetic_data):
    name, model = fitted
    loss = model.history_["loss"]
    assert loss[-1] < loss[0], (name, loss)
    assert model.best_epoch_ >= 1 and model.fit_seconds_ > 0
    # Fitted on ratings with real structure, the model beats predicting the mean on its training data.
    r = synthetic_data.ratings
    pred = model.predict_ratings(r.user_id.to_numpy(), r.item_id.to_numpy())
    assert pred.shape == (len(r),) and pred.dtype == np.float32
    assert np.sqrt(np.mean((pred - r.rating) ** 2)) < r.rating.std()


def test_refit_retrains_on_all_rows_for_the_best_epoch_count(fitted):
    name, model = fitted
    assert len(model.history_["refit_loss"]) == model.best_epoch_
    assert np.argmin(model.history_["val_loss"]) + 1 == model.best_epoch_


def test_config_round_trips_through_json(fitted):
    name, model = fitted
    config = json.loads(json.dumps(model.get_config()))
    assert config["vocabularies"]["user_id"] == model.vocabularies["user_id"]
    clone = type(model).from_config(config)
    assert clone.get_config() == config
    assert clone.get_params() == {k: v for k, v in config.items() if k != "vocabularies"}


def test_save_weights_and_from_config_give_identical_predictions(fitted, synthetic_data, tmp_path):
    name, model = fitted
    model.save_weights(str(tmp_path / "weights"))
    clone = type(model).from_config(model.get_config())
    clone.load_weights(str(tmp_path / "weights"))
    users, items = _pairs(model, synthetic_data)
    np.testing.assert_array_equal(clone.predict_ratings(users, items), model.predict_ratings(users, items))


def test_savedmodel_call_ids_matches_the_model(fitted, synthetic_data, tmp_path):
    name, model = fitted
    tf.saved_model.save(model, str(tmp_path / "sm"), signatures={"serving_default": model.serving_function()})
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    users, items = _pairs(model, synthetic_data)
    out = loaded.signatures["serving_default"](user_id=tf.constant(users), item_id=tf.constant(items))
    np.testing.assert_allclose(out["rating"].numpy(), model.predict_ratings(users, items), rtol=1e-6)


def test_call_ids_looks_up_the_same_features_as_the_pipeline(fitted, synthetic_data):
    name, model = fitted
    data = synthetic_data
    rows = data.ratings.iloc[:64]
    ds = make_dataset(rows, items=data.items if model.has_item_features else None,
                      users=data.users if model.has_user_features else None, batch_size=64, shuffle=False,
                      features=model._feature_subset())
    features = next(iter(ds))
    from_pipeline = model(features, training=False).numpy()
    from_ids = model.call_ids(tf.constant(rows.user_id.astype(str).tolist()),
                              tf.constant(rows.item_id.astype(str).tolist())).numpy()
    np.testing.assert_allclose(from_ids, from_pipeline, rtol=1e-6)
    if SPECS[name][2]:  # feature models really read the looked-up features
        assert set(model.side_tables) == {F.GENDER, F.AGE, F.OCCUPATION, F.ZIP, F.GENRES, F.YEAR}
        looked_up = model.features_from_ids(features[F.USER_ID], features[F.ITEM_ID])
        for key in model.side_tables:
            np.testing.assert_array_equal(looked_up[key].numpy(), features[key].numpy(), err_msg=key)


def test_recommend_and_similar_items_follow_the_contract(fitted, synthetic_data):
    name, model = fitted
    user = str(synthetic_data.ratings.user_id.iloc[0])
    recs = model.recommend([user, "no-such-user"], k=5)
    assert list(recs.columns) == ["user_id", "item_id", "score", "rank"]
    mine = recs[recs.user_id == user]
    assert mine["rank"].tolist() == [1, 2, 3, 4, 5]
    assert mine.score.is_monotonic_decreasing
    seen = set(synthetic_data.ratings[synthetic_data.ratings.user_id == user].item_id.astype(str))
    assert not seen & set(mine.item_id)
    # Scores are the model's own ranking scores for those pairs.
    scores = model.score_users([user])[0]
    pos = [model.item_index_[i] for i in mine.item_id]
    np.testing.assert_allclose(mine.score.to_numpy(), scores[pos], rtol=1e-6)
    item = model.catalog_[0]
    sim = model.similar_items([item], k=3)
    assert len(sim) == 3 and item not in set(sim.similar_item_id)
    assert (sim.score <= 1 + 1e-9).all()


def test_score_users_matches_pairwise_predictions(fitted):
    name, model = fitted
    users = list(model.user_index_)[:3]
    scores = model.score_users(users)
    assert scores.shape == (3, len(model.catalog_))
    pairs = model.predict_ratings(np.repeat(users, len(model.catalog_)), np.tile(model.catalog_, 3))
    np.testing.assert_allclose(scores.reshape(-1), pairs, rtol=1e-5, atol=1e-5)


def test_fit_on_a_dataset_is_keras_fit(fitted, synthetic_data):
    name, model = fitted
    ds = make_dataset(synthetic_data.ratings.iloc[:512], items=synthetic_data.items, users=synthetic_data.users,
                      batch_size=256, label_key="rating", features=model._feature_subset() + ["rating"])
    if getattr(model, "objective", "rating") != "rating":
        pytest.skip("implicit NeuMF trains on labels, not ratings")
    history = model.fit(ds, epochs=1, verbose=0)
    assert isinstance(history, tf.keras.callbacks.History) and len(history.history["loss"]) == 1


def test_fit_on_a_dataset_before_building_is_a_clear_error():
    ds = tf.data.Dataset.from_tensor_slices(({"user_id": ["1"], "item_id": ["2"]}, [3.0])).batch(1)
    with pytest.raises(ConfigError, match="fit on a ratings DataFrame first"):
        MatrixFactorization().fit(ds)


def test_feature_models_require_the_side_tables_they_were_built_with(synthetic_data):
    model = _fit("fm", synthetic_data, epochs=1, refit=False)
    with pytest.raises(ConfigError, match="pass users="):
        model.fit(synthetic_data.ratings, verbose=0, epochs=1)


def test_feature_models_work_without_demographics(synthetic_data):
    # ml-latest has no users table: the user-feature fields are simply absent.
    model = _fit("wide_deep", synthetic_data, epochs=1, refit=False)
    bare = WideAndDeep(**{**FAST, **SPECS["wide_deep"][1], "epochs": 1}).fit(
        synthetic_data.ratings, items=synthetic_data.items, verbose=0)
    assert set(bare.side_tables) == {F.GENRES, F.YEAR}
    assert not bare.has_crosses and model.has_crosses
    assert np.isfinite(bare.predict_ratings(["1"], ["1"])).all()


BAD = [
    (MatrixFactorization, dict(embedding_dim=-4), "embedding_dim"),
    (MatrixFactorization, dict(embedding_dim=2.5), "embedding_dim"),
    (MatrixFactorization, dict(l2=-0.1), "l2"),
    (MatrixFactorization, dict(rating_range=(5.0, 1.0)), "rating_range"),
    (MatrixFactorization, dict(rating_range="wide"), "rating_range"),
    (MatrixFactorization, dict(learning_rate=0), "learning_rate"),
    (MatrixFactorization, dict(pipeline="csv"), "pipeline"),
    (MatrixFactorization, dict(batch_size=0), "batch_size"),
    (MatrixFactorization, dict(refit="yes"), "refit"),
    (MatrixFactorization, dict(training_loop="eager"), "training_loop"),
    (FactorizationMachine, dict(embedding_dim=0), "embedding_dim"),
    (FactorizationMachine, dict(linear_l2=-1), "linear_l2"),
    (WideAndDeep, dict(layer_sizes=[32, -1]), "layer_sizes"),
    (WideAndDeep, dict(dropout=1.0), "dropout"),
    (WideAndDeep, dict(cross_buckets=0), "cross_buckets"),
    (NeuMF, dict(objective="pairwise"), "objective"),
    (NeuMF, dict(n_negatives=0), "n_negatives"),
    (NeuMF, dict(negative_sampling="hard"), "negative_sampling"),
    (NeuMF, dict(layer_sizes=[]), "layer_sizes"),
]


@pytest.mark.parametrize("cls,kwargs,argument", BAD, ids=[f"{c.__name__}-{a}" for c, _, a in BAD])
def test_bad_hyperparameters_raise_config_error_naming_the_argument(cls, kwargs, argument):
    with pytest.raises(ConfigError) as err:
        cls(**kwargs)
    message = str(err.value)
    assert argument in message and repr(list(kwargs.values())[0]) in message


def test_bad_fit_arguments_raise_config_error(synthetic_data):
    model = MatrixFactorization()
    with pytest.raises(ConfigError, match="validation_fraction"):
        model.fit(synthetic_data.ratings, validation_fraction=1.5)
    with pytest.raises(ConfigError, match="epochs"):
        model.fit(synthetic_data.ratings, epochs=-1)
    with pytest.raises(ConfigError, match="vocabularies"):
        MatrixFactorization(vocabularies={"user_id": ["1"]})


def test_missing_columns_raise_data_error():
    from tfrec.errors import DataError

    with pytest.raises(DataError, match="rating"):
        MatrixFactorization().fit(pd.DataFrame({"user_id": ["1"], "item_id": ["2"]}))
