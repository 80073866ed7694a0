"""Loading your own datasets: a schema.json folder (or DataFrames) -> InteractionData.

:func:`load_dataset` reads whole files; :func:`iter_interactions` streams the interactions in
chunks (the out-of-core path); :func:`open_dataset` resolves any dataset tfrec knows by name or
path (MovieLens names, ``synthetic``, a folder with ``schema.json``).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import pandas as pd

from tfrec.data.dataset import InteractionData
from tfrec.data.schema import SCHEMA_FILE, InteractionsSpec, Schema, TableSpec
from tfrec.data.tables import (
    check_columns,
    Where,
    convert_feature,
    convert_ids,
    convert_numeric,
    convert_timestamps,
    file_format,
    read_table,
)
from tfrec.errors import DataError


def _read_interactions(frame: pd.DataFrame, spec: InteractionsSpec, where: Where) -> pd.DataFrame:
    out = pd.DataFrame({
        "user_id": convert_ids(frame[spec.user_id].reset_index(drop=True), where, spec.user_id),
        "item_id": convert_ids(frame[spec.item_id].reset_index(drop=True), where, spec.item_id),
    })
    if spec.rating is not None:
        out["rating"] = convert_numeric(frame[spec.rating].reset_index(drop=True), where, spec.rating,
                                        allow_missing=False).astype(np.float32)
    if spec.timestamp is not None:
        out["timestamp"] = convert_timestamps(frame[spec.timestamp].reset_index(drop=True), where, spec.timestamp)
    return out


def _read_side(frame: pd.DataFrame, spec: TableSpec, where: Where, key: str) -> pd.DataFrame:
    frame = frame.reset_index(drop=True)
    ids = convert_ids(frame[spec.id], where, spec.id)
    dup = ids.duplicated().to_numpy()
    if dup.any():
        row = int(np.argmax(dup))
        first = int(np.flatnonzero((ids == ids.iloc[row]).to_numpy())[0])
        raise DataError(f"{where(row)}, column {spec.id!r}: duplicate id {ids.iloc[row]!r} (first at "
                        f"{where(first).rsplit(', ', 1)[-1]}); ids in a side table must be unique")
    out = pd.DataFrame({key: ids})
    for name, kind in spec.features.items():
        out[name] = convert_feature(frame[name], kind, where, name)
    return out


def resolve_path(folder: Path, rel: str) -> Path:
    """A ``path`` entry of schema.json: absolute, or relative to the schema's folder."""
    p = Path(rel).expanduser()
    return p if p.is_absolute() else folder / p


def _load_file(folder: Path, rel: str, columns) -> tuple:
    path = resolve_path(folder, rel)
    return read_table(path, columns), Where(path, file_format(path))


def apply_unknown_items(ratings: pd.DataFrame, items: Optional[pd.DataFrame], policy: str, *,
                        source: str) -> tuple:
    """(ratings, count) with interactions on items missing from ``items`` kept, dropped or refused."""
    if items is None:
        return ratings, 0
    unknown = ~ratings["item_id"].isin(set(items["item_id"]))
    n = int(unknown.sum())
    if n == 0:
        return ratings, 0
    report_unknown_items(source, n, ratings["item_id"][unknown].nunique(), ratings["item_id"][unknown].iloc[0],
                         policy, stacklevel=4)
    return (ratings[~unknown].reset_index(drop=True), n) if policy == "drop" else (ratings, n)


def report_unknown_items(source: str, n: int, n_ids: int, example, policy: str, *, stacklevel: int = 3) -> None:
    """Refuse (``policy`` "error": DataError) or warn about ``n`` interactions on ``n_ids`` item ids
    the items table does not list (the count is always given; nothing is dropped silently)."""
    what = f"{source}: {n} interaction(s) on {n_ids} item id(s) that the items table does not list (e.g. {example!r})"
    if policy == "error":
        raise DataError(f"{what}; fix the files or set \"unknown_items\": \"drop\" or \"keep\" in {SCHEMA_FILE}")
    if policy == "drop":
        warnings.warn(f"{what}: dropped (unknown_items=drop)", stacklevel=stacklevel)
    else:
        warnings.warn(f"{what}: kept without item features (unknown_items=keep)", stacklevel=stacklevel)


