"""Reading a ratings file in chunks, for data too large to load whole.

:func:`iter_rating_chunks` yields the ratings of a :class:`RatingsSource` as DataFrames of at most
``chunk_rows`` rows (pandas' C reader for CSV, pyarrow record batches -- row groups -- for Parquet),
with the tfrec dtypes (user_id/item_id str, rating float32, timestamp int64). A malformed or
truncated row raises :class:`~tfrec.errors.DataError` naming the file, line (Parquet: row) and
field; the text is only re-scanned on that error path. :func:`movielens_source` locates a
MovieLens folder's ratings file and reads its small side tables; :func:`schema_source` does the same
for a schema.json dataset (whose interactions :mod:`tfrec.data.prepare_schema` reads in chunks).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import pandas as pd

from tfrec.errors import ConfigError, DataError

DEFAULT_CHUNK_ROWS = 1 << 18


@dataclass
class RatingsSource:
    """Where a dataset's ratings are and how to read them.

    Attributes:
      path: the ratings file.
      columns: the file's user, item, rating and timestamp column names (or positions when the
        file has no header).
      fmt: ``"csv"`` or ``"parquet"``.
      sep, header, encoding, quoted: CSV settings (``header``: the first line names the columns).
      usecols: for header-less files, positions of the four columns among ``n_fields``.
    """

    path: Path
    columns: tuple = ("user_id", "item_id", "rating", "timestamp")
    fmt: str = "csv"
    sep: str = ","
    header: bool = True
    encoding: str = "utf-8"
    quoted: bool = True
    usecols: Optional[tuple] = None
    n_fields: Optional[int] = None


@dataclass
class SourceData:
    """A ratings source plus the dataset's (small) side tables and provenance.

    ``schema`` (a :class:`tfrec.data.schema.Schema`) and ``schema_path`` are set for a schema.json
    dataset: its interactions are then read by :func:`tfrec.data.own.iter_interactions` and its side
    tables carry the schema's feature types (see :mod:`tfrec.data.prepare_schema`).
    """

    name: str
    ratings: RatingsSource
    items: Optional[pd.DataFrame] = None
    users: Optional[pd.DataFrame] = None
    synthetic: bool = False
    source: str = ""
    extras: dict = field(default_factory=dict)
    schema: Optional[object] = None
    schema_path: Optional[Path] = None


def movielens_source(name: str, data_dir=None) -> SourceData:
    """The ratings file and side tables of a MovieLens folder (any published layout).

    The side tables (movies, users: at most ~90k rows) are read whole; the ratings are only
    located here and streamed by :func:`iter_rating_chunks`.
    """
    from tfrec.data import movielens as ml
    from tfrec.data.synthesize import read_synthetic_marker

    info = ml._check_name(name)
    folder = ml.find_movielens(name, data_dir)
    if folder is None:
        from tfrec.errors import DatasetNotFoundError

        tried = [str(p) for p in ml._candidates(name, data_dir)]
        raise DatasetNotFoundError(ml._not_found_message(name, tried, None))
    marker = read_synthetic_marker(folder)
    layout = info["layout"]
    if layout == "csv":
        ratings = RatingsSource(folder / "ratings.csv", columns=("userId", "movieId", "rating", "timestamp"))
        items = _csv_items(folder / "movies.csv")
        users = None
    else:
        # ml-100k / ml-1m: the side tables come from the regular loader (both datasets hold at
        # most 1M ratings); ml-1m's "::" is read as ":" with every other field empty.
        data = ml.load_movielens(name, data_dir=data_dir, download=False)
        items, users = data.items, data.users
        if layout == "1m":
            ratings = RatingsSource(folder / "ratings.dat", columns=(0, 2, 4, 6), sep=":", header=False,
                                    encoding="iso-8859-1", quoted=False, usecols=(0, 2, 4, 6), n_fields=7)
        else:
            ratings = RatingsSource(folder / "u.data", columns=(0, 1, 2, 3), sep="\t", header=False,
                                    encoding="iso-8859-1", quoted=False, usecols=(0, 1, 2, 3), n_fields=4)
    return SourceData(name=name, ratings=ratings, items=items, users=users, synthetic=bool(marker),
                      source=str(folder) + (" (synthetic: tfrec data synthesize)" if marker else ""),
                      extras={"synthetic": marker} if marker else {})


def _csv_items(path: Path) -> pd.DataFrame:
    from tfrec.data import movielens_files as ml

    raw = ml._read_table(path, sep=",", names=("movieId", "title", "genres"), encoding="utf-8", header=True,
                         quoted=True)
    item_ids = ml._Rows(path, raw, header=True, encoding="utf-8").ids("movieId", "item_id")
    ml._check_unique(path, item_ids, "item_id", header=True, encoding="utf-8")
    titles = raw["title"].astype(str).str.strip().to_numpy(dtype=object)
    return pd.DataFrame({
        "item_id": item_ids,
        "title": pd.Series(titles, dtype=str),
        "year": np.asarray([ml.year_from_title(t) for t in titles], dtype=np.int64),
        "genres": pd.Series(ml._split_genres(raw["genres"]), dtype=object),
    })


def resolve_source(dataset, data_dir=None) -> SourceData:
    """A :class:`SourceData` from a MovieLens name, a folder with ``schema.json`` (or the file), or
    a ready SourceData."""
    if isinstance(dataset, SourceData):
        return dataset
    from tfrec.data.own import is_dataset_folder, refuse_folder_without_schema

    if isinstance(dataset, Path) or (isinstance(dataset, str) and is_dataset_folder(dataset)):
        return schema_source(dataset)
    if not isinstance(dataset, str):
        raise ConfigError(f"dataset must be a dataset name such as 'ml-32m' or a folder with schema.json, got "
                          f"{type(dataset).__name__}")
    from tfrec.data.movielens import DATASETS

    if dataset in DATASETS:
        return movielens_source(dataset, data_dir)
    refuse_folder_without_schema(dataset)
    raise ConfigError(f"tfrec data prepare: unknown dataset {dataset!r}; expected one of: {', '.join(DATASETS)}, or "
                      "a folder with schema.json (a synthetic folder: `tfrec data synthesize --layout ml-32m --out "
                      "DIR`, then --dataset ml-32m --data-dir DIR)")


def schema_source(path) -> SourceData:
    """The :class:`SourceData` of a folder holding ``schema.json`` (or of the file itself)."""
    from tfrec.data.own import find_schema, load_side_tables, resolve_path
    from tfrec.data.schema import Schema
    from tfrec.data.tables import file_format

    schema_path = find_schema(path)
    schema = Schema.load(schema_path)
    file = resolve_path(schema_path.parent, schema.interactions.path)
    fmt = file_format(file)
    spec = schema.interactions
    side = load_side_tables(schema, schema_path.parent)
    ratings = RatingsSource(file, columns=(spec.user_id, spec.item_id, spec.rating, spec.timestamp), fmt=fmt)
    return SourceData(name=schema.name, ratings=ratings, items=side["items"], users=side["users"],
                      source=str(schema_path.parent), schema=schema, schema_path=schema_path)


# ------------------------------------------------------------------------------------------------ chunked reading
def iter_rating_chunks(source: RatingsSource, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """The ratings of ``source`` as DataFrames of at most ``chunk_rows`` rows, in file order.

    Each chunk has ``user_id``, ``item_id`` (str), ``rating`` (float32) and ``timestamp`` (int64).
    CSV is parsed by pandas' C reader ``chunk_rows`` lines at a time, Parquet a row group batch at a
    time with pyarrow. A malformed row raises :class:`DataError` naming the file, line (Parquet:
    row) and field.
    """
    if source.fmt == "parquet":
        yield from _parquet_chunks(source, chunk_rows)
        return
    path = source.path
    if not path.is_file():
        raise DataError(f"{path}: ratings file not found")
    _check_complete(path)
    uid, iid, rat, ts = source.columns
    kwargs = dict(sep=source.sep, engine="c", encoding=source.encoding, keep_default_na=False, na_filter=False,
                  index_col=False, quoting=csv.QUOTE_MINIMAL if source.quoted else csv.QUOTE_NONE)
    # No usecols: with it pandas silently accepts lines with extra fields.
    if source.header:
        kwargs.update(header=0, dtype={uid: str, iid: str, rat: np.float64, ts: np.int64})
    else:
        kwargs.update(header=None, names=list(range(source.n_fields)),
                      dtype={uid: str, iid: str, rat: np.float64, ts: np.int64})
    rows_before = 0
    try:
        reader = pd.read_csv(path, chunksize=chunk_rows, **kwargs)
        for chunk in reader:
            if source.header and rows_before == 0:
                missing = [c for c in source.columns if c not in chunk.columns]
                if missing:
                    raise DataError(f"{path}, line 1: header {list(chunk.columns)} lacks column(s) {missing}; "
                                    f"expected {source.sep.join(source.columns)}")
            user = chunk[uid].astype(str).str.strip()
            item = chunk[iid].astype(str).str.strip()
            rating = chunk[rat].to_numpy(dtype=np.float64)
            stamp = chunk[ts].to_numpy(dtype=np.int64)
            ok = ((user != "").all() and (item != "").all() and np.isfinite(rating).all()
                  and (rating >= 0).all() and (rating <= 10).all() and (stamp >= 0).all())
            if not ok:
                _raise_first_bad_row(source)
            yield pd.DataFrame({"user_id": user.to_numpy(dtype=object), "item_id": item.to_numpy(dtype=object),
                                "rating": rating.astype(np.float32), "timestamp": stamp})
            rows_before += len(chunk)
    except pd.errors.ParserError as exc:
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if m:
            raise DataError(f"{path}, line {m.group(2)}: expected {m.group(1)} {source.sep!r}-separated fields, "
                            f"got {m.group(3)}") from None
        _raise_first_bad_row(source)
        raise DataError(f"{path}: could not be parsed ({exc})") from None
    except ValueError as exc:
        if isinstance(exc, DataError):
            raise
        _raise_first_bad_row(source)
        raise DataError(f"{path}: could not be parsed after {rows_before} rows ({exc})") from None
    except UnicodeDecodeError:
        _raise_first_bad_row(source)
        raise
    if rows_before == 0:
        raise DataError(f"{path}: no ratings (expected lines of {source.sep.join(map(str, source.columns))})")


def _check_complete(path: Path) -> None:
    """A text file cut off mid-write ends inside a line (every published ratings file ends with a
    line break); its last line may still parse (a timestamp cut to fewer digits), so say so."""
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        if size == 0:
            raise DataError(f"{path}: empty file (expected ratings)")
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        fh.seek(0)
        lines = 1
        tail = b""
        for block in iter(lambda: fh.read(1 << 20), b""):
            lines += block.count(b"\n")
            tail = (tail + block)[-200:]
    last = tail.rsplit(b"\n", 1)[-1].decode("utf-8", "replace")
    raise DataError(f"{path}, line {lines}: the file ends inside this line ({last!r}, no final line break): "
                    "truncated? (download or copy it again)")


def _raise_first_bad_row(source: RatingsSource) -> None:
    """Scan the file as text and raise DataError at its first malformed row (slow path, errors only)."""
    path = source.path
    want = source.n_fields
    uid, iid, rat, ts = source.columns
    with open(path, encoding=source.encoding, errors="strict", newline="") as fh:
        lines = enumerate(fh, start=1)
        positions = None
        try:
            if source.header:
                _, first = next(lines)
                head = next(csv.reader([first], delimiter=source.sep))
                head = [h.strip() for h in head]
                missing = [c for c in source.columns if c not in head]
                if missing:
                    raise DataError(f"{path}, line 1: header {head} lacks column(s) {missing}; expected "
                                    f"{source.sep.join(source.columns)}")
                positions = [head.index(c) for c in source.columns]
                want = len(head)
            else:
                positions = list(source.usecols)
            names = ("user_id", "item_id", "rating", "timestamp")
            for lineno, line in lines:
                if not line.strip():
                    continue
                fields = (next(csv.reader([line], delimiter=source.sep)) if source.quoted
                          else line.rstrip("\r\n").split(source.sep))
                if len(fields) != want:
                    raise DataError(f"{path}, line {lineno}: expected {want} {source.sep!r}-separated fields, got "
                                    f"{len(fields)} (truncated or malformed line {line.rstrip()!r})")
                values = [fields[p].strip() for p in positions]
                for name, value in zip(names[:2], values[:2]):
                    if value == "":
                        raise DataError(f"{path}, line {lineno}, field {name}: {value!r} is empty; expected an id")
                try:
                    r = float(values[2])
                except ValueError:
                    raise DataError(f"{path}, line {lineno}, field rating: {values[2]!r} is not a number") from None
                if not (0 <= r <= 10):
                    raise DataError(f"{path}, line {lineno}, field rating: {values[2]!r} is outside 0..10")
                try:
                    t = int(values[3])
                except ValueError:
                    raise DataError(f"{path}, line {lineno}, field timestamp: {values[3]!r} is not an integer") \
                        from None
                if t < 0:
                    raise DataError(f"{path}, line {lineno}, field timestamp: {values[3]!r} is outside 0..")
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not valid {source.encoding} text near line {lineno + 1} ({exc.reason})") \
                from None
        except StopIteration:
            raise DataError(f"{path}: empty file (expected a header line)") from None


def _parquet_chunks(source: RatingsSource, chunk_rows: int) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    path = source.path
    if not path.is_file():
        raise DataError(f"{path}: ratings file not found")
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for corrupt files
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
    uid, iid, rat, ts = source.columns
    missing = [c for c in source.columns if c not in pf.schema_arrow.names]
    if missing:
        raise DataError(f"{path}: no column(s) {missing}; has {pf.schema_arrow.names}")
    done = 0
    try:
        for batch in pf.iter_batches(batch_size=chunk_rows, columns=list(source.columns)):
            frame = batch.to_pandas()
            user = frame[uid].astype(str).str.strip().to_numpy(dtype=object)
            item = frame[iid].astype(str).str.strip().to_numpy(dtype=object)
            for name, col, kind in (("rating", rat, "a number"), ("timestamp", ts, "an integer")):
                values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=np.float64)
                bad = ~np.isfinite(values) | (values < 0) | ((values > 10) if name == "rating" else False)
                if bad.any():
                    row = int(np.argmax(bad))
                    raise DataError(f"{path}, row {done + row + 1}, field {name}: {frame[col].iloc[row]!r} is not "
                                    f"{kind} in range")
            for name, values in (("user_id", user), ("item_id", item)):
                empty = values == ""
                if empty.any():
                    raise DataError(f"{path}, row {done + int(np.argmax(empty)) + 1}, field {name}: empty id")
            yield pd.DataFrame({"user_id": user, "item_id": item,
                                "rating": pd.to_numeric(frame[rat]).to_numpy(np.float32),
                                "timestamp": pd.to_numeric(frame[ts]).to_numpy(np.int64)})
            done += len(frame)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{path}: Parquet data unreadable after row {done} ({exc})") from None
