"""Downloading a dataset archive into tfrec's cache, checked and renamed into place.

The cache is ``$TFREC_CACHE`` or ``~/.cache/tfrec``. A download streams to a temporary file,
is checked (size, MD5, zip CRCs, expected files) and extracted into a temporary folder that is
renamed into place; on any failure the cache is left exactly as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Optional

from tfrec.errors import DownloadError
from tfrec.utils.io import atomic_directory

_CHUNK = 1 << 16


def default_cache_dir() -> Path:
    """The download cache: ``$TFREC_CACHE`` or ``~/.cache/tfrec``."""
    return Path(os.environ.get("TFREC_CACHE") or Path.home() / ".cache" / "tfrec").expanduser()


def download_archive(name: str, info: dict, url: str, cache_dir: Optional[os.PathLike] = None, force: bool = False, *,
                     progress: bool = True) -> Path:
    """Download the zip at ``url`` into ``<cache>/<name>/`` and return that folder.

    The zip is streamed to a temporary file in the cache with a progress line on stderr, checked
    (Content-Length, ``info["size"]`` and ``info["md5"]`` when known, zip CRCs, ``info["files"]``),
    extracted into a temporary folder and renamed into place. On any failure nothing is left in
    the cache: no partial zip, no partial folder.

    Raises:
      DownloadError: unreachable URL, HTTP error, truncated or corrupt archive, checksum mismatch.
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    final = root / name
    if all((final / f).is_file() for f in info["files"]) and not force:
        return final
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
