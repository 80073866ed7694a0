"""MovieLens in its published layouts: ml-100k, ml-1m and the CSV family.

Where the data comes from, in order:

1. the ``data_dir`` argument: a folder holding ``<name>/``, or the dataset folder itself;
2. ``$TFREC_DATA_DIR/<name>/``;
3. the cache, ``$TFREC_CACHE/<name>/`` (default ``~/.cache/tfrec``), filled on first use by
   downloading the official GroupLens zip (base URL overridable with ``$TFREC_MOVIELENS_URL``),
   checked, extracted to a temporary folder and renamed into place.

Nothing else is ever substituted: with no copy and no network you get a
:class:`~tfrec.errors.DatasetNotFoundError` listing where tfrec looked.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from tfrec.data.dataset import MovieLensData
from tfrec.errors import DataError, DatasetNotFoundError, DownloadError
from tfrec.utils.io import atomic_directory

DEFAULT_BASE_URL = "https://files.grouplens.org/datasets/movielens"

# name -> (layout, a file that must exist in the dataset folder, known zip size in bytes, md5).
# Sizes/checksums are checked when known; unknown ones are still validated as complete zips.
DATASETS = {
    "ml-100k": {"layout": "100k", "marker": "u.data", "size": 4924029, "md5": "0e33842e24a9c977be4e0107933c0723"},
    "ml-1m": {"layout": "1m", "marker": "ratings.dat", "size": 5917549, "md5": "c4d9eecfca2ab87c1945afe126590906"},
    "ml-latest-small": {"layout": "csv", "marker": "ratings.csv", "size": None, "md5": None},
    "ml-latest": {"layout": "csv", "marker": "ratings.csv", "size": None, "md5": None},
    "ml-25m": {"layout": "csv", "marker": "ratings.csv", "size": 261978986, "md5": "6b51fb2759a8657d3bfcbfc42b592ada"},
    "ml-32m": {"layout": "csv", "marker": "ratings.csv", "size": None, "md5": None},
}

ML100K_GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
]
_YEAR_IN_TITLE = re.compile(r"\((\d{4})(?:[-–]\d{0,4})?\)\s*$")


# ------------------------------------------------------------------------------------------------ lookup
def _check_name(name: str) -> dict:
    if name not in DATASETS:
        raise DataError(f"unknown MovieLens dataset {name!r}; expected one of: {', '.join(DATASETS)}")
    return DATASETS[name]


def default_cache_dir() -> Path:
    """The download cache: ``$TFREC_CACHE`` or ``~/.cache/tfrec``."""
    return Path(os.environ.get("TFREC_CACHE") or Path.home() / ".cache" / "tfrec").expanduser()


def _candidates(name: str, data_dir) -> list[Path]:
    out = []
    if data_dir is not None:
        d = Path(data_dir).expanduser()
        out += [d / name, d]
    env = os.environ.get("TFREC_DATA_DIR")
    if env:
        out.append(Path(env).expanduser() / name)
    out.append(default_cache_dir() / name)
    return out


def find_movielens(name: str, data_dir=None) -> Optional[Path]:
    """The first folder holding dataset ``name`` in the lookup order, or None."""
    marker = _check_name(name)["marker"]
    for cand in _candidates(name, data_dir):
        if (cand / marker).is_file():
            return cand
    return None


def load_movielens(name: str = "ml-100k", data_dir=None, *, download: bool = True) -> MovieLensData:
    """Load a MovieLens dataset as :class:`~tfrec.data.MovieLensData`.

    Args:
      name: ``ml-100k``, ``ml-1m``, ``ml-latest-small``, ``ml-latest``, ``ml-25m`` or ``ml-32m``.
      data_dir: a folder holding ``<name>/`` or the dataset folder itself (optional).
      download: fetch the official zip into the cache when no local copy is found.

    Raises:
      DatasetNotFoundError: no local copy and the download failed (the message lists the paths
        tried and how to point tfrec at a copy).
      DataError: a file is malformed (the message names file, line, field and value).

    Example:
      >>> data = load_movielens("ml-100k", data_dir="../shared/data")  # doctest: +SKIP
      >>> len(data.ratings)  # doctest: +SKIP
      100000
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
    layout = info["layout"]
    if layout == "100k":
        ratings, items, users = _read_100k(folder)
    elif layout == "1m":
        ratings, items, users = _read_1m(folder)
    else:
        ratings, items, users = _read_csv_family(folder)
    return MovieLensData(name=name, ratings=ratings, items=items, users=users, synthetic=False, source=str(folder))


