"""Prepared datasets: a ratings log turned into sharded TFRecords that training streams.

``tfrec data prepare`` (:func:`prepare_dataset`) reads the ratings file in chunks (pandas' C
reader for CSV, pyarrow row groups for Parquet; never the whole text in memory), keeps each rating
only as compact integer codes (about 20 bytes a rating), splits them exactly as the in-memory
splits of :mod:`tfrec.data.splits` would, and writes a PREPARED folder::

    PREPARED/
      prepared.json          format version, dataset, split, counts, shard list, feature spec, files
      vocabularies.json      Vocabulary per feature, fitted on the training split (tfrec.data.vocab)
      train-00000-of-00032.tfrecord ...   training examples, one tf.train.Example per rating
      test.csv               the held-out split (user_id, item_id, rating, timestamp)
      validation.csv         temporal split only
      state.npz              what a fitted recommender keeps: per-user seen items (CSR), item and
                             user counts, the last-N serving history; plain arrays (no pickle)
      items.csv, users.csv   side tables (genres "|"-joined)

A training example has the data contract's feature names (``user_id``, ``item_id``, ``rating``,
``timestamp``, plus ``gender``, ``age``, ``occupation``, ``zip`` with demographics and ``genres``,
``year`` with an item table) and ``history_item_ids``: tf.string [H], the item ids the user rated
up to the example's second (same-second ratings included), the example itself left out, the most
recent last, padded on the left with ``""`` -- exactly the training history
:class:`tfrec.models.TwoTower` computes in memory, so streaming training needs no log. Examples are
written in a seeded random order spread over the shards (each shard is a random sample), and the
whole folder is written to a temporary folder and renamed into place: a failed prepare leaves
nothing behind.

:func:`shard_dataset` is the reading side (``tf.data``: files interleaved, records shuffled within
a buffer, parsed a batch at a time); it takes a list of files so multi-worker training can shard
them first. :class:`PreparedDataset` opens a folder and hands out its parts.
"""

from __future__ import annotations

import csv
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np
import pandas as pd

from tfrec.data import features as F
from tfrec.data.vocab import Vocabulary, load_vocabularies, save_vocabularies
from tfrec.errors import ConfigError, DataError
from tfrec.utils.io import atomic_directory

FORMAT = "tfrec-prepared"
FORMAT_VERSION = 1
PREPARED_FILE = "prepared.json"
# Training history, as the two-tower's query tower reads it (tfrec.models.two_tower.HISTORY_ITEMS):
# item-vocabulary indices (1-based, vocabularies.json order; 0 = padding).
HISTORY_ITEMS = "history_items"
DEFAULT_BLOCK_ROWS = 64
SPLITS = ("random", "temporal", "leave_last_out", "cold_start")
DEFAULT_HISTORY_LENGTH = 20
DEFAULT_CHUNK_ROWS = 1 << 18
_RATING_COLUMNS = ("user_id", "item_id", "rating", "timestamp")


# ------------------------------------------------------------------------------------------------ sources
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
    """A ratings source plus the dataset's (small) side tables and provenance."""

    name: str
    ratings: RatingsSource
    items: Optional[pd.DataFrame] = None
    users: Optional[pd.DataFrame] = None
    synthetic: bool = False
    source: str = ""
    extras: dict = field(default_factory=dict)


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
    from tfrec.data import movielens as ml

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
    """A :class:`SourceData` from a dataset name (MovieLens layouts) or a ready SourceData."""
    if isinstance(dataset, SourceData):
        return dataset
    if not isinstance(dataset, str):
        raise ConfigError(f"dataset must be a dataset name such as 'ml-32m', got {type(dataset).__name__}")
    from tfrec.data.movielens import DATASETS

    if dataset in DATASETS:
        return movielens_source(dataset, data_dir)
    raise ConfigError(f"tfrec data prepare: unknown dataset {dataset!r}; expected one of: {', '.join(DATASETS)} "
                      "(a synthetic folder: `tfrec data synthesize --layout ml-32m --out DIR`, then --dataset ml-32m "
                      "--data-dir DIR)")


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
    uid, iid, rat, ts = source.columns
    kwargs = dict(sep=source.sep, engine="c", encoding=source.encoding, keep_default_na=False, na_filter=False,
                  index_col=False, quoting=csv.QUOTE_MINIMAL if source.quoted else csv.QUOTE_NONE)
    if source.header:
        kwargs.update(header=0, usecols=list(source.columns),
                      dtype={uid: str, iid: str, rat: np.float64, ts: np.int64})
    else:
        kwargs.update(header=None, names=list(range(source.n_fields)), usecols=list(source.usecols),
                      dtype={uid: str, iid: str, rat: np.float64, ts: np.int64})
    rows_before = 0
    try:
        reader = pd.read_csv(path, chunksize=chunk_rows, **kwargs)
        for chunk in reader:
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
        import re

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


