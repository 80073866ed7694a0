"""Shared plumbing of the classic baselines: argument checks, fit/save/load (no pickle)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tfrec.errors import ConfigError, DataError
from tfrec.models.base import RecommenderMixin, validate_ratings_frame
from tfrec.models.baselines.sparse import get_sparse, put_sparse, seen_matrix
from tfrec.utils.io import atomic_write_bytes, atomic_write_json


CONFIG_FILE = "baseline.json"
STATE_FILE = "baseline.npz"
_FORMAT_VERSION = 1


def check_int(name: str, value, minimum: int = 1, *, allow_none: bool = False) -> Optional[int]:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        extra = " or None" if allow_none else ""
        raise ConfigError(f"{name} must be an integer >= {minimum}{extra}, got {value!r}")
    return int(value)


def check_float(name: str, value, minimum: float = 0.0, *, allow_none: bool = False,
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


def check_bool(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{name} must be True or False, got {value!r}")
    return bool(value)


class Baseline(RecommenderMixin):
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
        seen = seen_matrix(self.seen_, users, len(self.catalog_))
        arrays = {"popularity": self.popularity_}
        put_sparse(arrays, "seen", seen)
        for name in self._state_names:
            value = getattr(self, name)
            if sp.issparse(value):
                put_sparse(arrays, name, value)
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
            seen = get_sparse(arrays, "seen")
            model.seen_ = {u: seen.indices[seen.indptr[r]:seen.indptr[r + 1]].astype(np.int64)
                           for r, u in enumerate(users)}
            for name in cls._state_names:
                value = get_sparse(arrays, name) if f"{name}__indptr" in arrays else arrays[name]
                setattr(model, name, value)
        except (KeyError, ValueError, OSError) as exc:
            raise DataError(f"{state_path}: unreadable or incomplete ({exc!r})") from None
        return model
