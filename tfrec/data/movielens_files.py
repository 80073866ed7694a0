"""Readers for MovieLens' published file layouts: ml-100k, ml-1m and the CSV family.

Files are parsed with pandas' C reader (fast enough for ml-25m/ml-32m); only when that fails are
they re-read as text to find the first bad line and field for the :class:`~tfrec.errors.DataError`.
Each ``read_<layout>(folder)`` returns ``(ratings, items, users or None)`` in tfrec's columns.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from tfrec.errors import DataError

# The genre order of ml-100k's 19 flag columns (u.genre), used when u.genre is absent.
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
# "no genre" markers: ml-100k's "unknown" flag and the CSV family's "(no genres listed)".
_NO_GENRE = {"", "unknown", "(no genres listed)"}
_ML1M_OCCUPATIONS = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student", "customer service",
    "doctor/health care", "executive/managerial", "farmer", "homemaker", "K-12 student", "lawyer", "programmer",
    "retired", "sales/marketing", "scientist", "self-employed", "technician/engineer", "tradesman/craftsman",
    "unemployed", "writer",
)
_YEAR_IN_TITLE = re.compile(r"\((\d{4})(?:\s*[-–]\s*\d{0,4})?\)\s*$")
_CHUNK = 1 << 16


def _str_series(values) -> pd.Series:
    """Strings as pandas' default string dtype (``str`` in pandas 3)."""
    return pd.Series(values, dtype=str)


def _source(path: Path, *, encoding: str, sep: str):
    """What to hand pandas for ``path``, and the separator to use.

    pandas' C parser needs a one-character separator; ml-1m's ``::`` never appears inside a
    field, so it becomes one control character (lines, and line numbers, stay intact).
    """
    if not path.is_file():
        raise DataError(f"{path}: file not found (expected part of the MovieLens layout)")
    if len(sep) == 1:
        return path, sep
    return io.StringIO(_decode(path, encoding).replace(sep, "\x1f")), "\x1f"


def _decode(path: Path, encoding: str) -> str:
    data = path.read_bytes()
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}, line {line}: not valid {encoding} text ({exc.reason})") from None


def _read_table(path: Path, *, sep: str, names: Sequence[str], encoding: str, header: bool = False,
                quoted: bool = False, dtype=str) -> pd.DataFrame:
    """A delimited file as a DataFrame with columns ``names`` (``header``: the file has a header row)."""
    src, sep1 = _source(path, encoding=encoding, sep=sep)
    try:
        frame = pd.read_csv(
            src, sep=sep1, header=0 if header else None, names=None if header else list(names), dtype=dtype,
            keep_default_na=False, na_filter=False, index_col=False, engine="c", encoding=encoding,
            quoting=csv.QUOTE_MINIMAL if quoted else csv.QUOTE_NONE,
        )
    except pd.errors.ParserError as exc:
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if m:
            raise DataError(f"{path}, line {m.group(2)}: expected {m.group(1)} {sep!r}-separated fields, "
                            f"got {m.group(3)}") from None
        raise DataError(f"{path}: could not be parsed ({exc})") from None
    except UnicodeDecodeError:
        _decode(path, encoding)  # raises with the line number
        raise
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame({n: pd.Series([], dtype=str) for n in names})
    if header:
        missing = [n for n in names if n not in frame.columns]
        if missing:
            raise DataError(f"{path}, line 1: header {list(frame.columns)} lacks column(s) {missing}; expected "
                            f"{','.join(names)}")
        frame = frame[list(names)]
    return frame


def _line_of_row(path: Path, row: int, *, header: bool, encoding: str) -> int:
    """The 1-based line number of data row ``row`` (pandas skips blank lines, so count them)."""
    seen = -1 if header else 0
    with open(path, encoding=encoding, errors="replace", newline="") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            if seen == row:
                return lineno
            seen += 1
    return row + 1 + int(header)


class _Rows:
    """Validates string columns of a parsed file and reports the first bad row by its line."""

    def __init__(self, path: Path, frame: pd.DataFrame, *, header: bool, encoding: str):
        self.path, self.frame, self.header, self.encoding = path, frame, header, encoding

    def fail(self, row: int, field: str, value, expected: str):
        line = _line_of_row(self.path, row, header=self.header, encoding=self.encoding)
        raise DataError(f"{self.path}, line {line}, field {field}: {value!r} {expected}")

    def ids(self, column: str, field: str) -> pd.Series:
        values = self.frame[column].astype(str).str.strip()
        empty = (values == "").to_numpy()
        if empty.any():
            row = int(np.argmax(empty))
            self.fail(row, field, self.frame[column].iloc[row], "is empty; expected an id")
        return _str_series(values.to_numpy(dtype=object))

    def numbers(self, column: str, field: str, *, integer: bool = False, low=None, high=None) -> np.ndarray:
        raw = self.frame[column]
        values = pd.to_numeric(raw.astype(str).str.strip(), errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.argmax(bad))
            self.fail(row, field, raw.iloc[row], "is not " + ("an integer" if integer else "a number"))
        if integer:
            frac = values != np.floor(values)
            if frac.any():
                row = int(np.argmax(frac))
                self.fail(row, field, raw.iloc[row], "is not an integer")
        if low is not None or high is not None:
            out = np.zeros(len(values), dtype=bool)
            if low is not None:
                out |= values < low
            if high is not None:
                out |= values > high
            if out.any():
                row = int(np.argmax(out))
                self.fail(row, field, raw.iloc[row], f"is outside {low}..{high}")
        return values.astype(np.int64) if integer else values