# ------------------------------------------------------------------------------------------------ coding
class _Codes:
    """Strings -> dense int codes in order of first appearance (a growing dictionary)."""

    def __init__(self):
        self.index: dict = {}

    def encode(self, values: np.ndarray) -> np.ndarray:
        local, uniques = pd.factorize(values)
        index = self.index
        mapped = np.fromiter((index.setdefault(v, len(index)) for v in uniques), dtype=np.int64, count=len(uniques))
        return mapped[local].astype(np.int32)

    def strings(self) -> np.ndarray:
        return np.asarray(list(self.index), dtype=object)


def _string_rank(strings: np.ndarray) -> np.ndarray:
    """rank[code] = position of strings[code] in sorted string order (ties impossible: unique)."""
    order = np.argsort(strings.astype(str), kind="stable")
    rank = np.empty(len(strings), dtype=np.int64)
    rank[order] = np.arange(len(strings))
    return rank


def _split_masks(split: str, u, i, ts, user_str, item_str, *, test_fraction: float, seed: int):
    """(is_test, is_validation or None): the same rows the in-memory splits select."""
    n = len(u)
    if split == "random":
        n_test = int(round(n * test_fraction))
        perm = np.random.default_rng(seed).permutation(n)
        is_test = np.zeros(n, dtype=bool)
        is_test[perm[:n_test]] = True
        return is_test, None
    if split == "cold_start":
        users = np.sort(user_str.astype(str))
        n_test = max(1, int(round(len(users) * test_fraction)))
        if n_test >= len(users):
            raise ConfigError(f"test_fraction={test_fraction} leaves no training users ({len(users)} users)")
        chosen = set(np.random.default_rng(seed).permutation(users)[:n_test])
        user_is_test = np.fromiter((s in chosen for s in user_str.astype(str)), dtype=bool, count=len(user_str))
        return user_is_test[u], None
    # Time order, ties broken by user id then item id (as strings): tfrec.data.splits._time_order.
    order = np.lexsort((_string_rank(item_str)[i], _string_rank(user_str)[u], ts))
    if split == "temporal":
        a, b = int(round(n * 0.75)), int(round(n * (0.75 + 0.15)))
        is_val = np.zeros(n, dtype=bool)
        is_test = np.zeros(n, dtype=bool)
        is_val[order[a:b]] = True
        is_test[order[b:]] = True
        return is_test, is_val
    if split == "leave_last_out":
        n_users = int(u.max()) + 1
        last_rank = np.full(n_users, -1, dtype=np.int64)
        np.maximum.at(last_rank, u[order], np.arange(n, dtype=np.int64))  # each user's latest row
        counts = np.bincount(u, minlength=n_users)
        last_rank = last_rank[counts > 1]
        is_test = np.zeros(n, dtype=bool)
        is_test[order[last_rank]] = True
        return is_test, None
    raise ConfigError(f"unknown split {split!r}; expected one of: {', '.join(SPLITS)}")


def _vocab_order(codes_count: np.ndarray, strings: np.ndarray) -> np.ndarray:
    """Codes with a positive count, most frequent first, ties by string (Vocabulary.fit's order)."""
    present = np.flatnonzero(codes_count > 0)
    rank = _string_rank(strings)
    return present[np.lexsort((rank[present], -codes_count[present]))]


def history_windows(keys: np.ndarray, items: np.ndarray, starts_of: np.ndarray, positions: np.ndarray,
                    length: int) -> np.ndarray:
    """[len(positions), length] training histories (item indices, 0 = padding), right-aligned.

    ``keys`` (int64, ``user << 32 | timestamp``) and ``items`` are the training log sorted by
    key; ``starts_of[p]`` is the first position of the user of position ``p``. For the example at
    each position: the user's last ``length`` items rated at or before its second, the example
    itself left out -- what ``TwoTower``'s ``QueryTower._history_items`` computes in-graph (it
    drops the target's slot from the ``length + 1`` latest, or the oldest slot when the target is
    not among them; here the example's own position is that slot).
    """
    end = np.searchsorted(keys, keys[positions], side="right")
    base = end - (length + 1)
    drop = np.where(positions >= base, positions - base, 0)
    k = np.arange(length)[None, :]
    pos = base[:, None] + k + (k >= drop[:, None])
    valid = pos >= starts_of[positions][:, None]
    return np.where(valid, items[np.maximum(pos, 0)], 0)


