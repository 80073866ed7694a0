"""Vocabularies: contiguous integer ids for string features, fitted on the training split only.

Layout (the same as ``tf.keras.layers.StringLookup(vocabulary=v.values, num_oov_indices=1)``):
index 0 is the out-of-vocabulary bucket, known values are 1..n. Saved as plain JSON (no pickle).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
import pandas as pd

from tfrec.errors import ConfigError, DataError
from tfrec.utils.io import atomic_write_json

OOV_TOKEN = "[UNK]"


class Vocabulary:
    """A string vocabulary with one out-of-vocabulary bucket at index 0.

    Args:
      values: the known values, in id order (value ``values[j]`` has id ``j + 1``).
      oov_token: label of index 0.

    Example:
      >>> v = Vocabulary.fit(["b", "a", "b"])
      >>> v.values, v.lookup(["b", "zzz"]).tolist()
      (['b', 'a'], [1, 0])
    """

    def __init__(self, values: Iterable[str], oov_token: str = OOV_TOKEN):
        if isinstance(values, (str, bytes)):
            raise DataError(f"Vocabulary values must be a list of strings, got the single string {values!r}")
        self.values = [str(v) for v in values]
        index = pd.Index(self.values, dtype=object)
        if not index.is_unique:
            dup = index[index.duplicated()][0]
            raise DataError(f"Vocabulary values must be unique; {dup!r} appears more than once")
        if oov_token in index:
            raise DataError(f"Vocabulary values must not contain the OOV token {oov_token!r}")
        self.oov_token = str(oov_token)
        self._index = index

    @classmethod
    def fit(cls, values: Iterable, min_count: int = 1) -> "Vocabulary":
        """Values seen at least ``min_count`` times, most frequent first (ties by value)."""
        if isinstance(min_count, bool) or not isinstance(min_count, (int, np.integer)) or min_count < 1:
            raise ConfigError(f"min_count must be a positive integer, got {min_count!r}")
        counts = _value_counts(values)
        if counts is None:
            counts = Counter(str(v) for v in values)
        counts.pop("", None)  # padding is never a value
        kept = sorted((v for v, c in counts.items() if c >= min_count), key=lambda v: (-counts[v], v))
        return cls(kept)

    @property
    def size(self) -> int:
        """Number of ids including the OOV bucket (``len(values) + 1``)."""
        return len(self.values) + 1

    def __len__(self) -> int:
        return len(self.values)

    def __contains__(self, value) -> bool:
        return str(value) in self._index

    def lookup(self, values) -> np.ndarray:
        """Ids (int64, same shape as ``values``); unknown values map to 0 (the OOV bucket)."""
        arr = np.asarray(values, dtype=object)
        flat = arr.reshape(-1)
        keys = pd.Index([v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in flat], dtype=object)
        ids = self._index.get_indexer(keys).astype(np.int64) + 1  # -1 (missing) becomes 0
        return ids.reshape(arr.shape)

    def to_dict(self) -> dict:
        """``{"oov_token": ..., "values": [...]}``, the JSON form."""
        return {"oov_token": self.oov_token, "values": list(self.values)}

    @classmethod
    def from_dict(cls, d: dict, *, source: str = "vocabulary") -> "Vocabulary":
        """Inverse of :meth:`to_dict` (``source`` names the origin in error messages)."""
        if not isinstance(d, dict) or not isinstance(d.get("values"), list):
            raise DataError(f"{source}: expected an object with a 'values' list, got {str(d)[:80]!r}")
        bad = [v for v in d["values"] if not isinstance(v, str)]
        if bad:
            raise DataError(f"{source}: vocabulary values must be strings, found {bad[0]!r}")
        return cls(d["values"], oov_token=d.get("oov_token", OOV_TOKEN))

    def save(self, path) -> Path:
        """Write the vocabulary as JSON, atomically."""
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path) -> "Vocabulary":
        """Read a vocabulary written by :meth:`save`."""
        return cls.from_dict(_read_json(path), source=str(path))

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocabulary) and self.values == other.values

    def __repr__(self) -> str:
        return f"Vocabulary(size={self.size}, head={self.values[:5]})"


def _value_counts(values) -> Optional[dict]:
    """``{str(value): count}`` computed by pandas for a Series of strings or integers without
    missing values (an ids column: ~50x faster than counting Python strings one by one); None
    for anything else, which is counted element by element."""
    if not isinstance(values, pd.Series) or values.hasnans:
        return None
    if not (pd.api.types.is_string_dtype(values.dtype) or pd.api.types.is_integer_dtype(values.dtype)):
        return None
    if values.dtype == object and not all(isinstance(v, str) for v in values):
        return None  # an object column of mixed types: str() of each, element by element
    counts = values.astype(str).value_counts(sort=False)
    return dict(zip(counts.index.astype(str), counts.to_numpy().tolist()))


def fit_vocabularies(train: pd.DataFrame, items: Optional[pd.DataFrame] = None,
                     users: Optional[pd.DataFrame] = None) -> dict:
    """Vocabularies for every string feature, from the training split only.

    Returns ``{"user_id", "item_id"}`` plus ``gender``, ``occupation``, ``zip`` (prefix) when
    ``users`` is given and ``genres`` when ``items`` is given; for a schema.json dataset's typed
    side tables, one per categorical / multi_categorical / text (tokens) feature instead. Side-table values are restricted to
    users/items present in ``train`` so nothing about held-out users leaks in.
    """
    from tfrec.data.features import is_schema_data, user_feature_table

    for col in ("user_id", "item_id"):
        if col not in train.columns:
            raise DataError(f"train is missing column {col!r}")
    out = {
        "user_id": Vocabulary.fit(train["user_id"]),
        "item_id": Vocabulary.fit(train["item_id"]),
    }
    if is_schema_data(items, users):  # your own data: one vocabulary per non-numeric schema feature
        out.update(fit_side_features(train, items, users)[1])
        return out
    if users is not None:
        table = user_feature_table(users)
        table = table[table.index.isin(set(train["user_id"].astype(str)))]
        for col in ("gender", "occupation", "zip"):
            out[col] = Vocabulary.fit(table[col])
    if items is not None:
        seen = set(train["item_id"].astype(str))
        genres = [g for iid, gs in zip(items["item_id"].astype(str), items["genres"]) if iid in seen for g in gs]
        out["genres"] = Vocabulary.fit(genres)
    return out


def fit_side_features(train: pd.DataFrame, items: Optional[pd.DataFrame],
                      users: Optional[pd.DataFrame]) -> tuple:
    """Fitted specs and vocabularies of a schema dataset's side features, from the training split.

    Returns ``(specs, vocabularies)``: ``specs`` is :func:`tfrec.data.features.side_specs` plus ``"mean"``/``"std"`` of
    each numeric feature (JSON, what models keep in their config); ``vocabularies`` is
    ``{feature: Vocabulary}`` for categorical, multi_categorical and text (tokens) features. Only
    users/items present in ``train`` count, so nothing about held-out rows leaks in.
    """
    from tfrec.data.features import ITEM_ID, USER_ID, side_specs, values_of

    specs = side_specs(items, users)
    vocabs = {}
    for name, spec in specs.items():
        table, key = (users, USER_ID) if spec["side"] == "user" else (items, ITEM_ID)
        seen = table[table[key].astype(str).isin(set(train[key].astype(str)))]
        if spec["type"] == "numeric":
            x = pd.to_numeric(seen[name], errors="coerce").to_numpy(dtype=np.float64)
            x = x[np.isfinite(x)]
            spec["mean"] = float(x.mean()) if len(x) else 0.0
            spec["std"] = float(x.std()) if len(x) > 1 and x.std() > 0 else 1.0
        else:
            vocabs[name] = Vocabulary.fit(values_of(seen, name, spec["type"]))
    return specs, vocabs


def save_vocabularies(vocabularies: dict, path) -> Path:
    """All vocabularies in one JSON file."""
    return atomic_write_json(path, {k: v.to_dict() for k, v in vocabularies.items()})


def load_vocabularies(path) -> dict:
    """Read the file written by :func:`save_vocabularies` (``{feature name: Vocabulary}``)."""
    data = _read_json(path)
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object of vocabularies keyed by feature name")
    return {k: Vocabulary.from_dict(v, source=f"{path}, vocabulary {k!r}") for k, v in data.items()}


def _read_json(path):
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: vocabulary file not found")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{p}: not a valid JSON vocabulary file ({exc})") from None
