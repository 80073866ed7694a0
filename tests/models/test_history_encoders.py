"""TwoTower(history_encoder=...): the attention and GRU encoders' masking, and that training,
export (serving history, new users) and run-folder reload work for each."""

import numpy as np
import pytest
import tensorflow as tf

from export_checks import assert_reloads_and_serves_like_memory
from tfrec.errors import ConfigError
from tfrec.models.history_encoders import AttentionHistoryEncoder, GRUHistoryEncoder


@pytest.mark.parametrize("make", [lambda: AttentionHistoryEncoder(4, 6, seed=1), lambda: GRUHistoryEncoder(6, seed=1)],
                         ids=["attention", "gru"])
def test_encoders_ignore_padding_and_read_the_newest_item(make):
    encoder = make()
    rng = np.random.default_rng(0)
    items = tf.constant(rng.normal(size=(3, 4, 6)), tf.float32)
    mask = tf.constant([[False, True, True, True], [False, False, False, False], [True, True, True, True]])
    out = encoder(items, mask).numpy()
    assert out.shape == (3, 6)
    np.testing.assert_array_equal(out[1], 0.0)  # no history -> zeros
    # Whatever sits in a padded slot does not matter.
    noisy = items.numpy().copy()
    noisy[0, 0] = 100.0
    np.testing.assert_allclose(encoder(tf.constant(noisy), mask).numpy()[0], out[0], atol=1e-5)
    # The newest item (last position) does.
    changed = items.numpy().copy()
    changed[0, 3] += 1.0
    assert not np.allclose(encoder(tf.constant(changed), mask).numpy()[0], out[0], atol=1e-4)


def test_attention_is_causal_across_blocks():
    # Two blocks: position 2's hidden state must not depend on position 3 (it is only read via 3).
    encoder = AttentionHistoryEncoder(4, 6, num_blocks=2, dropout=0.0, seed=3)
    items = tf.constant(np.random.default_rng(1).normal(size=(1, 4, 6)), tf.float32)
    mask = tf.ones([1, 4], tf.bool)
    encoder(items, mask)
    n = 4
    causal = tf.linalg.band_part(tf.ones([n, n], tf.bool), -1, 0)[None]
    x = items + encoder.position_embedding[None]
    a = encoder.attention[0](x, x, attention_mask=causal)
    changed = items.numpy().copy()
    changed[0, 3] += 5.0
    x2 = tf.constant(changed) + encoder.position_embedding[None]
    b = encoder.attention[0](x2, x2, attention_mask=causal)
    np.testing.assert_allclose(a.numpy()[0, :3], b.numpy()[0, :3], atol=1e-5)
    assert not np.allclose(a.numpy()[0, 3], b.numpy()[0, 3])


def _randomize(encoder, rng):
    # Non-zero biases and non-unit norms, so every term of the single-query block is exercised.
    for v in encoder.trainable_variables:
        v.assign(rng.normal(scale=0.3, size=v.shape).astype(np.float32))


@pytest.mark.parametrize("num_blocks", [1, 2])
def test_attention_last_query_block_equals_the_all_positions_computation(num_blocks):
    n, d = 7, 8
    encoder = AttentionHistoryEncoder(n, d, num_blocks=num_blocks, dropout=0.0, seed=5)
    rng = np.random.default_rng(2)
    items = tf.constant(rng.normal(size=(12, n, d)), tf.float32)
    lengths = np.array([0, 0, 1, 2, 3, 4, 5, 6, 7, 7, 3, 1])  # incl. all-padding and full rows
    mask = tf.constant(np.arange(n)[None, :] >= n - lengths[:, None])
    encoder(items, mask)
    # Same variables (names and count) as the Keras layers create when called.
    names = [v.name for v in encoder.trainable_variables]
    assert sum("/attention_0/query/kernel" in x or "/attention_0/attention_output/bias" in x for x in names) == 2
    assert len(names) == 1 + 16 * num_blocks
    _randomize(encoder, rng)

    def reference(training):  # the Keras MultiHeadAttention layers at every position, then N-1
        return encoder._all_positions(items, mask, training=training)[:, -1] * (lengths > 0)[:, None]

    fast = encoder(items, mask).numpy()
    np.testing.assert_allclose(fast, reference(False).numpy(), atol=1e-5)
    np.testing.assert_array_equal(fast[:2], 0.0)
    assert np.linalg.norm(fast[2:], axis=1).min() > 0.1  # the comparison is not of zeros
    # Training mode (dropout 0 here, so deterministic): same outputs and same gradients.
    grads = []
    for run in (lambda: encoder(items, mask, training=True), lambda: reference(True)):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.sin(run()))
        grads.append(tape.gradient(loss, encoder.trainable_variables))
    for v, g_fast, g_full in zip(encoder.trainable_variables, *grads):
        assert g_fast is not None, v.name
        np.testing.assert_allclose(g_fast.numpy(), g_full.numpy(), atol=1e-4, err_msg=v.name)
    for v, g in zip(encoder.trainable_variables, grads[0]):
        # The key bias adds the same score to every key, so the softmax cancels it in any block.
        assert (float(tf.norm(g)) < 1e-5) if "/key/bias" in v.name else (float(tf.norm(g)) > 1e-3), v.name