def _read_ratings(path: Path, *, sep: str, names: Sequence[str], encoding: str, header: bool,
                  quoted: bool = False) -> pd.DataFrame:
    """Ratings with the tfrec dtypes; ``names`` = the file's user, item, rating, timestamp columns.

    The fast path parses numbers in C; if anything is off, the file is re-read as text and
    checked column by column so the error names the first bad line, field and value.
    """
    uid, iid, rat, ts = names
    try:
        typed = _read_table(path, sep=sep, names=names, encoding=encoding, header=header, quoted=quoted,
                            dtype={uid: str, iid: str, rat: np.float64, ts: np.int64})
    except (ValueError, OverflowError) as exc:
        if isinstance(exc, DataError):
            raise
        typed = None
    if typed is not None and len(typed):
        user = typed[uid].str.strip()
        item = typed[iid].str.strip()
        rating = typed[rat].to_numpy(dtype=np.float64)
        stamp = typed[ts].to_numpy(dtype=np.int64)
        ok = ((user != "").all() and (item != "").all() and np.isfinite(rating).all()
              and (rating >= 0).all() and (rating <= 10).all() and (stamp >= 0).all())
        if ok:
            return pd.DataFrame({
                "user_id": _str_series(user.to_numpy(dtype=object)),
                "item_id": _str_series(item.to_numpy(dtype=object)),
                "rating": rating.astype(np.float32),
                "timestamp": stamp,
            })
    frame = _read_table(path, sep=sep, names=names, encoding=encoding, header=header, quoted=quoted)
    if frame.empty:
        raise DataError(f"{path}: no ratings (expected lines of {sep.join(names)})")
    rows = _Rows(path, frame, header=header, encoding=encoding)
    return pd.DataFrame({
        "user_id": rows.ids(uid, "user_id"),
        "item_id": rows.ids(iid, "item_id"),
        # MovieLens ratings are 0.5..5 stars; allow any scale up to 10 for look-alike data.
        "rating": rows.numbers(rat, "rating", low=0, high=10).astype(np.float32),
        "timestamp": rows.numbers(ts, "timestamp", integer=True, low=0),
    })


def year_from_title(title: str) -> int:
    """The release year at the end of a MovieLens title, e.g. ``"Heat (1995)"`` -> 1995; 0 if none."""
    m = _YEAR_IN_TITLE.search(str(title).strip())
    return int(m.group(1)) if m else 0


def _split_genres(values: Sequence[str]) -> list:
    return [[g for g in str(s).split("|") if g.strip() not in _NO_GENRE] for s in values]


def _check_unique(path: Path, ids: pd.Series, field: str, *, header: bool, encoding: str) -> None:
    dup = ids.duplicated().to_numpy()
    if dup.any():
        row = int(np.argmax(dup))
        line = _line_of_row(path, row, header=header, encoding=encoding)
        raise DataError(f"{path}, line {line}, field {field}: {ids.iloc[row]!r} appears more than once")


