"""Write large synthetic datasets to disk in a MovieLens layout, in bounded memory.

:func:`write_synthetic_dataset` is :func:`tfrec.data.synthetic_movielens`'s generative model made
to stream: items (and their factors, biases and popularity) are drawn once and kept in memory,
users are generated a chunk at a time and their ratings appended to ``ratings.csv``, so memory is
bounded by the item catalog and one chunk of users, never by the number of ratings. An
ML-32M-sized folder (32,000,000 ratings, 200,948 users, 87,585 items) can be written without
downloading anything::

    tfrec data synthesize --layout ml-32m --out /tmp/ml-32m-synthetic
    tfrec data prepare --dataset ml-32m --data-dir /tmp/ml-32m-synthetic --split leave_last_out --out prep

The model (the in-memory generator's ideas, at scale): users belong to one of ``n_tastes`` taste
groups (the csv layouts have no demographics, so the group carries the user-side signal) and their
factors are the group's vector plus noise; item factors are the mean of their genres' vectors plus
noise; item popularity is Zipf-like (exponent 0.9) and popular items have a somewhat higher bias.
Which items a user rates is drawn approximately proportional to ``popularity * exp(0.8 *
affinity)``: ``3x`` candidates are proposed from the popularity distribution, de-duplicated and
the best by ``0.8 * affinity + Gumbel noise`` kept (sampling-importance-resampling, so no
``users x items`` matrix is ever formed). Ratings are ``b_u + b_i + <p_u, q_i> + noise`` mapped
affinely to MovieLens' mean and spread and rounded to half stars (0.5-5, as in ml-32m); each user
joins at a random time and rates in sessions. Rows are written by user, then item id, as in the
published files.

Everything is labelled synthetic: ``synthetic.json`` in the folder records the generator and its
arguments, and :mod:`tfrec.data.prepared` carries that label on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from tfrec.data.synthetic import _GENRE_WEIGHTS, GENRES, _allocate
from tfrec.errors import ConfigError
from tfrec.utils.io import atomic_directory

# Published sizes of the layouts this module can imitate (ratings, users, items).
LAYOUTS = {
    "ml-32m": {"n_ratings": 32_000_000, "n_users": 200_948, "n_items": 87_585},
    "ml-25m": {"n_ratings": 25_000_095, "n_users": 162_541, "n_items": 59_047},
    "ml-latest-small": {"n_ratings": 100_836, "n_users": 610, "n_items": 9_742},
}
SYNTHETIC_MARKER = "synthetic.json"
_T0 = 789_652_009  # 1995-01-09, ml-32m's first rating
_SPAN = 28 * 365 * 86400  # ml-32m spans 1995-2023
_MEAN, _SD = 3.54, 1.06  # ml-32m's rating mean and spread


def _positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"synthesize: {name} must be a positive integer, got {value!r}")
    return int(value)


def write_synthetic_dataset(out, *, layout: str = "ml-32m", n_ratings: Optional[int] = None,
                            n_users: Optional[int] = None, n_items: Optional[int] = None, seed: int = 0,
                            n_factors: int = 16, n_tastes: int = 24, chunk_users: int = 8192,
                            overwrite: bool = False, progress: bool = False) -> dict:
    """Write a synthetic dataset in ``layout``'s files (``ratings.csv``, ``movies.csv``) to ``out``.

    Args:
      out: the dataset folder to create (written to a temporary folder beside it and renamed into
        place; an existing folder is an error unless ``overwrite``).
      layout: ``"ml-32m"`` (default), ``"ml-25m"`` or ``"ml-latest-small"``: the CSV layout and the
        default sizes (the published ones).
      n_ratings, n_users, n_items: override the layout's sizes (e.g. 1,000,000 ratings for a test).
        When only ``n_ratings`` is given, users and items scale with it as
        ``sizes * (n_ratings / published_ratings) ** 0.5`` (so density grows, as in real data).
        ``n_ratings`` must be at least ``n_users`` and at most ``n_users * n_items / 2``.
      seed: the folder's contents are a pure function of the arguments (and ``chunk_users``).
      n_factors, n_tastes: latent dimensions and number of user taste groups of the model.
      chunk_users: users generated per chunk (memory: about ``3 * chunk ratings`` candidates).
      progress: print a progress line per chunk on stderr.

    Returns:
      A summary dict (the contents of ``synthetic.json``): layout, sizes actually written, seed.
    """
    if layout not in LAYOUTS:
        raise ConfigError(f"synthesize: unknown layout {layout!r}; expected one of: {', '.join(LAYOUTS)}")
    base = LAYOUTS[layout]
    if n_ratings is not None and n_users is None and n_items is None:
        scale = (_positive("n_ratings", n_ratings) / base["n_ratings"]) ** 0.5
        n_users = max(1, int(round(base["n_users"] * scale)))
        n_items = max(2, int(round(base["n_items"] * scale)))
    n_ratings = _positive("n_ratings", n_ratings if n_ratings is not None else base["n_ratings"])
    n_users = _positive("n_users", n_users if n_users is not None else base["n_users"])
    n_items = _positive("n_items", n_items if n_items is not None else base["n_items"])
    n_factors = _positive("n_factors", n_factors)
    n_tastes = _positive("n_tastes", n_tastes)
    chunk_users = _positive("chunk_users", chunk_users)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"synthesize: seed must be a non-negative integer, got {seed!r}")
    cap = max(1, n_items // 2)
    if n_ratings < n_users:
        raise ConfigError(f"synthesize: n_ratings={n_ratings} is fewer than n_users={n_users}; every user needs a "
                          "rating")
    if n_ratings > n_users * cap:
        raise ConfigError(f"synthesize: n_ratings={n_ratings} is more than n_users * n_items/2 = {n_users * cap}; too "
                          "dense to be MovieLens-like")
    rng = np.random.default_rng(seed)

    # Items: genres, years, factors, popularity and bias (all in memory: O(n_items)).
    n_genres = rng.choice([1, 2, 3], size=n_items, p=[0.45, 0.35, 0.20])
    gp = _GENRE_WEIGHTS / _GENRE_WEIGHTS.sum()
    genre_sets = [np.sort(rng.choice(len(GENRES), size=k, replace=False, p=gp)) for k in n_genres]
    years = np.clip(2023 - np.floor(rng.exponential(14.0, size=n_items)), 1902, 2023).astype(np.int64)
    unit = 1.0 / np.sqrt(n_factors)
    genre_vec = rng.normal(0, unit, size=(len(GENRES), n_factors))
    q = np.stack([genre_vec[g].sum(axis=0) / np.sqrt(len(g)) for g in genre_sets])
    q = 2.2 * (q + rng.normal(0, 0.5 * unit, size=(n_items, n_factors)))
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.9
    popularity = popularity[rng.permutation(n_items)]
    popularity /= popularity.sum()
    log_pop = np.log(popularity)
    item_bias = rng.normal(0, 0.45, size=n_items) + 0.2 * (log_pop - log_pop.mean()) / (log_pop.std() + 1e-12)
    cdf = np.cumsum(popularity)
    cdf /= cdf[-1]

    # Users: taste groups, activity (ratings per user), bias; factors are drawn per chunk.
    taste_vec = rng.normal(0, 1.1 * unit, size=(n_tastes, n_factors))
    taste = rng.integers(0, n_tastes, size=n_users)
    user_bias = rng.normal(0, 0.4, size=n_users)
    activity = rng.lognormal(0, 0.9, size=n_users)
    per_user = _allocate(n_ratings, activity, low=min(20, cap, n_ratings // n_users), cap=cap)
    join = rng.uniform(0, 0.85 * _SPAN, size=n_users)

    summary = {"generator": "tfrec.data.synthesize.write_synthetic_dataset", "synthetic": True, "layout": layout,
               "seed": int(seed), "n_factors": n_factors, "n_tastes": n_tastes, "chunk_users": chunk_users,
               "n_ratings": 0, "n_users": n_users, "n_items": n_items}
    calibration = None
    with atomic_directory(out, overwrite=overwrite) as tmp:
        movies = pd.DataFrame({
            "movieId": np.arange(1, n_items + 1),
            "title": [f"Synthetic Movie {i + 1} ({y})" for i, y in enumerate(years)],
            "genres": ["|".join(GENRES[g] for g in gs) for gs in genre_sets],
        })
        movies.to_csv(tmp / "movies.csv", index=False)
        with open(tmp / "ratings.csv", "w", encoding="utf-8", newline="") as fh:
            fh.write("userId,movieId,rating,timestamp\n")
            for start in range(0, n_users, chunk_users):
                stop = min(start + chunk_users, n_users)
                users, items = _choose_items(rng, start, stop, per_user, taste, taste_vec, q, cdf, n_items, unit)
                p = 2.2 * (taste_vec[taste[start:stop]] + rng.normal(0, 0.5 * unit, size=(stop - start, n_factors)))
                raw = user_bias[users] + item_bias[items] + np.einsum("nd,nd->n", p[users - start], q[items]) \
                    + rng.normal(0, 0.6, size=len(users))
                if calibration is None:  # the first chunk fixes the affine map to MovieLens' scale
                    calibration = (float(raw.mean()), float(max(raw.std(), 1e-12)))
                stars = _MEAN + (raw - calibration[0]) * (_SD / calibration[1])
                rating = np.clip(np.round(stars * 2) / 2, 0.5, 5.0)
                stamp = _timestamps(rng, users, join)
                frame = pd.DataFrame({"userId": users + 1, "movieId": items + 1, "rating": rating,
                                      "timestamp": stamp})
                frame.to_csv(fh, header=False, index=False, float_format="%.1f")
                summary["n_ratings"] += len(frame)
                if progress:
                    import sys

                    print(f"\r[tfrec] synthesize: {stop:,}/{n_users:,} users, {summary['n_ratings']:,} ratings",
                          end="\n" if stop == n_users else "", file=sys.stderr, flush=True)
        (tmp / SYNTHETIC_MARKER).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def _choose_items(rng, start, stop, per_user, taste, taste_vec, q, cdf, n_items, unit):
    """(user index, item index) rows for users ``start:stop``, sorted by user then item.

    Proposals come from the popularity distribution and are re-weighted by ``exp(0.8 *
    affinity)`` with Gumbel top-k per user; users left short (few distinct proposals) are topped up
    in further rounds with more proposals, and finally uniformly.
    """
    n_users = stop - start
    need = per_user[start:stop].astype(np.int64)
    # The taste vector is what the selection sees (the user's own noise enters the rating).
    affinity_vec = 2.2 * taste_vec[taste[start:stop]]
    chosen_u, chosen_i = [], []
    have = np.zeros(n_users, dtype=np.int64)
    taken = np.zeros(0, dtype=np.int64)  # local_user * n_items + item, sorted
    for factor in (3, 6, 12, None):
        short = np.flatnonzero(have < need)
        if len(short) == 0:
            break
        missing = need[short] - have[short]
        if factor is None:  # last resort: uniform proposals, enough of them
            draws = np.repeat(short, 4 * missing + 8)
            items = rng.integers(0, n_items, size=len(draws))
        else:
            draws = np.repeat(short, factor * missing + 4)
            items = np.minimum(np.searchsorted(cdf, rng.random(len(draws)), side="right"), n_items - 1)
        keys = np.unique(draws * n_items + items)
        if len(taken):
            keys = keys[~np.isin(keys, taken, assume_unique=True)]
        local, items = keys // n_items, keys % n_items
        score = 0.8 * np.einsum("nd,nd->n", affinity_vec[local], q[items]) + rng.gumbel(size=len(keys))
        order = np.lexsort((-score, local))
        local, items = local[order], items[order]
        group_start = np.searchsorted(local, local, side="left")
        rank = np.arange(len(local)) - group_start
        keep = rank < (need - have)[local]
        local, items = local[keep], items[keep]
        np.add.at(have, local, 1)
        chosen_u.append(local)
        chosen_i.append(items)
        taken = np.sort(np.concatenate([taken, local * n_items + items]))
    local = np.concatenate(chosen_u)
    items = np.concatenate(chosen_i)
    order = np.lexsort((items, local))
    return local[order] + start, items[order]


def _timestamps(rng, users, join):
    """Per rating: the user's join time plus session gaps, in a random order within each user."""
    n = len(users)
    gaps = rng.exponential(1.0, size=n) * np.where(rng.random(n) < 0.1, 20 * 86400, 600)
    # Random rank of each row within its user; cumulative gaps in that order.
    order = np.lexsort((rng.random(n), users))
    u_sorted = users[order]
    cum = np.cumsum(gaps[order])
    first = np.r_[0, np.flatnonzero(u_sorted[1:] != u_sorted[:-1]) + 1]
    counts = np.diff(np.r_[first, n])
    offsets = cum - np.repeat(cum[first] - gaps[order][first], counts)
    stamp = np.empty(n, dtype=np.int64)
    stamp[order] = (_T0 + np.minimum(join[u_sorted] + offsets, _SPAN)).astype(np.int64)
    return stamp


def read_synthetic_marker(folder) -> Optional[dict]:
    """The ``synthetic.json`` of a folder written by :func:`write_synthetic_dataset`, or None."""
    path = Path(folder) / SYNTHETIC_MARKER
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