def load_dataset(path=None, *, schema=None, interactions: Optional[pd.DataFrame] = None,
                 items: Optional[pd.DataFrame] = None, users: Optional[pd.DataFrame] = None) -> InteractionData:
    """Load your own dataset as :class:`~tfrec.data.dataset.InteractionData`.

    Either ``path`` -- a dataset folder holding ``schema.json`` or the ``schema.json`` itself,
    whose ``path`` entries are relative to its folder -- or ``schema`` (a dict or
    :class:`Schema`) with the frames it describes (``interactions``, and ``items`` / ``users``
    when the schema has those tables; their ``path`` entries are then ignored).

    Returns:
      ``InteractionData`` with ``ratings`` (``user_id``, ``item_id`` as str; ``rating`` float32
      and ``timestamp`` int64 seconds when the schema names them), ``items`` / ``users`` keyed by
      ``item_id`` / ``user_id`` with one column per schema feature, and ``schema``.
      ``extras["unknown_items"]`` counts interactions on items the items table lacks.

    Raises:
      DataError: a bad schema, a missing file or column, a value of the wrong type, a duplicate
        side-table id, an empty file, or unknown item ids under ``"unknown_items": "error"``
        (messages name the file, column and, for CSV, the line).

    Example:
      >>> data = load_dataset("data/shop")  # doctest: +SKIP
      >>> data.items.columns.tolist()  # doctest: +SKIP
      ['item_id', 'brand', 'tags', 'price', 'title']
    """
    if path is not None and schema is not None:
        raise DataError("load_dataset takes a path or schema= with DataFrames, not both")
    if path is not None:
        schema_path = find_schema(path)
        sch = Schema.load(schema_path)
        folder = schema_path.parent
        spec = sch.interactions
        frame, where = _load_file(folder, spec.path, _interaction_columns(spec))
        ratings = _read_interactions(frame, spec, where)
        side = load_side_tables(sch, folder, typed=False)
        source = str(folder)
        inter_source = str(resolve_path(folder, spec.path))
    else:
        if schema is None:
            raise DataError("load_dataset needs a dataset folder / schema.json path, or schema= and interactions=")
        sch = schema if isinstance(schema, Schema) else Schema.from_dict(schema, source="schema")
        if not isinstance(interactions, pd.DataFrame):
            raise DataError(f"load_dataset(schema=...) needs interactions= as a DataFrame, got "
                            f"{type(interactions).__name__}")
        spec = sch.interactions
        _check_frame("interactions", interactions, _interaction_columns(spec))
        ratings = _read_interactions(interactions, spec, Where(Path("interactions"), "frame"))
        side = {}
        for key, id_name, frame in (("items", "item_id", items), ("users", "user_id", users)):
            t = getattr(sch, key)
            if t is None:
                side[key] = None
                continue
            if not isinstance(frame, pd.DataFrame):
                raise DataError(f"the schema has a {key!r} table: pass {key}= as a DataFrame")
            _check_frame(key, frame, [t.id] + list(t.features))
            side[key] = _read_side(frame, t, Where(Path(key), "frame"), id_name)
        source = "DataFrames"
        inter_source = "interactions"
    from tfrec.data.features import with_feature_types

    with_feature_types(side["items"], sch.item_features)
    with_feature_types(side["users"], sch.user_features)
    ratings, n_unknown = apply_unknown_items(ratings, side["items"], sch.unknown_items, source=inter_source)
    if len(ratings) == 0:
        raise DataError(f"{inter_source}: no interactions left")
    return InteractionData(name=sch.name, ratings=ratings, items=side["items"], users=side["users"],
                           source=source, schema=sch, extras={"unknown_items": n_unknown})


def find_schema(path) -> Path:
    """The ``schema.json`` of a dataset folder (or the file itself); DataError when there is none."""
    p = Path(path).expanduser()
    schema_path = p / SCHEMA_FILE if p.is_dir() else p
    if not schema_path.is_file():
        raise DataError(f"{p}: no {SCHEMA_FILE} there; a dataset folder holds {SCHEMA_FILE} and the files it "
                        "names (`tfrec data schema FILE ...` writes a starter one)")
    return schema_path


def _interaction_columns(spec: InteractionsSpec) -> list:
    return [spec.user_id, spec.item_id] + [c for c in (spec.rating, spec.timestamp) if c]


