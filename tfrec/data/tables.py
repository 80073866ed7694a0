"""Reading the CSV/Parquet files a schema.json names, and converting their columns.

Every problem is a :class:`~tfrec.errors.DataError` naming the file, the column and the line (CSV;
the header is line 1) or row (Parquet, 1-based). CSV cells are read as strings and converted here,
so a bad value is found with its position; Parquet columns keep their types (lists, numbers,
datetimes) and are checked the same way.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import pandas as pd

from tfrec.data.schema import FORMATS, MULTI_SEP, SCHEMA_FILE
from tfrec.errors import DataError


# ------------------------------------------------------------------------------------------------ files
def file_format(path) -> str:
    """``"csv"`` or ``"parquet"`` from the file's extension (DataError otherwise)."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise DataError(f"{path}: unsupported file type {Path(path).suffix!r}; expected .csv or .parquet")
    return fmt


class Where:
    """Names a row of a file in messages: ``file, line N`` (CSV) or ``file, row N`` (Parquet)."""

    def __init__(self, path: Path, fmt: str):
        self.path, self.fmt = path, fmt
        self._lines = None

    def __call__(self, row: int) -> str:
        if self.fmt != "csv":
            return f"{self.path}, row {row + 1}"
        return f"{self.path}, line {self._line(row)}"

    def _line(self, row: int) -> int:
        # Data row r starts on line r + 2 unless quoted fields span lines: count them with csv.
        if self._lines is None:
            starts = []
            with open(self.path, encoding="utf-8", errors="replace", newline="") as fh:
                reader = csv.reader(fh)
                line = 1
                for j, rec in enumerate(reader):
                    if j > 0 and rec:
                        starts.append(line)
                    line = reader.line_num + 1
            self._lines = starts
        return self._lines[row] if row < len(self._lines) else row + 2