def read_100k(folder: Path):
    enc = "iso-8859-1"
    ratings = _read_ratings(folder / "u.data", sep="\t", names=("user", "item", "rating", "timestamp"),
                            encoding=enc, header=False)
    genres = list(ML100K_GENRES)
    genre_file = folder / "u.genre"
    if genre_file.is_file():  # "name|index" lines; the index is the flag column's position
        g = _read_table(genre_file, sep="|", names=("name", "index"), encoding=enc)
        idx = _Rows(genre_file, g, header=False, encoding=enc).numbers("index", "index", integer=True, low=0)
        if len(g):
            genres = [""] * (int(idx.max()) + 1)
            for name, i in zip(g["name"], idx):
                genres[int(i)] = str(name)

    path = folder / "u.item"
    flag_cols = [f"g{j}" for j in range(len(genres))]
    names = ["item", "title", "release", "video_release", "imdb"] + flag_cols
    raw = _read_table(path, sep="|", names=names, encoding=enc)
    rows = _Rows(path, raw, header=False, encoding=enc)
    item_ids = rows.ids("item", "item_id")
    _check_unique(path, item_ids, "item_id", header=False, encoding=enc)
    flags = raw[flag_cols].to_numpy(dtype=object)
    bad = ~np.isin(flags, ["0", "1"])
    if bad.any():
        row, col = map(int, np.argwhere(bad)[0])
        rows.fail(row, f"genre flag {genres[col]!r}", flags[row, col], "is not 0 or 1")
    names_arr = np.asarray(genres, dtype=object)
    keep = np.asarray([g not in _NO_GENRE for g in genres])
    is_set = (flags == "1") & keep
    titles = raw["title"].astype(str).to_numpy(dtype=object)
    release = raw["release"].astype(str).str.strip()
    # Release dates look like "01-Jan-1995"; fall back to the title's "(1995)".
    date_year = pd.to_numeric(release.str[-4:], errors="coerce").to_numpy()
    years = np.asarray([int(y) if y == y else year_from_title(t) for y, t in zip(date_year, titles)], dtype=np.int64)
    items = pd.DataFrame({
        "item_id": item_ids,
        "title": _str_series(titles),
        "year": years,
        "genres": pd.Series([names_arr[r].tolist() for r in is_set], dtype=object),
    })

    path = folder / "u.user"
    raw = _read_table(path, sep="|", names=("user", "age", "gender", "occupation", "zip"), encoding=enc)
    rows = _Rows(path, raw, header=False, encoding=enc)
    user_ids = rows.ids("user", "user_id")
    _check_unique(path, user_ids, "user_id", header=False, encoding=enc)
    users = pd.DataFrame({
        "user_id": user_ids,
        "gender": _str_series(raw["gender"].astype(str).str.strip().to_numpy(dtype=object)),
        "age": rows.numbers("age", "age", integer=True, low=0, high=150),
        "occupation": _str_series(raw["occupation"].astype(str).str.strip().to_numpy(dtype=object)),
        "zip": _str_series(raw["zip"].astype(str).str.strip().to_numpy(dtype=object)),
    })
    return ratings, items, users


def read_1m(folder: Path):
    enc = "iso-8859-1"
    ratings = _read_ratings(folder / "ratings.dat", sep="::", names=("user", "item", "rating", "timestamp"),
                            encoding=enc, header=False)
    path = folder / "movies.dat"
    raw = _read_table(path, sep="::", names=("item", "title", "genres"), encoding=enc)
    item_ids = _Rows(path, raw, header=False, encoding=enc).ids("item", "item_id")
    _check_unique(path, item_ids, "item_id", header=False, encoding=enc)
    titles = raw["title"].astype(str).to_numpy(dtype=object)
    items = pd.DataFrame({
        "item_id": item_ids,
        "title": _str_series(titles),
        "year": np.asarray([year_from_title(t) for t in titles], dtype=np.int64),
        "genres": pd.Series(_split_genres(raw["genres"]), dtype=object),
    })
    path = folder / "users.dat"
    raw = _read_table(path, sep="::", names=("user", "gender", "age", "occupation", "zip"), encoding=enc)
    rows = _Rows(path, raw, header=False, encoding=enc)
    user_ids = rows.ids("user", "user_id")
    _check_unique(path, user_ids, "user_id", header=False, encoding=enc)
    occ = rows.numbers("occupation", "occupation", integer=True, low=0, high=len(_ML1M_OCCUPATIONS) - 1)
    users = pd.DataFrame({
        "user_id": user_ids,
        "gender": _str_series(raw["gender"].astype(str).str.strip().to_numpy(dtype=object)),
        "age": rows.numbers("age", "age", integer=True, low=0, high=150),  # the age-group code
        "occupation": _str_series(np.asarray(_ML1M_OCCUPATIONS, dtype=object)[occ]),
        "zip": _str_series(raw["zip"].astype(str).str.strip().to_numpy(dtype=object)),
    })
    return ratings, items, users


def read_csv_family(folder: Path):
    enc = "utf-8"
    ratings = _read_ratings(folder / "ratings.csv", sep=",", names=("userId", "movieId", "rating", "timestamp"),
                            encoding=enc, header=True, quoted=True)
    path = folder / "movies.csv"
    raw = _read_table(path, sep=",", names=("movieId", "title", "genres"), encoding=enc, header=True, quoted=True)
    item_ids = _Rows(path, raw, header=True, encoding=enc).ids("movieId", "item_id")
    _check_unique(path, item_ids, "item_id", header=True, encoding=enc)
    titles = raw["title"].astype(str).str.strip().to_numpy(dtype=object)
    items = pd.DataFrame({
        "item_id": item_ids,
        "title": _str_series(titles),
        "year": np.asarray([year_from_title(t) for t in titles], dtype=np.int64),
        "genres": pd.Series(_split_genres(raw["genres"]), dtype=object),
    })
    return ratings, items, None
