"""`tfrec data prepare` on your own data: a schema.json dataset's interactions in chunks, its typed
side features in the examples.

The schema counterpart of the MovieLens parts of :mod:`tfrec.data.prepare`:

* :func:`tfrec.data.ratings_stream.schema_source` gives the
  :class:`~tfrec.data.ratings_stream.SourceData` of a dataset folder: the schema, the interactions
  file (CSV or Parquet, by extension) and the side tables, read whole and checked as
  :func:`tfrec.data.load_dataset` does (they are small next to the interactions);
* :func:`iter_schema_chunks` -- the interactions a chunk at a time
  (:func:`tfrec.data.own.iter_interactions`: the same conversions and the same file/column/line
  errors as the whole-file loader), with the schema's ``unknown_items`` policy applied per chunk
  and reported with the total count, as :func:`tfrec.data.own.apply_unknown_items` does;
* :func:`schema_side_columns` -- per user / item code values of the schema's features and their
  fitted specs and vocabularies (:func:`tfrec.data.vocab.fit_side_features` on the training
  split's users and items: the numeric statistics a model built in memory would get);
* :func:`schema_feature_spec` -- the examples' feature spec: the ids, ``rating`` / ``timestamp``
  when the schema names them, and one entry per schema feature (numeric: float32, NaN missing;
  categorical / text: string; multi_categorical: string [length], ``""`` padded).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pandas as pd

from tfrec.data import features as F
from tfrec.data.prepared import HISTORY_ITEMS
from tfrec.data.ratings_stream import SourceData
from tfrec.errors import DataError


def iter_schema_chunks(src: SourceData, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The interactions of a schema source, ``chunk_rows`` at a time (see the module docstring).

    Sets ``src.extras["unknown_items"]`` to the count of interactions on items the items table
    lacks. Raises DataError for an interactions file without rows, for unknown items under
    ``"unknown_items": "error"`` (after the whole file is read, with the total count), and when
    nothing is left.
    """
    from tfrec.data.own import iter_interactions, report_unknown_items

    path = src.ratings.path
    policy = src.schema.unknown_items
    known = set(src.items["item_id"]) if src.items is not None else None
    n_read = n_kept = n_unknown = 0
    unknown_ids: set = set()
    example = None
    for chunk in iter_interactions(src.schema_path, chunksize=chunk_rows):
        n_read += len(chunk)
        if known is not None:
            unknown = ~chunk["item_id"].isin(known).to_numpy()
            if unknown.any():
                n_unknown += int(unknown.sum())
                ids = chunk["item_id"].to_numpy()[unknown]
                unknown_ids.update(ids)
                example = ids[0] if example is None else example
                if policy == "drop":
                    chunk = chunk[~unknown].reset_index(drop=True)
        if policy == "error" and n_unknown:
            continue  # keep reading for the count; nothing is kept
        n_kept += len(chunk)
        yield chunk
    if n_read == 0:
        raise DataError(f"{path}: the file has no rows (only a header)")
    src.extras["unknown_items"] = n_unknown
    if n_unknown:
        report_unknown_items(str(path), n_unknown, len(unknown_ids), example, policy, stacklevel=4)
    if n_kept == 0:
        raise DataError(f"{path}: no interactions left")


def _train_ids(user_str, item_str, user_in_train, item_in_train) -> dict:
    """What :func:`fit_side_features` reads of a training frame: its user and item ids."""
    return {F.USER_ID: pd.Series(user_str[user_in_train].astype(str)),
            F.ITEM_ID: pd.Series(item_str[item_in_train].astype(str))}


def schema_side_columns(src: SourceData, user_str, item_str, user_in_train, item_in_train, vocabs) -> tuple:
    """``(user_side, item_side, specs)`` of a schema source.

    ``user_side`` / ``item_side``: ``{feature: values per user / item code}`` (None without that
    table); ``specs``: the fitted feature specs (type, list length, numeric mean/std of the users
    and items in the training split), what a model keeps as ``side_features``. The features'
    vocabularies (fitted on the same users and items) are added to ``vocabs``.
    """
    from tfrec.data.vocab import fit_side_features

    specs, side_vocabs = fit_side_features(_train_ids(user_str, item_str, user_in_train, item_in_train), src.items,
                                           src.users)
    vocabs.update(side_vocabs)
    user_side = item_side = None
    if src.users is not None:
        user_side = F.side_values(src.users, F.USER_ID, specs, "user", user_str.astype(str).astype(object))
    if src.items is not None:
        item_side = F.side_values(src.items, F.ITEM_ID, specs, "item", item_str.astype(str).astype(object))
    return user_side, item_side, specs


def schema_feature_spec(schema, specs: dict, history_length: int) -> dict:
    """The ``prepared.json`` ``features`` entry of a schema dataset's examples."""
    spec = {F.USER_ID: ("string", []), F.ITEM_ID: ("string", [])}
    if schema.has_rating:
        spec[F.RATING] = ("float32", [])
    if schema.has_timestamp:
        spec[F.TIMESTAMP] = ("int64", [])
    for name, s in specs.items():
        if s["type"] == "numeric":
            spec[name] = ("float32", [])
        else:
            spec[name] = ("string", [s["length"]] if "length" in s else [])
    if history_length:
        spec[HISTORY_ITEMS] = ("int64", [history_length])
    return {k: {"dtype": d, "shape": s} for k, (d, s) in spec.items()}


def write_schema_tables(src: SourceData, tmp: Path) -> dict:
    """The typed side tables as ``items.parquet`` / ``users.parquet``; ``{"items": name or None, ...}``."""
    from tfrec.data.tables import write_side_parquet

    out = {}
    for key, table in (("items", src.items), ("users", src.users)):
        out[key] = None
        if table is not None:
            write_side_parquet(table, tmp / f"{key}.parquet")
            out[key] = f"{key}.parquet"
    return out

