"""`tfrec data schema`: a starter schema.json guessed from files' columns and types."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from tfrec.data.schema import RESERVED, Schema
from tfrec.data.tables import file_format
from tfrec.errors import DataError


# ------------------------------------------------------------------------------------------------ inference
_USER_HINTS = ("user", "customer", "client", "visitor", "member", "account", "buyer", "uid")
_ITEM_HINTS = ("item", "product", "sku", "movie", "article", "song", "track", "video", "iid", "asin")
_TIME_HINTS = ("timestamp", "time", "ts", "date", "datetime", "created", "event_time", "_at")
_RATING_HINTS = ("rating", "score", "stars", "rate")


def _sample(path: Path, n: int = 2000) -> pd.DataFrame:
    fmt = file_format(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    if fmt == "csv":
        try:
            return pd.read_csv(path, nrows=n, encoding="utf-8")
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: could not be read as CSV ({exc})") from None
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        batch = next(pf.iter_batches(batch_size=n), None)
    except Exception as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
    return batch.to_pandas() if batch is not None else pd.DataFrame(columns=pf.schema_arrow.names)


def _pick(columns, hints, taken=()):
    low = {c: str(c).lower() for c in columns if c not in taken}
    for h in hints:
        for c, lc in low.items():
            if lc == h or lc == f"{h}_id" or lc == f"{h}id":
                return c
    for h in hints:
        for c, lc in low.items():
            if h in lc:
                return c
    return None


def _guess_type(col: pd.Series) -> str:
    s = col.dropna()
    if len(s) and s.map(lambda v: isinstance(v, (list, tuple, np.ndarray))).all():
        return "multi_categorical"
    if col.dtype.kind in "iufb":
        return "numeric"
    text = s.astype(str)
    if len(text) and text.str.contains(r"\|", regex=True).mean() > 0.2:
        return "multi_categorical"
    if len(text) and (text.str.split().str.len().mean() >= 3 or text.nunique() > 0.9 * len(text) > 20):
        return "text"
    return "categorical"


def infer_schema(paths, *, name: Optional[str] = None) -> dict:
    """A starter ``schema.json`` dict from files' columns and types, for the user to edit.

    The file sharing id columns with the other files is the interactions file (user vs item id
    told apart by their names, else their order; rating / timestamp columns guessed from names
    and dtypes); a file holding the item (user) id column is the items (users) table, its other
    columns features typed by
    :func:`_guess_type` (lists / ``|``-joined -> multi_categorical, numbers -> numeric, long or
    mostly unique strings -> text, else categorical). Paths are written relative to the first
    file's folder.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise DataError("tfrec data schema needs at least one CSV or Parquet file")
    samples = {p: _sample(p) for p in paths}
    folder = paths[0].resolve().parent
    # The interactions file is the one sharing id columns with the others (items by the item id,
    # users by the user id); alone, it is the only file.
    shared = {p: [c for c in f.columns if any(c in g.columns for q, g in samples.items() if q != p)]
              for p, f in samples.items()}
    inter = max(paths, key=lambda p: (len(shared[p]), len(samples[p])))
    cols = list(samples[inter].columns)
    if len(cols) < 2:
        raise DataError(f"{inter}: need an interactions file with a user and an item id column; found {cols}")
    ids = shared[inter] if len(shared[inter]) >= 2 else cols
    user_col = _pick(ids, _USER_HINTS)
    item_col = _pick(ids, _ITEM_HINTS, (user_col,))
    if user_col is None or item_col is None:  # no telling names: the first two id columns, in order
        rest = [c for c in ids if c not in (user_col, item_col)]
        user_col = user_col if user_col is not None else rest.pop(0)
        item_col = item_col if item_col is not None else rest.pop(0)
    frame = samples[inter]
    taken = (user_col, item_col)
    rating = _pick([c for c in frame.columns if frame[c].dtype.kind in "iuf"], _RATING_HINTS, taken)
    dated = [c for c in frame.columns if frame[c].dtype.kind == "M" and c not in taken]
    ts = dated[0] if dated else _pick(frame.columns, _TIME_HINTS, taken + ((rating,) if rating else ()))

    def rel(p: Path) -> str:
        try:
            return str(p.resolve().relative_to(folder))
        except ValueError:
            return str(p.resolve())

    schema = {"name": name or folder.name,
              "interactions": {"path": rel(inter), "user_id": str(user_col), "item_id": str(item_col),
                               "rating": None if rating is None else str(rating),
                               "timestamp": None if ts is None else str(ts)}}
    for p, frame in samples.items():
        if p == inter or len(frame.columns) == 0:
            continue
        ids = {str(c) for c in frame.columns}
        key = "items" if str(item_col) in ids else "users" if str(user_col) in ids else None
        if key is None or key in schema:
            continue
        id_col = str(item_col) if key == "items" else str(user_col)
        feats = {str(c): _guess_type(frame[c]) for c in frame.columns if str(c) != id_col}
        feats = {c: t for c, t in feats.items() if c not in RESERVED}
        schema[key] = {"path": rel(p), "id": id_col, "features": feats}
    schema["unknown_items"] = "error"
    Schema.from_dict(schema, source="inferred schema")  # what we print must load
    return schema
