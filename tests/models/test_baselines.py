"""The classic baselines' own behaviour on hand-made data, persistence, validation, and ML-100K."""

import inspect
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics.pairwise import cosine_similarity

from tfrec.data import leave_last_out_split
from tfrec.errors import ConfigError, DataError
from tfrec.evaluation import full_ranking
from tfrec.models.baselines import ContentTFIDF, CoVisitation, ItemKNN, Popularity, UserKNN
from tfrec.models.registry import BASELINES, get_model_class


def frame(rows, *, rating=4.0):
    """(user, item[, timestamp[, rating]]) tuples -> ratings DataFrame; timestamps default to row order."""
    out = []
    for n, row in enumerate(rows):
        u, i = row[0], row[1]
        t = row[2] if len(row) > 2 else n
        r = row[3] if len(row) > 3 else rating
        out.append((str(u), str(i), float(r), int(t)))
    return pd.DataFrame(out, columns=["user_id", "item_id", "rating", "timestamp"])


def scores_of(model, user):
    s = model.score_users([user])[0]
    return dict(zip(model.catalog_, s))


# -- Popularity ---------------------------------------------------------------------------------------
def test_popularity_ranks_by_count_and_similar_items_counts_co_raters():
    # x: 4 users, y: 3, z: 2, w: 1.
    r = frame([("a", "x"), ("a", "y"), ("a", "z"), ("b", "x"), ("b", "y"), ("c", "x"), ("c", "z"),
               ("d", "x"), ("d", "y"), ("e", "w")])
    model = Popularity().fit(r)
    assert model.recommend("new-user", k=4).item_id.tolist() == ["x", "y", "z", "w"]
    assert model.recommend("new-user", k=4).score.tolist() == [4.0, 3.0, 2.0, 1.0]
    # User a has seen x, y, z: only w is left.
    assert model.recommend("a", k=3).item_id.tolist() == ["w"]
    sims = model.similar_items("y", k=3)
    # y is co-rated with x by a, b, d (3 users) and with z by a (1 user); never with w.
    assert sims.similar_item_id.tolist() == ["x", "z", "w"] and sims.score.tolist() == [3.0, 1.0, 0.0]


# -- ItemKNN ------------------------------------------------------------------------------------------
@pytest.fixture()
def co_rated():
    # "x" and "y" are rated by the same three users; "z" shares one user with "x"; "q" is isolated.
    return frame([("a", "x"), ("a", "y"), ("b", "x"), ("b", "y"), ("c", "x"), ("c", "y"), ("c", "z"),
                  ("d", "z"), ("e", "q"), ("f", "x")])


def test_item_knn_similar_items_returns_the_co_rated_item_first(co_rated):
    model = ItemKNN().fit(co_rated)
    assert model.similar_items("y", k=1).similar_item_id.tolist() == ["x"]
    assert model.similar_items("x", k=2).similar_item_id.tolist() == ["y", "z"]
    # User f only has x: y (3 co-raters) beats z (1 co-rater); q was never co-rated with x.
    s = scores_of(model, "f")
    assert s["y"] > s["z"] > 0 and s["q"] == 0


def test_item_knn_similarity_is_sklearn_cosine_without_shrinkage(synthetic_data):
    model = ItemKNN(shrinkage=0.0, n_neighbors=0).fit(synthetic_data.ratings)
    x = np.zeros((len(model.user_index_), len(model.catalog_)))
    for u, seen in model.seen_.items():
        x[model.user_index_[u], seen] = 1.0
    expected = cosine_similarity(x.T)
    got = model._similar_scores(np.arange(len(model.catalog_)))
    np.fill_diagonal(expected, 0.0)
    np.fill_diagonal(got, 0.0)
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_item_knn_shrinkage_damps_rarely_co_rated_pairs(co_rated):
    plain = ItemKNN(shrinkage=0.0).fit(co_rated).similar_items("z", k=2).set_index("similar_item_id").score
    shrunk = ItemKNN(shrinkage=10.0).fit(co_rated).similar_items("z", k=2).set_index("similar_item_id").score
    assert shrunk["x"] < plain["x"] and shrunk["y"] < plain["y"]