def _not_found_message(name: str, tried: list[str], exc: Optional[Exception]) -> str:
    lines = [f"MovieLens {name!r} not found. Looked in:"] + [f"  - {p}" for p in tried]
    if exc is not None:
        lines.append(f"and the download failed: {exc}")
    lines.append(
        f"Point tfrec at a local copy with load_movielens({name!r}, data_dir=DIR), the environment "
        f"variable TFREC_DATA_DIR=DIR, or `tfrec ... --data-dir DIR`, where DIR holds {name}/ "
        f"(the unzipped GroupLens folder)."
    )
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ download
def download_movielens(name: str, cache_dir: Optional[os.PathLike] = None, force: bool = False, *,
                       progress: bool = True) -> Path:
    """Download ``<base>/<name>.zip`` into the cache and return the dataset folder.

    The zip is streamed to a temporary file, checked (size, MD5 when known, zip integrity,
    expected files), extracted into a temporary folder and renamed into place; on any failure
    nothing is left in the cache.
    """
    info = _check_name(name)
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    final = root / name
    if (final / info["marker"]).is_file() and not force:
        return final
    base = os.environ.get("TFREC_MOVIELENS_URL", DEFAULT_BASE_URL).rstrip("/")
    url = f"{base}/{name}.zip"
    root.mkdir(parents=True, exist_ok=True)
    fd, tmp_zip = tempfile.mkstemp(prefix=f".{name}.zip.tmp-", dir=root)
    os.close(fd)
    try:
        _fetch(url, Path(tmp_zip), expected_size=info["size"], progress=progress)
        _verify_zip(Path(tmp_zip), name, url, info)
        with atomic_directory(final, overwrite=True) as tmp_dir:
            with zipfile.ZipFile(tmp_zip) as zf:
                _safe_extract(zf, tmp_dir)
            inner = tmp_dir / name
            if inner.is_dir():  # GroupLens zips hold one top-level folder named like the dataset
                for child in inner.iterdir():
                    shutil.move(str(child), str(tmp_dir / child.name))
                inner.rmdir()
            if not (tmp_dir / info["marker"]).is_file():
                raise DownloadError(f"{url}: the zip has no {info['marker']} (not a {name} archive)")
    finally:
        if os.path.exists(tmp_zip):
            os.unlink(tmp_zip)
    return final


def _fetch(url: str, dest: Path, *, expected_size: Optional[int], progress: bool) -> None:
    try:
        resp = urllib.request.urlopen(url, timeout=60)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DownloadError(f"could not download {url}: {exc}") from exc
    with resp:
        total = resp.headers.get("Content-Length")
        total = int(total) if total and total.isdigit() else None
        done = 0
        with open(dest, "wb") as fh:
            while True:
                try:
                    chunk = resp.read(1 << 16)
                except (OSError, ValueError) as exc:
                    raise DownloadError(f"download of {url} broke off after {done} bytes: {exc}") from exc
                if not chunk:
                    break
                fh.write(chunk)
                done += len(chunk)
                if progress:
                    _progress(url, done, total)
        if progress:
            print(file=sys.stderr)
    if total is not None and done != total:
        raise DownloadError(f"download of {url} is truncated: got {done} of {total} bytes")
    if expected_size is not None and done != expected_size:
        raise DownloadError(f"download of {url} has {done} bytes, expected {expected_size}")


def _progress(url: str, done: int, total: Optional[int]) -> None:
    if total:
        width = 30
        filled = int(width * done / total)
        msg = f"\rdownloading {url} [{'=' * filled}{' ' * (width - filled)}] {done / 1e6:.1f}/{total / 1e6:.1f} MB"
    else:
        msg = f"\rdownloading {url} {done / 1e6:.1f} MB"
    print(msg, end="", file=sys.stderr, flush=True)


def _verify_zip(path: Path, name: str, url: str, info: dict) -> None:
    if info["md5"]:
        digest = hashlib.md5(path.read_bytes()).hexdigest()
        if digest != info["md5"]:
            raise DownloadError(f"{url}: checksum mismatch (md5 {digest}, expected {info['md5']})")
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DownloadError(f"{url}: not a valid zip archive ({exc})") from exc
    if bad is not None:
        raise DownloadError(f"{url}: corrupt zip member {bad!r}")


