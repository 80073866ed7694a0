"""Baselines' own behaviour, and the two-tower model (loss, features, cold start, round trips)."""

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tfrec.data import leave_last_out_split, synthetic_movielens
from tfrec.errors import ConfigError
from tfrec.evaluation import full_ranking
from tfrec.models.baselines import ContentTFIDF, CoVisitation, ItemKNN, Popularity
from tfrec.models.two_tower import TowerEnsemble, TwoTower

R = pd.DataFrame({"user_id": ["a", "a", "b", "b", "c", "c", "d"], "item_id": ["x", "y", "x", "y", "x", "z", "x"],
                  "rating": 4.0, "timestamp": [1, 2, 1, 2, 1, 2, 1]})


def test_popularity_ranks_by_count():
    recs = Popularity().fit(R).recommend(["zzz"], k=3)
    assert recs.item_id.tolist() == ["x", "y", "z"]


def test_item_knn_similar_items_prefers_the_co_rated_item():
    assert ItemKNN(shrinkage=0).fit(R).similar_items(["y"], k=1).similar_item_id.tolist() == ["x"]
    assert ItemKNN(shrinkage=0).fit(R).recommend(["d"], k=1).item_id.tolist() == ["y"]


def test_content_tfidf_similar_items_share_genres(synthetic_data):
    model = ContentTFIDF().fit(synthetic_data.ratings, items=synthetic_data.items)
    genres = synthetic_data.items.set_index("item_id").genres
    item = model.catalog_[0]
    sims = model.similar_items([item], k=3).similar_item_id
    assert all(set(genres[item]) & set(genres[s]) for s in sims)
    with pytest.raises(Exception, match="items"):
        ContentTFIDF().fit(synthetic_data.ratings)


def test_covisitation_counts_neighbours_in_time():
    model = CoVisitation(window=1, decay=False).fit(R)
    assert model.similar_items(["z"], k=1).similar_item_id.tolist() == ["x"]
    with pytest.raises(ConfigError, match="window"):
        CoVisitation(window=0)


def test_item_knn_beats_popularity_on_ml100k(ml100k):
    train, test = leave_last_out_split(ml100k.ratings)
    pop = full_ranking(Popularity().fit(train), train, test)["hr@10"]
    knn = full_ranking(ItemKNN().fit(train), train, test)["hr@10"]
    assert knn > pop > 0.03


@pytest.fixture(scope="module")
def tt_data():
    return synthetic_movielens(n_users=300, n_items=200, n_ratings=12000, seed=1)


def test_two_tower_loss_falls_and_features_help_new_users(tt_data):
    model = TwoTower(epochs=4, embedding_dim=16, layer_sizes=[32, 16], patience=4)
    model.fit(tt_data.ratings, items=tt_data.items, users=tt_data.users, verbose=0)
    loss = model.history_["loss"]
    assert loss[-1] < loss[0]
    # A user unknown to the model but present in the users table is served from demographics.
    scores = model.score_users(["300", "no-such-user"])
    assert not np.allclose(scores[0], scores[1])
    q = model.query_from_demographics(["F"], [25], ["student"], ["12345"])
    assert q.shape == (1, model.output_dim) == (1, 16 * model.ensemble_size)


def test_two_tower_without_demographics_or_features(tt_data):
    no_users = TwoTower(epochs=1, embedding_dim=8, layer_sizes=[8])
    no_users.fit(tt_data.ratings, items=tt_data.items, users=None, verbose=0)
    assert "gender" not in no_users.vocabularies and "genres" in no_users.vocabularies
    assert len(no_users.recommend(["1"], k=5)) == 5
    id_only = TwoTower(use_features=False, epochs=1, embedding_dim=8, layer_sizes=[8])
    id_only.fit(tt_data.ratings, items=tt_data.items, users=tt_data.users, verbose=0)
    assert set(id_only.vocabularies) == {"user_id", "item_id"}
    with pytest.raises(ConfigError, match="demographic"):
        id_only.query_from_demographics(["F"], [25], ["student"], ["12345"])


def test_two_tower_config_round_trip_and_towers_save(tt_data, tmp_path):
    model = TwoTower(epochs=1, embedding_dim=8, layer_sizes=[8])
    model.fit(tt_data.ratings, items=tt_data.items, users=tt_data.users, verbose=0)
    clone = TwoTower.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    model.save_weights(str(tmp_path / "w"))
    clone.restore(tt_data.ratings, items=tt_data.items, users=tt_data.users, weights=str(tmp_path / "w"))
    np.testing.assert_allclose(clone.user_embeddings(["1", "2"]), model.user_embeddings(["1", "2"]), atol=1e-6)
    tf.saved_model.save(model.candidate_model, str(tmp_path / "candidate"))
    assert (tmp_path / "candidate" / "saved_model.pb").is_file()


