"""EASE, implicit ALS and the recency-weighted user rows: behaviour on hand-made and synthetic data."""

import numpy as np
import pandas as pd
import pytest

from tfrec.data import leave_last_out_split, validation_split
from tfrec.errors import ConfigError
from tfrec.evaluation import full_ranking
from tfrec.models.baselines import EASE, ImplicitALS, Popularity
from tfrec.models.baselines.recency import recency_matrix


def frame(rows):
    """(user, item, timestamp) tuples -> ratings DataFrame."""
    return pd.DataFrame([(str(u), str(i), 4.0, int(t)) for u, i, t in rows],
                        columns=["user_id", "item_id", "rating", "timestamp"])


def test_recency_matrix_weights_decay_from_the_newest_item_and_keeps_a_repeat_at_its_newest():
    # user a: x@1, y@5, x@9, z@3 -> newest first: x(0), y(1), z(2), x(3: repeat, newest kept).
    r = frame([("a", "x", 1), ("a", "y", 5), ("a", "x", 9), ("a", "z", 3), ("b", "y", 2)])
    rows = r.user_id.map({"a": 0, "b": 1}).to_numpy()
    cols = r.item_id.map({"x": 0, "y": 1, "z": 2}).to_numpy()
    m = recency_matrix(r, rows, cols, (2, 3), 0.5).toarray()
    np.testing.assert_allclose(m, [[1.0, 0.5, 0.25], [0.0, 1.0, 0.0]])
    np.testing.assert_allclose(recency_matrix(r, rows, cols, (2, 3), None, history=2).toarray(),
                               [[1.0, 1.0, 0.0], [0.0, 1.0, 0.0]])


def test_ease_weights_solve_each_items_ridge_regression_on_the_other_items(synthetic_data):
    train = synthetic_data.ratings
    model = EASE(l2=30.0).fit(train)
    x = model._interaction_matrix(train).toarray()
    b = model._B.astype(np.float64)
    assert np.all(np.diag(b) == 0)
    for j in (0, 7, len(model.catalog_) - 1):
        others = np.delete(np.arange(x.shape[1]), j)
        xo = x[:, others]
        w = np.linalg.solve(xo.T @ xo + 30.0 * np.eye(len(others)), xo.T @ x[:, j])
        np.testing.assert_allclose(b[others, j], w, rtol=1e-3, atol=1e-5)
    user = str(train.user_id.iloc[0])
    np.testing.assert_allclose(model.score_users([user])[0], x[model.user_index_[user]] @ b, rtol=1e-4, atol=1e-6)


def test_ease_recency_decay_scores_from_the_weighted_row(synthetic_data):
    train = synthetic_data.ratings
    plain, recent = EASE(l2=30.0).fit(train), EASE(l2=30.0, recency_decay=0.5).fit(train)
    np.testing.assert_array_equal(plain._B, recent._B)  # the weights do not depend on the user rows
    user = str(train.user_id.iloc[0])
    rows, cols = recent._positions(train)
    w = recency_matrix(train, rows, cols, (len(recent.user_index_), len(recent.catalog_)), 0.5)
    np.testing.assert_allclose(recent.score_users([user])[0], (w[recent.user_index_[user]] @ recent._B).ravel(),
                               rtol=1e-5)
    assert not np.allclose(plain.score_users([user]), recent.score_users([user]))


def test_ease_chooses_l2_on_a_validation_split_of_train(synthetic_data):
    train, _ = leave_last_out_split(synthetic_data.ratings)
    grid = [1.0, 30.0, 3000.0]
    model = EASE(l2_grid=grid).fit(train)
    fit_part, val = validation_split(train)
    by_l2 = {l2: full_ranking(EASE(l2=l2).fit(fit_part), fit_part, val)["ndcg@10"] for l2 in grid}
    assert model.l2_ == max(grid, key=lambda v: (by_l2[v], -v))
    assert EASE(l2=5.0).fit(train).l2_ == 5.0
    assert EASE(l2_grid=[7.0]).fit(train).l2_ == 7.0