def _safe_extract(zf: zipfile.ZipFile, dest: Path) -> None:
    dest = dest.resolve()
    for member in zf.infolist():
        target = (dest / member.filename).resolve()
        if dest not in target.parents and target != dest:
            raise DownloadError(f"zip member {member.filename!r} would extract outside {dest}")
    zf.extractall(dest)


# ------------------------------------------------------------------------------------------------ parsing
def _read_lines(path: Path, encoding: str) -> list[str]:
    if not path.is_file():
        raise DataError(f"{path}: file not found (expected part of the MovieLens layout)")
    return path.read_text(encoding=encoding).splitlines()


def _split_rows(path: Path, sep: str, n_fields: int, encoding: str, *, min_fields: Optional[int] = None,
                skip_header: bool = False) -> list[tuple[int, list[str]]]:
    rows = []
    lines = _read_lines(path, encoding)
    for lineno, line in enumerate(lines, start=1):
        if skip_header and lineno == 1:
            continue
        if not line.strip():
            continue
        parts = line.split(sep)
        if len(parts) < (min_fields or n_fields):
            raise DataError(f"{path}, line {lineno}: expected {n_fields} {sep!r}-separated fields, got "
                            f"{len(parts)}: {line[:80]!r}")
        rows.append((lineno, parts))
    return rows


def _parse_ratings(path: Path, rows, fields: tuple[int, int, int, int]) -> pd.DataFrame:
    uid, iid, rat, ts = fields
    users, items, ratings, stamps = [], [], [], []
    for lineno, parts in rows:
        u, i = parts[uid].strip(), parts[iid].strip()
        if not u:
            raise DataError(f"{path}, line {lineno}, field user_id: empty value")
        if not i:
            raise DataError(f"{path}, line {lineno}, field item_id: empty value")
        try:
            r = float(parts[rat])
        except ValueError:
            raise DataError(f"{path}, line {lineno}, field rating: {parts[rat]!r} is not a number") from None
        if not (0.0 <= r <= 10.0) or r != r:
            raise DataError(f"{path}, line {lineno}, field rating: {parts[rat]!r} is outside 0..10")
        try:
            t = int(float(parts[ts]))
        except ValueError:
            raise DataError(f"{path}, line {lineno}, field timestamp: {parts[ts]!r} is not an integer") from None
        users.append(u)
        items.append(i)
        ratings.append(r)
        stamps.append(t)
    frame = pd.DataFrame({
        "user_id": pd.Series(users, dtype=object),
        "item_id": pd.Series(items, dtype=object),
        "rating": np.asarray(ratings, dtype=np.float32),
        "timestamp": np.asarray(stamps, dtype=np.int64),
    })
    if frame.empty:
        raise DataError(f"{path}: no ratings")
    return frame


def _year_from_title(title: str) -> int:
    m = _YEAR_IN_TITLE.search(title.strip())
    return int(m.group(1)) if m else 0


def _read_100k(folder: Path):
    enc = "iso-8859-1"
    ratings = _parse_ratings(folder / "u.data", _split_rows(folder / "u.data", "\t", 4, enc), (0, 1, 2, 3))
    genres = ML100K_GENRES
    genre_file = folder / "u.genre"
    if genre_file.is_file():
        names = [p[0] for _, p in _split_rows(genre_file, "|", 2, enc)]
        if names:
            genres = names
    item_rows = []
    path = folder / "u.item"
    for lineno, parts in _split_rows(path, "|", 5 + len(genres), enc):
        flags = parts[5:5 + len(genres)]
        bad = [f for f in flags if f not in ("0", "1")]
        if bad:
            raise DataError(f"{path}, line {lineno}, field genres: flag {bad[0]!r} is not 0 or 1")
        title = parts[1]
        date = parts[2].strip()
        year = int(date[-4:]) if len(date) >= 4 and date[-4:].isdigit() else _year_from_title(title)
        item_rows.append((parts[0].strip(), title, year, [g for g, f in zip(genres, flags) if f == "1" and g != "unknown"]))
    items = pd.DataFrame(item_rows, columns=["item_id", "title", "year", "genres"])
    items["item_id"] = items["item_id"].astype(object)
    items["year"] = items["year"].astype(np.int64)
    user_rows = []
    path = folder / "u.user"
    for lineno, parts in _split_rows(path, "|", 5, enc):
        try:
            age = int(parts[1])
        except ValueError:
            raise DataError(f"{path}, line {lineno}, field age: {parts[1]!r} is not an integer") from None
        user_rows.append((parts[0].strip(), parts[2].strip(), age, parts[3].strip(), parts[4].strip()))
    users = pd.DataFrame(user_rows, columns=["user_id", "gender", "age", "occupation", "zip"])
    users["age"] = users["age"].astype(np.int64)
    return ratings, items, users


