"""TwoTower(history_encoder=...): the attention and GRU encoders' masking, and that training,
export (serving history, new users) and run-folder reload work for each."""

import numpy as np
import pytest
import tensorflow as tf

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


def test_bad_history_encoder_is_a_config_error():
    from tfrec.models.two_tower import TwoTower

    with pytest.raises(ConfigError, match="history_encoder"):
        TwoTower(history_encoder="lstm")


@pytest.mark.parametrize("encoder", ["attention", "gru"])
def test_two_tower_with_encoder_trains_exports_and_reloads(encoder, tmp_path):
    import tfrec
    from tfrec.data import synthetic_movielens
    from tfrec.export import export_model

    data = synthetic_movielens(n_users=100, n_items=300, n_ratings=2500, seed=4)
    result = tfrec.train("two_tower", data, split="leave_last_out", epochs=1, verbose=0, output=tmp_path / "run",
                         embedding_dim=8, layer_sizes=[8], ensemble_size=1, history_length=6, history_encoder=encoder)
    model = result.model
    assert model.get_config()["history_encoder"] == encoder
    assert model.query_towers[0].sequence_encoder is not None
    users = list(model.user_index_)[:5]
    reloaded = tfrec.load_run(tmp_path / "run").model
    np.testing.assert_allclose(reloaded.score_users(users), model.score_users(users), atol=1e-5)
    info = export_model(tmp_path / "run", name="tt", base_dir=tmp_path / "export", scann=False)
    served = tf.saved_model.load(info["paths"][-1])
    out = served.signatures["serving_default"](user_id=tf.constant(users))
    expected = model.recommend(users, k=10)
    for r, u in enumerate(users):  # the exported history table drives the same encoder
        assert [x.decode() for x in out["item_ids"].numpy()[r]] == expected[expected.user_id == u].item_id.tolist()
    new = served.signatures["recommend_new_user"](gender=tf.constant(["F"]), age=tf.constant([23], tf.int64),
                                                  occupation=tf.constant(["student"]), zip=tf.constant(["94305"]))
    assert new["item_ids"].shape == (1, 10)