def test_two_tower_history_items_share_the_candidate_item_embedding(tt_data):
    kw = dict(epochs=1, embedding_dim=8, layer_sizes=[8], history_length=5, ensemble_size=2)
    shared = TwoTower(**kw).fit(tt_data.ratings, items=tt_data.items, users=tt_data.users, verbose=0)
    separate = TwoTower(share_item_embeddings=False, **kw)
    separate.fit(tt_data.ratings, items=tt_data.items, users=tt_data.users, verbose=0)
    for q, c in zip(shared.query_towers, shared.candidate_towers):  # each member shares its own table
        assert q.history_embedding is c.item_embedding
    assert shared.query_towers[0].history_embedding is not shared.query_towers[1].history_embedding
    for q, c in zip(separate.query_towers, separate.candidate_towers):
        assert q.history_embedding is not c.item_embedding
    # One table per member, not two: exactly one [n_items + 1, d] table fewer per member.
    n_items = len(shared.vocabularies["item_id"])
    def size(m):
        return sum(int(np.prod(w.shape)) for w in m.trainable_weights)

    assert size(separate) - size(shared) == 2 * (n_items + 1) * 8
    # Moving an item's one vector moves both its candidate embedding and the queries of the users
    # whose history holds it.
    table = shared.candidate_towers[0].item_embedding.embeddings
    user = "1"
    tower = shared.query_towers[0]
    history = tower.history.numpy()[tower.user_lookup(tf.constant([user])).numpy()[0]]
    before = shared.user_embeddings([user])
    table.assign_add(tf.scatter_nd(history[history > 0][:, None], tf.ones([int((history > 0).sum()), 8]),
                                   table.shape))
    assert not np.allclose(shared.user_embeddings([user]), before)


def test_two_tower_ensemble_scores_are_the_mean_of_its_members(tt_data):
    model = TwoTower(ensemble_size=3, epochs=2, embedding_dim=8, layer_sizes=[8], history_length=5, patience=2)
    model.fit(tt_data.ratings, items=tt_data.items, users=tt_data.users, verbose=0)
    assert model.output_dim == 24 and len(model.query_towers) == len(model.candidate_towers) == 3
    users = ["1", "2", "3"]
    q = model.user_embeddings(users)
    ids, c = model.candidate_embeddings()
    assert q.shape == (3, 24) and c.shape == (len(ids), 24)
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)  # unit norm, as ScaNN's tree expects
    feats = model.features_from_ids(tf.constant(ids[:1].astype(str)), tf.constant(ids.astype(str)))
    cand = model._candidate_inputs(feats)
    member_scores = [tower(model._user_features(users)).numpy() @ ctower(cand).numpy().T
                     for tower, ctower in zip(model.query_towers, model.candidate_towers)]
    np.testing.assert_allclose(q @ c.T, np.mean(member_scores, axis=0), atol=1e-5)
    # In training the ensemble looks each example's history window up once for all members; a
    # member computing its own sees exactly the same window.
    timed = dict(model.features_from_ids(tf.constant(["1", "2"]), tf.constant(ids[:2].astype(str))),
                 timestamp=tf.constant(tt_data.ratings.groupby("user_id")["timestamp"].max()[["1", "2"]].to_numpy(),
                                       tf.int64))
    inputs = model._query_inputs(timed)
    assert (inputs["history_items"].numpy() > 0).all()  # both users have 5+ earlier items
    for tower in model.query_towers:
        own = tower._history_items(tower.user_lookup(inputs["user_id"]), inputs)
        np.testing.assert_array_equal(inputs["history_items"].numpy(), own.numpy())
        without = {k: v for k, v in inputs.items() if k != "history_items"}
        np.testing.assert_allclose(tower(inputs).numpy(), tower(without).numpy(), atol=1e-6)
    # Members start from their own initialisations and stay distinct models.
    assert not np.allclose(member_scores[0], member_scores[1], atol=1e-3)
    # The loss is the mean of the members' own retrieval losses.
    batch = model.features_from_ids(tf.constant(["1", "2", "3", "4"]), tf.constant(ids[:4].astype(str)))
    total = float(model.compute_loss(batch))
    assert TwoTower.from_config(model.get_config()).get_config() == model.get_config()
    for ensemble in (model.query_model, model.candidate_model):
        rebuilt = TowerEnsemble.from_config(ensemble.get_config())
        assert rebuilt.get_config() == ensemble.get_config() and len(rebuilt.members) == 3
    members = []
    for q_tower, c_tower in zip(model.query_towers, model.candidate_towers):
        members.append(float(model.task(q_tower(model._query_inputs(batch)), c_tower(model._candidate_inputs(batch)),
                                         candidate_sampling_probability=tf.exp(tf.gather(
                                             model._item_logq, model._prob_lookup(batch["item_id"]))),
                                         candidate_ids=batch["item_id"], compute_metrics=False)))
    assert total == pytest.approx(np.mean(members), rel=1e-5)