def test_item_knn_neighbourhood_truncation_and_history():
    # c's nearest neighbour is d (same users) but c also shares a user with a.
    r = frame([("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "b"), ("u3", "c"), ("u3", "d"), ("u4", "c"),
               ("u4", "d"), ("u5", "a"), ("u5", "c"), ("me", "a", 100)])
    full = scores_of(ItemKNN(n_neighbors=0, shrinkage=0).fit(r), "me")
    top1 = scores_of(ItemKNN(n_neighbors=1, shrinkage=0).fit(r), "me")
    assert full["c"] > 0 and top1["c"] == 0  # a is not among c's single nearest neighbour (d)
    assert top1["b"] == pytest.approx(full["b"]) and top1["b"] > 0  # b's nearest is a
    # With history=1 only the latest item counts: "me" then rates d, so c (d's twin) overtakes b.
    later = pd.concat([r, frame([("me", "d", 200)])], ignore_index=True)
    recent = ItemKNN(history=1, shrinkage=0).fit(later).recommend("me", k=1).item_id.tolist()
    everything = ItemKNN(history=None, shrinkage=0).fit(later).recommend("me", k=3).item_id.tolist()
    assert recent == ["c"] and set(everything[:2]) == {"b", "c"}


def test_item_knn_weighted_uses_ratings():
    # Same users rate x and y, but with opposite enthusiasm; z follows x's ratings exactly.
    r = frame([("a", "x", 0, 5), ("a", "y", 0, 1), ("a", "z", 0, 5), ("b", "x", 0, 1), ("b", "y", 0, 5),
               ("b", "z", 0, 1)])
    binary = ItemKNN(shrinkage=0).fit(r).similar_items("x", k=2).set_index("similar_item_id").score
    weighted = ItemKNN(shrinkage=0, weighted=True).fit(r).similar_items("x", k=2).set_index("similar_item_id").score
    assert binary["y"] == pytest.approx(binary["z"])
    assert weighted["z"] == pytest.approx(1.0) and weighted["y"] < 0.5


# -- UserKNN ------------------------------------------------------------------------------------------
def test_user_knn_recommends_what_the_most_similar_user_has():
    r = frame([("me", "a"), ("me", "b"), ("me", "c"), ("twin", "a"), ("twin", "b"), ("twin", "c"), ("twin", "t"),
               ("other", "a"), ("other", "o"), ("far", "z"), ("far", "f")])
    model = UserKNN(n_neighbors=1, history=None).fit(r)
    recs = model.recommend("me", k=1)
    assert recs.item_id.tolist() == ["t"]
    s = scores_of(model, "me")
    assert s["o"] == 0 and s["f"] == 0  # only the single nearest neighbour (twin) votes
    assert scores_of(UserKNN(n_neighbors=0, history=None).fit(r), "me")["o"] > 0


def test_user_knn_history_matches_on_recent_items():
    # "me" used to rate like "old" but recently rates like "new".
    r = frame([("me", "p", 1), ("me", "q", 2), ("me", "r", 3), ("me", "s", 10), ("me", "t", 11),
               ("old", "p"), ("old", "q"), ("old", "r"), ("old", "old-pick"),
               ("new", "s"), ("new", "t"), ("new", "new-pick")])
    assert UserKNN(n_neighbors=1, history=2).fit(r).recommend("me", k=1).item_id.tolist() == ["new-pick"]
    assert UserKNN(n_neighbors=1, history=None).fit(r).recommend("me", k=1).item_id.tolist() == ["old-pick"]


# -- ContentTFIDF -------------------------------------------------------------------------------------
@pytest.fixture()
def catalog():
    return pd.DataFrame({
        "item_id": ["c1", "c2", "c3", "h1", "h2", "h3", "d1"],
        "title": ["Funny People (2009)", "Funny Games (1997)", "Laugh Out Loud (2001)", "Dark House (1999)",
                  "Dark Night (2003)", "Scream Again (1996)", "Planet Earth (2006)"],
        "year": [2009, 1997, 2001, 1999, 2003, 1996, 2006],
        "genres": [["Comedy"], ["Comedy"], ["Comedy", "Romance"], ["Horror"], ["Horror", "Thriller"], ["Horror"],
                   ["Documentary"]],
    })


def test_content_tfidf_similar_items_share_genres(catalog, synthetic_data):
    r = frame([("u", i) for i in catalog.item_id] + [("v", "c1"), ("v", "h1")])
    model = ContentTFIDF(min_df=1).fit(r, items=catalog)
    top = model.similar_items("c1", k=2).similar_item_id.tolist()
    assert set(top) == {"c2", "c3"} and top[0] == "c2"  # c2 also shares the title word "funny"
    assert model.similar_items("h2", k=2).similar_item_id.tolist()[0] in {"h1", "h3"}
    # On synthetic data every top-5 neighbour shares a genre with the query item.
    items = synthetic_data.items
    model = ContentTFIDF().fit(synthetic_data.ratings, items=items)
    genres = items.set_index("item_id").genres
    for item in model.catalog_[:10]:
        for other in model.similar_items(item, k=5).similar_item_id:
            assert set(genres[item]) & set(genres[other]), (item, other)


def test_content_tfidf_profile_follows_ratings(catalog):
    # The user loves comedies and hates horror; the unseen comedy must beat the unseen horror film.
    r = frame([("u", "c1", 1, 5), ("u", "c2", 2, 5), ("u", "h1", 3, 1), ("u", "h2", 4, 1), ("v", "c3"),
               ("v", "h3"), ("v", "d1")])
    model = ContentTFIDF(min_df=1).fit(r, items=catalog)
    s = scores_of(model, "u")
    assert s["c3"] > s["d1"] > s["h3"]
    assert model.recommend("u", k=1).item_id.tolist() == ["c3"]
    # Unweighted, horror counts as much as comedy.
    flat = scores_of(ContentTFIDF(min_df=1, rating_weighted=False).fit(r, items=catalog), "u")
    assert flat["h3"] > 0 and flat["h3"] > s["h3"]


def test_content_tfidf_needs_items(catalog):
    r = frame([("u", "c1"), ("v", "c2")])
    with pytest.raises(DataError, match="items"):
        ContentTFIDF().fit(r)
    with pytest.raises(DataError, match="genres"):
        ContentTFIDF().fit(r, items=catalog.drop(columns="genres"))
    with pytest.raises(ConfigError, match="genre_weight"):
        ContentTFIDF(genre_weight=0, use_title=False)


# -- CoVisitation -------------------------------------------------------------------------------------
def covis_row(model, item):
    s = model._similar_scores(np.array([model.item_index_[item]]))[0]
    return {it: v for it, v in zip(model.catalog_, s) if v}


def test_covisitation_counts_adjacent_pairs():
    # Sequences (by timestamp, rows deliberately shuffled): u: a b c, v: a b, w: b a d.
    r = frame([("u", "c", 3), ("u", "a", 1), ("v", "b", 2), ("u", "b", 2), ("v", "a", 1), ("w", "d", 3),
               ("w", "b", 1), ("w", "a", 2)])
    adjacent = CoVisitation(window=1, decay=False).fit(r)
    assert covis_row(adjacent, "a") == {"b": 3.0, "d": 1.0}
    assert covis_row(adjacent, "b") == {"a": 3.0, "c": 1.0}
    assert covis_row(adjacent, "d") == {"a": 1.0}
    # Window 2 with 1/d decay adds the distance-2 pairs at half weight.
    decayed = CoVisitation(window=2, decay=True).fit(r)
    assert covis_row(decayed, "a") == {"b": 3.0, "c": 0.5, "d": 1.0}
    assert covis_row(decayed, "d") == {"a": 1.0, "b": 0.5}
    assert decayed.similar_items("a", k=1).similar_item_id.tolist() == ["b"]


def test_covisitation_time_window_and_sessions():
    # One user, two bursts a day apart: (a, b) at t=0/60, then (c, d) at t=86400/86460.
    r = frame([("u", "a", 0), ("u", "b", 60), ("u", "c", 86400), ("u", "d", 86460), ("v", "a", 5)])
    whole = CoVisitation(window=None, decay=False).fit(r)
    assert covis_row(whole, "b") == {"a": 1.0, "c": 1.0, "d": 1.0}
    timed = CoVisitation(window=None, time_window=3600, decay=False).fit(r)
    assert covis_row(timed, "b") == {"a": 1.0}
    sessions = CoVisitation(window=None, session_gap=3600, decay=False).fit(r)
    assert covis_row(sessions, "b") == {"a": 1.0} and covis_row(sessions, "c") == {"d": 1.0}
    with pytest.raises(DataError, match="timestamp"):
        CoVisitation(time_window=60).fit(r.drop(columns="timestamp"))


def test_covisitation_scores_sum_over_recent_history(synthetic_data):
    r = frame([("u", "a", 1), ("u", "b", 2), ("v", "a", 1), ("v", "x", 2), ("w", "b", 1), ("w", "y", 2),
               ("w", "y2", 3)])
    # u's history {a, b}: x co-visits a, y co-visits b; with history=1 only b (the latest) counts.
    s = scores_of(CoVisitation(window=1, history=None, decay=False).fit(r), "u")
    assert s["x"] == pytest.approx(1.0, abs=1e-5) and s["y"] == pytest.approx(1.0, abs=1e-5)
    s1 = scores_of(CoVisitation(window=1, history=1, decay=False).fit(r), "u")
    assert s1["y"] == pytest.approx(1.0, abs=1e-5) and s1["x"] < 1e-5
    # The product shortcut (whole history, no decay) equals the pair loop with an unbounded window.
    data = synthetic_data.ratings
    fast = CoVisitation(window=None, decay=False).fit(data)
    loop = CoVisitation(window=10_000, decay=False).fit(data)
    assert (fast._co != loop._co).nnz == 0 and fast._co.nnz > 0


# -- shared: validation, params, persistence ----------------------------------------------------------
@pytest.mark.parametrize("cls, kwargs, name", [
    (ItemKNN, {"n_neighbors": -1}, "n_neighbors"),
    (ItemKNN, {"n_neighbors": 2.5}, "n_neighbors"),
    (ItemKNN, {"shrinkage": -0.1}, "shrinkage"),
    (ItemKNN, {"shrinkage": float("nan")}, "shrinkage"),
    (ItemKNN, {"history": 0}, "history"),
    (ItemKNN, {"weighted": "yes"}, "weighted"),
    (UserKNN, {"n_neighbors": -5}, "n_neighbors"),
    (UserKNN, {"shrinkage": "lots"}, "shrinkage"),
    (ContentTFIDF, {"min_df": 0}, "min_df"),
    (ContentTFIDF, {"genre_weight": -1}, "genre_weight"),
    (ContentTFIDF, {"rating_offset": -1}, "rating_offset"),
    (CoVisitation, {"window": 0}, "window"),
    (CoVisitation, {"time_window": -60}, "time_window"),
    (CoVisitation, {"session_gap": -1}, "session_gap"),
    (CoVisitation, {"history": -3}, "history"),
])
def test_bad_hyperparameters_name_the_argument_and_value(cls, kwargs, name):
    with pytest.raises(ConfigError, match=name) as info:
        cls(**kwargs)
    assert repr(kwargs[name]) in str(info.value)


@pytest.mark.parametrize("name", BASELINES)
def test_get_params_rebuilds_the_model_and_the_registry_finds_it(name):
    cls = get_model_class(name)
    model = cls()
    params = model.get_params()
    assert set(params) == set(inspect.signature(cls).parameters)
    assert type(model)(**params).get_params() == params
    json.dumps(params)  # plain values, so run folders can store them


@pytest.mark.parametrize("cls, kwargs", [
    (Popularity, {}), (ItemKNN, {"n_neighbors": 10}), (UserKNN, {"history": None}), (ContentTFIDF, {}),
    (CoVisitation, {"window": 3, "session_gap": 3600.0})])
def test_save_and_load_round_trip_without_refitting(cls, kwargs, synthetic_data, tmp_path):
    model = cls(**kwargs).fit(synthetic_data.ratings, items=synthetic_data.items)
    model.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["baseline.json", "baseline.npz"]
    loaded = cls.load(tmp_path / "m")
    assert loaded.get_params() == model.get_params()
    users = ["1", "7", "no-such-user"]
    np.testing.assert_array_equal(loaded.score_users(users), model.score_users(users))
    pd.testing.assert_frame_equal(loaded.recommend(users, k=5), model.recommend(users, k=5))
    item = model.catalog_[3]
    pd.testing.assert_frame_equal(loaded.similar_items(item, k=5), model.similar_items(item, k=5))
    np.load(tmp_path / "m" / "baseline.npz", allow_pickle=False)  # no pickled objects inside


def test_load_rejects_the_wrong_class_or_missing_files(synthetic_data, tmp_path):
    Popularity().fit(synthetic_data.ratings).save(tmp_path / "pop")
    with pytest.raises(DataError, match="Popularity"):
        ItemKNN.load(tmp_path / "pop")
    with pytest.raises(DataError, match="missing"):
        ItemKNN.load(tmp_path / "nothing-here")
    with pytest.raises(ConfigError, match="not fitted"):
        ItemKNN().save(tmp_path / "unfitted")


def test_repeated_interactions_count_once_with_their_mean_rating():
    r = frame([("a", "x", 1, 1), ("a", "x", 2, 5), ("a", "y", 3, 3), ("b", "x", 4, 3), ("b", "y", 5, 3)])
    model = ItemKNN(weighted=True, shrinkage=0).fit(r)
    assert model._matrix[model.user_index_["a"], model.item_index_["x"]] == pytest.approx(3.0)
    assert model.similar_items("x", k=1).score.iloc[0] == pytest.approx(1.0)  # (3,3) and (3,3) are parallel


# -- real data ----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_neighbourhood_models_beat_popularity_on_ml100k(ml100k):
    train, test = leave_last_out_split(ml100k.ratings)
    hr = {name: full_ranking(cls().fit(train), train, test)["hr@10"]
          for name, cls in [("pop", Popularity), ("item", ItemKNN), ("user", UserKNN), ("covis", CoVisitation)]}
    # Measured: popularity ~0.066, item/user kNN and co-visitation 0.13-0.16 (benchmarks/ranking.py).
    assert 0.03 < hr["pop"] < 0.12
    assert hr["item"] > 1.5 * hr["pop"] and hr["user"] > 1.3 * hr["pop"] and hr["covis"] > 1.5 * hr["pop"]
