"""The feature vocabulary of names, and how raw columns become model features.

One set of names is used unchanged in pipelines, model inputs, export signatures and REST
instances: ``user_id``, ``item_id``, ``rating``, ``timestamp``, ``gender``, ``age``,
``occupation``, ``zip``, ``genres``, ``year``. Ids are strings at every boundary a user sees.

Derived features (the same functions are used by pipelines and by exported models, so training
and serving agree):

* ``age``: the MovieLens-1M age-group code (1, 18, 25, 35, 45, 50, 56) -- ``age_bucket``.
  Bucketing a code again gives the same code, so raw years (ml-100k) and codes (ml-1m) both work.
* ``zip``: the first ``ZIP_PREFIX_LEN`` characters of the zip code (a coarse region).
* ``genres``: a fixed-width string vector of ``MAX_GENRES`` entries padded with ``""``.
* ``year``: release year as int64, ``0`` when unknown.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd

USER_ID = "user_id"
ITEM_ID = "item_id"
RATING = "rating"
TIMESTAMP = "timestamp"
GENDER = "gender"
AGE = "age"
OCCUPATION = "occupation"
ZIP = "zip"
GENRES = "genres"
YEAR = "year"

USER_FEATURES = (GENDER, AGE, OCCUPATION, ZIP)
ITEM_FEATURES = (GENRES, YEAR)
FEATURE_NAMES = (USER_ID, ITEM_ID, RATING, TIMESTAMP) + USER_FEATURES + ITEM_FEATURES

# MovieLens-1M age groups: 1 "Under 18", 18 "18-24", 25 "25-34", 35 "35-44", 45 "45-49",
# 50 "50-55", 56 "56+". The code is the lower bound of its group.
AGE_BOUNDARIES = (18, 25, 35, 45, 50, 56)
AGE_CODES = (1,) + AGE_BOUNDARIES
ZIP_PREFIX_LEN = 3
MAX_GENRES = 10
PAD = ""


def age_bucket(age) -> np.ndarray:
    """Map ages in years (or ML-1M codes) to ML-1M age-group codes, elementwise (int64)."""
    a = np.asarray(age, dtype=np.int64)
    idx = np.searchsorted(np.asarray(AGE_BOUNDARIES), a, side="right")
    return np.asarray(AGE_CODES, dtype=np.int64)[idx]


def zip_prefix(zips) -> np.ndarray:
    """First ``ZIP_PREFIX_LEN`` characters of each zip code (object array of str)."""
    return np.array([str(z)[:ZIP_PREFIX_LEN] for z in np.asarray(zips, dtype=object)], dtype=object)


def pad_genres(genres: Sequence[str]) -> list:
    """A genre list truncated/padded with ``""`` to exactly ``MAX_GENRES`` entries."""
    g = [str(x) for x in list(genres)[:MAX_GENRES]]
    return g + [PAD] * (MAX_GENRES - len(g))


def user_feature_table(users: Optional[pd.DataFrame]) -> Optional[pd.DataFrame]:
    """Per-user model features (gender, age code, occupation, zip prefix), indexed by user_id."""
    if users is None:
        return None
    out = pd.DataFrame(
        {
            GENDER: users[GENDER].astype(str).to_numpy(dtype=object),
            AGE: age_bucket(users[AGE].to_numpy()),
            OCCUPATION: users[OCCUPATION].astype(str).to_numpy(dtype=object),
            ZIP: zip_prefix(users[ZIP].to_numpy()),
        },
        index=pd.Index(users[USER_ID].astype(str).to_numpy(dtype=object), name=USER_ID),
    )
    return out


def item_feature_table(items: Optional[pd.DataFrame]) -> Optional[pd.DataFrame]:
    """Per-item model features (padded genres list, year), indexed by item_id."""
    if items is None:
        return None
    return pd.DataFrame(
        {
            GENRES: [pad_genres(g) for g in items[GENRES]],
            YEAR: items[YEAR].fillna(0).astype(np.int64).to_numpy(),
        },
        index=pd.Index(items[ITEM_ID].astype(str).to_numpy(dtype=object), name=ITEM_ID),
    )


def feature_frame(
    ratings: pd.DataFrame,
    items: Optional[pd.DataFrame] = None,
    users: Optional[pd.DataFrame] = None,
) -> pd.DataFrame:
    """Ratings joined with user and item features: one row per rating, one column per feature.

    Users or items missing from the side tables get neutral values: ``""`` for strings, age 0
    (unknown, distinct from every age code), year 0 and all-padding genres.
    """
    out = pd.DataFrame(
        {
            USER_ID: ratings[USER_ID].astype(str).to_numpy(dtype=object),
            ITEM_ID: ratings[ITEM_ID].astype(str).to_numpy(dtype=object),
            RATING: ratings[RATING].astype(np.float32).to_numpy(),
            TIMESTAMP: ratings[TIMESTAMP].astype(np.int64).to_numpy(),
        }
    )
    ut = user_feature_table(users)
    if ut is not None:
        j = ut.reindex(out[USER_ID].to_numpy())
        out[GENDER] = j[GENDER].fillna(PAD).to_numpy(dtype=object)
        out[AGE] = j[AGE].fillna(0).astype(np.int64).to_numpy()
        out[OCCUPATION] = j[OCCUPATION].fillna(PAD).to_numpy(dtype=object)
        out[ZIP] = j[ZIP].fillna(PAD).to_numpy(dtype=object)
    it = item_feature_table(items)
    if it is not None:
        j = it.reindex(out[ITEM_ID].to_numpy())
        empty = [PAD] * MAX_GENRES
        out[GENRES] = [g if isinstance(g, list) else empty for g in j[GENRES]]
        out[YEAR] = j[YEAR].fillna(0).astype(np.int64).to_numpy()
    return out


# ------------------------------------------------------------------------------------------------
# Side features of your own data (a schema.json), typed by the schema rather than named up front.
#
# A schema dataset's side tables (see tfrec.data.schema) carry their feature types in
# ``frame.attrs["feature_types"]`` ({column: "categorical" | "multi_categorical" | "numeric" |
# "text"}), so every consumer -- vocabularies, pipelines, model side tables, exports -- reads them
# from the table it is given. Models store the fitted specs (tfrec.data.vocab.fit_side_features)
# in their config, so a model rebuilt from its config needs no schema.

FEATURE_TYPES_ATTR = "feature_types"
#: at most this many values of a multi_categorical feature (and tokens of a text one) per row.
MAX_VALUES = 16
TEXT_PATTERN = r"[^\pL\pN]+"  # RE2 (in-graph): runs of anything but letters and digits


def feature_types(table: Optional[pd.DataFrame]) -> Optional[dict]:
    """``{feature: type}`` of a schema dataset's side table, or None for MovieLens-layout tables."""
    if table is None:
        return None
    types = table.attrs.get(FEATURE_TYPES_ATTR)
    return dict(types) if types is not None else None


