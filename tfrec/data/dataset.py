"""The one in-memory shape every dataset takes in tfrec, real or synthetic."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import pandas as pd

RATING_COLUMNS = ("user_id", "item_id", "rating", "timestamp")
ITEM_COLUMNS = ("item_id", "title", "year", "genres")
USER_COLUMNS = ("user_id", "gender", "age", "occupation", "zip")


@dataclass
class MovieLensData:
    """A ratings log with its item (and, when present, user) side tables.

    Attributes:
      name: dataset name, e.g. ``"ml-100k"`` or ``"synthetic"``.
      ratings: DataFrame with ``user_id`` (str), ``item_id`` (str), ``rating`` (float32) and
        ``timestamp`` (int64, seconds since the epoch).
      items: DataFrame with ``item_id`` (str), ``title`` (str), ``year`` (int64, 0 when unknown)
        and ``genres`` (a list of str per row; empty when unknown).
      users: DataFrame with ``user_id`` (str), ``gender`` (str), ``age`` (int64, as the dataset
        gives it: years for ml-100k, the age-group code for ml-1m), ``occupation`` (str) and
        ``zip`` (str); ``None`` when the dataset has no demographics (the ml-latest family).
      synthetic: True for data made by :func:`tfrec.data.synthetic_movielens` (never real).
      source: where the data came from (a folder, a cache path, or the generator's arguments).
    """

    name: str
    ratings: pd.DataFrame
    items: pd.DataFrame
    users: Optional[pd.DataFrame] = None
    synthetic: bool = False
    source: str = ""
    extras: dict = field(default_factory=dict)

    @property
    def has_demographics(self) -> bool:
        return self.users is not None

    def describe(self) -> dict:
        """Summary statistics: counts, rating histogram, sparsity, top genres."""
        r = self.ratings
        n_users = int(r["user_id"].nunique())
        n_items = int(r["item_id"].nunique())
        hist = r["rating"].value_counts().sort_index()
        genre_counts = (
            r[["item_id"]]
            .merge(self.items[["item_id", "genres"]], on="item_id", how="left")["genres"]
            .explode()
            .dropna()
        )
        genre_counts = genre_counts[genre_counts != ""].value_counts()
        return {
            "name": self.name,
            "synthetic": self.synthetic,
            "source": self.source,
            "n_ratings": int(len(r)),
            "n_users": n_users,
            "n_items": n_items,
            "n_catalog_items": int(len(self.items)),
            "sparsity": 1.0 - len(r) / float(max(n_users * n_items, 1)),
            "rating_mean": float(r["rating"].mean()) if len(r) else float("nan"),
            "rating_histogram": {_fmt_rating(k): int(v) for k, v in hist.items()},
            "top_genres": {str(k): int(v) for k, v in genre_counts.head(10).items()},
            "has_demographics": self.has_demographics,
            "first_timestamp": int(r["timestamp"].min()) if len(r) else None,
            "last_timestamp": int(r["timestamp"].max()) if len(r) else None,
        }

    def __repr__(self) -> str:
        label = " (synthetic)" if self.synthetic else ""
        return (
            f"MovieLensData(name={self.name!r}{label}, ratings={len(self.ratings)}, "
            f"users={self.ratings['user_id'].nunique()}, items={len(self.items)}, "
            f"demographics={self.has_demographics})"
        )


def _fmt_rating(value) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else str(value)
