"""GlobalRetrieval.ensemble_losses: an ensemble's per-pair losses with the shared parts computed once."""

import numpy as np
import pytest
import tensorflow as tf

from tfrec.models.retrieval import GlobalRetrieval
from tfrec.models.towers import CandidateTower, QueryTower


def _pairs(rows, candidates, k=3, d=8, seed=0):
    rng = np.random.default_rng(seed)
    unit = lambda n: tf.math.l2_normalize(tf.constant(rng.normal(size=(n, d)), tf.float32), -1)  # noqa: E731
    return [(unit(rows), unit(candidates)) for _ in range(k)]


@pytest.mark.parametrize("rows,candidates", [(64, 64), (3, 5)])
@pytest.mark.parametrize("options", [dict(temperature=0.1, remove_accidental_hits=True),
                                     dict(temperature=None, remove_accidental_hits=False)])
def test_ensemble_losses_equal_one_call_per_pair_bit_for_bit(rows, candidates, options):
    pairs = _pairs(rows, candidates)
    rng = np.random.default_rng(1)
    ids = tf.constant(rng.integers(1, 6, candidates), tf.int64)  # few ids: many accidental hits
    prob = tf.constant(rng.uniform(1e-7, 0.3, candidates), tf.float32)  # some below the 1e-6 clip
    task = GlobalRetrieval(**options)
    kwargs = dict(candidate_sampling_probability=prob, candidate_ids=ids)
    vars_ = [t for pair in pairs for t in pair]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(vars_)
        each = [task(q, c, **kwargs) for q, c in pairs]
        shared = task.ensemble_losses(pairs, **kwargs)
        totals = tf.add_n(each), tf.add_n(shared)
    for a, b in zip(each, shared):
        assert a.numpy() == b.numpy()
    for a, b in zip(tape.gradient(totals[0], vars_), tape.gradient(totals[1], vars_)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_ensemble_losses_with_hard_negatives_take_the_per_pair_path():
    pairs = _pairs(16, 16)
    ids = tf.range(16, dtype=tf.int64)
    task = GlobalRetrieval(temperature=0.1, num_hard_negatives=3, remove_accidental_hits=True)
    each = [task(q, c, candidate_ids=ids).numpy() for q, c in pairs]
    assert [x.numpy() for x in task.ensemble_losses(pairs, candidate_ids=ids)] == each


def test_tower_vocabularies_stay_config_not_tracked_state():
    """Vocabularies are plain config: Keras does not wrap and walk them (each walk of a tracked
    list visits every entry, thousands of times while a train step is traced)."""
    users, items = [str(j) for j in range(50)], [f"i{j}" for j in range(40)]
    query = QueryTower(users, {"gender": ["F", "M"]}, 4, [4])
    candidate = CandidateTower(items, {"genres": ["a", "b"]}, 4, [4])
    for tower, vocab in ((query, "user_vocabulary"), (candidate, "item_vocabulary")):
        children = tower._trackable_children()
        assert vocab not in children and "feature_vocabularies" not in children
        assert all(not isinstance(c, tf.__internal__.tracking.TrackableDataStructure) or len(c) < 10
                   for c in children.values())
    assert query.get_config()["user_vocabulary"] == users
    assert candidate.get_config()["feature_vocabularies"] == {"genres": ["a", "b"]}
    rebuilt = QueryTower(**query.get_config())
    assert rebuilt.user_vocabulary == users
