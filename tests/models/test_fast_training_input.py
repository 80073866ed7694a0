"""The two-tower's fast training path: fused Adam, encoded (string-free) batches."""

import numpy as np
import pandas as pd
import pytest

import tfrec  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf

from tfrec.models.encoded_input import encode_columns, index_batches
from tfrec.models.optimizers import DenseGradientAdam, FusedAdam


def test_fused_adam_takes_keras_adams_steps():
    rng = np.random.default_rng(0)
    init = [rng.normal(size=(7, 3)).astype(np.float32), rng.normal(size=(4,)).astype(np.float32)]
    grads = [[rng.normal(size=w.shape).astype(np.float32) for w in init] for _ in range(5)]
    results = []
    for cls in (DenseGradientAdam, FusedAdam):
        vs = [tf.Variable(w) for w in init]
        opt = cls(0.01)
        for g in grads:
            opt.apply_gradients(zip([tf.constant(x) for x in g], vs))
        results.append([v.numpy() for v in vs])
    for keras_w, fused_w, w0 in zip(*results, init):
        assert not np.allclose(fused_w, w0)  # it moved
        np.testing.assert_allclose(fused_w, keras_w, rtol=1e-5, atol=1e-6)


def test_index_batches_cover_every_row_once_per_epoch_in_new_orders():
    cols = {"a": np.arange(10, dtype=np.int32), "b": np.arange(10, dtype=np.float32)[:, None] * 2}
    ds = index_batches(cols, batch_size=4, shuffle=True, seed=3)
    epochs = [[{k: v.numpy() for k, v in b.items()} for b in ds] for _ in range(2)]
    for batches in epochs:
        assert [len(b["a"]) for b in batches] == [4, 4, 2]
        rows = np.concatenate([b["a"] for b in batches])
        assert sorted(rows.tolist()) == list(range(10))
        np.testing.assert_array_equal(np.concatenate([b["b"] for b in batches])[:, 0], rows * 2)  # rows aligned
    assert not np.array_equal(np.concatenate([b["a"] for b in epochs[0]]), np.concatenate([b["a"] for b in epochs[1]]))
    dropped = list(index_batches(cols, batch_size=4, shuffle=False, drop_remainder=True))
    assert [b["a"].numpy().tolist() for b in dropped] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_encode_columns_runs_the_encoder_per_chunk_and_stores_int32():
    cols = {"s": np.array([str(i % 3) for i in range(7)], dtype=object)}
    lookup = tf.keras.layers.StringLookup(vocabulary=["0", "1", "2"])
    out = encode_columns(cols, lambda f: {"i": lookup(f["s"]), "x": tf.cast(lookup(f["s"]), tf.float32)}, chunk=3)
    assert out["i"].dtype == np.int32 and out["x"].dtype == np.float32
    assert out["i"].tolist() == [1, 2, 3, 1, 2, 3, 1]


@pytest.mark.parametrize("use_features", [True, False])
def test_two_tower_trains_on_encoded_batches_like_raw_ones(use_features):
    """One loss on the same rows: encoded batch (what fit streams) == raw feature dict (what the
    prepared path and the strategies feed), so the two paths train the same model."""
    from tfrec.data import synthetic_movielens
    from tfrec.data.pipelines import feature_columns
    from tfrec.models.two_tower import TwoTower

    data = synthetic_movielens(n_users=40, n_items=30, n_ratings=400, seed=0)
    model = TwoTower(embedding_dim=8, layer_sizes=(8,), ensemble_size=2, history_length=4, epochs=1, batch_size=64,
                     use_features=use_features, id_dropout=0.0)
    model.fit(data.ratings, items=data.items, users=data.users, validation_fraction=0.0, verbose=0)
    rows = data.ratings.iloc[:50]
    names = [n for n in model.feature_names if n in ("user_id", "item_id") or n in (model._side or {})] + ["timestamp"]
    columns = feature_columns(rows, items=data.items if use_features else None,
                              users=data.users if use_features else None, features=names)
    raw = {k: tf.constant(v) for k, v in columns.items()}
    encoded = {k: tf.constant(v) for k, v in encode_columns(columns, model._encode_features).items()}
    assert all(v.dtype != tf.string for v in encoded.values())
    np.testing.assert_allclose(model.compute_loss(encoded).numpy(), model.compute_loss(raw).numpy(), rtol=1e-5)