def with_feature_types(table: Optional[pd.DataFrame], types: dict) -> Optional[pd.DataFrame]:
    """``table`` with its feature types attached (in place; returned for chaining)."""
    if table is not None:
        table.attrs[FEATURE_TYPES_ATTR] = dict(types)
    return table


def is_schema_data(items: Optional[pd.DataFrame], users: Optional[pd.DataFrame]) -> bool:
    """True when the side tables come from a schema.json dataset (typed features)."""
    return feature_types(items) is not None or feature_types(users) is not None


def tokenize(text) -> list:
    """Lower-cased tokens of ``text``: runs of letters and digits (what the in-graph TextPooling does)."""
    import re

    return [t for t in re.split(r"[\W_]+", str(text).lower()) if t][:MAX_VALUES]


def values_of(table: pd.DataFrame, name: str, kind: str) -> list:
    col = table[name]
    if kind == "multi_categorical":
        return [str(v) for vs in col for v in (vs if isinstance(vs, (list, tuple, np.ndarray)) else [])]
    if kind == "text":
        return [t for v in col for t in tokenize(v)]
    return [str(v) for v in col]


def side_specs(items: Optional[pd.DataFrame], users: Optional[pd.DataFrame]) -> dict:
    """``{feature: {"side": "user"|"item", "type": ..., ["length": L]}}`` of typed side tables.

    ``length`` (multi_categorical only) is the longest list in the table, at most ``MAX_VALUES``:
    the width the pipelines pad to and the models' side tables hold.

    Sorted by feature name: models concatenate their feature layers in this order and keep the
    specs in their config, which run folders and prepared folders store as JSON with sorted keys;
    any other order would come back permuted on reload (the dense weights no longer matching).
    """
    specs = {}
    for side, table in (("user", users), ("item", items)):
        for name, kind in (feature_types(table) or {}).items():
            spec = {"side": side, "type": kind}
            if kind == "multi_categorical":
                longest = max((len(v) for v in table[name] if isinstance(v, (list, tuple, np.ndarray))), default=1)
                spec["length"] = int(min(max(longest, 1), MAX_VALUES))
            specs[name] = spec
    return dict(sorted(specs.items()))


def side_values(table: Optional[pd.DataFrame], key: str, specs: dict, side: str, ids) -> dict:
    """Model-ready per-row values of the ``side`` features for ``ids`` (missing rows: neutral).

    categorical / text: object str arrays (``""`` missing); multi_categorical: object [n, length]
    padded with ``""``; numeric: float32 (NaN missing).
    """
    ids = np.asarray(ids, dtype=object)
    out = {}
    names = [n for n, s in specs.items() if s["side"] == side]
    if not names:
        return out
    if table is not None:
        joined = table.drop_duplicates(key).set_index(table[key].astype(str).to_numpy(dtype=object)).reindex(ids)
    for name in names:
        spec = specs[name]
        col = joined[name] if table is not None and name in table.columns else pd.Series([None] * len(ids))
        if spec["type"] == "numeric":
            out[name] = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float32)
        elif spec["type"] == "multi_categorical":
            n = spec["length"]
            rows = [([str(x) for x in v][:n] if isinstance(v, (list, tuple, np.ndarray)) else []) for v in col]
            out[name] = np.array([r + [PAD] * (n - len(r)) for r in rows], dtype=object).reshape(len(ids), n)
        else:
            out[name] = np.array(["" if not isinstance(v, str) else v for v in col], dtype=object)
    return out
