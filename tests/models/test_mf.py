"""MatrixFactorization: bias interpretation, range squashing, pipelines, and quality on real ML-100K."""

import numpy as np
import pandas as pd
import pytest

from tfrec.errors import ConfigError
from tfrec.models.mf import MatrixFactorization


def _rating_frame(rows):
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating"])
    frame["rating"] = frame["rating"].astype(np.float32)
    frame["timestamp"] = np.arange(len(frame), dtype=np.int64)
    return frame


@pytest.fixture(scope="module")
def planted():
    """40 users rate 12 items. Item "best" gets 5s from everyone, "worst" 1s; user "kind" gives
    5s to everything, user "harsh" 1s; everything else is 3 +- 1 at random."""
    rng = np.random.default_rng(0)
    rows = []
    users = [f"u{j}" for j in range(40)] + ["kind", "harsh"]
    items = [f"i{j}" for j in range(10)] + ["best", "worst"]
    for u in users:
        for i in items:
            if rng.random() < 0.3 and i not in ("best", "worst") and u not in ("kind", "harsh"):
                continue
            if u == "kind":
                r = 5.0
            elif u == "harsh":
                r = 1.0
            elif i == "best":
                r = 5.0
            elif i == "worst":
                r = 1.0
            else:
                r = float(rng.integers(2, 5))
            rows.append((u, i, r))
    frame = _rating_frame(rows)
    model = MatrixFactorization(embedding_dim=4, l2=0.01, bias_l2=0.0, learning_rate=0.05, batch_size=64, epochs=30,
                                patience=3, steps_per_execution=4).fit(frame, verbose=0)
    return frame, model


def test_item_biases_rank_the_planted_best_and_worst_items(planted):
    frame, model = planted
    biases = model.item_biases()
    assert list(biases.columns) == ["item_id", "bias", "n_ratings"]
    assert len(biases) == frame.item_id.nunique() and biases.bias.is_monotonic_decreasing
    assert model.top_items_by_bias(n=1).item_id.tolist() == ["best"]
    assert model.top_items_by_bias(n=1, worst=True).item_id.tolist() == ["worst"]
    worst3 = model.top_items_by_bias(n=3, worst=True)
    assert worst3.bias.is_monotonic_increasing and len(worst3) == 3
    counts = frame.item_id.value_counts()
    assert dict(zip(biases.item_id, biases.n_ratings)) == counts.to_dict()


def test_min_ratings_filters_rarely_rated_items(planted):
    frame, model = planted
    counts = frame.item_id.value_counts()
    threshold = int(counts.sort_values().iloc[3])
    top = model.top_items_by_bias(n=50, min_ratings=threshold)
    assert set(top.item_id) == set(counts[counts >= threshold].index)


def test_user_biases_separate_generous_and_harsh_raters(planted):
    _, model = planted
    users = model.user_biases()
    assert users.user_id.iloc[0] == "kind" and users.user_id.iloc[-1] == "harsh"


def test_bias_methods_need_biases(planted):
    frame, _ = planted
    model = MatrixFactorization(use_bias=False, embedding_dim=2, epochs=1, batch_size=64, refit=False)
    model.fit(frame, verbose=0)
    with pytest.raises(ConfigError, match="use_bias=False"):
        model.item_biases()
    with pytest.raises(ConfigError, match="n must be a positive integer"):
        planted[1].top_items_by_bias(n=0)


def test_rating_range_squashes_predictions_into_the_range(planted):
    frame, _ = planted
    model = MatrixFactorization(rating_range=(1.0, 5.0), embedding_dim=4, learning_rate=0.2, l2=0.0, epochs=5,
                                batch_size=64, refit=False).fit(frame, verbose=0)
    pred = model.predict_ratings(frame.user_id.to_numpy(), frame.item_id.to_numpy())
    assert (pred > 1.0).all() and (pred < 5.0).all()
    # The planted extremes are pushed towards the ends of the range.
    best = model.predict_ratings(["kind"], ["best"])[0]
    worst = model.predict_ratings(["harsh"], ["worst"])[0]
    assert best > 4.0 and worst < 2.0


def test_generator_and_tensor_pipelines_train_the_same_model(synthetic_data):
    r = synthetic_data.ratings.iloc[:2000]
    kwargs = dict(embedding_dim=4, epochs=2, batch_size=256, refit=False, steps_per_execution=2, training_loop="keras")
    a = MatrixFactorization(pipeline="tensor", **kwargs).fit(r, verbose=0)
    b = MatrixFactorization(pipeline="generator", **kwargs).fit(r, verbose=0)
    # Identical elements in identical order: the same seeded training gives the same model.
    np.testing.assert_allclose(a.predict_ratings(r.user_id[:50], r.item_id[:50]),
                               b.predict_ratings(r.user_id[:50], r.item_id[:50]), rtol=1e-5)


