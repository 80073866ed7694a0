"""Classic baselines (seed 003): popularity, item/user kNN, TF-IDF content, co-visitation.

All five follow the recommender contract of :mod:`tfrec.models.base` (``fit`` -> self,
``recommend``, ``similar_items``, ``score_users``), need no TensorFlow, are deterministic, and score
every user at once with sparse matrix products (all 943 ML-100K users in a few tens of
milliseconds). ``save(dir)`` writes ``baseline.json`` (class, hyperparameters, ids) and
``baseline.npz`` (the fitted matrices, no pickle); ``Class.load(dir)`` restores them without
refitting.

Example:
  >>> from tfrec.models.baselines import ItemKNN
  >>> model = ItemKNN(n_neighbors=20).fit(train)                # doctest: +SKIP
  >>> model.recommend(["1", "2"], k=10)                          # doctest: +SKIP
  >>> model.similar_items(["50"], k=5)                           # doctest: +SKIP
  >>> model.save("runs/item_knn"); ItemKNN.load("runs/item_knn")  # doctest: +SKIP

Defaults were tuned on ML-100K with leave-last-out validation splits carved from the training
part (never the test split); ``benchmarks/ranking.py`` reports the test numbers.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from tfrec.errors import ConfigError, DataError
from tfrec.models.base import RecommenderMixin, validate_ratings_frame
from tfrec.utils.io import atomic_write_bytes, atomic_write_json

CONFIG_FILE = "baseline.json"
STATE_FILE = "baseline.npz"
_FORMAT_VERSION = 1


# -- argument checks ------------------------------------------------------------------------------
def _check_int(name: str, value, minimum: int = 1, *, allow_none: bool = False) -> Optional[int]:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        extra = " or None" if allow_none else ""
        raise ConfigError(f"{name} must be an integer >= {minimum}{extra}, got {value!r}")
    return int(value)


def _check_float(name: str, value, minimum: float = 0.0, *, allow_none: bool = False,
                 strict: bool = False) -> Optional[float]:
    if value is None and allow_none:
        return None
    bound = f"> {minimum}" if strict else f">= {minimum}"
    extra = " or None" if allow_none else ""
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be a number {bound}{extra}, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number {bound}{extra}, got {value!r}") from None
    if not np.isfinite(v) or v < minimum or (strict and v == minimum):
        raise ConfigError(f"{name} must be a number {bound}{extra}, got {value!r}")
    return v


def _check_bool(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{name} must be True or False, got {value!r}")
    return bool(value)


# -- shared plumbing ------------------------------------------------------------------------------
class _Baseline(RecommenderMixin):
    """Fit/save plumbing shared by the baselines.

    Subclasses list their constructor arguments in ``_param_names`` and the fitted arrays (dense
    or scipy sparse) in ``_state_names``, and implement ``_fit(train, items, users)``.
    """

    _param_names: tuple = ()
    _state_names: tuple = ()

    # sklearn-style parameters ------------------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict:
        """The constructor keyword arguments (``type(m)(**m.get_params())`` builds an equal model)."""
        return {k: getattr(self, k) for k in self._param_names}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # fit ---------------------------------------------------------------------------------------
    def fit(self, train: pd.DataFrame, items: Optional[pd.DataFrame] = None,
            users: Optional[pd.DataFrame] = None):
        """Fit on a ratings DataFrame (user_id, item_id[, rating, timestamp]); returns self.

        ``items``/``users`` are the side tables (only :class:`ContentTFIDF` uses ``items``).
        """
        validate_ratings_frame(train)
        self._remember_training_data(train)
        self._fit(train, items, users)
        return self

    def _fit(self, train: pd.DataFrame, items, users) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _positions(self, train: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(user row, catalog position) of every training row (all are known after fit)."""
        rows = train["user_id"].astype(str).map(self.user_index_).to_numpy(dtype=np.int64)
        cols = train["item_id"].astype(str).map(self.item_index_).to_numpy(dtype=np.int64)
        return rows, cols

    def _interaction_matrix(self, train: pd.DataFrame, weighted: bool = False) -> sp.csr_matrix:
        """Users x catalog CSR: 1 per interaction, or the rating (mean of repeats) if weighted."""
        rows, cols = self._positions(train)
        shape = (len(self.user_index_), len(self.catalog_))
        if weighted and "rating" in train.columns:
            # A repeated (user, item) pair counts once, with its mean rating.
            mean = pd.DataFrame({"r": rows, "c": cols, "v": train["rating"].to_numpy(dtype=np.float64)}) \
                .groupby(["r", "c"], sort=True)["v"].mean()
            r, c = (mean.index.get_level_values(k).to_numpy() for k in ("r", "c"))
            return sp.csr_matrix((mean.to_numpy(), (r, c)), shape=shape)
        ones = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=shape)
        ones.sum_duplicates()
        ones.data[:] = 1.0
        return ones

    def _rows(self, user_ids) -> np.ndarray:
        return np.fromiter((self.user_index_[u] for u in user_ids), dtype=np.int64, count=len(user_ids))

    # persistence ---------------------------------------------------------------------------------
    def save(self, directory) -> Path:
        """Write ``baseline.json`` and ``baseline.npz`` into ``directory`` (created if needed).

        Plain JSON and a NumPy archive of arrays -- no pickle -- each written atomically.
        """
        self._check_fitted()
        directory = Path(directory)
        users = list(self.user_index_)  # insertion order == row order
        seen = _seen_matrix(self.seen_, users, len(self.catalog_))
        arrays = {"popularity": self.popularity_}
        _put_sparse(arrays, "seen", seen)
        for name in self._state_names:
            value = getattr(self, name)
            if sp.issparse(value):
                _put_sparse(arrays, name, value)
            else:
                arrays[name] = np.asarray(value)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        atomic_write_bytes(directory / STATE_FILE, buffer.getvalue())
        atomic_write_json(directory / CONFIG_FILE, {
            "format_version": _FORMAT_VERSION, "class": type(self).__name__, "params": self.get_params(),
            "catalog": [str(i) for i in self.catalog_], "users": [str(u) for u in users],
        })
        return directory

    @classmethod
    def load(cls, directory):
        """Rebuild a model written by :meth:`save` (no refitting). DataError if the files are bad."""
        directory = Path(directory)
        config_path, state_path = directory / CONFIG_FILE, directory / STATE_FILE
        for path in (config_path, state_path):
            if not path.is_file():
                raise DataError(f"{path}: missing; expected a folder written by {cls.__name__}.save()")
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{config_path}: not valid JSON ({exc})") from None
        if not isinstance(config, dict) or config.get("class") != cls.__name__:
            found = config.get("class") if isinstance(config, dict) else None
            raise DataError(f"{config_path}: field 'class' is {found!r}, expected {cls.__name__!r}")
        if config.get("format_version") != _FORMAT_VERSION:
            raise DataError(f"{config_path}: field 'format_version' is {config.get('format_version')!r}, "
                            f"expected {_FORMAT_VERSION}")
        model = cls(**config["params"])
        model.catalog_ = np.asarray(config["catalog"], dtype=object)
        model.item_index_ = {it: i for i, it in enumerate(model.catalog_)}
        users = [str(u) for u in config["users"]]
        model.user_index_ = {u: i for i, u in enumerate(users)}
        try:
            with np.load(state_path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            model.popularity_ = arrays["popularity"].astype(np.float64)
            seen = _get_sparse(arrays, "seen")
            model.seen_ = {u: seen.indices[seen.indptr[r]:seen.indptr[r + 1]].astype(np.int64)
                           for r, u in enumerate(users)}
            for name in cls._state_names:
                value = _get_sparse(arrays, name) if f"{name}__indptr" in arrays else arrays[name]
                setattr(model, name, value)
        except (KeyError, ValueError, OSError) as exc:
            raise DataError(f"{state_path}: unreadable or incomplete ({exc!r})") from None
        return model


def _seen_matrix(seen: dict, users: list, n_items: int) -> sp.csr_matrix:
    lengths = [len(seen[u]) for u in users]
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    indices = np.concatenate([np.asarray(seen[u], dtype=np.int64) for u in users]) if users else np.zeros(0, np.int64)
    return sp.csr_matrix((np.ones(len(indices)), indices, indptr), shape=(len(users), n_items))


def _put_sparse(arrays: dict, name: str, m) -> None:
    m = sp.csr_matrix(m)
    arrays[f"{name}__data"] = m.data
    arrays[f"{name}__indices"] = m.indices
    arrays[f"{name}__indptr"] = m.indptr
    arrays[f"{name}__shape"] = np.asarray(m.shape, dtype=np.int64)


def _get_sparse(arrays: dict, name: str) -> sp.csr_matrix:
    shape = tuple(int(s) for s in arrays[f"{name}__shape"])
    return sp.csr_matrix((arrays[f"{name}__data"], arrays[f"{name}__indices"], arrays[f"{name}__indptr"]),
                         shape=shape)


def _dense(m) -> np.ndarray:
    return np.asarray(m.toarray() if sp.issparse(m) else m, dtype=np.float64)


def _recent_matrix(train: pd.DataFrame, rows: np.ndarray, cols: np.ndarray, shape, history: Optional[int],
                   values: Optional[np.ndarray] = None) -> sp.csr_matrix:
    """Users x catalog matrix restricted to each user's ``history`` latest interactions.

    Order is by ``timestamp`` when present (ties and timestamp-less frames: row order).
    """
    vals = np.ones(len(rows)) if values is None else np.asarray(values, dtype=np.float64)
    if history is not None:
        ts = train["timestamp"].to_numpy() if "timestamp" in train.columns else np.zeros(len(rows))
        order = np.lexsort((np.arange(len(rows)), ts, rows))  # by user, then time, then row
        r = rows[order]
        # Position from the end within each user's run of rows: keep the last `history`.
        run_end = np.r_[np.flatnonzero(r[1:] != r[:-1]), len(r) - 1]
        ends = np.repeat(run_end, np.diff(np.r_[-1, run_end]))
        keep = order[(ends - np.arange(len(r))) < history]
        rows, cols, vals = rows[keep], cols[keep], vals[keep]
    m = sp.csr_matrix((vals, (rows, cols)), shape=shape)
    m.sum_duplicates()
    if values is None:
        m.data[:] = 1.0
    return m


def _cosine(matrix: sp.csr_matrix, shrinkage: float) -> sp.csr_matrix:
    """Column-column cosine ``dot(a, b) / (|a| |b| + shrinkage)``, zero diagonal, CSR.

    With ``shrinkage=0`` this equals ``sklearn.metrics.pairwise.cosine_similarity`` on the columns;
    a positive shrinkage damps pairs supported by few common rows (the classic kNN shrink term).
    """
    cols = matrix.T.tocsr().astype(np.float64)
    if shrinkage == 0:
        sim = (normalize(cols) @ normalize(cols).T).tocsr()
    else:
        sim = (cols @ cols.T).tocsr()
        norms = np.sqrt(np.asarray(cols.multiply(cols).sum(axis=1)).ravel())
        row_of = np.repeat(np.arange(sim.shape[0]), np.diff(sim.indptr))
        sim.data = sim.data / (norms[row_of] * norms[sim.indices] + shrinkage)
    sim.setdiag(0)
    sim.eliminate_zeros()
    return sim


def _top_n_per_row(m: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """Keep the ``n`` largest entries of each row of a CSR matrix (deterministic for equal input)."""
    m = m.tocsr()
    counts = np.diff(m.indptr)
    if n <= 0 or counts.max(initial=0) <= n:
        return m
    keep = np.ones(len(m.data), dtype=bool)
    for r in np.flatnonzero(counts > n):
        start, end = m.indptr[r], m.indptr[r + 1]
        drop = np.argpartition(-m.data[start:end], n - 1)[n:]
        keep[start + drop] = False
    row_of = np.repeat(np.arange(m.shape[0]), counts)
    out = sp.csr_matrix((m.data[keep], (row_of[keep], m.indices[keep])), shape=m.shape)
    out.sort_indices()
    return out


# -- the baselines --------------------------------------------------------------------------------
class Popularity(_Baseline):
    """Recommends the most-interacted training items to everyone.

    ``score(u, i)`` = number of training interactions with item ``i`` (the same for every user;
    seen items are still excluded per user by ``recommend``).

    ``similar_items(i)`` scores item ``j`` by the number of users who interacted with both ``i`` and
    ``j`` ("people who watched i also watched"), which leans to popular items -- the natural
    popularity-flavoured neighbourhood.

    Example:
      >>> Popularity().fit(train).recommend("1", k=5)     # doctest: +SKIP
    """

    _state_names = ("_matrix",)

    def _fit(self, train, items, users) -> None:
        self._matrix = self._interaction_matrix(train)

    def _score_users(self, user_ids) -> np.ndarray:
        return np.tile(self.popularity_, (len(user_ids), 1))

    def _similar_scores(self, item_positions) -> np.ndarray:
        cols = self._matrix[:, item_positions]
        return _dense(cols.T @ self._matrix)


class ItemKNN(_Baseline):
    """Item-based collaborative filtering over the sparse user x item matrix.

    ``sim(i, j) = <x_i, x_j> / (|x_i| |x_j| + shrinkage)`` where ``x_i`` is item ``i``'s column
    (1/0, or the ratings when ``weighted``): cosine similarity (scikit-learn's
    ``cosine_similarity`` when ``shrinkage=0``) with the classic shrink term. ``N_k(i)`` is the
    ``n_neighbors`` items most similar to ``i``, and a user's score for a candidate ``i`` sums its
    similarity to the items of their history that are among its neighbours (Sarwar et al.)::

        score(u, i) = sum_{j in H_u, j in N_k(i)} sim(i, j)     # all users: H @ S_k^T

    ``H_u`` is the user's ``history`` most recent interactions (by timestamp; None = all of them):
    recent items predict the next one far better than old ones. ``similar_items`` ranks by the
    untruncated shrunk cosine.

    Args:
      n_neighbors: neighbours kept per candidate item (0 keeps all).
      shrinkage: >= 0; damps similarities supported by few users.
      weighted: use ratings instead of 1/0 as the matrix values.
      history: score from the user's latest ``history`` items (None = all).

    Shapes: ``score_users(ids)`` -> ``[len(ids), n_catalog]``; ``S_k`` is ``[n_catalog, n_catalog]``
    sparse with at most ``n_neighbors`` entries per row.

    Example:
      >>> model = ItemKNN(n_neighbors=100).fit(train)       # doctest: +SKIP
      >>> model.similar_items("50", k=5)                    # doctest: +SKIP
    """

    _param_names = ("n_neighbors", "shrinkage", "weighted", "history")
    _state_names = ("_matrix", "_history", "_sim")

    def __init__(self, n_neighbors: int = 400, shrinkage: float = 5.0, weighted: bool = False,
                 history: Optional[int] = 5):
        self.n_neighbors = _check_int("n_neighbors", n_neighbors, 0)
        self.shrinkage = _check_float("shrinkage", shrinkage)
        self.weighted = _check_bool("weighted", weighted)
        self.history = _check_int("history", history, 1, allow_none=True)

    def _fit(self, train, items, users) -> None:
        self._matrix = self._interaction_matrix(train, self.weighted)
        rows, cols = self._positions(train)
        self._history = _recent_matrix(train, rows, cols, self._matrix.shape, self.history)
        sim = _cosine(self._matrix, self.shrinkage)
        # Row i of `sim` holds i's neighbours; transposed so that H @ _sim sums over them.
        self._sim = (_top_n_per_row(sim, self.n_neighbors) if self.n_neighbors else sim).T.tocsr()

    def _score_users(self, user_ids) -> np.ndarray:
        return _dense(self._history[self._rows(user_ids)] @ self._sim)

    def _similar_scores(self, item_positions) -> np.ndarray:
        cols = self._matrix.T.tocsr()
        dots = _dense(cols[item_positions] @ cols.T)
        norms = np.sqrt(np.asarray(cols.multiply(cols).sum(axis=1)).ravel())
        return dots / np.maximum(norms[item_positions][:, None] * norms[None, :] + self.shrinkage, 1e-12)


class UserKNN(_Baseline):
    """User-based collaborative filtering over the sparse user x item matrix.

    ``sim(u, v) = <h_u, x_v> / (|h_u| |x_v| + shrinkage)``: the cosine between user ``u``'s
    ``history`` most recent interactions ``h_u`` (all of them when None, the classic symmetric
    user-user cosine) and user ``v``'s whole row ``x_v``. Each user keeps their ``n_neighbors``
    most similar users, and ``score(u, i) = sum_v sim(u, v) * x_vi``::

        scores [n_users, n_items] = S_k @ X

    ``similar_items`` is the plain item-item cosine over users (who interacted with both).

    Args:
      n_neighbors: neighbours kept per user (0 keeps all).
      shrinkage: >= 0; damps similarities supported by few items.
      weighted: use ratings instead of 1/0 as the matrix values.
      history: match users on their latest ``history`` items (None = all).

    Example:
      >>> UserKNN(n_neighbors=50).fit(train).recommend(["1", "2"], k=10)   # doctest: +SKIP
    """

    _param_names = ("n_neighbors", "shrinkage", "weighted", "history")
    _state_names = ("_matrix", "_sim")

    def __init__(self, n_neighbors: int = 30, shrinkage: float = 0.0, weighted: bool = False,
                 history: Optional[int] = 5):
        self.n_neighbors = _check_int("n_neighbors", n_neighbors, 0)
        self.shrinkage = _check_float("shrinkage", shrinkage)
        self.weighted = _check_bool("weighted", weighted)
        self.history = _check_int("history", history, 1, allow_none=True)

    def _fit(self, train, items, users) -> None:
        self._matrix = x = self._interaction_matrix(train, self.weighted)
        rows, cols = self._positions(train)
        h = x.multiply(_recent_matrix(train, rows, cols, x.shape, self.history)).tocsr() if self.history else x
        sim = (h @ x.T).tocsr()
        norm_h = np.sqrt(np.asarray(h.multiply(h).sum(axis=1)).ravel())
        norm_x = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
        row_of = np.repeat(np.arange(sim.shape[0]), np.diff(sim.indptr))
        sim.data = sim.data / np.maximum(norm_h[row_of] * norm_x[sim.indices] + self.shrinkage, 1e-12)
        sim.setdiag(0)  # a user is not their own neighbour
        sim.eliminate_zeros()
        self._sim = _top_n_per_row(sim, self.n_neighbors) if self.n_neighbors else sim

    def _score_users(self, user_ids) -> np.ndarray:
        return _dense(self._sim[self._rows(user_ids)] @ self._matrix)

    def _similar_scores(self, item_positions) -> np.ndarray:
        cols = normalize(self._matrix.T.tocsr().astype(np.float64))
        return _dense(cols[item_positions] @ cols.T)


class ContentTFIDF(_Baseline):
    """Content-based recommender: scikit-learn TF-IDF over each item's genres and title words.

    Each item becomes a document of genre tokens (``genre_<name>``, repeated ``genre_weight``
    times so genres outweigh incidental title words) plus its title words (the "(1995)" year
    suffix dropped); rows are TF-IDF vectors, L2-normalised. A user's profile is the mean of the
    rows of their ``history`` most recent training items (None = all), weighted by rating
    (``rating_weighted``; ratings centred on the mean over those items, plus ``rating_offset``, so
    disliked items count against similar items), and
    ``score(u, i) = cos(profile_u, tfidf_i)``. ``similar_items`` is the TF-IDF cosine.

    Needs ``items`` (columns ``item_id``, ``title``, ``genres`` as a list of strings) in ``fit``;
    catalog items missing from that table get an empty document (score 0).

    Args:
      genre_weight: repetitions of the genre tokens (0 = title words only).
      use_title: include title words.
      min_df: minimum number of items a token must appear in.
      rating_weighted: weight items by (centred) rating; False = plain mean.
      rating_offset: added to the centred ratings (0 = pure centring).
      history: build the profile from the user's latest ``history`` items (None = all).

    Example:
      >>> ContentTFIDF().fit(train, items=data.items).similar_items("1", k=5)   # doctest: +SKIP
    """

    _param_names = ("genre_weight", "use_title", "min_df", "rating_weighted", "rating_offset", "history")
    _state_names = ("_tfidf", "_profiles")

    def __init__(self, genre_weight: int = 3, use_title: bool = True, min_df: int = 2,
                 rating_weighted: bool = True, rating_offset: float = 0.5, history: Optional[int] = 10):
        self.genre_weight = _check_int("genre_weight", genre_weight, 0)
        self.use_title = _check_bool("use_title", use_title)
        self.min_df = _check_int("min_df", min_df, 1)
        self.rating_weighted = _check_bool("rating_weighted", rating_weighted)
        self.rating_offset = _check_float("rating_offset", rating_offset)
        self.history = _check_int("history", history, 1, allow_none=True)
        if self.genre_weight == 0 and not self.use_title:
            raise ConfigError("ContentTFIDF: genre_weight=0 with use_title=False leaves no content to compare")

    def _documents(self, items: pd.DataFrame) -> list:
        if not isinstance(items, pd.DataFrame):
            raise DataError(f"ContentTFIDF needs the items table: fit(train, items=...), got {type(items).__name__}")
        missing = [c for c in ("item_id", "title", "genres") if c not in items.columns]
        if missing:
            raise DataError(f"items: missing column(s) {missing}; ContentTFIDF needs item_id, title, genres")
        table = pd.DataFrame({"title": items["title"].to_numpy(), "genres": items["genres"].to_numpy()},
                             index=items["item_id"].astype(str).to_numpy())
        table = table[~table.index.duplicated()].reindex(self.catalog_)
        docs = []
        for title, genres in zip(table["title"], table["genres"]):
            if not isinstance(genres, (list, tuple, np.ndarray)):
                genres = [] if genres is None or (isinstance(genres, float) and np.isnan(genres)) else \
                    str(genres).split("|")
            tokens = ["genre_" + "".join(ch if ch.isalnum() else "_" for ch in str(g).lower())
                      for g in genres if str(g) and str(g) != "(no genres listed)"]
            words = str(title).rsplit("(", 1)[0] if isinstance(title, str) and self.use_title else ""
            docs.append(" ".join(tokens * self.genre_weight) + " " + words)
        return docs

    def _fit(self, train, items, users) -> None:
        if items is None:
            raise DataError("ContentTFIDF needs the items table (titles and genres): fit(train, items=...)")
        docs = self._documents(items)
        n_docs = sum(bool(d.strip()) for d in docs)
        vec = TfidfVectorizer(min_df=min(self.min_df, max(n_docs, 1)), token_pattern=r"(?u)\b\w\w+\b")
        try:
            self._tfidf = normalize(vec.fit_transform(docs).tocsr())
        except ValueError as exc:  # empty vocabulary
            raise DataError(f"items: no usable title/genre tokens for the training catalog ({exc})") from None
        weighted = self.rating_weighted and "rating" in train.columns
        m = self._interaction_matrix(train, weighted=weighted)
        if self.history is not None:
            rows, cols = self._positions(train)
            m = m.multiply(_recent_matrix(train, rows, cols, m.shape, self.history)).tocsr()
        if weighted:
            # Centre each user's ratings so a 1-star rating pushes the profile away from that item.
            counts = np.diff(m.indptr)
            means = np.asarray(m.sum(axis=1)).ravel() / np.maximum(counts, 1)
            m.data = m.data - np.repeat(means, counts) + self.rating_offset
        self._profiles = normalize(m @ self._tfidf)

    def _score_users(self, user_ids) -> np.ndarray:
        return _dense(self._profiles[self._rows(user_ids)] @ self._tfidf.T)

    def _similar_scores(self, item_positions) -> np.ndarray:
        return _dense(self._tfidf[item_positions] @ self._tfidf.T)


class CoVisitation(_Baseline):
    """Item-item co-visitation counts within users' time-ordered histories.

    Each user's interactions are ordered by ``timestamp`` (ties by item); two interactions of the
    same user form a pair when they are at most ``window`` positions apart (None: anywhere in the
    history), at most ``time_window`` seconds apart (None: no limit) and, with ``session_gap``, in
    the same session (a session ends where consecutive interactions are more than ``session_gap``
    seconds apart). A pair at distance ``d`` adds ``1 / d`` to ``C[a, b]`` and ``C[b, a]`` when
    ``decay`` is true, else 1. A user's score for item ``i`` sums ``C[j, i]`` over the ``history``
    most recent items ``j`` they interacted with (None: all)::

        scores [n_users, n_items] = H @ C   (+ a 1e-6 popularity tie-breaker)

    ``similar_items(i)`` ranks by ``C[i]``.

    Args:
      window: max distance in positions (None = whole history).
      time_window: max distance in seconds (None = unlimited); needs a ``timestamp`` column.
      session_gap: seconds of inactivity that end a session (None = one session per user).
      history: recent items a user is scored from (None = all).
      decay: weight pairs by 1 / distance.

    Example:
      >>> CoVisitation(window=10).fit(train).recommend("1", k=10)   # doctest: +SKIP
    """

    _param_names = ("window", "time_window", "session_gap", "history", "decay")
    _state_names = ("_co", "_history")

    def __init__(self, window: Optional[int] = 10, time_window: Optional[float] = None,
                 session_gap: Optional[float] = None, history: Optional[int] = 5, decay: bool = True):
        self.window = _check_int("window", window, 1, allow_none=True)
        self.time_window = _check_float("time_window", time_window, allow_none=True)
        self.session_gap = _check_float("session_gap", session_gap, allow_none=True)
        self.history = _check_int("history", history, 1, allow_none=True)
        self.decay = _check_bool("decay", decay)

    def _fit(self, train, items, users) -> None:
        timed = self.time_window is not None or self.session_gap is not None
        if timed and "timestamp" not in train.columns:
            raise DataError("CoVisitation: time_window/session_gap need a 'timestamp' column in train")
        rows, cols = self._positions(train)
        ts = train["timestamp"].to_numpy(dtype=np.float64) if "timestamp" in train.columns else np.zeros(len(rows))
        order = np.lexsort((cols, ts, rows))
        u, i, t = rows[order], cols[order], ts[order]
        # Session id per interaction: a new one at each user change or (optionally) a long gap.
        new = np.r_[True, u[1:] != u[:-1]]
        if self.session_gap is not None:
            new[1:] |= (t[1:] - t[:-1]) > self.session_gap
        session = np.cumsum(new)
        n = len(self.catalog_)
        if self.window is None and self.time_window is None and not self.decay:
            # Every pair within a session counts 1: a sessions x items product, no loop.
            b = sp.csr_matrix((np.ones(len(i)), (session - 1, i)), shape=(int(session[-1]), n))
            co = (b.T @ b).tocsr()
            # (Repeated items count once per pair of copies, as in the loop; self-pairs are dropped.)
            co.setdiag(0)
            co.eliminate_zeros()
            self._co = co
            self._history = _recent_matrix(train, rows, cols, (len(self.user_index_), n), self.history)
            return
        pair_rows, pair_cols, pair_vals = [], [], []
        max_d = self.window if self.window is not None else len(u)
        for d in range(1, max_d + 1):
            ok = session[d:] == session[:-d]
            if self.time_window is not None:
                ok &= (t[d:] - t[:-d]) <= self.time_window
            if not ok.any():
                # Sessions are contiguous and time-sorted: nothing pairs at d, so nothing beyond d.
                break
            a, b = i[:-d][ok], i[d:][ok]
            w = np.full(len(a), 1.0 / d if self.decay else 1.0)
            pair_rows += [a, b]
            pair_cols += [b, a]
            pair_vals += [w, w]
        if pair_rows:
            co = sp.csr_matrix((np.concatenate(pair_vals), (np.concatenate(pair_rows), np.concatenate(pair_cols))),
                               shape=(n, n))
        else:
            co = sp.csr_matrix((n, n))
        co.sum_duplicates()
        co.setdiag(0)  # an item re-rated later is not its own neighbour
        co.eliminate_zeros()
        self._co = co
        self._history = _recent_matrix(train, rows, cols, (len(self.user_index_), n), self.history)

    def _score_users(self, user_ids) -> np.ndarray:
        scores = _dense(self._history[self._rows(user_ids)] @ self._co)
        # Items never co-visited with the history still get a (tiny) popularity order.
        return scores + 1e-6 * self.popularity_ / max(self.popularity_.max(), 1.0)

    def _similar_scores(self, item_positions) -> np.ndarray:
        return _dense(self._co[item_positions])


__all__ = ["Popularity", "ItemKNN", "UserKNN", "ContentTFIDF", "CoVisitation", "CONFIG_FILE", "STATE_FILE"]