@pytest.mark.parametrize("kwargs, name", [({"l2": 0}, "l2"), ({"l2": -1.0}, "l2"), ({"recency_decay": 0}, "recency_decay"),
                                          ({"recency_decay": 1.5}, "recency_decay"), ({"l2_grid": []}, "l2_grid"),
                                          ({"l2_grid": [10, -1]}, "l2_grid")])
def test_ease_bad_hyperparameters_are_config_errors(kwargs, name):
    with pytest.raises(ConfigError, match=name):
        EASE(**kwargs)


@pytest.mark.parametrize("kwargs, name", [({"factors": 0}, "factors"), ({"alpha": 0}, "alpha"),
                                          ({"iterations": 0}, "iterations"), ({"seed": "x"}, "seed")])
def test_als_bad_hyperparameters_are_config_errors(kwargs, name):
    with pytest.raises(ConfigError, match=name):
        ImplicitALS(**kwargs)


def test_ease_and_als_learn_more_than_popularity(synthetic_data):
    train, test = leave_last_out_split(synthetic_data.ratings)
    pop = full_ranking(Popularity().fit(train), train, test)["ndcg@10"]
    ease = full_ranking(EASE(l2=100.0).fit(train), train, test)["ndcg@10"]
    als = full_ranking(ImplicitALS(factors=16, iterations=10).fit(train), train, test)["ndcg@10"]
    assert ease > pop and als > pop, (pop, ease, als)


@pytest.mark.parametrize("cls, kwargs", [(EASE, {"l2": 10.0, "recency_decay": 0.8}),
                                         (ImplicitALS, {"factors": 8, "iterations": 3})])
def test_save_and_load_round_trip(cls, kwargs, synthetic_data, tmp_path):
    model = cls(**kwargs).fit(synthetic_data.ratings)
    model.save(tmp_path / "m")
    loaded = cls.load(tmp_path / "m")
    assert loaded.get_params() == model.get_params()
    users = ["1", "7", "no-such-user"]
    np.testing.assert_array_equal(loaded.score_users(users), model.score_users(users))
    if cls is EASE:
        assert loaded.l2_ == model.l2_ == 10.0


def test_validation_split_without_timestamps_holds_one_row_per_user():
    r = frame([("a", "x", 1), ("a", "y", 2), ("a", "z", 3), ("b", "x", 4), ("b", "y", 5), ("c", "z", 6)])
    fit_part, val = validation_split(r.drop(columns="timestamp"), seed=3)
    assert sorted(val.user_id) == ["a", "b"]  # c has a single interaction: kept for fitting
    assert len(fit_part) + len(val) == len(r)
    both = pd.concat([fit_part, val])
    assert sorted(zip(both.user_id, both.item_id)) == sorted(zip(r.user_id, r.item_id))
    fit_t, val_t = validation_split(r)  # with timestamps: each user's latest
    assert sorted(zip(val_t.user_id, val_t.item_id)) == [("a", "z"), ("b", "y")]


def test_neighbourhood_models_score_from_the_recency_weighted_row(synthetic_data):
    from tfrec.models.baselines import ItemKNN, UserKNN

    train = synthetic_data.ratings
    user = str(train.user_id.iloc[0])
    item = ItemKNN(history=None, recency_decay=0.7).fit(train)
    rows, cols = item._positions(train)
    shape = (len(item.user_index_), len(item.catalog_))
    w = recency_matrix(train, rows, cols, shape, 0.7)
    np.testing.assert_allclose(item.score_users([user])[0], (w[item.user_index_[user]] @ item._sim).toarray().ravel())
    plain = ItemKNN(history=None).fit(train)
    assert not np.allclose(plain.score_users([user]), item.score_users([user]))
    # history still truncates: only the 3 newest items carry weight (1, 0.7, 0.49).
    short = ItemKNN(history=3, recency_decay=0.7).fit(train)
    np.testing.assert_allclose(np.sort(short._history[short.user_index_[user]].data), [0.49, 0.7, 1.0])
    users = UserKNN(history=None, n_neighbors=0, recency_decay=0.7).fit(train)
    assert not np.allclose(users.score_users([user]), UserKNN(history=None, n_neighbors=0).fit(train).score_users([user]))