def _rmse(model, frame):
    pred = model.predict_ratings(frame.user_id.to_numpy(), frame.item_id.to_numpy())
    return float(np.sqrt(np.mean((pred - frame.rating.to_numpy()) ** 2)))


@pytest.fixture(scope="module")
def loops(synthetic_data):
    """The same MF trained by the graph loop and by Keras fit on a synthetic split."""
    from tfrec.data import random_split

    train, test = random_split(synthetic_data.ratings, 0.2, seed=0)
    kwargs = dict(embedding_dim=8, batch_size=256, epochs=15, learning_rate=1e-2)
    graph = MatrixFactorization(**kwargs).fit(train, verbose=0)
    keras = MatrixFactorization(training_loop="keras", **kwargs).fit(train, verbose=0)
    return train, test, graph, keras


def test_graph_loop_learns_as_well_as_keras_fit(loops):
    train, test, graph, keras = loops
    mean_rmse = float(np.sqrt(np.mean((test.rating - train.rating.mean()) ** 2)))
    assert _rmse(graph, test) < mean_rmse - 0.02
    assert abs(_rmse(graph, test) - _rmse(keras, test)) < 0.02, (_rmse(graph, test), _rmse(keras, test))
    # Early stopping and the refit, as Keras fit records them.
    assert set(graph.history_) == {"loss", "rmse", "val_loss", "val_rmse", "refit_loss", "refit_rmse"}
    assert graph.best_epoch_ == int(np.argmin(graph.history_["val_loss"])) + 1
    assert len(graph.history_["refit_loss"]) == graph.best_epoch_
    assert graph.history_["loss"][-1] < graph.history_["loss"][0]
    assert graph.get_config()["training_loop"] == "graph"


def test_graph_loop_is_seeded(loops):
    train, test, graph, _ = loops
    again = MatrixFactorization(**graph.get_params()).fit(train, verbose=0)
    np.testing.assert_allclose(again.predict_ratings(test.user_id[:50], test.item_id[:50]),
                               graph.predict_ratings(test.user_id[:50], test.item_id[:50]), rtol=1e-5)


def test_callbacks_and_own_compile_train_with_keras_fit(synthetic_data):
    import tensorflow as tf

    r = synthetic_data.ratings.iloc[:1500]
    seen = []
    record = tf.keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(epoch))
    MatrixFactorization(embedding_dim=4, epochs=2, batch_size=256, refit=False).fit(r, verbose=0, callbacks=[record])
    assert seen == [0, 1]  # Keras fit ran the callbacks
    model = MatrixFactorization(embedding_dim=4, epochs=1, batch_size=256, refit=False,
                                vocabularies={"user_id": sorted(set(r.user_id.astype(str))),
                                              "item_id": sorted(set(r.item_id.astype(str)))})
    model.compile(optimizer=tf.keras.optimizers.SGD(0.1), loss="mae")
    assert not model._uses_graph_loop("tensor", None, {})
    model.fit(r, verbose=0)
    assert model.optimizer.iterations.numpy() > 0  # the caller's optimizer trained it


@pytest.mark.slow
def test_quality_on_ml100k_random_split(ml100k):
    """Regression guard on real data (the benchmark measures the real number, ~0.906)."""
    from tfrec.data import random_split

    train, test = random_split(ml100k.ratings, 0.2, seed=0)
    model = MatrixFactorization().fit(train, verbose=0)
    pred = model.predict_ratings(test.user_id.to_numpy(), test.item_id.to_numpy())
    rmse = float(np.sqrt(np.mean((pred - test.rating.to_numpy()) ** 2)))
    assert rmse <= 0.93, rmse
    # Bias interpretation on real data: well-rated classics beat items almost nobody liked.
    top = model.top_items_by_bias(n=20, min_ratings=50)
    titles = ml100k.items.set_index("item_id").loc[top.item_id, "title"]
    assert titles.str.contains("Schindler|Casablanca|Star Wars|Shawshank|Usual Suspects|Godfather").any()


