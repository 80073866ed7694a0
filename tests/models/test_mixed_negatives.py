"""Mixed negative sampling (TwoTower(num_sampled_negatives=M)): the loss against a numpy reference,
M=0 unchanged, and a model that trains, reloads and exports with it."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_recommenders as tfrs

from export_checks import assert_reloads_and_serves_like_memory
from tfrec.errors import ConfigError
from tfrec.models.retrieval import GlobalRetrieval, SampledCandidates


def _unit(rng, n, d=8):
    return tf.math.l2_normalize(tf.constant(rng.normal(size=(n, d)), tf.float32), -1)


def _reference(q, c, s, ids, sampled_ids, p, sampled_p, r, temperature):
    """Numpy float64: sum_i CE over [batch | sampled] columns, logQ of the mixture, hits masked."""
    q, c, s = (np.asarray(x, np.float64) for x in (q, c, s))
    b, m = len(c), len(s)
    scores = q @ np.concatenate([c, s]).T / temperature
    proposal = (b * np.concatenate([p, sampled_p]) + m * r) / (b + m)
    scores = scores - np.log(proposal)[None, :]
    columns = np.concatenate([ids, sampled_ids])
    total = 0.0
    for i in range(len(q)):
        row = scores[i].copy()
        hit = columns == ids[i]
        hit[i] = False  # the positive itself stays
        row[hit] = -np.inf
        total += np.log(np.sum(np.exp(row - row.max()))) + row.max() - row[i]
    return total


@pytest.mark.parametrize("rows,sampled", [(16, 24), (5, 3)])
def test_mixed_loss_matches_numpy_reference_and_ensemble_path(rows, sampled):
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 8, rows)  # few ids: in-batch accidental hits
    sampled_ids = np.concatenate([ids[:2], rng.integers(1, 30, sampled - 2)])  # sampled = some rows' positives
    p, sampled_p = rng.uniform(1e-4, 0.2, rows), rng.uniform(1e-4, 0.2, sampled)
    r = 1.0 / 30
    task = GlobalRetrieval(temperature=0.1, remove_accidental_hits=True)
    pairs = [(_unit(rng, rows), _unit(rng, rows)) for _ in range(3)]
    samples = [SampledCandidates(_unit(rng, sampled), tf.constant(sampled_ids, tf.int32),
                                 tf.constant(sampled_p, tf.float32), r) for _ in pairs]
    kwargs = dict(candidate_sampling_probability=tf.constant(p, tf.float32), candidate_ids=tf.constant(ids, tf.int32))
    each = [task(q, c, sampled=s, **kwargs).numpy() for (q, c), s in zip(pairs, samples)]
    for (q, c), s, got in zip(pairs, samples, each):
        want = _reference(q.numpy(), c.numpy(), s.embeddings.numpy(), ids, sampled_ids, p, sampled_p, r, 0.1)
        np.testing.assert_allclose(got, want, rtol=2e-5)
    shared = [x.numpy() for x in task.ensemble_losses(pairs, sampled=samples, **kwargs)]
    assert shared == each  # the shared-bias path gives the same floats
    # Masking matters: without it the sampled copies of rows 0/1's positives count as negatives.
    unmasked = GlobalRetrieval(temperature=0.1)(pairs[0][0], pairs[0][1], sampled=samples[0], **kwargs).numpy()
    assert unmasked > each[0] + 1e-3


def test_without_a_sample_the_loss_is_tfrs_retrieval_bit_for_bit():
    rng = np.random.default_rng(1)
    q, c = _unit(rng, 32), _unit(rng, 32)
    ids = tf.constant(rng.integers(1, 10, 32), tf.int64)
    prob = tf.constant(rng.uniform(1e-7, 0.3, 32), tf.float32)
    kwargs = dict(candidate_sampling_probability=prob, candidate_ids=ids)
    ours = GlobalRetrieval(temperature=0.1, remove_accidental_hits=True)
    theirs = tfrs.tasks.Retrieval(temperature=0.1, remove_accidental_hits=True)
    assert ours(q, c, **kwargs).numpy() == theirs(q, c, compute_metrics=False, **kwargs).numpy()
    assert ours(q, c, sampled=None, **kwargs).numpy() == ours(q, c, **kwargs).numpy()


def test_num_sampled_negatives_is_validated_and_a_config_round_trip():
    from tfrec.models.two_tower import TwoTower

    for bad in (-1, 2.5, True, "8"):
        with pytest.raises(ConfigError, match="num_sampled_negatives"):
            TwoTower(num_sampled_negatives=bad)
    assert TwoTower().num_sampled_negatives == 0
    config = TwoTower(num_sampled_negatives=64).get_config()
    assert TwoTower.from_config(config).num_sampled_negatives == 64
    config.pop("num_sampled_negatives")  # a config written before the option existed
    assert TwoTower.from_config(config).num_sampled_negatives == 0


def test_two_tower_with_sampled_negatives_trains_reloads_and_exports(tmp_path):
    import tfrec
    from tfrec.data import synthetic_movielens

    data = synthetic_movielens(n_users=80, n_items=200, n_ratings=2000, seed=3)
    result = tfrec.train("two_tower", data, split="leave_last_out", epochs=1, verbose=0, output=tmp_path / "run",
                         embedding_dim=8, layer_sizes=[8], ensemble_size=2, history_length=4,
                         num_sampled_negatives=50, batch_size=256)
    model = result.model
    assert model.get_config()["num_sampled_negatives"] == 50
    assert np.isfinite(model.history_["loss"]).all()
    # The sampled step scores [batch, batch + M] and differs from the in-batch loss on the same batch.
    feats = model._encode_features(model.features_from_ids(tf.constant(model.vocabularies["user_id"][:8]),
                                                           tf.constant(model.vocabularies["item_id"][:8])))
    table = model._encoded_catalog()
    assert table["item_index"].numpy().tolist() == list(range(1, len(model.vocabularies["item_id"]) + 1))
    sample = model._sample_catalog(feats)
    assert len(sample) == 2 and sample[0].embeddings.shape == (50, 8)
    assert tfrec.load_run(tmp_path / "run").model.num_sampled_negatives == 50
    assert_reloads_and_serves_like_memory(model, tmp_path / "run", tmp_path, list(model.user_index_)[:4])


def test_sampled_negatives_are_refused_under_a_strategy():
    from tfrec.data import synthetic_movielens
    from tfrec.models.two_tower import TwoTower

    data = synthetic_movielens(n_users=30, n_items=40, n_ratings=300, seed=1)
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        model = TwoTower(embedding_dim=4, layer_sizes=[4], ensemble_size=1, history_length=0, num_sampled_negatives=8)
        with pytest.raises(ConfigError, match="num_sampled_negatives=8.*single process"):
            model.fit(data.ratings, items=data.items, users=data.users, epochs=1, verbose=0)