# ------------------------------------------------------------------------------------------------ writing
def _feature_spec(has_users: bool, has_items: bool, history_length: int) -> dict:
    spec = {F.USER_ID: ("string", []), F.ITEM_ID: ("string", []), F.RATING: ("float32", []),
            F.TIMESTAMP: ("int64", [])}
    if has_users:
        spec.update({F.GENDER: ("string", []), F.AGE: ("int64", []), F.OCCUPATION: ("string", []),
                     F.ZIP: ("string", [])})
    if has_items:
        spec.update({F.GENRES: ("string", [F.MAX_GENRES]), F.YEAR: ("int64", [])})
    if history_length:
        spec[HISTORY_ITEMS] = ("int64", [history_length])
    return {k: {"dtype": d, "shape": s} for k, (d, s) in spec.items()}


_LIST = {"string": ("tensorflow.BytesList", "bytes_list"), "float32": ("tensorflow.FloatList", "float_list"),
         "int64": ("tensorflow.Int64List", "int64_list")}


def encode_examples(columns: dict, sizes) -> np.ndarray:
    """Serialized ``tf.train.Example`` protos, one per block of rows.

    Args:
      columns: ``{name: (values [n_blocks, max_rows * width], width)}``: each block's rows
        concatenated (``width`` values per row: 1 for scalars, ``MAX_GENRES`` for genres, ...).
      sizes: int [n_blocks], rows in each block (values past ``sizes * width`` are ignored).

    Encoded by TensorFlow's proto encoder (``tf.io.encode_proto``) a chunk of blocks at a time.
    Its cost is per message (~4.5 us per feature and message on this project's 2-core machine), so
    one Example per rating would cost ~30 us a rating (16 minutes for 32M); a block of 64 rows
    makes it ~0.1 us a rating and leaves the cost per value.
    """
    import tensorflow as tf

    sizes = tf.constant(np.asarray(sizes, dtype=np.int32))
    n = tf.shape(sizes)[0]
    entries = []
    for name, (values, width) in columns.items():
        values = tf.convert_to_tensor(values)
        kind = {tf.string: "string", tf.float32: "float32", tf.int64: "int64"}[values.dtype]
        list_type, list_field = _LIST[kind]
        lst = tf.io.encode_proto((sizes * width)[:, None], [values], ["value"], list_type)
        feat = tf.io.encode_proto(tf.ones([n, 1], tf.int32), [lst[:, None]], [list_field], "tensorflow.Feature")
        entries.append(tf.io.encode_proto(tf.ones([n, 2], tf.int32), [tf.fill([n, 1], name), feat[:, None]],
                                          ["key", "value"], "tensorflow.Features.FeatureEntry"))
    stacked = tf.stack(entries, axis=1)
    feats = tf.io.encode_proto(tf.fill([n, 1], len(entries)), [stacked], ["feature"], "tensorflow.Features")
    return tf.io.encode_proto(tf.ones([n, 1], tf.int32), [feats[:, None]], ["features"], "tensorflow.Example").numpy()


def _shard_name(j: int, n: int) -> str:
    return f"train-{j:05d}-of-{n:05d}.tfrecord"


