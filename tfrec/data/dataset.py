"""The one in-memory shape every dataset takes in tfrec: MovieLens, synthetic, or your own files."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import pandas as pd

RATING_COLUMNS = ("user_id", "item_id", "rating", "timestamp")
ITEM_COLUMNS = ("item_id", "title", "year", "genres")
USER_COLUMNS = ("user_id", "gender", "age", "occupation", "zip")


@dataclass
class InteractionData:
    """An interaction log with its item (and, when present, user) side tables, and its schema.

    Attributes:
      name: dataset name, e.g. ``"ml-100k"``, ``"synthetic"`` or a ``schema.json``'s ``name``.
      ratings: the interactions: ``user_id`` (str), ``item_id`` (str) and, when the data has them,
        ``rating`` (float32; absent for implicit feedback) and ``timestamp`` (int64, seconds since
        the epoch; absent when there is no time order).
      items: item side table: ``item_id`` (str) and one column per item feature. MovieLens: ``title``
        (str), ``year`` (int64, 0 when unknown), ``genres`` (list of str). Your data: the features
        its schema names (categorical/text: str, ``""`` when missing; multi_categorical: list of str;
        numeric: float64, NaN when missing). ``None`` when the schema has no items table.
      users: user side table, the same way (MovieLens ml-100k/ml-1m: ``gender``, ``age``,
        ``occupation``, ``zip``); ``None`` when the dataset has none.
      synthetic: True for data made by :func:`tfrec.data.synthetic_movielens` (never real).
      source: where the data came from (a folder, a cache path, or the generator's arguments).
      schema: the :class:`tfrec.data.schema.Schema` describing the columns (MovieLens and synthetic
        data get the built-in MovieLens schema).
    """

    name: str
    ratings: pd.DataFrame
    items: Optional[pd.DataFrame] = None
    users: Optional[pd.DataFrame] = None
    synthetic: bool = False
    source: str = ""
    extras: dict = field(default_factory=dict)
    schema: Any = None

    def __post_init__(self):
        if self.schema is None:
            from tfrec.data.schema import movielens_schema

            self.schema = movielens_schema(self.name, has_users=self.users is not None)

    @property
    def has_demographics(self) -> bool:
        return self.users is not None

    @property
    def has_ratings(self) -> bool:
        """False for implicit feedback (no ``rating`` column)."""
        return "rating" in self.ratings.columns

    @property
    def has_timestamps(self) -> bool:
        """False when the interactions have no time order (no ``timestamp`` column)."""
        return "timestamp" in self.ratings.columns

    @property
    def is_movielens(self) -> bool:
        """True when the side tables have MovieLens's columns (the built-in schema)."""
        return bool(getattr(self.schema, "builtin", False))

    def describe(self) -> dict:
        """Summary statistics: counts, rating histogram, sparsity, top genres (or top feature values)."""
        r = self.ratings
        n_users = int(r["user_id"].nunique())
        n_items = int(r["item_id"].nunique())
        out = {
            "name": self.name,
            "synthetic": self.synthetic,
            "source": self.source,
            "n_ratings": int(len(r)),
            "n_users": n_users,
            "n_items": n_items,
            "n_catalog_items": int(len(self.items)) if self.items is not None else n_items,
            "sparsity": 1.0 - len(r) / float(max(n_users * n_items, 1)),
        }
        if self.has_ratings:
            hist = r["rating"].value_counts().sort_index()
            out["rating_mean"] = float(r["rating"].mean()) if len(r) else float("nan")
            out["rating_histogram"] = {_fmt_rating(k): int(v) for k, v in hist.items()}
        else:
            out["rating_mean"] = None
            out["rating_histogram"] = {}
        if self.is_movielens and self.items is not None and "genres" in self.items.columns:
            out["top_genres"] = _top_values(r, self.items, "item_id", "genres")
        out["has_demographics"] = self.has_demographics
        out["first_timestamp"] = int(r["timestamp"].min()) if self.has_timestamps and len(r) else None
        out["last_timestamp"] = int(r["timestamp"].max()) if self.has_timestamps and len(r) else None
        if not self.is_movielens:
            out["implicit"] = not self.has_ratings
            out["features"] = _feature_summary(self)
        return out

    def __repr__(self) -> str:
        label = " (synthetic)" if self.synthetic else ""
        n_items = len(self.items) if self.items is not None else self.ratings["item_id"].nunique()
        return (
            f"{type(self).__name__}(name={self.name!r}{label}, ratings={len(self.ratings)}, "
            f"users={self.ratings['user_id'].nunique()}, items={n_items}, "
            f"demographics={self.has_demographics})"
        )


#: The historical name; MovieLens is one instance of the general dataset type.
MovieLensData = InteractionData


def _top_values(r: pd.DataFrame, table: pd.DataFrame, key: str, column: str, n: int = 10) -> dict:
    """Interaction-weighted counts of a side-table column's values (lists are exploded)."""
    values = r[[key]].merge(table[[key, column]], on=key, how="left")[column]
    if values.map(lambda v: isinstance(v, (list, tuple))).any():
        values = values.explode()
    values = values.dropna()
    values = values[values.astype(str) != ""].astype(str).value_counts()
    return {str(k): int(v) for k, v in values.head(n).items()}


def _feature_summary(data: InteractionData) -> dict:
    """Per schema feature: its type, and the top values (categorical) or mean/missing (numeric)."""
    out = {}
    for side, table, key in (("user", data.users, "user_id"), ("item", data.items, "item_id")):
        spec = getattr(data.schema, f"{side}_features", {}) or {}
        for name, kind in spec.items():
            if table is None or name not in table.columns:
                continue
            entry = {"side": side, "type": kind}
            col = table[name]
            if kind == "numeric":
                entry["mean"] = float(col.mean()) if col.notna().any() else None
                entry["missing"] = int(col.isna().sum())
            elif kind in ("categorical", "multi_categorical"):
                entry["top"] = _top_values(data.ratings, table, key, name, n=5)
            else:
                entry["empty"] = int((col.astype(str) == "").sum())
            out[name] = entry
    return out


def _fmt_rating(value) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else str(value)
