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

The file readers are in :mod:`tfrec.data.movielens_files`, the download into the cache in
:mod:`tfrec.data.download`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence

from tfrec.data.dataset import MovieLensData
from tfrec.data.download import default_cache_dir, download_archive
from tfrec.data.movielens_files import read_100k, read_1m, read_csv_family
from tfrec.errors import DataError, DatasetNotFoundError, DownloadError

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

# ------------------------------------------------------------------------------------------------ lookup
def _check_name(name: str) -> dict:
    if name not in DATASETS:
        raise DataError(f"unknown MovieLens dataset {name!r}; expected one of: {', '.join(DATASETS)}")
    return DATASETS[name]


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
    reader = {"100k": read_100k, "1m": read_1m, "csv": read_csv_family}[info["layout"]]
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
    base = (os.environ.get("TFREC_MOVIELENS_URL") or DEFAULT_BASE_URL).rstrip("/")
    return download_archive(name, info, f"{base}/{name}.zip", cache_dir, force, progress=progress)