def test_index_batches_keep_the_raw_pipelines_shuffled_row_order():
    from tfrec.data import synthetic_movielens
    from tfrec.data.pipelines import make_dataset

    ratings = synthetic_movielens(n_users=60, n_items=40, n_ratings=900, seed=0).ratings
    tf.keras.utils.set_random_seed(0)
    raw = make_dataset(ratings, batch_size=128, shuffle=True, seed=4, features=["user_id", "item_id", "timestamp"],
                       drop_remainder=True)
    want = [np.concatenate([b["timestamp"].numpy() for b in raw]) for _ in range(2)]
    tf.keras.utils.set_random_seed(0)
    enc = index_batches({"timestamp": ratings["timestamp"].to_numpy()}, batch_size=128, shuffle=True, seed=4,
                        drop_remainder=True)
    got = [np.concatenate([b["timestamp"].numpy() for b in enc]) for _ in range(2)]
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert not np.array_equal(got[0], got[1])


@pytest.mark.parametrize("dataset", ["movielens", "shop"])
def test_side_features_encoded_once_per_id_give_the_per_row_arrays(dataset, tmp_path):
    """encode_rows_and_sides (what TwoTower's fit streams) == every row joined and encoded, also for
    ids the side tables lack (neutral values) and a schema dataset's own typed features."""
    from tfrec.data import features as F, load_dataset, synthetic_movielens
    from tfrec.data.examples import write_shop_dataset
    from tfrec.data.pipelines import feature_columns
    from tfrec.models.encoded_input import encode_rows_and_sides
    from tfrec.models.two_tower import TwoTower

    if dataset == "movielens":
        data = synthetic_movielens(n_users=40, n_items=30, n_ratings=400, seed=0)
    else:
        data = load_dataset(write_shop_dataset(tmp_path / "s", n_customers=40, n_products=30, events_per_customer=8))
    users, items = data.users.iloc[5:], data.items.iloc[3:]  # some ids without side features
    model = TwoTower(embedding_dim=8, layer_sizes=(8,), ensemble_size=2, history_length=4, epochs=1, batch_size=64)
    model.fit(data.ratings, items=items, users=users, validation_fraction=0.0, verbose=0)
    names = [n for n in model.feature_names if n in (F.USER_ID, F.ITEM_ID) or n in (model._side or {})]
    names.append(F.TIMESTAMP)
    assert len(model.user_feature_names) >= 2 and len(model.item_feature_names) >= 1
    rows = data.ratings.iloc[::-1]  # any order
    want = encode_columns(feature_columns(rows, items=items, users=users, features=names), model._encode_features)
    sides = {F.USER_ID: (model.user_feature_names, model.query_towers[0].encode),
             F.ITEM_ID: (model.item_feature_names, model.candidate_towers[0].encode)}
    got = encode_rows_and_sides(rows, items=items, users=users, features=names, encode=model._encode_features,
                                sides=sides)
    assert sorted(got) == sorted(want) and set(model.user_feature_names) <= set(got)
    for name, values in want.items():
        assert got[name].dtype == values.dtype, name
        np.testing.assert_array_equal(got[name], values, err_msg=name)


def _assert_step_moves_only_looked_up_rows(model, batch, tables):
    """One ``model.train_step(batch)``: every row of ``tables`` ({name: (embedding variable, ids the
    batch looks up)}) not looked up keeps its value and its Adam moments, though the epoch before
    left momentum on it (a dense Adam would move it: the step would cost the tables, not the
    batch); the looked-up rows (but the OOV row 0) move."""
    def moments(table):  # tf-keras Adam's slots of a variable (any Adam subclass)
        opt = model.optimizer
        index = opt._index_dict[opt._var_key(table)]
        return opt._momentums[index], opt._velocities[index]

    before = {}
    for name, (table, looked_up) in tables.items():
        m, v = moments(table)
        idle = np.setdiff1d(np.arange(table.shape[0]), looked_up)
        assert len(idle) >= 5, name
        assert np.abs(m.numpy()[idle]).sum() > 0, name  # momentum an eager dense update would apply
        before[name] = [x.numpy().copy() for x in (table, m, v)]
    model.train_step(batch)
    for name, (table, looked_up) in tables.items():
        idle = np.setdiff1d(np.arange(table.shape[0]), looked_up)
        after = [x.numpy() for x in (table, *moments(table))]
        for old, new in zip(before[name], after):
            np.testing.assert_array_equal(new[idle], old[idle], err_msg=name)  # not looked up: untouched
        moved = np.setdiff1d(looked_up, [0])
        assert not np.allclose(after[0][moved], before[name][0][moved]), name  # looked up: trained