def load_side_tables(schema: Schema, folder, *, typed: bool = True) -> dict:
    """``{"items": frame or None, "users": frame or None}``: the side tables ``schema`` names,
    read whole (they are small next to the interactions) and checked as :func:`load_dataset` does;
    ``typed`` attaches the schema's feature types (:func:`tfrec.data.features.with_feature_types`)."""
    from tfrec.data.features import with_feature_types

    side = {}
    for key, id_name in (("items", "item_id"), ("users", "user_id")):
        t = getattr(schema, key)
        if t is None:
            side[key] = None
            continue
        frame, where = _load_file(Path(folder), t.path, [t.id] + list(t.features))
        side[key] = _read_side(frame, t, where, id_name)
        if typed:
            with_feature_types(side[key], dict(t.features))
    return side


def _check_frame(name: str, frame: pd.DataFrame, columns) -> None:
    if len(frame) == 0:
        raise DataError(f"{name}: the DataFrame is empty")
    check_columns(Path(name), list(frame.columns), list(dict.fromkeys(columns)), "columns")


def is_dataset_folder(value) -> bool:
    """True when ``value`` names a folder with ``schema.json`` or a ``schema.json`` file."""
    try:
        p = Path(str(value)).expanduser()
        return (p.is_dir() and (p / SCHEMA_FILE).is_file()) or (p.is_file() and p.suffix == ".json")
    except OSError:
        return False


def iter_interactions(path, *, chunksize: int = 1 << 20) -> Iterator[pd.DataFrame]:
    """The interactions of a schema.json dataset in chunks (the out-of-core path).

    Yields frames as :func:`load_dataset`'s ``ratings`` (``user_id``, ``item_id`` and the
    ``rating`` / ``timestamp`` the schema names), read ``chunksize`` rows at a time from CSV or
    Parquet; errors name the file, column and (CSV) line as for a whole-file read. Side tables
    are small: read them whole with :func:`load_dataset`. ``unknown_items`` is not applied here.
    """
    schema_path = find_schema(path)
    sch = Schema.load(schema_path)
    spec = sch.interactions
    file = resolve_path(schema_path.parent, spec.path)
    cols = _interaction_columns(spec)
    where = Where(file, file_format(file))
    offset = 0
    for chunk in read_table(file, cols, chunksize=chunksize):
        yield _read_interactions(chunk, spec, _Offset(where, offset))
        offset += len(chunk)


class _Offset:
    """A :class:`Where` for a chunk starting at data row ``offset``."""

    def __init__(self, where: Where, offset: int):
        self.where, self.offset = where, offset

    def __call__(self, row: int) -> str:
        return self.where(row + self.offset)


def open_dataset(dataset, data_dir=None, *, seed: int = 0) -> InteractionData:
    """Any dataset tfrec knows, by name or path: a loaded ``InteractionData`` is returned as is; a
    folder with ``schema.json`` (or the file) is loaded by :func:`load_dataset`; ``"synthetic"``
    is generated; any other string is a MovieLens name for :func:`tfrec.data.load_movielens`.
    """
    from tfrec.errors import ConfigError

    if isinstance(dataset, InteractionData):
        return dataset
    if isinstance(dataset, Path) or (isinstance(dataset, str) and is_dataset_folder(dataset)):
        return load_dataset(dataset)
    if not isinstance(dataset, str):
        raise ConfigError(f"dataset must be a MovieLens name such as 'ml-100k', a folder with {SCHEMA_FILE}, or an "
                          f"InteractionData, got {type(dataset).__name__}")
    if dataset == "synthetic" or dataset.startswith("synthetic"):
        from tfrec.data.synthetic import synthetic_movielens

        return synthetic_movielens(seed=seed)
    from tfrec.data.movielens import load_movielens

    refuse_folder_without_schema(dataset)
    return load_movielens(dataset, data_dir=data_dir)


def refuse_folder_without_schema(dataset: str) -> None:
    """A ``--dataset`` string that is not a MovieLens name but names a path is a folder without
    ``schema.json``: say that (and how to write one) rather than "unknown dataset"."""
    from tfrec.data.movielens import DATASETS

    if dataset not in DATASETS and ("/" in dataset or Path(dataset).exists()):
        raise DataError(f"{dataset}: not a dataset folder (no {SCHEMA_FILE} there) and not a MovieLens name; "
                        f"`tfrec data schema FILE ...` writes a starter {SCHEMA_FILE}")