@pytest.mark.parametrize("rating_range, use_bias", [((0.5, 5.5), True), (None, True), ((1.0, 5.0), False)])
def test_written_out_gradients_equal_gradient_tape(synthetic_data, rating_range, use_bias):
    """The graph loop's step uses MF's hand-written loss gradients: they must be the tape's."""
    import tensorflow as tf

    r = synthetic_data.ratings.iloc[:400]
    model = MatrixFactorization(embedding_dim=4, epochs=1, batch_size=128, refit=False, l2=0.05, bias_l2=0.02,
                                rating_range=rating_range, use_bias=use_bias).fit(r, verbose=0)
    u = model.user_lookup(tf.constant(r.user_id.astype(str).to_numpy()[:64]))
    i = model.item_lookup(tf.constant(r.item_id.astype(str).to_numpy()[:64]))
    rating = tf.constant(r.rating.to_numpy("float32")[:64])
    with tf.GradientTape() as tape:
        pred, penalty = model.forward_indices(u, i)
        loss = tf.reduce_mean(tf.square(pred - rating)) + tf.reduce_mean(penalty)
    expected = tape.gradient(loss, model.trainable_variables)
    se, written_loss, pairs = model.loss_gradients_indices(u, i, rating)
    assert [v.name for _, v in pairs] == [v.name for v in model.trainable_variables]
    np.testing.assert_allclose(float(written_loss), float(loss), rtol=1e-5)
    np.testing.assert_allclose(se.numpy(), tf.square(pred - rating).numpy(), rtol=1e-5, atol=1e-7)
    for (grad, var), want in zip(pairs, expected):
        np.testing.assert_allclose(tf.convert_to_tensor(grad).numpy(), tf.convert_to_tensor(want).numpy(),
                                   rtol=1e-4, atol=1e-7, err_msg=var.name)


def _lazy_adam_reference(init, grads, lr=0.01, b1=0.9, b2=0.999, eps=1e-7):
    """TF Addons' LazyAdam in numpy: grads are (rows, values) with repeated rows."""
    w, m, v = init.copy(), np.zeros_like(init), np.zeros_like(init)
    for t, (rows, values) in enumerate(grads, start=1):
        g = np.zeros_like(init)
        np.add.at(g, rows, values)
        touched = np.unique(rows)
        m[touched] = b1 * m[touched] + (1 - b1) * g[touched]
        v[touched] = b2 * v[touched] + (1 - b2) * g[touched] ** 2
        w[touched] -= lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m[touched] / (np.sqrt(v[touched]) + eps)
    return w


@pytest.mark.parametrize("lean", [False, True])
def test_lazy_adam_moves_only_the_looked_up_rows(lean):
    """MF's optimizer, through Keras' apply_gradients and through the graph loop's apply_fused."""
    import tensorflow as tf

    from tfrec.models.optimizers import LazyAdam

    rng = np.random.default_rng(0)
    table0, bias0 = rng.normal(size=(6, 3)).astype(np.float32), np.float32(0.5)
    steps = [(np.array([0, 2, 2, 5]), rng.normal(size=(4, 3)).astype(np.float32)) for _ in range(3)]
    steps.append((np.array([1, 1]), rng.normal(size=(2, 3)).astype(np.float32)))
    table, bias = tf.Variable(table0), tf.Variable(bias0)
    opt = LazyAdam(0.01)
    opt.build([table, bias])

    @tf.function
    def step(rows, values):
        pairs = [(tf.IndexedSlices(values, rows, tf.constant([6, 3], tf.int64)), table), (tf.constant(0.1), bias)]
        return opt.apply_fused(pairs) if lean else opt.apply_gradients(pairs)

    for rows, values in steps:
        step(tf.constant(rows), tf.constant(values))
    assert int(opt.iterations.numpy()) == len(steps)
    np.testing.assert_allclose(table.numpy(), _lazy_adam_reference(table0, steps), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(table.numpy()[[3, 4]], table0[[3, 4]])  # never looked up: untouched
    assert float(bias.numpy()) < bias0  # dense gradients take the (fused) Adam step


def test_fused_adam_apply_fused_takes_apply_gradients_steps():
    """The graph loop's lean update (FusedAdam.apply_fused) is FusedAdam's own update."""
    import tensorflow as tf

    from tfrec.models.optimizers import FusedAdam

    rng = np.random.default_rng(0)
    init = [rng.normal(size=(7, 3)).astype(np.float32), rng.normal(size=(4,)).astype(np.float32)]
    grads = [[rng.normal(size=w.shape).astype(np.float32) for w in init] for _ in range(5)]
    results = []
    for lean in (False, True):
        vs = [tf.Variable(w) for w in init]
        opt = FusedAdam(0.01)
        opt.build(vs)

        @tf.function
        def step(g):
            pairs = list(zip(g, vs))
            return opt.apply_fused(pairs) if lean else opt.apply_gradients(pairs)

        for g in grads:
            step([tf.constant(x) for x in g])
        assert int(opt.iterations.numpy()) == len(grads)
        results.append([v.numpy() for v in vs])
    for keras_w, lean_w, w0 in zip(*results, init):
        assert not np.allclose(lean_w, w0)
        np.testing.assert_allclose(lean_w, keras_w, rtol=1e-6, atol=1e-7)