_ML1M_OCCUPATIONS = [
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student", "customer service",
    "doctor/health care", "executive/managerial", "farmer", "homemaker", "K-12 student", "lawyer", "programmer",
    "retired", "sales/marketing", "scientist", "self-employed", "technician/engineer", "tradesman/craftsman",
    "unemployed", "writer",
]


def _read_1m(folder: Path):
    enc = "iso-8859-1"
    path = folder / "ratings.dat"
    ratings = _parse_ratings(path, _split_rows(path, "::", 4, enc), (0, 1, 2, 3))
    path = folder / "movies.dat"
    item_rows = []
    for _, parts in _split_rows(path, "::", 3, enc):
        title = parts[1]
        gen = [g for g in parts[2].split("|") if g and g != "(no genres listed)"]
        item_rows.append((parts[0].strip(), title, _year_from_title(title), gen))
    items = pd.DataFrame(item_rows, columns=["item_id", "title", "year", "genres"])
    items["year"] = items["year"].astype(np.int64)
    path = folder / "users.dat"
    user_rows = []
    for lineno, parts in _split_rows(path, "::", 5, enc):
        try:
            age, occ = int(parts[2]), int(parts[3])
        except ValueError:
            raise DataError(f"{path}, line {lineno}, field age/occupation: {parts[2]!r}/{parts[3]!r} "
                            "are not integers") from None
        occupation = _ML1M_OCCUPATIONS[occ] if 0 <= occ < len(_ML1M_OCCUPATIONS) else str(occ)
        user_rows.append((parts[0].strip(), parts[1].strip(), age, occupation, parts[4].strip()))
    users = pd.DataFrame(user_rows, columns=["user_id", "gender", "age", "occupation", "zip"])
    users["age"] = users["age"].astype(np.int64)
    return ratings, items, users


def _read_csv_family(folder: Path):
    path = folder / "ratings.csv"
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a valid CSV ({exc})") from exc
    expected = ["userId", "movieId", "rating", "timestamp"]
    missing = [c for c in expected if c not in raw.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; expected header {','.join(expected)}")
    ratings = _typed_ratings(path, raw, expected)
    path = folder / "movies.csv"
    try:
        movies = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a valid CSV ({exc})") from exc
    missing = [c for c in ("movieId", "title", "genres") if c not in movies.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; expected header movieId,title,genres")
    items = pd.DataFrame({
        "item_id": movies["movieId"].str.strip().astype(object),
        "title": movies["title"].astype(object),
        "year": np.asarray([_year_from_title(t) for t in movies["title"]], dtype=np.int64),
        "genres": [[g for g in s.split("|") if g and g != "(no genres listed)"] for s in movies["genres"]],
    })
    return ratings, items, None


def _typed_ratings(path: Path, raw: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    uid, iid, rat, ts = cols
    rating = pd.to_numeric(raw[rat], errors="coerce")
    stamp = pd.to_numeric(raw[ts], errors="coerce")
    for name, series, source in (("rating", rating, rat), ("timestamp", stamp, ts)):
        bad = series.isna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"{path}, line {row + 2}, field {name}: {raw[source].iloc[row]!r} is not a number")
    out_of_range = (rating < 0) | (rating > 10)
    if out_of_range.any():
        row = int(np.flatnonzero(out_of_range.to_numpy())[0])
        raise DataError(f"{path}, line {row + 2}, field rating: {raw[rat].iloc[row]!r} is outside 0..10")
    for name, source in (("user_id", uid), ("item_id", iid)):
        empty = raw[source].str.strip() == ""
        if empty.any():
            row = int(np.flatnonzero(empty.to_numpy())[0])
            raise DataError(f"{path}, line {row + 2}, field {name}: empty value")
    if raw.empty:
        raise DataError(f"{path}: no ratings")
    return pd.DataFrame({
        "user_id": raw[uid].str.strip().astype(object),
        "item_id": raw[iid].str.strip().astype(object),
        "rating": rating.to_numpy(dtype=np.float32),
        "timestamp": stamp.to_numpy().astype(np.int64),
    })
