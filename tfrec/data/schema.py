"""Your own data: a ``schema.json`` naming CSV/Parquet files of interactions and side features.

A dataset folder holds ``schema.json`` and the files it names (CSV or Parquet, by extension)::

    {
      "name": "shop",
      "interactions": {"path": "events.parquet", "user_id": "customer", "item_id": "sku",
                       "rating": null, "timestamp": "ts"},
      "items": {"path": "items.csv", "id": "sku",
                "features": {"brand": "categorical", "tags": "multi_categorical",
                             "price": "numeric", "title": "text"}},
      "users": {"path": "users.csv", "id": "customer",
                "features": {"country": "categorical", "age": "numeric"}},
      "unknown_items": "error"
    }

``rating`` and ``timestamp`` may be null (implicit feedback; no time order); ``items`` and
``users`` are optional. Feature types (:data:`FEATURE_TYPES`):

* ``categorical``: one string per row (``""`` when missing);
* ``multi_categorical``: a list of strings (a list column in Parquet, ``|``-separated in CSV);
* ``numeric``: a number, missing allowed (NaN; models normalise with training-split statistics
  and add a missing indicator);
* ``text``: free text (models tokenise it and pool token embeddings).

:func:`~tfrec.data.own.load_dataset` returns the same :class:`~tfrec.data.dataset.InteractionData` that
:func:`tfrec.data.load_movielens` returns (whose schema is the built-in :func:`movielens_schema`):
the interactions with columns ``user_id``, ``item_id`` (+ ``rating``, ``timestamp`` when the
schema names them) and side tables keyed by ``item_id`` / ``user_id`` with one column per feature,
named as in the schema. Every problem is a :class:`~tfrec.errors.DataError` naming the file, the
column and (CSV) the line. :func:`~tfrec.data.infer.infer_schema` writes a starter schema from files' columns.

Modules: this one parses and validates the schema; :mod:`tfrec.data.tables` reads CSV/Parquet
files and converts columns; :mod:`tfrec.data.own` loads datasets (whole or in chunks);
:mod:`tfrec.data.infer` guesses a starter schema.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from tfrec.errors import DataError

FEATURE_TYPES = ("categorical", "multi_categorical", "numeric", "text")
UNKNOWN_ITEMS = ("keep", "drop", "error")
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
#: separator of multi_categorical values in CSV cells.
MULTI_SEP = "|"
#: names the pipelines use for ids, labels and time; features may not take them.
RESERVED = ("user_id", "item_id", "rating", "timestamp", "label")
SCHEMA_FILE = "schema.json"


# ------------------------------------------------------------------------------------------------ schema
@dataclass(frozen=True)
class TableSpec:
    """A side table: its file, id column and ``{column: feature type}``."""

    path: str
    id: str
    features: dict = field(default_factory=dict)


@dataclass(frozen=True)
class InteractionsSpec:
    """The interactions file and which of its columns are the user, item, rating and timestamp."""

    path: str
    user_id: str
    item_id: str
    rating: Optional[str] = None
    timestamp: Optional[str] = None


@dataclass(frozen=True)
class Schema:
    """A parsed, validated ``schema.json`` (see the module docstring).

    Attributes:
      name: the dataset name.
      interactions: :class:`InteractionsSpec`.
      items, users: :class:`TableSpec` or None.
      unknown_items: what to do with interactions whose item is not in ``items``: ``"error"``
        (default), ``"drop"`` or ``"keep"`` (either way the count is reported).
      builtin: ``"movielens"`` for the built-in MovieLens schema (its models derive age codes, zip
        prefixes and year buckets), ``""`` for a user's schema.
    """

    name: str
    interactions: InteractionsSpec
    items: Optional[TableSpec] = None
    users: Optional[TableSpec] = None
    unknown_items: str = "error"
    builtin: str = ""

    @property
    def user_features(self) -> dict:
        """``{feature name: type}`` of the user table (empty without one)."""
        return dict(self.users.features) if self.users else {}

    @property
    def item_features(self) -> dict:
        return dict(self.items.features) if self.items else {}

    @property
    def has_rating(self) -> bool:
        return self.interactions.rating is not None

    @property
    def has_timestamp(self) -> bool:
        return self.interactions.timestamp is not None

    def to_dict(self) -> dict:
        """The ``schema.json`` form (what :meth:`from_dict` reads)."""
        out = {"name": self.name, "interactions": {
            "path": self.interactions.path, "user_id": self.interactions.user_id,
            "item_id": self.interactions.item_id, "rating": self.interactions.rating,
            "timestamp": self.interactions.timestamp}}
        for key in ("items", "users"):
            t = getattr(self, key)
            if t is not None:
                out[key] = {"path": t.path, "id": t.id, "features": dict(t.features)}
        out["unknown_items"] = self.unknown_items
        if self.builtin:
            out["builtin"] = self.builtin
        return out

    @classmethod
    def from_dict(cls, d, *, source: str = SCHEMA_FILE) -> "Schema":
        """Validate a schema dict; DataError naming ``source`` and the key at fault otherwise."""
        if not isinstance(d, dict):
            raise DataError(f"{source}: expected a JSON object, got {type(d).__name__}")
        unknown = sorted(set(d) - {"name", "interactions", "items", "users", "unknown_items", "builtin"})
        if unknown:
            raise DataError(f"{source}: unknown key(s) {unknown}; expected name, interactions, items, users, "
                            "unknown_items")
        name = d.get("name", "dataset")
        if not isinstance(name, str) or not name:
            raise DataError(f"{source}: 'name' must be a non-empty string, got {name!r}")
        inter = _section(d, "interactions", source, required=True)
        for key in ("path", "user_id", "item_id"):
            _string(inter, key, f"{source}: interactions", required=True)
        for key in ("rating", "timestamp"):
            _string(inter, key, f"{source}: interactions", required=False)
        extra = sorted(set(inter) - {"path", "user_id", "item_id", "rating", "timestamp"})
        if extra:
            raise DataError(f"{source}: interactions has unknown key(s) {extra}; expected path, user_id, item_id, "
                            "rating, timestamp")
        interactions = InteractionsSpec(inter["path"], inter["user_id"], inter["item_id"], inter.get("rating"),
                                        inter.get("timestamp"))
        tables = {}
        for key in ("items", "users"):
            t = _section(d, key, source, required=False)
            if t is None:
                tables[key] = None
                continue
            where = f"{source}: {key}"
            _string(t, "path", where, required=True)
            _string(t, "id", where, required=True)
            extra = sorted(set(t) - {"path", "id", "features"})
            if extra:
                raise DataError(f"{where} has unknown key(s) {extra}; expected path, id, features")
            feats = t.get("features", {}) or {}
            if not isinstance(feats, dict):
                raise DataError(f"{where}.features must be an object of column -> type, got {feats!r}")
            for col, kind in feats.items():
                if kind not in FEATURE_TYPES:
                    raise DataError(f"{where}.features.{col}: unknown feature type {kind!r}; expected one of "
                                    f"{', '.join(FEATURE_TYPES)}")
                if col in RESERVED:
                    raise DataError(f"{where}.features.{col}: {col!r} is reserved for the pipeline's own columns "
                                    f"({', '.join(RESERVED)}); rename the column")
                if col == t["id"]:
                    raise DataError(f"{where}.features.{col}: the id column cannot also be a feature")
            tables[key] = TableSpec(t["path"], t["id"], dict(feats))
        if tables["items"] and tables["users"]:
            both = sorted(set(tables["items"].features) & set(tables["users"].features))
            if both:
                raise DataError(f"{source}: feature name(s) {both} appear in both items and users; feature names "
                                "must be unique (they are the model's and the export's input names)")
        policy = d.get("unknown_items", "error")
        if policy not in UNKNOWN_ITEMS:
            raise DataError(f"{source}: unknown_items must be one of {', '.join(UNKNOWN_ITEMS)}, got {policy!r}")
        builtin = d.get("builtin", "")
        return cls(name=name, interactions=interactions, items=tables["items"], users=tables["users"],
                   unknown_items=policy, builtin=builtin or "")

    @classmethod
    def load(cls, path) -> "Schema":
        """Read and validate a ``schema.json`` file."""
        p = Path(path)
        if not p.is_file():
            raise DataError(f"{p}: schema file not found")
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(f"{p}: not valid JSON ({exc})") from None
        return cls.from_dict(d, source=str(p))


def _section(d: dict, key: str, source: str, *, required: bool):
    value = d.get(key)
    if value is None:
        if required:
            raise DataError(f"{source}: missing {key!r} (an object with path, user_id, item_id, rating, timestamp)")
        return None
    if not isinstance(value, dict):
        raise DataError(f"{source}: {key!r} must be an object, got {value!r}")
    return value


def _string(d: dict, key: str, where: str, *, required: bool) -> None:
    value = d.get(key)
    if value is None and not required:
        return
    if not isinstance(value, str) or not value:
        raise DataError(f"{where}.{key} must be a non-empty string (a column or file name), got {value!r}")


def movielens_schema(name: str = "movielens", *, has_users: bool = True) -> Schema:
    """The built-in schema of the MovieLens layouts (as :func:`tfrec.data.load_movielens` returns them)."""
    users = TableSpec("users", "user_id", {"gender": "categorical", "age": "numeric", "occupation": "categorical",
                                           "zip": "categorical"}) if has_users else None
    return Schema(name=name, interactions=InteractionsSpec("ratings", "user_id", "item_id", "rating", "timestamp"),
                  items=TableSpec("items", "item_id", {"genres": "multi_categorical", "year": "numeric",
                                                       "title": "text"}),
                  users=users, builtin="movielens")