def read_table(path, columns, *, chunksize: Optional[int] = None):
    """The raw columns of a CSV/Parquet file (CSV cells as strings; missing columns -> DataError).

    With ``chunksize`` an iterator of DataFrames (the out-of-core path: CSV through pandas'
    chunked reader, Parquet a record batch at a time through pyarrow).
    """
    path = Path(path)
    fmt = file_format(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found (named in {SCHEMA_FILE})")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty; expected a header row with column(s) {list(columns)}")
    columns = list(dict.fromkeys(columns))
    if fmt == "csv":
        try:
            header = pd.read_csv(path, nrows=0, encoding="utf-8").columns.tolist()
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}, line 1: could not read the CSV header ({exc})") from None
        check_columns(path, header, columns, "line 1: header")
        kwargs = dict(usecols=columns, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8")
        try:
            if chunksize:
                return _csv_chunks(path, kwargs, chunksize)
            frame = pd.read_csv(path, **kwargs)
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: could not be parsed as CSV ({exc})") from None
    else:
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises its own error types for corrupt files
            raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
        check_columns(path, pf.schema_arrow.names, columns, "schema")
        if chunksize:
            return (b.to_pandas() for b in pf.iter_batches(batch_size=chunksize, columns=columns))
        frame = pd.read_parquet(path, columns=columns, engine="pyarrow")
    if len(frame) == 0:
        raise DataError(f"{path}: the file has no rows (only a header)")
    return frame


def _csv_chunks(path: Path, kwargs: dict, chunksize: int) -> Iterator[pd.DataFrame]:
    try:
        yield from pd.read_csv(path, chunksize=chunksize, **kwargs)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: could not be parsed as CSV ({exc})") from None


def check_columns(path: Path, have, need, where: str) -> None:
    missing = [c for c in need if c not in have]
    if missing:
        raise DataError(f"{path}, {where}: missing column(s) {missing} named in {SCHEMA_FILE}; the file has "
                        f"{list(have)}")


def write_side_parquet(table: pd.DataFrame, path) -> None:
    """A schema dataset's loaded side table as Parquet (lists, NaN and strings round-trip exactly),
    written beside and renamed into place; :func:`read_side_parquet` reads it back."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    table.to_parquet(tmp, engine="pyarrow", index=False)
    tmp.replace(path)


def read_side_parquet(path, key: str, types: dict) -> pd.DataFrame:
    """A side table written by :func:`write_side_parquet`, with its feature ``types`` attached."""
    from tfrec.data.features import with_feature_types

    table = pd.read_parquet(path, engine="pyarrow")
    table[key] = table[key].astype(str)
    for name, kind in types.items():
        if kind == "multi_categorical":
            table[name] = [list(v) if v is not None else [] for v in table[name]]
    return with_feature_types(table, types)


# ------------------------------------------------------------------------------------------------ columns
def _is_missing(v) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and np.isnan(v):
        return True
    return isinstance(v, str) and v.strip() == ""


def convert_ids(values: pd.Series, where: Where, column: str) -> pd.Series:
    """Ids as stripped strings; a missing id is a DataError (integers stay integers: ``7``, not ``7.0``)."""
    if values.dtype.kind == "f":  # Parquet integer ids with nulls come back as floats
        bad = values.isna().to_numpy()
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(f"{where(row)}, column {column!r}: missing id; every row needs one")
        if (values == np.floor(values)).all():
            values = values.astype(np.int64)
    out = values.astype(object).map(lambda v: "" if _is_missing(v) else str(v).strip())
    empty = (out == "").to_numpy()
    if empty.any():
        row = int(np.argmax(empty))
        raise DataError(f"{where(row)}, column {column!r}: missing id {values.iloc[row]!r}; every row needs one")
    return pd.Series(out.to_numpy(dtype=object), dtype=str)


def convert_numeric(values: pd.Series, where: Where, column: str, *, allow_missing: bool) -> np.ndarray:
    """float64 values; non-numbers are DataErrors; missing cells are NaN (or DataErrors)."""
    if values.dtype.kind in "iufb":
        out = values.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        raw = values.astype(object)
        missing = raw.map(_is_missing).to_numpy(dtype=bool)
        out = pd.to_numeric(raw.where(~missing, None).map(lambda v: v.strip() if isinstance(v, str) else v),
                            errors="coerce").to_numpy(dtype=np.float64)
        bad = np.isnan(out) & ~missing
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(f"{where(row)}, column {column!r}: {raw.iloc[row]!r} is not a number")
    bad = np.isinf(out)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(f"{where(row)}, column {column!r}: {values.iloc[row]!r} is not a finite number")
    if not allow_missing and np.isnan(out).any():
        row = int(np.argmax(np.isnan(out)))
        raise DataError(f"{where(row)}, column {column!r}: missing value; every interaction needs one")
    return out


def convert_timestamps(values: pd.Series, where: Where, column: str) -> np.ndarray:
    """int64 seconds since the epoch from numbers, datetimes or ISO-8601 strings."""
    if values.dtype.kind == "M" or isinstance(values.dtype, pd.DatetimeTZDtype):
        if values.isna().any():
            row = int(np.argmax(values.isna().to_numpy()))
            raise DataError(f"{where(row)}, column {column!r}: missing timestamp")
        return (values.astype("datetime64[s]").astype(np.int64)).to_numpy()
    if values.dtype.kind not in "iuf":
        stripped = values.astype(str).str.strip()
        numeric = pd.to_numeric(stripped, errors="coerce")
        if numeric.isna().any() and not numeric.isna().all():
            row = int(np.argmax(numeric.isna().to_numpy()))
            raise DataError(f"{where(row)}, column {column!r}: {values.iloc[row]!r} is not a timestamp (expected "
                            "seconds since the epoch or an ISO-8601 date like the other rows)")
        if numeric.isna().all():
            parsed = pd.to_datetime(stripped, errors="coerce", utc=True, format="ISO8601")
            if parsed.isna().any():
                row = int(np.argmax(parsed.isna().to_numpy()))
                raise DataError(f"{where(row)}, column {column!r}: {values.iloc[row]!r} is not a timestamp "
                                "(expected seconds since the epoch or an ISO-8601 date)")
            return (parsed.dt.tz_localize(None).astype("datetime64[s]").astype(np.int64)).to_numpy()
        values = numeric
    out = convert_numeric(values, where, column, allow_missing=False)
    frac = out != np.floor(out)
    if frac.any():
        row = int(np.argmax(frac))
        raise DataError(f"{where(row)}, column {column!r}: {values.iloc[row]!r} is not whole seconds")
    return out.astype(np.int64)


def convert_feature(values: pd.Series, kind: str, where: Where, column: str):
    """A side-feature column in the dtype the models read (see the module docstring)."""
    if kind == "numeric":
        return convert_numeric(values, where, column, allow_missing=True)
    if kind == "multi_categorical":
        out = []
        for row, v in enumerate(values.tolist()):
            if isinstance(v, (list, tuple, np.ndarray)):
                out.append([str(x).strip() for x in v if not _is_missing(x)])
            elif _is_missing(v):
                out.append([])
            elif isinstance(v, str):
                out.append([x.strip() for x in v.split(MULTI_SEP) if x.strip()])
            else:
                raise DataError(f"{where(row)}, column {column!r}: {v!r} is not a list of values (expected a list "
                                f"in Parquet or {MULTI_SEP!r}-separated text in CSV)")
        return pd.Series(out, dtype=object, index=values.index)
    # categorical and text: strings, "" when missing
    out = []
    for row, v in enumerate(values.tolist()):
        if isinstance(v, (list, tuple, np.ndarray, dict)):
            raise DataError(f"{where(row)}, column {column!r}: {v!r} is a {type(v).__name__}; a {kind} feature "
                            "takes one value per row (use multi_categorical for lists)")
        if isinstance(v, float) and v.is_integer():
            v = int(v)  # a numeric code read as float: "3", not "3.0"
        out.append("" if _is_missing(v) else str(v).strip())
    return pd.Series(out, dtype=str, index=values.index)
