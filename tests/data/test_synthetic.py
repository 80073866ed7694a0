"""Synthetic MovieLens-like data: schema, determinism, labelling, and that the ratings carry signal."""

import numpy as np
import pandas as pd
import pytest

from tfrec.data import cold_start_user_split, synthetic_movielens
from tfrec.data.synthetic import GENRES
from tfrec.errors import ConfigError


def test_schema_and_dtypes(synthetic_data):
    d = synthetic_data
    assert list(d.ratings.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert d.ratings.rating.dtype == np.float32 and d.ratings.timestamp.dtype == np.int64
    assert pd.api.types.is_string_dtype(d.ratings.user_id) and pd.api.types.is_string_dtype(d.ratings.item_id)
    assert list(d.items.columns) == ["item_id", "title", "year", "genres"]
    assert list(d.users.columns) == ["user_id", "gender", "age", "occupation", "zip"]
    assert len(d.ratings) == 6000 and len(d.users) == 200 and len(d.items) == 150
    assert set(d.ratings.rating.unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert d.items.title.str.fullmatch(r"Synthetic Movie \d+ \(\d{4}\)").all()
    assert all(1 <= len(g) <= 3 and set(g) <= set(GENRES) for g in d.items.genres)
    assert len(GENRES) == 18 and "unknown" not in GENRES
    years = d.items.title.str.extract(r"\((\d{4})\)$")[0].astype(int)
    assert (years.to_numpy() == d.items.year.to_numpy()).all()
    assert set(d.users.gender) == {"M", "F"} and d.users.zip.str.fullmatch(r"\d{5}").all()
    assert set(d.ratings.user_id) <= set(d.users.user_id) and set(d.ratings.item_id) <= set(d.items.item_id)


def test_structure_of_the_log(synthetic_data):
    r = synthetic_data.ratings
    assert not r.duplicated(["user_id", "item_id"]).any()
    assert r.user_id.nunique() == 200 and r.groupby("user_id").size().min() >= 5  # everyone, a handful each
    assert r.timestamp.is_monotonic_increasing
    counts = r.item_id.value_counts()
    assert counts.iloc[0] > 4 * counts.median()  # popularity is skewed
    assert 3.2 < r.rating.mean() < 3.9 and 0.8 < r.rating.std() < 1.4  # MovieLens-like scale


def test_deterministic_and_labelled():
    a = synthetic_movielens(100, 80, 2000, seed=5)
    b = synthetic_movielens(100, 80, 2000, seed=5)
    c = synthetic_movielens(100, 80, 2000, seed=6)
    for x, y in ((a.ratings, b.ratings), (a.items, b.items), (a.users, b.users)):
        pd.testing.assert_frame_equal(x, y)
    assert not a.ratings.equals(c.ratings)
    assert a.synthetic and a.name == "synthetic"
    assert "synthetic" in a.source and "n_users=100" in a.source and "seed=5" in a.source
    assert "synthetic" in repr(a)


def test_item_means_follow_the_generating_item_bias(synthetic_data):
    r = synthetic_data.ratings
    stats = r.groupby("item_id").rating.agg(["mean", "size"])
    stats = stats[stats["size"] >= 10]
    bias = pd.Series(synthetic_data.extras["item_bias"], index=synthetic_data.items.item_id).reindex(stats.index)
    corr = np.corrcoef(stats["mean"], bias)[0, 1]
    shuffled = np.corrcoef(stats["mean"], np.random.default_rng(0).permutation(bias.to_numpy()))[0, 1]
    assert corr > 0.35 and abs(shuffled) < 0.2


def test_demographics_help_for_new_users():
    """Item means per occupation predict held-out users better than plain item means."""
    data = synthetic_movielens(800, 150, 30000, seed=2)
    train, test = cold_start_user_split(data.ratings, 0.25, seed=0)
    occ = data.users.set_index("user_id").occupation
    train = train.assign(occ=occ.reindex(train.user_id).to_numpy())
    test = test.assign(occ=occ.reindex(test.user_id).to_numpy())
    item_mean = train.groupby("item_id").rating.mean()
    base = item_mean.reindex(test.item_id).fillna(train.rating.mean()).to_numpy()
    g = train.groupby(["item_id", "occ"]).rating.agg(["sum", "size"])
    shrunk = (g["sum"] + 5 * item_mean.reindex(g.index.get_level_values(0)).to_numpy()) / (g["size"] + 5)
    by_group = shrunk.reindex(pd.MultiIndex.from_arrays([test.item_id, test.occ])).to_numpy()
    by_group = np.where(np.isnan(by_group), base, by_group)
    y = test.rating.to_numpy()
    rmse_base = np.sqrt(np.mean((base - y) ** 2))
    rmse_group = np.sqrt(np.mean((by_group - y) ** 2))
    assert rmse_group < rmse_base - 0.02


def test_exact_sizes_and_bad_arguments():
    small = synthetic_movielens(n_users=10, n_items=12, n_ratings=60, seed=0)
    assert len(small.ratings) == 60 and small.ratings.user_id.nunique() == 10
    for kwargs, match in (({"n_users": 0}, "n_users"), ({"n_items": 2.5}, "n_items"),
                          ({"n_ratings": 10, "n_users": 20}, "fewer than n_users"),
                          ({"n_users": 10, "n_items": 10, "n_ratings": 60}, "too dense"),
                          ({"seed": -1}, "seed")):
        with pytest.raises(ConfigError, match=match):
            synthetic_movielens(**kwargs)


def _neighbour_vs_random_similarity(data):
    """Mean cosine of the generating item factors: consecutive items of a user vs random pairs of that user."""
    q = data.extras["item_factors"]
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    pos = pd.Series(np.arange(len(data.items)), index=data.items.item_id)
    rng = np.random.default_rng(0)
    near, rand = [], []
    for _, g in data.ratings.groupby("user_id", sort=False):  # the log is in time order
        v = q[pos.reindex(g.item_id).to_numpy()]
        near.append(np.sum(v[1:] * v[:-1], axis=1))
        shuffled = v[rng.permutation(len(v))]
        rand.append(np.sum(shuffled[1:] * shuffled[:-1], axis=1))
    return np.concatenate(near).mean(), np.concatenate(rand).mean()


def test_neutral_sequential_options_are_the_default_generator():
    a = synthetic_movielens(60, 50, 900, seed=3)
    b = synthetic_movielens(60, 50, 900, seed=3, taste_drift=0, transition_rate=0.0)
    for x, y in ((a.ratings, b.ratings), (a.items, b.items), (a.users, b.users)):
        pd.testing.assert_frame_equal(x, y)
    assert a.source == b.source and "taste_drift" not in a.source
    assert sorted(a.extras) == sorted(b.extras) and all(np.array_equal(a.extras[k], b.extras[k]) for k in a.extras)


def test_sequential_log_is_deterministic_ordered_and_measurably_sequential():
    kw = dict(n_users=80, n_items=200, n_ratings=4000, seed=1)
    seq = synthetic_movielens(**kw, taste_drift=0.05, transition_rate=0.3)
    again = synthetic_movielens(**kw, taste_drift=0.05, transition_rate=0.3)
    pd.testing.assert_frame_equal(seq.ratings, again.ratings)
    r = seq.ratings
    assert len(r) == 4000 and r.user_id.nunique() == 80 and not r.duplicated(["user_id", "item_id"]).any()
    assert r.timestamp.is_monotonic_increasing and 3.2 < r.rating.mean() < 3.9
    assert "taste_drift=0.05, transition_rate=0.3" in seq.source
    # The same users rate the same number of items; only the order (and which items) carries sequence.
    plain = synthetic_movielens(**kw)
    assert (r.groupby("user_id").size().sort_index() == plain.ratings.groupby("user_id").size().sort_index()).all()
    near, rand = _neighbour_vs_random_similarity(seq)
    assert near > rand + 0.1
    # About transition_rate of the consecutive pairs follow the related-items graph (a few more by chance).
    pos = pd.Series(np.arange(len(seq.items)), index=seq.items.item_id)
    related = seq.extras["related_items"]
    follows = [np.isin(b, related[a]) for _, g in r.groupby("user_id", sort=False)
               for a, b in zip(pos[g.item_id].to_numpy()[:-1], pos[g.item_id].to_numpy()[1:])]
    assert 0.25 < np.mean(follows) < 0.4
    near0, rand0 = _neighbour_vs_random_similarity(plain)
    assert abs(near0 - rand0) < 0.05  # the default log has no such runs
    # The taste walk moves users away from where they started.
    drift = synthetic_movielens(**kw, taste_drift=0.1)
    assert "related_items" not in drift.extras
    moved = np.linalg.norm(drift.extras["final_user_factors"] - drift.extras["user_factors"], axis=1)
    assert moved.mean() > 0.1 * np.linalg.norm(drift.extras["user_factors"], axis=1).mean()
    with pytest.raises(ConfigError, match="taste_drift"):
        synthetic_movielens(**kw, taste_drift=-0.1)
    for bad in ("strong", 1.5):
        with pytest.raises(ConfigError, match="transition_rate"):
            synthetic_movielens(**kw, transition_rate=bad)