def test_two_tower_bad_hyperparameters():
    with pytest.raises(ConfigError, match="temperature"):
        TwoTower(temperature=0)
    with pytest.raises(ConfigError, match="embedding_dim"):
        TwoTower(embedding_dim=-4)
    with pytest.raises(ConfigError, match="ensemble_size"):
        TwoTower(ensemble_size=0)


def test_two_tower_ml100k_quality(ml100k):
    train, test = leave_last_out_split(ml100k.ratings)
    # One tower pair (the default's members, features and attention history) keeps this ~20 s.
    model = TwoTower(epochs=3, ensemble_size=1).fit(train, items=ml100k.items, users=ml100k.users, verbose=0)
    assert full_ranking(model, train, test)["hr@10"] > 0.06  # popularity scores ~0.065 here


def test_two_tower_history_sees_only_earlier_items_in_training():
    # User "a" rated p, q, r, s in that order; "b" rated s then p.
    ratings = pd.DataFrame({"user_id": ["a", "a", "a", "a", "b", "b"], "item_id": ["p", "q", "r", "s", "s", "p"],
                            "rating": 4.0, "timestamp": [10, 20, 30, 40, 5, 50]})
    model = TwoTower(history_length=2, epochs=1, embedding_dim=4, layer_sizes=[4], batch_size=2)
    model.fit(ratings, validation_fraction=0, verbose=0)
    item_index = {it: j + 1 for j, it in enumerate(model.vocabularies["item_id"])}
    names = {v: k for k, v in item_index.items()}

    def seen(user, t):
        idx = model.query_towers[0].user_lookup(tf.constant([user]))
        row = model.query_towers[0]._history_items(idx, {"timestamp": tf.constant([t], tf.int64)}).numpy()[0]
        return [names.get(int(j)) for j in row]

    # The example (a, r, t=30) sees the two items before it -- never r itself or the later s.
    assert seen("a", 30) == ["p", "q"]
    assert seen("a", 40) == ["q", "r"]
    assert seen("a", 20) == [None, "p"]  # right-aligned: padding first, most recent last
    assert seen("a", 10) == [None, None]  # the first rating has no history
    assert seen("b", 50) == [None, "s"]  # b's history is b's own, not a's
    # Serving (no timestamp): each user's last N training items, in the same layout.
    table = model.query_towers[0].history.numpy()
    idx = model.query_towers[0].user_lookup(tf.constant(["a", "b"])).numpy()
    assert [names.get(int(j)) for j in table[idx[0]]] == ["r", "s"]
    assert [names.get(int(j)) for j in table[idx[1]]] == ["s", "p"]


def test_two_tower_history_counts_same_second_items_but_never_the_target():
    # "a" rated p at 10, then q, r, s in the same second (30), then t at 40.
    ratings = pd.DataFrame({"user_id": ["a"] * 5, "item_id": ["p", "q", "r", "s", "t"], "rating": 4.0,
                            "timestamp": [10, 30, 30, 30, 40]})
    model = TwoTower(history_length=3, epochs=1, embedding_dim=4, layer_sizes=[4], batch_size=2)
    model.fit(ratings, validation_fraction=0, verbose=0)
    names = {j + 1: it for j, it in enumerate(model.vocabularies["item_id"])}

    def seen(item, t):
        inputs = model._query_inputs({"user_id": tf.constant(["a"]), "item_id": tf.constant([item]),
                                      "timestamp": tf.constant([t], tf.int64)})
        idx = model.query_towers[0].user_lookup(inputs["user_id"])
        return [names.get(int(j)) for j in model.query_towers[0]._history_items(idx, inputs).numpy()[0]]

    # Same-second ratings are history (as they are at serving time); the target itself never is,
    # and the N items stay right-aligned around the gap it leaves.
    assert seen("r", 30) == ["p", "q", "s"]
    assert seen("q", 30) == ["p", "r", "s"]
    assert seen("s", 30) == ["p", "q", "r"]
    assert seen("t", 40) == ["q", "r", "s"]  # nothing from after t; t itself left out
    assert seen("p", 10) == [None, None, None]
    # Training and serving agree: the serving table holds the last N items, t included (every member).
    for tower in model.query_towers:
        table = tower.history.numpy()[tower.user_lookup(tf.constant(["a"])).numpy()[0]]
        assert [names.get(int(j)) for j in table] == ["r", "s", "t"]


def test_two_tower_history_is_off_without_timestamps():
    ratings = pd.DataFrame({"user_id": ["a", "a", "b", "b"], "item_id": ["p", "q", "q", "r"], "rating": 4.0})
    model = TwoTower(history_length=2, epochs=1, embedding_dim=4, layer_sizes=[4], batch_size=2)
    with pytest.warns(UserWarning, match="no 'timestamp' column"):
        model.fit(ratings, validation_fraction=0, verbose=0)
    assert not model.query_towers[0].history.numpy().any()  # no order, no history: the target cannot leak in
    assert model.recommend(["a"], k=2)["item_id"].tolist() == ["r"]  # the one item a has not rated
