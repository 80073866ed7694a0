"""Synthetic MovieLens-like data with real structure, for tests and offline demos.

Ratings come from a latent-factor model with user/item biases in which demographics and genres
shape the factors, and item popularity is Zipf-skewed, so every tfrec model has something real to
learn (popularity, collaborative signal, and a feature signal for cold start). Always labelled
``synthetic=True``; never substituted for real data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tfrec.data.dataset import MovieLensData
from tfrec.errors import ConfigError

GENRES = [
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
]
OCCUPATIONS = ["student", "engineer", "educator", "artist", "programmer", "writer", "retired", "other"]


def synthetic_movielens(n_users: int = 500, n_items: int = 300, n_ratings: int = 20000, seed: int = 0,
                        *, n_factors: int = 8) -> MovieLensData:
    """A MovieLens-shaped dataset from a known generative model, deterministic per ``seed``.

    Each user gets gender, age, occupation and zip; each item 1-3 genres and a year. The user's
    latent taste is a mix of a demographic-group vector and noise; the item's is the mean of its
    genre vectors plus noise; rating = clip(round(3.5 + b_u + b_i + <p_u, q_i> + noise), 1, 5).
    Items are drawn with Zipf-like popularity, and each (user, item) pair appears at most once.

    Returns a :class:`~tfrec.data.MovieLensData` with ``name="synthetic"``, ``synthetic=True``
    and the generating parameters in ``extras`` (``item_bias``, ``user_bias``).
    """
    for arg, value in (("n_users", n_users), ("n_items", n_items), ("n_ratings", n_ratings)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"synthetic_movielens: {arg} must be a positive integer, got {value!r}")
    if n_ratings > n_users * n_items // 2:
        raise ConfigError(f"synthetic_movielens: n_ratings={n_ratings} is more than half of n_users*n_items "
                          f"({n_users * n_items}); the matrix would be too dense to be MovieLens-like")
    rng = np.random.default_rng(seed)

    # Users and their demographics.
    gender = rng.choice(np.array(["M", "F"], dtype=object), size=n_users, p=[0.7, 0.3])
    age = np.clip(rng.normal(32, 11, size=n_users).round(), 7, 73).astype(np.int64)
    occupation = rng.choice(np.array(OCCUPATIONS, dtype=object), size=n_users)
    zips = np.array([f"{rng.integers(0, 10)}{rng.integers(0, 10)}{rng.integers(0, 10)}{rng.integers(0, 100):02d}"
                     for _ in range(n_users)], dtype=object)
    user_ids = np.array([str(i + 1) for i in range(n_users)], dtype=object)

    # Items: genres and years.
    genre_vec = rng.normal(0, 1, size=(len(GENRES), n_factors))
    n_genres = rng.integers(1, 4, size=n_items)
    item_genres = [sorted(rng.choice(len(GENRES), size=k, replace=False).tolist()) for k in n_genres]
    years = rng.integers(1930, 2000, size=n_items).astype(np.int64)
    item_ids = np.array([str(i + 1) for i in range(n_items)], dtype=object)
    titles = [f"Synthetic Movie {i + 1} ({y})" for i, y in enumerate(years)]

    # Latent tastes: demographic groups share a taste vector, items inherit their genres'.
    group_key = (gender == "F").astype(int) * 100 + np.searchsorted([25, 35, 50], age) * 10 + \
        np.array([OCCUPATIONS.index(o) for o in occupation]) % 4
    groups, group_idx = np.unique(group_key, return_inverse=True)
    group_vec = rng.normal(0, 1, size=(len(groups), n_factors))
    p = 0.8 * group_vec[group_idx] + 0.5 * rng.normal(0, 1, size=(n_users, n_factors))
    q = np.stack([genre_vec[g].mean(axis=0) for g in item_genres]) + 0.4 * rng.normal(0, 1, size=(n_items, n_factors))
    scale = 0.6 / np.sqrt(n_factors)
    user_bias = rng.normal(0, 0.35, size=n_users)
    item_bias = rng.normal(0, 0.45, size=n_items) + 0.003 * (years - 1965)

    # Who rates what: Zipf-ish popularity, users' activity lognormal; taste nudges choice.
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    popularity = popularity[rng.permutation(n_items)]
    activity = rng.lognormal(0, 0.8, size=n_users)
    activity = activity / activity.sum()
    per_user = np.maximum(5, np.round(activity * n_ratings)).astype(int)
    per_user = np.minimum(per_user, n_items // 2)
    rows_u, rows_i = [], []
    for u in range(n_users):
        affinity = np.exp(scale * (q @ p[u]))
        w = popularity * affinity
        chosen = rng.choice(n_items, size=per_user[u], replace=False, p=w / w.sum())
        rows_u.append(np.full(len(chosen), u))
        rows_i.append(chosen)
    u_idx = np.concatenate(rows_u)
    i_idx = np.concatenate(rows_i)
    if len(u_idx) > n_ratings:  # trim to the requested size, keeping >= 1 rating per user
        keep = np.zeros(len(u_idx), dtype=bool)
        first = np.r_[0, np.cumsum([len(r) for r in rows_u])[:-1]]
        keep[first] = True
        rest = np.flatnonzero(~keep)
        keep[rng.choice(rest, size=max(n_ratings - n_users, 0), replace=False)] = True
        u_idx, i_idx = u_idx[keep], i_idx[keep]

    raw = 3.5 + user_bias[u_idx] + item_bias[i_idx] + np.einsum("nd,nd->n", p[u_idx], q[i_idx]) * scale * 2.0 \
        + rng.normal(0, 0.5, size=len(u_idx))
    rating = np.clip(np.round(raw), 1, 5).astype(np.float32)
    t0 = 880_000_000
    timestamp = (t0 + np.sort(rng.integers(0, 200 * 86400, size=len(u_idx)))).astype(np.int64)
    order = rng.permutation(len(u_idx))  # timestamps increase over the log, not per user block
    ratings = pd.DataFrame({
        "user_id": user_ids[u_idx[order]],
        "item_id": item_ids[i_idx[order]],
        "rating": rating[order],
        "timestamp": np.sort(timestamp),
    })
    items = pd.DataFrame({
        "item_id": item_ids,
        "title": np.array(titles, dtype=object),
        "year": years,
        "genres": [[GENRES[g] for g in gs] for gs in item_genres],
    })
    users = pd.DataFrame({"user_id": user_ids, "gender": gender, "age": age, "occupation": occupation, "zip": zips})
    return MovieLensData(
        name="synthetic",
        ratings=ratings,
        items=items,
        users=users,
        synthetic=True,
        source=f"synthetic_movielens(n_users={n_users}, n_items={n_items}, n_ratings={n_ratings}, seed={seed})",
        extras={"item_bias": item_bias, "user_bias": user_bias},
    )
