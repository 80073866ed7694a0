"""NeuMF on implicit feedback: sampled negatives, re-sampled every epoch, binary cross-entropy."""

import numpy as np
import pytest

from tfrec.models.neumf import NeuMF

FAST = dict(embedding_dim=8, layer_sizes=[16, 8], batch_size=1024, epochs=6, steps_per_execution=4,
            learning_rate=0.01)


@pytest.fixture(scope="module")
def implicit(synthetic_data):
    return NeuMF(**FAST).fit(synthetic_data.ratings, verbose=0)


def test_implicit_training_lowers_the_loss_and_outputs_probabilities(implicit, synthetic_data):
    assert implicit.label_key == "label"
    loss = implicit.history_["loss"]
    assert loss[-1] < loss[0]
    r = synthetic_data.ratings
    p = implicit.predict_ratings(r.user_id[:200], r.item_id[:200])
    assert ((p > 0) & (p < 1)).all()


def test_observed_pairs_outscore_unobserved_ones(implicit, synthetic_data):
    r = synthetic_data.ratings
    scores = implicit.score_users(list(implicit.user_index_))
    observed = np.zeros_like(scores, dtype=bool)
    for row, user in enumerate(implicit.user_index_):
        observed[row, implicit.seen_[user]] = True
    # Mean AUC-like check: an observed pair beats a random unobserved one most of the time.
    rng = np.random.default_rng(0)
    rows = rng.integers(0, len(scores), 4000)
    pos = np.array([rng.choice(np.flatnonzero(observed[i])) for i in rows])
    neg = np.array([rng.choice(np.flatnonzero(~observed[i])) for i in rows])
    wins = (scores[rows, pos] > scores[rows, neg]).mean()
    assert wins > 0.7, wins
    assert len(r) == int(observed.sum())  # the synthetic log has no repeated (user, item) pairs


def test_negatives_are_resampled_every_epoch_and_never_positives(implicit, synthetic_data):
    r = synthetic_data.ratings
    first, second = implicit._training_frame(r, 0), implicit._training_frame(r, 1)
    assert len(first) == len(r) * (1 + implicit.n_negatives)
    assert first.label.sum() == len(r)
    neg1 = first[first.label == 0][["user_id", "item_id"]]
    neg2 = second[second.label == 0][["user_id", "item_id"]]
    assert not neg1.reset_index(drop=True).equals(neg2.reset_index(drop=True))
    positives = set(zip(r.user_id.astype(str), r.item_id.astype(str)))
    assert not positives & set(zip(neg1.user_id, neg1.item_id))


def test_validation_negatives_exclude_training_positives(implicit, synthetic_data):
    r = synthetic_data.ratings
    val = implicit._validation_frame(r.iloc[:300])
    positives = set(zip(r.user_id.astype(str), r.item_id.astype(str)))
    negatives = val[val.label == 0]
    assert len(negatives) > 0
    assert not positives & set(zip(negatives.user_id, negatives.item_id))


def test_recommend_ranks_by_the_logit(implicit, synthetic_data):
    user = str(synthetic_data.ratings.user_id.iloc[0])
    recs = implicit.recommend([user], k=10)
    assert len(recs) == 10 and recs.score.is_monotonic_decreasing
    # Scores are logits (unbounded), ordered like the probabilities.
    prob = implicit.predict_ratings([user] * 10, recs.item_id.tolist())
    assert np.all(np.diff(prob) <= 1e-7)


def test_rating_objective_is_trained_on_ratings(synthetic_data):
    model = NeuMF(**{**FAST, "learning_rate": 5e-3}, objective="rating").fit(synthetic_data.ratings, verbose=0)
    assert model.label_key == "rating" and "rmse" in model.history_
    pred = model.predict_ratings(synthetic_data.ratings.user_id[:100], synthetic_data.ratings.item_id[:100])
    assert 1.0 < float(np.mean(pred)) < 5.0


@pytest.mark.slow
def test_implicit_ranking_quality_on_ml100k(ml100k):
    """Sampled-100 HR@10 on leave-last-out, well above popularity (~0.40); the benchmark has the number."""
    from tfrec.data import leave_last_out_split
    from tfrec.evaluation.protocols import sampled_ranking

    train, test = leave_last_out_split(ml100k.ratings)
    model = NeuMF(epochs=6, refit=False).fit(train, verbose=0)
    report = sampled_ranking(model, train, test, n_negatives=100, k=10, seed=0)
    assert report["hr@10"] >= 0.55, report