def prepare_dataset(dataset, out, *, data_dir=None, split: str = "leave_last_out", test_fraction: float = 0.2,
                    seed: int = 0, history_length: int = DEFAULT_HISTORY_LENGTH, num_shards: Optional[int] = None,
                    chunk_rows: int = DEFAULT_CHUNK_ROWS, overwrite: bool = False, progress: bool = False) -> dict:
    """Stream a dataset's ratings into a PREPARED folder (see the module docstring).

    Args:
      dataset: a MovieLens name (``"ml-32m"``, ``"ml-1m"``, ...) found via ``data_dir`` as for
        :func:`tfrec.data.load_movielens` (no download), or a :class:`SourceData`.
      out: the PREPARED folder (an existing one is an error unless ``overwrite``).
      split: ``random`` (``test_fraction``, ``seed``), ``temporal`` (75/15/10; the 15% is
        ``validation.csv``), ``leave_last_out`` or ``cold_start`` (``test_fraction`` of users):
        the same rows as :func:`tfrec.training.make_split` on the loaded frame.
      history_length: H of the ``history_item_ids`` feature (0: not written).
      num_shards: training TFRecord files (default: one per ~1M training examples, at least 2).
      chunk_rows: ratings read, and examples encoded, per chunk (memory vs. speed).
      progress: print progress lines on stderr.

    Returns:
      The ``prepared.json`` dict.

    Raises:
      DataError: a malformed ratings file (file, line, field named); nothing is written.
    """
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; expected one of: {', '.join(SPLITS)}")
    if not 0.0 < float(test_fraction) < 1.0:
        raise ConfigError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    history_length = int(history_length)
    if history_length < 0:
        raise ConfigError(f"history_length must be >= 0, got {history_length}")
    if num_shards is not None and (isinstance(num_shards, bool) or int(num_shards) < 1):
        raise ConfigError(f"num_shards must be a positive integer, got {num_shards!r}")
    out = Path(out)
    if out.exists() and not overwrite:
        raise ConfigError(f"{out} already exists (pass --overwrite to replace it)")
    t0 = time.perf_counter()
    log = _Log(progress)
    src = resolve_source(dataset, data_dir)

    # Pass over the ratings: integer codes only.
    users, items = _Codes(), _Codes()
    parts = {k: [] for k in _RATING_COLUMNS}
    n = 0
    for chunk in iter_rating_chunks(src.ratings, chunk_rows):
        parts["user_id"].append(users.encode(chunk["user_id"].to_numpy()))
        parts["item_id"].append(items.encode(chunk["item_id"].to_numpy()))
        parts["rating"].append(chunk["rating"].to_numpy(np.float32))
        parts["timestamp"].append(chunk["timestamp"].to_numpy(np.int64))
        n += len(chunk)
        log(f"read {n:,} ratings")
    u = np.concatenate(parts.pop("user_id"))
    i = np.concatenate(parts.pop("item_id"))
    r = np.concatenate(parts.pop("rating"))
    ts = np.concatenate(parts.pop("timestamp"))
    del parts
    user_str, item_str = users.strings(), items.strings()
    del users, items
    read_seconds = time.perf_counter() - t0

    is_test, is_val = _split_masks(split, u, i, ts, user_str, item_str, test_fraction=float(test_fraction), seed=seed)
    held = is_test if is_val is None else (is_test | is_val)
    if not is_test.any():
        raise DataError(f"the {split!r} split of {src.name} left no test ratings")
    if held.all():
        raise DataError(f"the {split!r} split of {src.name} left no training ratings")

    with atomic_directory(out, overwrite=overwrite) as tmp:
        counts = {"ratings": int(n), "users": int(len(user_str)), "items": int(len(item_str))}
        files = {}
        for name, mask in (("test", is_test), ("validation", is_val)):
            if mask is None:
                continue
            frame = pd.DataFrame({"user_id": user_str[u[mask]], "item_id": item_str[i[mask]], "rating": r[mask],
                                  "timestamp": ts[mask]})
            frame.to_csv(tmp / f"{name}.csv", index=False)
            files[name] = f"{name}.csv"
            counts[name] = int(mask.sum())
        keep = ~held
        u, i, r, ts = u[keep], i[keep], r[keep], ts[keep]
        del keep, held, is_test, is_val
        counts["train"] = int(len(u))

        # Vocabularies (fitted on train, Vocabulary.fit's order) and code -> vocabulary index maps.
        user_count = np.bincount(u, minlength=len(user_str))
        item_count = np.bincount(i, minlength=len(item_str))
        user_order = _vocab_order(user_count, user_str)
        item_order = _vocab_order(item_count, item_str)
        user_vix = np.zeros(len(user_str), dtype=np.int64)
        user_vix[user_order] = np.arange(1, len(user_order) + 1)
        item_vix = np.zeros(len(item_str), dtype=np.int64)
        item_vix[item_order] = np.arange(1, len(item_order) + 1)
        vocabs = {F.USER_ID: Vocabulary(user_str[user_order]), F.ITEM_ID: Vocabulary(item_str[item_order])}
        counts.update(train_users=int(len(user_order)), train_items=int(len(item_order)))
        user_side, item_side = _side_columns(src, user_str, item_str, user_count > 0, item_count > 0, vocabs)
        save_vocabularies(vocabs, tmp / "vocabularies.json")
        if src.items is not None:
            _items_to_csv(src.items, tmp / "items.csv")
        if src.users is not None:
            src.users.to_csv(tmp / "users.csv", index=False)

        # The training log in (user, time) order (ties: file order), as TwoTower sorts it.
        uv = user_vix[u]
        keys = (uv << 32) | np.clip(ts, 0, (1 << 32) - 1)
        order = np.argsort(keys, kind="stable")
        keys, uv, iv = keys[order], uv[order], item_vix[i[order]]
        u, i, r, ts = u[order], i[order], r[order], ts[order]
        del order
        starts = np.searchsorted(keys, np.arange(len(user_order) + 2, dtype=np.int64) << 32)
        starts_of = starts[uv]
        state = _state_arrays(uv, iv, r, starts, item_vix, item_str, history_length, len(user_order),
                              len(item_order))
        np.savez(tmp / "state.npz", **state)

        # Shards: examples in a seeded random order, each chunk spread over all shards.
        n_train = len(u)
        n_shards = int(num_shards) if num_shards else max(2, min(256, math.ceil(n_train / 1_000_000)))
        n_shards = min(n_shards, n_train)
        spec = _feature_spec(user_side is not None, item_side is not None, history_length)
        shard_counts = _write_shards(tmp, n_shards, np.random.default_rng(seed + 1).permutation(n_train),
                                     chunk_rows, u=u, i=i, r=r, ts=ts, keys=keys, iv=iv, starts_of=starts_of,
                                     user_str=user_str, item_str=item_str, user_side=user_side,
                                     item_side=item_side, history_length=history_length,
                                     block_rows=DEFAULT_BLOCK_ROWS, log=log)
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "dataset": src.name,
            "synthetic": bool(src.synthetic),
            "source": src.source,
            "split": split,
            "test_fraction": float(test_fraction),
            "seed": int(seed),
            "counts": counts,
            "rating_mean": float(r.astype(np.float64).mean()),
            "history_length": history_length,
            "block_rows": DEFAULT_BLOCK_ROWS,
            "features": spec,
            "shards": [{"path": _shard_name(j, n_shards), "examples": int(c)} for j, c in enumerate(shard_counts)],
            "vocabularies": "vocabularies.json",
            "state": "state.npz",
            "items": "items.csv" if src.items is not None else None,
            "users": "users.csv" if src.users is not None else None,
            **files,
            "seconds": {"read": round(read_seconds, 2), "total": round(time.perf_counter() - t0, 2)},
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (tmp / PREPARED_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return meta


def _side_columns(src: SourceData, user_str, item_str, user_in_train, item_in_train, vocabs):
    """Per user code / item code feature arrays, and the side vocabularies (fitted on train)."""
    user_side = item_side = None
    if src.users is not None:
        table = F.user_feature_table(src.users).reindex(user_str.astype(str))
        user_side = {
            F.GENDER: table[F.GENDER].fillna(F.PAD).astype(str).to_numpy(dtype=object),
            F.AGE: table[F.AGE].fillna(0).astype(np.int64).to_numpy(),
            F.OCCUPATION: table[F.OCCUPATION].fillna(F.PAD).astype(str).to_numpy(dtype=object),
            F.ZIP: table[F.ZIP].fillna(F.PAD).astype(str).to_numpy(dtype=object),
        }
        # As fit_vocabularies: side values of users present in train (and in the users table).
        known = F.user_feature_table(src.users)
        known = known[known.index.isin(set(user_str[user_in_train].astype(str)))]
        for col in (F.GENDER, F.OCCUPATION, F.ZIP):
            vocabs[col] = Vocabulary.fit(known[col])
    if src.items is not None:
        table = F.item_feature_table(src.items).reindex(item_str.astype(str))
        empty = [F.PAD] * F.MAX_GENRES
        genres = np.asarray([g if isinstance(g, list) else empty for g in table[F.GENRES]], dtype=object)
        item_side = {F.GENRES: genres.reshape(len(item_str), F.MAX_GENRES),
                     F.YEAR: table[F.YEAR].fillna(0).astype(np.int64).to_numpy()}
        seen = set(item_str[item_in_train].astype(str))
        vocabs[F.GENRES] = Vocabulary.fit(
            [g for iid, gs in zip(src.items["item_id"].astype(str), src.items["genres"]) if iid in seen for g in gs])
    return user_side, item_side


def _state_arrays(uv, iv, r, starts, item_vix, item_str, history_length, n_users, n_items) -> dict:
    """Recommender state in vocabulary indices: seen CSR, counts, rating sum, serving history."""
    pairs = np.sort(uv * (n_items + 1) + iv)
    pairs = pairs[np.r_[True, pairs[1:] != pairs[:-1]]]
    seen_users = pairs // (n_items + 1)
    seen_indptr = np.searchsorted(seen_users, np.arange(n_users + 2))
    history = np.zeros((n_users + 1, max(history_length, 0)), dtype=np.int32)
    if history_length:
        ends = starts[1:n_users + 2]
        begin = starts[:n_users + 1]
        for j in range(history_length):  # column j from the right: the j-th most recent item
            pos = ends - 1 - j
            ok = pos >= begin
            history[ok, history_length - 1 - j] = iv[pos[ok]]
        history[0] = 0
    return {
        "seen_indptr": seen_indptr.astype(np.int64),
        "seen_items": (pairs % (n_items + 1)).astype(np.int32),
        "user_counts": np.bincount(uv, minlength=n_users + 1).astype(np.int64),
        "item_counts": np.bincount(iv, minlength=n_items + 1).astype(np.int64),
        "rating_sum": np.asarray([float(r.astype(np.float64).sum())]),
        "history": history,
    }


def _write_shards(tmp: Path, n_shards: int, perm: np.ndarray, chunk_rows: int, *, u, i, r, ts, keys, iv, starts_of,
                  user_str, item_str, user_side, item_side, history_length, block_rows, log) -> list:
    import tensorflow as tf

    user_t = tf.constant(user_str.astype(str))
    item_t = tf.constant(item_str.astype(str))
    side_t = {}
    for table in (user_side or {}, item_side or {}):
        for name, values in table.items():
            side_t[name] = tf.constant(values.astype(str) if values.dtype == object else values)
    writers = [tf.io.TFRecordWriter(str(tmp / _shard_name(j, n_shards))) for j in range(n_shards)]
    counts = [0] * n_shards
    done = 0
    block_no = 0
    chunk_rows = max(block_rows, chunk_rows // block_rows * block_rows)
    try:
        for start in range(0, len(perm), chunk_rows):
            pos = perm[start:start + chunk_rows]
            # Rows of the chunk as [n_blocks, block_rows]; the last block may be short (its
            # size is what encode_proto writes, the padding is never read).
            n_blocks = -(-len(pos) // block_rows)
            sizes = np.full(n_blocks, block_rows, dtype=np.int32)
            sizes[-1] = len(pos) - (n_blocks - 1) * block_rows
            padded = np.concatenate([pos, np.full(n_blocks * block_rows - len(pos), pos[0])])

            def blocks(t, width=1):
                return tf.reshape(t, [n_blocks, block_rows * width])

            cols = {F.USER_ID: (blocks(tf.gather(user_t, u[padded])), 1),
                    F.ITEM_ID: (blocks(tf.gather(item_t, i[padded])), 1),
                    F.RATING: (blocks(tf.constant(r[padded])), 1), F.TIMESTAMP: (blocks(tf.constant(ts[padded])), 1)}
            for name in F.USER_FEATURES:
                if name in side_t:
                    cols[name] = (blocks(tf.gather(side_t[name], u[padded])), 1)
            for name in F.ITEM_FEATURES:
                if name in side_t:
                    width = F.MAX_GENRES if name == F.GENRES else 1
                    cols[name] = (blocks(tf.gather(side_t[name], i[padded]), width), width)
            if history_length:
                hist = history_windows(keys, iv, starts_of, padded, history_length)
                cols[HISTORY_ITEMS] = (blocks(tf.constant(hist.astype(np.int64)), history_length), history_length)
            records = encode_examples(cols, sizes)
            for rec in records:
                j = block_no % n_shards
                writers[j].write(rec)
                block_no += 1
            for j_block, size in enumerate(sizes):
                counts[(block_no - n_blocks + j_block) % n_shards] += int(size)
            done += len(pos)
            log(f"wrote {done:,}/{len(perm):,} training examples")
    finally:
        for w in writers:
            w.close()
    return counts


def _items_to_csv(items: pd.DataFrame, path: Path) -> None:
    frame = items[["item_id", "title", "year", "genres"]].copy()
    frame["genres"] = ["|".join(g) for g in frame["genres"]]
    frame.to_csv(path, index=False)


class _Log:
    def __init__(self, on: bool):
        self.on, self.t0 = bool(on), time.perf_counter()

    def __call__(self, msg: str) -> None:
        if self.on:
            print(f"[tfrec] prepare: {msg} ({time.perf_counter() - self.t0:.1f} s)", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------ reading
def feature_spec(spec: dict, names: Optional[Sequence[str]] = None) -> dict:
    """``tf.io.RaggedFeature`` per feature name of a ``prepared.json`` ``features`` entry (a
    record holds a block of rows, so every feature is a list of ``rows * prod(shape)`` values)."""
    import tensorflow as tf

    dtypes = {"string": tf.string, "float32": tf.float32, "int64": tf.int64}
    wanted = list(spec) if names is None else list(names)
    missing = [n for n in wanted if n not in spec]
    if missing:
        raise ConfigError(f"the prepared examples have no feature(s) {missing}; they have {sorted(spec)}")
    return {n: tf.io.RaggedFeature(dtypes[spec[n]["dtype"]], row_splits_dtype=tf.int64) for n in wanted}


def shard_dataset(files, spec: dict, *, batch_size: int, features: Optional[Sequence[str]] = None,
                  label_key: Optional[str] = None, shuffle: bool = True, shuffle_buffer: int = 65536,
                  seed: int = 0, drop_remainder: bool = False, cycle_length: int = 4, repeat: bool = False,
                  block_rows: int = DEFAULT_BLOCK_ROWS):
    """A ``tf.data`` pipeline over prepared TFRecord ``files``: batches of feature dicts.

    Files are shuffled and read ``cycle_length`` at a time (interleaved); records (blocks of
    ``block_rows`` examples whose rows were drawn at random when written) are shuffled within a
    buffer of ``shuffle_buffer`` examples, parsed a few at a time with ``tf.io.parse_example`` and
    re-batched to ``batch_size`` examples, so a batch mixes ``batch_size / block_rows`` random
    blocks. Memory is bounded by the buffer whatever the number of files or examples. For
    multi-worker training, shard ``files`` (or the file dataset) per worker before calling this.

    Args:
      files: TFRecord paths (list of str) or a ``tf.data.Dataset`` of them.
      spec: the ``features`` entry of ``prepared.json`` (name -> dtype and per-example shape).
      batch_size: examples per batch.
      features: feature names to parse (default: all in ``spec``).
      label_key: yield ``(features, label)`` with ``label = features.pop(label_key)``.
      shuffle, shuffle_buffer, seed: shuffling (files are reshuffled every epoch too).
      drop_remainder: drop a final partial batch.
      repeat: loop forever (callers cap an epoch with ``steps_per_epoch``).
      block_rows: examples per record (``prepared.json`` ``block_rows``).

    Returns:
      A dataset of dicts ``{name: tensor [batch, *shape]}`` (or ``(dict, label)``).
    """
    import tensorflow as tf

    names = list(features) if features is not None else list(spec)
    if label_key is not None and label_key not in names:
        names.append(label_key)
    parse_spec = feature_spec(spec, names)
    shapes = {n: list(spec[n]["shape"]) for n in names}
    if isinstance(files, tf.data.Dataset):
        ds, n_files = files, None
    else:
        files = [str(f) for f in files]
        if not files:
            raise ConfigError("shard_dataset: no files to read")
        ds, n_files = tf.data.Dataset.from_tensor_slices(files), len(files)
    if shuffle:
        ds = ds.shuffle(n_files or 1024, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=max(1, min(cycle_length, n_files or cycle_length)),
                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=not shuffle)
    if shuffle:
        ds = ds.shuffle(max(1, shuffle_buffer // block_rows), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(max(1, -(-batch_size // block_rows)))

    def parse(serialized):
        parsed = tf.io.parse_example(serialized, parse_spec)
        return {n: tf.reshape(parsed[n].flat_values, [-1] + shapes[n]) for n in names}

    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE).rebatch(batch_size, drop_remainder=drop_remainder)
    if label_key is not None:
        ds = ds.map(lambda d: ({k: v for k, v in d.items() if k != label_key}, d[label_key]))
    return ds.prefetch(tf.data.AUTOTUNE)


class PreparedDataset:
    """An opened PREPARED folder written by :func:`prepare_dataset`.

    Attributes:
      path: the folder; meta: the ``prepared.json`` dict.

    Raises (on open):
      DataError: the folder is not a prepared dataset (no or unreadable ``prepared.json``, another
        format version, or listed files missing); the message says how to make one.
    """

    def __init__(self, path):
        self.path = Path(path)
        meta_path = self.path / PREPARED_FILE
        how = "make one with `tfrec data prepare --dataset NAME --data-dir DIR --split SPLIT --out PREPARED`"
        if not self.path.is_dir():
            raise DataError(f"{self.path}: not a prepared dataset (no such folder); {how}")
        if not meta_path.is_file():
            raise DataError(f"{self.path}: not a prepared dataset (no {PREPARED_FILE}); {how}")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{meta_path}: not a valid {PREPARED_FILE} ({exc}); {how}") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise DataError(f"{meta_path}: not a tfrec prepared dataset (format {meta.get('format') if isinstance(meta, dict) else None!r}, expected {FORMAT!r}); {how}")
        if meta.get("format_version") != FORMAT_VERSION:
            raise DataError(f"{meta_path}: format_version {meta.get('format_version')!r}; this tfrec reads version "
                            f"{FORMAT_VERSION} (prepare the dataset again)")
        missing = [s["path"] for s in meta.get("shards", []) if not (self.path / s["path"]).is_file()]
        for key in ("vocabularies", "state", "test"):
            if not meta.get(key) or not (self.path / meta[key]).is_file():
                missing.append(str(meta.get(key) or key))
        if missing:
            raise DataError(f"{self.path}: prepared dataset is incomplete, missing {missing[:5]}; prepare it again")
        self.meta = meta

    # -- parts -------------------------------------------------------------------------------------
    @property
    def shard_files(self) -> list:
        """The training TFRecord paths (str), in shard order."""
        return [str(self.path / s["path"]) for s in self.meta["shards"]]

    @property
    def features(self) -> dict:
        return self.meta["features"]

    @property
    def n_train(self) -> int:
        return int(self.meta["counts"]["train"])

    @property
    def history_length(self) -> int:
        return int(self.meta.get("history_length") or 0)

    def vocabularies(self) -> dict:
        return load_vocabularies(self.path / self.meta["vocabularies"])

    def state(self) -> dict:
        with np.load(self.path / self.meta["state"], allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    def items(self) -> Optional[pd.DataFrame]:
        if not self.meta.get("items"):
            return None
        frame = pd.read_csv(self.path / self.meta["items"], dtype={"item_id": str, "title": str},
                            keep_default_na=False)
        frame["year"] = pd.to_numeric(frame["year"], errors="coerce").fillna(0).astype(np.int64)
        frame["genres"] = [[g for g in str(s).split("|") if g] for s in frame["genres"]]
        return frame

    def users(self) -> Optional[pd.DataFrame]:
        if not self.meta.get("users"):
            return None
        frame = pd.read_csv(self.path / self.meta["users"], dtype={"user_id": str, "gender": str,
                                                                    "occupation": str, "zip": str},
                            keep_default_na=False)
        frame["age"] = frame["age"].astype(np.int64)
        return frame

    def _ratings(self, key: str) -> Optional[pd.DataFrame]:
        if not self.meta.get(key):
            return None
        frame = pd.read_csv(self.path / self.meta[key], dtype={"user_id": str, "item_id": str},
                            keep_default_na=False)
        frame["rating"] = frame["rating"].astype(np.float32)
        frame["timestamp"] = frame["timestamp"].astype(np.int64)
        return frame

    def test(self) -> pd.DataFrame:
        return self._ratings("test")

    def validation(self) -> Optional[pd.DataFrame]:
        return self._ratings("validation")

    def dataset(self, *, batch_size: int, features: Optional[Sequence[str]] = None, label_key: Optional[str] = None,
                shuffle: bool = True, shuffle_buffer: int = 65536, seed: int = 0, drop_remainder: bool = False,
                repeat: bool = False):
        """:func:`shard_dataset` over this folder's shards."""
        return shard_dataset(self.shard_files, self.features, batch_size=batch_size, features=features,
                             label_key=label_key, shuffle=shuffle, shuffle_buffer=shuffle_buffer, seed=seed,
                             drop_remainder=drop_remainder, repeat=repeat, block_rows=self.block_rows)

    @property
    def block_rows(self) -> int:
        return int(self.meta.get("block_rows") or DEFAULT_BLOCK_ROWS)

    def __repr__(self) -> str:
        c = self.meta["counts"]
        return (f"PreparedDataset({str(self.path)!r}, dataset={self.meta['dataset']!r}, split={self.meta['split']!r}, "
                f"train={c['train']:,}, test={c.get('test', 0):,}, shards={len(self.meta['shards'])})")


def open_prepared(path) -> PreparedDataset:
    """Open a PREPARED folder (DataError when it is not one)."""
    return path if isinstance(path, PreparedDataset) else PreparedDataset(path)