def test_two_tower_step_moves_only_the_embedding_rows_its_batch_looks_up():
    """The default optimizer's lazy rule inside a real two-tower step (history items count as looked up)."""
    from tfrec.data import synthetic_movielens
    from tfrec.models.towers import HISTORY_ITEMS, ITEM_INDEX, USER_INDEX
    from tfrec.models.two_tower import TwoTower

    data = synthetic_movielens(n_users=60, n_items=80, n_ratings=700, seed=0)
    model = TwoTower(embedding_dim=8, layer_sizes=(8,), ensemble_size=2, history_length=4, epochs=1, batch_size=64)
    model.fit(data.ratings, items=data.items, users=data.users, validation_fraction=0.0, verbose=0)
    batch = next(iter(model._dataset(data.ratings.iloc[:48], data.items, data.users, batch_size=48,
                                     pipeline="tensor", shuffle=False, seed=0)))
    _assert_step_moves_only_looked_up_rows(model, batch, {
        "item": (model.candidate_towers[1].item_embedding.embeddings,
                 np.union1d(batch[ITEM_INDEX].numpy(), batch[HISTORY_ITEMS].numpy().ravel())),
        "user": (model.query_towers[1].user_embedding.embeddings, np.union1d(batch[USER_INDEX].numpy(), [0]))})


@pytest.mark.parametrize("name,user_table,item_table,kwargs", [
    ("fm", "user_factor", "item_weight", {}),
    ("wide_deep", "wide_user", "deep_item", {}),
    ("neumf", "gmf_user", "mlp_item", {}),  # the implicit objective: sampled negatives
])
def test_rating_model_step_moves_only_the_embedding_rows_its_batch_looks_up(name, user_table, item_table, kwargs):
    """fm, wide_deep and neumf train with the same lazy rule by default (their per-example L2
    penalties keep the gradients sparse)."""
    from tfrec.data import synthetic_movielens
    from tfrec.models.registry import create_model

    data = synthetic_movielens(n_users=60, n_items=80, n_ratings=700, seed=0)
    model = create_model(name, embedding_dim=8, epochs=1, batch_size=64, **kwargs)
    model.fit(data.ratings, items=data.items, users=data.users, validation_fraction=0.0, verbose=0)
    frame = model._training_frame(data.ratings.iloc[:40])
    batch = next(iter(model._dataset(frame, data.items, data.users, batch_size=len(frame), pipeline="tensor",
                                     shuffle=False, seed=0)))
    features = batch[0] if isinstance(batch, tuple) else batch
    _assert_step_moves_only_looked_up_rows(model, batch, {
        "user": (getattr(model, user_table).embeddings, model.user_lookup(features["user_id"]).numpy()),
        "item": (getattr(model, item_table).embeddings, model.item_lookup(features["item_id"]).numpy())})


def test_rating_models_train_lazily_on_full_batches_under_a_strategy():
    """Under a tf.distribute strategy the rating models keep LazyAdam and their training input drops
    the epoch's short last batch (tests/distributed/test_mirrored_rating.py trains them on two
    replicas); in one process every row trains."""
    from tfrec.models.batching import shuffled_batches
    from tfrec.models.optimizers import LazyAdam
    from tfrec.models.registry import create_model

    alone = create_model("fm", embedding_dim=8)
    alone._compile_default()
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        mirrored = create_model("fm", embedding_dim=8)
        mirrored._compile_default()
        assert mirrored._drop_short_batch(1000, 256) and not mirrored._drop_short_batch(100, 256)
    assert type(alone.optimizer) is LazyAdam and type(mirrored.optimizer) is LazyAdam
    assert not alone._drop_short_batch(1000, 256)
    frame = pd.DataFrame({"user_id": [str(i % 7) for i in range(1000)], "item_id": [str(i % 11) for i in range(1000)],
                          "rating": np.ones(1000, np.float32)})
    for drop, sizes in ((False, [256, 256, 256, 232]), (True, [256, 256, 256])):
        ds = shuffled_batches(frame, batch_size=256, label_key="rating", features=["user_id", "item_id"],
                              drop_remainder=drop)
        assert [int(x[1].shape[0]) for x in ds] == sizes and int(ds.cardinality()) == len(sizes)
