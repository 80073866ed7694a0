"""Synthetic MovieLens-like data with real structure, for tests and offline demos.

Ratings come from a latent-factor model with user and item biases in which demographics (gender,
age group, occupation) and genres shape the factors, and item popularity is Zipf-skewed, so every
tfrec model has something real to learn: popularity for the baselines, collaborative signal for
MF, and a feature signal for cold start. With ``taste_drift`` / ``transition_rate`` the order of each
user's ratings carries signal too (taste that moves along the time line, runs of similar items), as
in real MovieLens logs. The result is always labelled ``synthetic=True`` and is never substituted
for real data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tfrec.data.dataset import MovieLensData
from tfrec.errors import ConfigError

# The 18 MovieLens genres (ml-100k's u.genre without "unknown"), with rough ML-100K frequencies.
GENRES = (
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
_GENRE_WEIGHTS = np.array([251, 135, 42, 122, 505, 109, 50, 725, 22, 24, 92, 56, 61, 247, 101, 251, 71, 27], float)
# ml-100k's occupations.
OCCUPATIONS = (
    "administrator", "artist", "doctor", "educator", "engineer", "entertainment", "executive", "healthcare",
    "homemaker", "lawyer", "librarian", "marketing", "none", "other", "programmer", "retired", "salesman",
    "scientist", "student", "technician", "writer",
)
_AGE_GROUPS = (18, 25, 35, 45, 50, 56)  # ML-1M age-group boundaries
_T0 = 880_000_000  # 1997-11-20, inside ML-100K's time range
_SPAN = 2 * 365 * 86400
_MEAN, _SD = 3.58, 1.2  # before rounding/clipping; gives ML-100K-like mean 3.5, sd 1.1


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"synthetic_movielens: {name} must be a positive integer, got {value!r}")
    return int(value)


def _non_negative(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value) or value < 0:
        raise ConfigError(f"synthetic_movielens: {name} must be a non-negative number, got {value!r}")
    return float(value)


def _related_items(rng, q, popularity, n_related=10, chunk=1024):
    """``[n_items, n_related]``: each item's related items (its sequels, same-genre neighbours).

    Drawn without replacement with probability proportional to ``popularity**0.5 * exp(4 * cos(q_i,
    q_j))`` (Gumbel top-k), so related items share taste but form a sparse, specific graph that a
    low-rank model does not reproduce.
    """
    n_items = q.shape[0]
    n_related = min(n_related, n_items - 1)
    q_unit = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    log_pop = 0.5 * np.log(popularity)[None, :]
    out = np.zeros((n_items, n_related), dtype=np.int64)
    for start in range(0, n_items, chunk):
        stop = min(start + chunk, n_items)
        keys = 4.0 * (q_unit[start:stop] @ q_unit.T) + log_pop + rng.gumbel(size=(stop - start, n_items))
        keys[np.arange(stop - start), np.arange(start, stop)] = -np.inf  # never itself
        out[start:stop] = np.argpartition(-keys, n_related - 1, axis=1)[:, :n_related]
    return out


def _sequential_choices(rng, per_user, popularity, p, q, taste_drift, transition_rate, n_candidates=128):
    """Each user's items in rating order, drawn one at a time (see ``synthetic_movielens``).

    A free draw proposes ``n_candidates`` items from the popularity distribution and keeps the
    unrated one with the largest ``0.8 * <p_u(t), q_i> + Gumbel noise`` (sampling-importance-
    resampling: about proportional to ``popularity * exp(0.8 * affinity)`` without forming a
    ``users x items`` matrix per step); a follow-on draw does the same over the previous item's
    related items. Returns ``(u_idx, i_idx, affinity, p_last, related)``: rows grouped by user in
    rating order, ``<p_u(t), q_i>`` of each row (the taste when it was rated), each user's final
    taste, and the related-items table.
    """
    n_users, n_factors = p.shape
    n_items = q.shape[0]
    related = _related_items(rng, q, popularity) if transition_rate > 0 else np.zeros((n_items, 0), np.int64)
    step = taste_drift * p.std(axis=0, keepdims=True)  # per-rating walk step, per dimension
    cdf = np.cumsum(popularity / popularity.sum())
    n_steps = int(per_user.max())
    taste = p.copy()
    rated = np.zeros((n_users, n_items), dtype=bool)
    items = np.zeros((n_users, n_steps), dtype=np.int64)
    affinity = np.zeros((n_users, n_steps))

    def best(rows, cand):  # the unrated candidate with the largest taste score + Gumbel noise
        keys = 0.8 * np.einsum("ud,ucd->uc", taste[rows], q[cand]) + rng.gumbel(size=cand.shape)
        keys[rated[rows[:, None], cand]] = -np.inf
        return cand[np.arange(len(rows)), np.argmax(keys, axis=1)], np.isfinite(keys.max(axis=1))

    for t in range(n_steps):
        act = np.flatnonzero(per_user > t)
        cand = np.minimum(np.searchsorted(cdf, rng.random((len(act), n_candidates))), n_items - 1)
        pick, ok = best(act, cand)
        if not ok.all():  # every candidate already rated: any unrated item
            free = ~rated[act[~ok]]
            pick[~ok] = np.argmax(free * rng.random(free.shape), axis=1)
        if t > 0 and related.shape[1]:  # followers take one of the previous item's related items
            follow = np.flatnonzero(rng.random(len(act)) < transition_rate)
            f_pick, f_ok = best(act[follow], related[items[act[follow], t - 1]])
            pick[follow[f_ok]] = f_pick[f_ok]
        rated[act, pick] = True
        items[act, t] = pick
        affinity[act, t] = np.einsum("ud,ud->u", taste[act], q[pick])
        taste[act] += step * rng.normal(size=(len(act), n_factors))
    mask = np.arange(n_steps)[None, :] < per_user[:, None]  # row-major: by user, then rating order
    u_idx = np.repeat(np.arange(n_users, dtype=np.int64), per_user)
    return u_idx, items[mask], affinity[mask], taste, related


def _allocate(n_ratings: int, weights: np.ndarray, low: int, cap: int) -> np.ndarray:
    """Ratings per user: ``low`` each, the rest proportional to ``weights``, none above ``cap``."""
    alloc = np.full(len(weights), low, dtype=np.int64)
    remaining = n_ratings - alloc.sum()
    while remaining > 0:
        room = cap - alloc
        w = np.where(room > 0, weights, 0.0)
        add = np.minimum(np.floor(remaining * w / w.sum()).astype(np.int64), room)
        if add.sum() == 0:  # fewer ratings left than users with room: the most active get one more
            order = np.argsort(-w, kind="stable")[:remaining]
            add = np.zeros_like(alloc)
            add[order[room[order] > 0]] = 1
        alloc += add
        remaining -= int(add.sum())
    return alloc


def synthetic_movielens(n_users: int = 500, n_items: int = 300, n_ratings: int = 20000, seed: int = 0,
                        *, n_factors: int = 8, taste_drift: float = 0.0,
                        transition_rate: float = 0.0) -> MovieLensData:
    """A MovieLens-shaped dataset drawn from a known generative model, deterministic per ``seed``.

    Users get gender, age, occupation and zip; items a title such as ``"Synthetic Movie 17
    (1994)"``, 1-3 of the 18 MovieLens genres and a year. The model:

    * user factors ``p_u = gender_vec + age_group_vec + occupation_vec + noise`` and item factors
      ``q_i = sum(genre_vecs) / sqrt(n_genres) + noise``, so demographics and genres carry signal;
    * item popularity is Zipf-like (exponent 0.9) and popular items have a somewhat higher bias;
    * which items a user rates: sampled without replacement with probability proportional to
      ``popularity * exp(affinity)``; every user rates at least ``min(5, n_items // 2)`` items,
      activity is log-normal, and no (user, item) pair repeats;
    * ``rating = clip(round(a + c * (b_u + b_i + <p_u, q_i> + noise)), 1, 5)``, with ``a, c`` set so
      the ratings have MovieLens' mean and spread (about 3.5 and 1.1);
    * each user joins at a random time and rates in sessions after that; the log is sorted by
      timestamp.

    By default the order of a user's ratings carries no taste signal beyond the draw (the items
    are timed in the order of their sampling keys: strongest first). Two options give the log
    MovieLens' sequential structure instead; with either one a user's items are drawn one at a
    time, each from the items the user has not rated yet, and timed in that order (strictly
    increasing per user: sessions that would run past the data's end are squeezed into the time
    left after joining, where the default clips them to its last second):

    * ``taste_drift``: the user's taste walks, ``p_u(t+1) = p_u(t) + taste_drift * sd(p) * N(0, 1)``
      per rating (per dimension, ``sd(p)`` the spread of the users' factors), so recent items say
      more about the next one than old ones; the ``t``-th item is drawn and rated with ``p_u(t)``;
    * ``transition_rate``: runs of related items (a series, a genre binge). Every item has 10
      related items (drawn once, without replacement, with probability proportional to
      ``popularity**0.5 * exp(4 * cos(q_i, q_j))``: similar in taste but a sparse, specific graph);
      with probability ``transition_rate`` the next item is one of the previous item's related
      items (chosen by taste + Gumbel noise; a free draw if the user has rated them all).

    A free draw keeps, of 128 items proposed by popularity, the unrated one with the largest
    ``0.8 * <p_u(t), q_i> + Gumbel noise`` (about ``popularity * exp(0.8 * affinity)``, the
    default's weights, without a ``users x items`` matrix per step).
    The walk is per rating and unbounded: with ``taste_drift=0.2`` a 160-rating history ends about
    2.5 factor spreads from where it began. ``benchmarks/generalization.py``'s ``sequential`` shape
    (``taste_drift=0.2, transition_rate=0.3``) was calibrated so that recency-weighted EASE beats
    plain EASE by about the ratio real MovieLens shows (1.33x there; ML-100K 1.5x), not more;
    either option alone makes recency weighting lose to plain EASE. Memory: one ``n_users x
    n_items`` boolean matrix (the rated items) besides the output.

    Args:
      n_users, n_items, n_ratings: sizes. ``n_ratings`` must be at least ``n_users`` and at most
        half of ``n_users * n_items`` (denser would not look like MovieLens).
      seed: the dataset is a pure function of the arguments.
      n_factors: latent dimensions of the generating model.
      taste_drift: non-negative; transition_rate: in [0, 1]. The sequential structure (above);
        ``0`` (the defaults) turns each off, and with both off the output is the original
        generator's, unchanged.

    Returns:
      :class:`~tfrec.data.MovieLensData` with ``name="synthetic"``, ``synthetic=True``, ``source``
      naming the generator and its arguments, and the generating parameters in ``extras``
      (``item_bias``, ``user_bias``, ``item_factors``, ``user_factors``, ``popularity``; arrays
      aligned with the rows of ``items`` / ``users``; with either sequential option ``user_factors``
      is the starting taste and ``final_user_factors`` the taste after each user's last rating; with
      ``transition_rate`` ``related_items``, ``[n_items, 10]`` item positions).

    Example:
      >>> data = synthetic_movielens(n_users=50, n_items=40, n_ratings=600, seed=1)
      >>> len(data.ratings), data.synthetic
      (600, True)
    """
    n_users = _positive_int("n_users", n_users)
    n_items = _positive_int("n_items", n_items)
    n_ratings = _positive_int("n_ratings", n_ratings)
    n_factors = _positive_int("n_factors", n_factors)
    taste_drift = _non_negative("taste_drift", taste_drift)
    transition_rate = _non_negative("transition_rate", transition_rate)
    if transition_rate > 1:
        raise ConfigError(f"synthetic_movielens: transition_rate is a probability, got {transition_rate!r}")
    sequential = taste_drift > 0 or transition_rate > 0
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"synthetic_movielens: seed must be a non-negative integer, got {seed!r}")
    cap = max(1, n_items // 2)
    if n_ratings < n_users:
        raise ConfigError(f"synthetic_movielens: n_ratings={n_ratings} is fewer than n_users={n_users}; "
                          "every user needs at least one rating")
    if n_ratings > n_users * cap:
        raise ConfigError(f"synthetic_movielens: n_ratings={n_ratings} is more than n_users * n_items/2 = "
                          f"{n_users * cap}; the matrix would be too dense to be MovieLens-like")
    rng = np.random.default_rng(seed)

    # Users and their demographics.
    user_ids = np.array([str(i + 1) for i in range(n_users)], dtype=object)
    is_female = rng.random(n_users) < 0.29
    gender = np.where(is_female, "F", "M").astype(object)
    age = np.clip(np.round(rng.gamma(shape=6.0, scale=5.5, size=n_users)) + 7, 7, 73).astype(np.int64)
    age_group = np.searchsorted(np.asarray(_AGE_GROUPS), age, side="right")
    occ_p = rng.dirichlet(np.full(len(OCCUPATIONS), 2.0))
    occ_idx = rng.choice(len(OCCUPATIONS), size=n_users, p=occ_p)
    occupation = np.asarray(OCCUPATIONS, dtype=object)[occ_idx]
    zips = np.array([f"{z:05d}" for z in rng.integers(1000, 99999, size=n_users)], dtype=object)

    # Items: genres (1-3, common genres more often), years skewed towards the 1990s as in ML-100K.
    n_genres = rng.choice([1, 2, 3], size=n_items, p=[0.45, 0.35, 0.20])
    gp = _GENRE_WEIGHTS / _GENRE_WEIGHTS.sum()
    item_genres = [np.sort(rng.choice(len(GENRES), size=k, replace=False, p=gp)) for k in n_genres]
    years = np.clip(1998 - np.floor(rng.exponential(9.0, size=n_items)), 1922, 1998).astype(np.int64)
    item_ids = np.array([str(i + 1) for i in range(n_items)], dtype=object)
    titles = np.array([f"Synthetic Movie {i + 1} ({y})" for i, y in enumerate(years)], dtype=object)

    # Latent factors: demographic and genre vectors carry most of the taste.
    unit = 1.0 / np.sqrt(n_factors)
    gender_vec = rng.normal(0, 0.6 * unit, size=(2, n_factors))
    age_vec = rng.normal(0, 0.5 * unit, size=(len(_AGE_GROUPS) + 1, n_factors))
    occ_vec = rng.normal(0, 0.5 * unit, size=(len(OCCUPATIONS), n_factors))
    genre_vec = rng.normal(0, 1.0 * unit, size=(len(GENRES), n_factors))
    p = (gender_vec[is_female.astype(int)] + age_vec[age_group] + occ_vec[occ_idx]
         + rng.normal(0, 0.5 * unit, size=(n_users, n_factors)))
    q = np.stack([genre_vec[g].sum(axis=0) / np.sqrt(len(g)) for g in item_genres]) \
        + rng.normal(0, 0.5 * unit, size=(n_items, n_factors))
    p *= 2.2  # so <p, q> has a standard deviation of roughly 0.5 stars
    q *= 2.2

    # Popularity: Zipf over a random item order; popular items are also liked a bit more.
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.9
    popularity = popularity[rng.permutation(n_items)]
    log_pop = np.log(popularity)
    z_pop = (log_pop - log_pop.mean()) / (log_pop.std() + 1e-12)
    item_bias = rng.normal(0, 0.45, size=n_items) + 0.2 * z_pop
    user_bias = rng.normal(0, 0.4, size=n_users)

    # Who rates what: Gumbel top-k = sampling without replacement proportional to the weights.
    activity = rng.lognormal(0, 0.9, size=n_users)
    per_user = _allocate(n_ratings, activity, low=min(5, cap, n_ratings // n_users), cap=cap)
    log_w = np.log(popularity)[None, :]
    if sequential:
        u_idx, i_idx, affinity, p_last, related = _sequential_choices(rng, per_user, popularity, p, q, taste_drift,
                                                                      transition_rate)
    else:
        u_parts, i_parts = [], []
        for start in range(0, n_users, 1024):  # chunks bound memory for large n_users * n_items
            stop = min(start + 1024, n_users)
            keys = log_w + 0.8 * (p[start:stop] @ q.T) + rng.gumbel(size=(stop - start, n_items))
            order = np.argsort(-keys, axis=1, kind="stable")
            for r, u in enumerate(range(start, stop)):
                i_parts.append(order[r, : per_user[u]])
                u_parts.append(np.full(per_user[u], u, dtype=np.int64))
        u_idx = np.concatenate(u_parts)
        i_idx = np.concatenate(i_parts)
        affinity = np.einsum("nd,nd->n", p[u_idx], q[i_idx])
    n = len(u_idx)

    raw = user_bias[u_idx] + item_bias[i_idx] + affinity \
        + rng.normal(0, 0.6, size=n)
    # Calibrate to MovieLens' scale (mean ~3.5, sd ~1.1): users pick items they like, so the
    # raw scores of observed pairs are shifted; an affine map keeps every effect's ranking.
    raw = _MEAN + (raw - raw.mean()) * (_SD / max(raw.std(), 1e-12))
    rating = np.clip(np.round(raw), 1, 5).astype(np.float32)

    # Time: users join over the first 85% of the span and rate in a few sessions after joining.
    join = rng.uniform(0, 0.85 * _SPAN, size=n_users)
    gaps = rng.exponential(1.0, size=n) * np.where(rng.random(n) < 0.1, 20 * 86400, 600)
    starts = np.r_[0, np.cumsum(per_user)[:-1]]
    offsets = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[starts] - gaps[starts], per_user)
    if sequential:
        # The order is the signal: squeeze a user's sessions into the time left after joining
        # (the default clips them at the end of the span, which ties the last ratings) and keep
        # each user's timestamps strictly increasing.
        last = offsets[np.cumsum(per_user) - 1]
        squeeze = np.minimum(1.0, (_SPAN - join) / np.maximum(last, 1e-9))
        rel = np.floor(offsets * squeeze[u_idx]).astype(np.int64)
        k = np.arange(n) - np.repeat(starts, per_user)  # position within the user
        base = u_idx * (2 * _SPAN + n)  # rows are grouped by user: keeps the running max within a user
        rel = np.maximum.accumulate(rel - k + base) - base + k
        timestamp = _T0 + join.astype(np.int64)[u_idx] + rel
    else:
        timestamp = (_T0 + np.minimum(join[u_idx] + offsets, _SPAN)).astype(np.int64)
    order = np.lexsort((i_idx, u_idx, timestamp))

    extras = {"item_bias": item_bias, "user_bias": user_bias, "item_factors": q, "user_factors": p,
              "popularity": popularity}
    if sequential:
        extras["final_user_factors"] = p_last
        if transition_rate > 0:
            extras["related_items"] = related
    ratings = pd.DataFrame({
        "user_id": pd.Series(user_ids[u_idx[order]], dtype=str),
        "item_id": pd.Series(item_ids[i_idx[order]], dtype=str),
        "rating": rating[order],
        "timestamp": timestamp[order],
    })
    items = pd.DataFrame({
        "item_id": pd.Series(item_ids, dtype=str),
        "title": pd.Series(titles, dtype=str),
        "year": years,
        "genres": pd.Series([[GENRES[g] for g in gs] for gs in item_genres], dtype=object),
    })
    users = pd.DataFrame({
        "user_id": pd.Series(user_ids, dtype=str),
        "gender": pd.Series(gender, dtype=str),
        "age": age,
        "occupation": pd.Series(occupation, dtype=str),
        "zip": pd.Series(zips, dtype=str),
    })
    return MovieLensData(
        name="synthetic",
        ratings=ratings,
        items=items,
        users=users,
        synthetic=True,
        source=(f"synthetic data from tfrec.data.synthetic_movielens(n_users={n_users}, n_items={n_items}, "
                f"n_ratings={n_ratings}, seed={seed}, n_factors={n_factors}"
                + (f", taste_drift={taste_drift:g}, transition_rate={transition_rate:g}" if sequential else "")
                + "); not real MovieLens ratings"),
        extras=extras,
    )
