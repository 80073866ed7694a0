"""MovieLens in its published layouts: ml-100k, ml-1m and the CSV family.

Where the data comes from, in order:

1. the ``data_dir`` argument: a folder holding ``<name>/``, or the dataset folder itself;
2. ``$TFREC_DATA_DIR/<name>/``;
3. the cache, ``$TFREC_CACHE/<name>/`` (default ``~/.cache/tfrec``), filled on first use by
   downloading ``<base>/<name>.zip`` (``base`` is the GroupLens site unless
   ``$TFREC_MOVIELENS_URL`` overrides it), checked, extracted to a temporary folder beside the
   final one and renamed into place.

Nothing else is ever substituted: with no copy and no network you get a
:class:`~tfrec.errors.DatasetNotFoundError` listing every place tfrec looked and how to point it
at a local copy. A malformed file gives a :class:`~tfrec.errors.DataError` naming the file, line,
field and value.

Files are parsed with pandas' C reader (fast enough for ml-25m/ml-32m); only when that fails are
they re-read as text to find the first bad line and field for the error message.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import http.client
import io
import os
import re
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from tfrec.data.dataset import MovieLensData
from tfrec.errors import DataError, DatasetNotFoundError, DownloadError
from tfrec.utils.io import atomic_directory

DEFAULT_BASE_URL = "https://files.grouplens.org/datasets/movielens"

# The published datasets. ``files`` must all exist in a dataset folder. ``size`` (bytes) and
# ``md5`` are those of the official zip (GroupLens publishes ``<name>.zip.md5``); they are checked
# whatever the base URL, because a mirror must serve the same bytes. ml-latest(-small) are
# re-released in place, so they have no fixed checksum: they are validated as complete zips
# holding the expected files.
DATASETS = {
    "ml-100k": {
        "layout": "100k", "files": ("u.data", "u.item", "u.user"),
        "size": 4_924_029, "md5": "0e33842e24a9c977be4e0107933c0723",
        "description": "100,000 ratings (1-5) from 943 users on 1,682 movies, with demographics (1998)",
    },
    "ml-1m": {
        "layout": "1m", "files": ("ratings.dat", "movies.dat", "users.dat"),
        "size": 5_917_549, "md5": "c4d9eecfca2ab87c1945afe126590906",
        "description": "1,000,209 ratings (1-5) from 6,040 users on 3,706 movies, with demographics (2003)",
    },
    "ml-latest-small": {
        "layout": "csv", "files": ("ratings.csv", "movies.csv"), "size": None, "md5": None,
        "description": "~100,000 ratings (0.5-5) from ~600 users on ~9,700 movies; updated in place",
    },
    "ml-latest": {
        "layout": "csv", "files": ("ratings.csv", "movies.csv"), "size": None, "md5": None,
        "description": "~33M ratings (0.5-5), all of MovieLens; updated in place",
    },
    "ml-25m": {
        "layout": "csv", "files": ("ratings.csv", "movies.csv"),
        "size": 261_978_986, "md5": "6b51fb2759a8657d3bfcbfc42b592ada",
        "description": "25,000,095 ratings (0.5-5) from 162,541 users on 59,047 movies (2019)",
    },
    "ml-32m": {
        "layout": "csv", "files": ("ratings.csv", "movies.csv"),
        "size": 238_950_008, "md5": "d472be332d4daa821edc399621853b57",
        "description": "32,000,204 ratings (0.5-5) from 200,948 users on 84,432 movies (2023)",
    },
}

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


# ------------------------------------------------------------------------------------------------ lookup
def _check_name(name: str) -> dict:
    if name not in DATASETS:
        raise DataError(f"unknown MovieLens dataset {name!r}; expected one of: {', '.join(DATASETS)}")
    return DATASETS[name]


def default_cache_dir() -> Path:
    """The download cache: ``$TFREC_CACHE`` or ``~/.cache/tfrec``."""
    return Path(os.environ.get("TFREC_CACHE") or Path.home() / ".cache" / "tfrec").expanduser()


def _candidates(name: str, data_dir, cache_dir=None) -> list[Path]:
    out = []
    if data_dir is not None:
        d = Path(data_dir).expanduser()
        out += [d / name, d]
    env = os.environ.get("TFREC_DATA_DIR")
    if env:
        out.append(Path(env).expanduser() / name)
    out.append((Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()) / name)
    return out


def _is_dataset_dir(folder: Path, info: dict) -> bool:
    return all((folder / f).is_file() for f in info["files"])


def find_movielens(name: str, data_dir=None) -> Optional[Path]:
    """The first folder holding every file of dataset ``name`` in the lookup order, or None."""
    info = _check_name(name)
    for cand in _candidates(name, data_dir):
        if _is_dataset_dir(cand, info):
            return cand
    return None


def load_movielens(name: str = "ml-100k", data_dir=None, *, download: bool = True) -> MovieLensData:
    """Load a MovieLens dataset as :class:`~tfrec.data.MovieLensData`.

    Args:
      name: ``ml-100k``, ``ml-1m``, ``ml-latest-small``, ``ml-latest``, ``ml-25m`` or ``ml-32m``.
      data_dir: a folder holding ``<name>/``, or the dataset folder itself (optional).
      download: fetch the official zip into the cache when no local copy is found.

    Returns:
      ``MovieLensData`` whose ``ratings`` has user_id/item_id (str), rating (float32) and
      timestamp (int64); ``items`` has item_id, title, year (0 = unknown) and genres (list of
      str); ``users`` (ml-100k, ml-1m only) has user_id, gender, age, occupation and zip.

    Raises:
      DatasetNotFoundError: no local copy and the download failed (the message lists the paths
        tried and how to point tfrec at a copy).
      DataError: a file is malformed (the message names file, line, field and value).

    Example:
      >>> data = load_movielens("ml-100k", data_dir="../shared/data")  # doctest: +SKIP
      >>> len(data.ratings), data.users is not None  # doctest: +SKIP
      (100000, True)
    """
    info = _check_name(name)
    folder = find_movielens(name, data_dir)
    if folder is None:
        tried = [str(p) for p in _candidates(name, data_dir)]
        if not download:
            raise DatasetNotFoundError(_not_found_message(name, tried, None))
        try:
            folder = download_movielens(name)
        except DownloadError as exc:
            raise DatasetNotFoundError(_not_found_message(name, tried, exc)) from exc
    reader = {"100k": _read_100k, "1m": _read_1m, "csv": _read_csv_family}[info["layout"]]
    ratings, items, users = reader(folder)
    return MovieLensData(name=name, ratings=ratings, items=items, users=users, synthetic=False, source=str(folder))


def _not_found_message(name: str, tried: Sequence[str], exc: Optional[Exception]) -> str:
    files = ", ".join(DATASETS[name]["files"])
    lines = [f"MovieLens {name!r} not found. Looked for a folder with {files} in:"]
    lines += [f"  - {p}" for p in tried]
    if exc is not None:
        lines.append(f"and the download into the cache failed: {exc}")
    lines.append(
        f"Point tfrec at a local copy with load_movielens({name!r}, data_dir=DIR), the environment variable "
        f"TFREC_DATA_DIR=DIR, or `tfrec ... --data-dir DIR`, where DIR holds {name}/ (the unzipped GroupLens "
        f"folder); or set TFREC_MOVIELENS_URL to a mirror serving {name}.zip."
    )
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ download
def download_movielens(name: str, cache_dir: Optional[os.PathLike] = None, force: bool = False, *,
                       progress: bool = True) -> Path:
    """Download ``<base>/<name>.zip`` into the cache and return the dataset folder.

    The zip is streamed to a temporary file in the cache with a progress line on stderr, checked
    (Content-Length, the official size and MD5 when known, zip CRCs, the expected files),
    extracted into a temporary folder and renamed into place. On any failure nothing is left in
    the cache: no partial zip, no partial folder.

    Args:
      name: a key of :data:`DATASETS`.
      cache_dir: the cache root (default ``$TFREC_CACHE`` or ``~/.cache/tfrec``).
      force: download again even when the cache already holds the dataset.
      progress: print a progress line on stderr.

    Raises:
      DownloadError: unreachable URL, HTTP error, truncated or corrupt archive, checksum mismatch.
    """
    info = _check_name(name)
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    final = root / name
    if _is_dataset_dir(final, info) and not force:
        return final
    base = (os.environ.get("TFREC_MOVIELENS_URL") or DEFAULT_BASE_URL).rstrip("/")
    url = f"{base}/{name}.zip"
    created = _mkdirs(root)
    tmp_zip = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.zip.tmp-", dir=root)
        os.close(fd)
        tmp_zip = Path(tmp_name)
        _fetch(url, tmp_zip, expected_size=info["size"], progress=progress)
        _verify_zip(tmp_zip, url, info)
        with atomic_directory(final, overwrite=True) as tmp_dir:
            with zipfile.ZipFile(tmp_zip) as zf:
                _safe_extract(zf, tmp_dir, url)
            inner = tmp_dir / name
            if inner.is_dir():  # GroupLens zips hold one top-level folder named like the dataset
                for child in inner.iterdir():
                    shutil.move(str(child), str(tmp_dir / child.name))
                inner.rmdir()
            missing = [f for f in info["files"] if not (tmp_dir / f).is_file()]
            if missing:
                raise DownloadError(f"{url}: the archive has no {', '.join(missing)} (not a {name} archive)")
    except BaseException:
        # Leave the cache exactly as it was: remove what this call created, nothing else.
        if tmp_zip is not None:
            with contextlib.suppress(FileNotFoundError):
                tmp_zip.unlink()
        for d in reversed(created):
            with contextlib.suppress(OSError):
                d.rmdir()  # only succeeds when empty
        raise
    tmp_zip.unlink()
    return final


def _mkdirs(root: Path) -> list[Path]:
    """``mkdir -p root``; returns the folders it created (outermost first)."""
    created = []
    p = root
    while not p.exists():
        created.append(p)
        p = p.parent
    created.reverse()
    root.mkdir(parents=True, exist_ok=True)
    return created


def _fetch(url: str, dest: Path, *, expected_size: Optional[int], progress: bool) -> None:
    try:
        resp = urllib.request.urlopen(url, timeout=60)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"could not download {url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"could not download {url}: {reason}") from exc
    with resp:
        header = resp.headers.get("Content-Length")
        total = int(header) if header and header.strip().isdigit() else None
        if total is not None and expected_size is not None and total != expected_size:
            raise DownloadError(f"{url} announces {total} bytes, but the official archive has {expected_size}; "
                                "refusing a different file")
        bar = _Progress(url, total if total is not None else expected_size) if progress else None
        done = 0
        with open(dest, "wb") as fh:
            while True:
                try:
                    chunk = resp.read(_CHUNK)
                except (OSError, ValueError, http.client.HTTPException) as exc:
                    raise DownloadError(f"download of {url} broke off after {done} bytes: {exc!r}") from exc
                if not chunk:
                    break
                fh.write(chunk)
                done += len(chunk)
                if bar is not None:
                    bar.update(done)
        if bar is not None:
            bar.close(done)
    if total is not None and done != total:
        raise DownloadError(f"download of {url} is truncated: got {done} of {total} bytes")
    if expected_size is not None and done != expected_size:
        raise DownloadError(f"download of {url} has {done} bytes, but the official archive has {expected_size}")


class _Progress:
    """A one-line stderr progress bar (no extra dependency), redrawn at most 10 times a second."""

    def __init__(self, url: str, total: Optional[int], width: int = 30):
        self.url, self.total, self.width, self._last = url, total, width, 0.0

    def update(self, done: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        if self.total:
            filled = min(self.width, int(self.width * done / self.total))
            bar = "=" * filled + " " * (self.width - filled)
            msg = f"\rdownloading {self.url} [{bar}] {done / 1e6:.1f}/{self.total / 1e6:.1f} MB"
        else:
            msg = f"\rdownloading {self.url} {done / 1e6:.1f} MB"
        print(msg, end="", file=sys.stderr, flush=True)

    def close(self, done: int) -> None:
        self.update(done, force=True)
        print(file=sys.stderr, flush=True)


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _verify_zip(path: Path, url: str, info: dict) -> None:
    if info["md5"]:
        digest = _md5(path)
        if digest != info["md5"]:
            raise DownloadError(f"{url}: checksum mismatch (md5 {digest}, expected {info['md5']})")
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
            names = zf.namelist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise DownloadError(f"{url}: not a valid zip archive ({exc})") from exc
    if bad is not None:
        raise DownloadError(f"{url}: corrupt zip member {bad!r} (CRC mismatch)")
    basenames = {n.rstrip("/").rsplit("/", 1)[-1] for n in names}
    missing = [f for f in info["files"] if f not in basenames]
    if missing:
        raise DownloadError(f"{url}: the archive has no {', '.join(missing)}")


def _safe_extract(zf: zipfile.ZipFile, dest: Path, url: str) -> None:
    dest = dest.resolve()
    for member in zf.infolist():
        target = (dest / member.filename).resolve()
        if target != dest and dest not in target.parents:
            raise DownloadError(f"{url}: zip member {member.filename!r} would extract outside {dest}")
    zf.extractall(dest)


# ------------------------------------------------------------------------------------------------ parsing
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


def _read_100k(folder: Path):
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


def _read_1m(folder: Path):
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


def _read_csv_family(folder: Path):
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