def test_attention_dropout_acts_on_the_probabilities_in_training_only():
    n, d = 5, 8
    encoder = AttentionHistoryEncoder(n, d, dropout=0.5, seed=1)
    rng = np.random.default_rng(3)
    items = tf.constant(rng.normal(size=(64, n, d)), tf.float32)
    mask = tf.ones([64, n], tf.bool)
    encoder(items, mask)
    _randomize(encoder, rng)
    np.testing.assert_allclose(encoder(items, mask).numpy(), encoder(items, mask).numpy())
    assert not np.allclose(encoder(items, mask, training=True).numpy(), encoder(items, mask).numpy(), atol=1e-3)


def test_bad_history_encoder_is_a_config_error():
    from tfrec.models.two_tower import TwoTower

    with pytest.raises(ConfigError, match="history_encoder"):
        TwoTower(history_encoder="lstm")


def test_default_encoder_is_attention_and_configs_without_the_key_load_as_mean():
    from tfrec.data.prepared import DEFAULT_HISTORY_LENGTH
    from tfrec.models.two_tower import TwoTower

    config = TwoTower().get_config()
    assert (config["history_encoder"], config["history_length"]) == ("attention", 50)
    assert DEFAULT_HISTORY_LENGTH == 50  # a default `tfrec data prepare` feeds a default TwoTower
    del config["history_encoder"]  # as a run saved before the encoders existed wrote it
    assert TwoTower.from_config(config).history_encoder == "mean"
    assert TwoTower.from_config({**config, "history_encoder": "gru"}).history_encoder == "gru"
    assert TwoTower.from_config({**config, "history_length": 0}).history_encoder == "attention"


@pytest.mark.parametrize("encoder", ["attention", "gru"])
def test_two_tower_with_encoder_trains_exports_and_reloads(encoder, tmp_path):
    import tfrec
    from tfrec.data import synthetic_movielens

    data = synthetic_movielens(n_users=100, n_items=300, n_ratings=2500, seed=4)
    result = tfrec.train("two_tower", data, split="leave_last_out", epochs=1, verbose=0, output=tmp_path / "run",
                         embedding_dim=8, layer_sizes=[8], ensemble_size=1, history_length=6, history_encoder=encoder)
    model = result.model
    assert model.get_config()["history_encoder"] == encoder
    assert model.query_towers[0].sequence_encoder is not None
    # The exported history table drives the same encoder.
    served = assert_reloads_and_serves_like_memory(model, tmp_path / "run", tmp_path, list(model.user_index_)[:5])
    new = served.signatures["recommend_new_user"](gender=tf.constant(["F"]), age=tf.constant([23], tf.int64),
                                                  occupation=tf.constant(["student"]), zip=tf.constant(["94305"]))
    assert new["item_ids"].shape == (1, 10)



def test_encoder_benchmark_times_every_row(load_benchmark, tmp_path):
    import json

    bench = load_benchmark("history_encoders")
    out = tmp_path / "rows.json"
    result = bench.main(["--batch-size", "32", "--history-length", "5", "--dim", "8", "--steps", "2", "--json", str(out)])
    assert set(result) == {"mean", "attention", "attention (all positions)", "gru"}
    assert all(ms > 0 for ms in result.values())
    assert json.loads(out.read_text())["ms_per_step"] == result
