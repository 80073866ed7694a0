"""Downloads served from a loopback HTTP server: good, truncated, corrupt, missing."""

import functools
import http.server
import io
import threading
import zipfile

import pytest

from tfrec.data import load_movielens
from tfrec.data import movielens as ml
from tfrec.errors import DatasetNotFoundError, DownloadError


def _zip_of(folder) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, f"ml-latest-small/{path.name}")
    return buf.getvalue()


@pytest.fixture()
def server():
    files: dict = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            name = self.path.rsplit("/", 1)[-1]
            if name not in files:
                self.send_error(404)
                return
            body, claimed = files[name]
            self.send_response(200)
            self.send_header("Content-Length", str(claimed))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", files
    httpd.shutdown()


@pytest.fixture()
def env(tmp_path, monkeypatch, server):
    url, files = server
    cache = tmp_path / "cache"
    monkeypatch.setenv("TFREC_CACHE", str(cache))
    monkeypatch.delenv("TFREC_DATA_DIR", raising=False)
    monkeypatch.setenv("TFREC_MOVIELENS_URL", url)
    return cache, files


def _cache_is_empty(cache):
    return not cache.exists() or not any(cache.iterdir())


def test_download_extracts_and_caches(env, tiny_csv_dir):
    cache, files = env
    body = _zip_of(tiny_csv_dir / "ml-latest-small")
    files["ml-latest-small.zip"] = (body, len(body))
    data = load_movielens("ml-latest-small")
    assert len(data.ratings) == 7
    assert (cache / "ml-latest-small" / "ratings.csv").is_file()
    assert sorted(p.name for p in cache.iterdir()) == ["ml-latest-small"]  # no temp leftovers
    files.clear()  # second load comes from the cache, not the network
    assert len(load_movielens("ml-latest-small").ratings) == 7


def test_truncated_download_leaves_nothing(env, tiny_csv_dir):
    cache, files = env
    body = _zip_of(tiny_csv_dir / "ml-latest-small")
    files["ml-latest-small.zip"] = (body[: len(body) // 2], len(body))
    with pytest.raises(DatasetNotFoundError, match="truncated"):
        load_movielens("ml-latest-small")
    assert _cache_is_empty(cache)


def test_corrupt_zip_leaves_nothing(env):
    cache, files = env
    junk = b"PK\x03\x04 this is not really a zip" * 10
    files["ml-latest-small.zip"] = (junk, len(junk))
    with pytest.raises(DatasetNotFoundError, match="not a valid zip"):
        load_movielens("ml-latest-small")
    assert _cache_is_empty(cache)


def test_checksum_mismatch_is_refused(env, tiny_csv_dir, monkeypatch):
    cache, files = env
    body = _zip_of(tiny_csv_dir / "ml-latest-small")
    files["ml-latest-small.zip"] = (body, len(body))
    monkeypatch.setitem(ml.DATASETS, "ml-latest-small", {**ml.DATASETS["ml-latest-small"], "md5": "0" * 32})
    with pytest.raises(DownloadError, match="checksum mismatch"):
        ml.download_movielens("ml-latest-small")
    assert _cache_is_empty(cache)


def test_404_and_unreachable(env, monkeypatch):
    cache, _ = env
    with pytest.raises(DatasetNotFoundError, match="could not download"):
        load_movielens("ml-latest-small")
    monkeypatch.setenv("TFREC_MOVIELENS_URL", "http://127.0.0.1:9")
    with pytest.raises(DatasetNotFoundError, match="--data-dir"):
        load_movielens("ml-latest-small")
    assert _cache_is_empty(cache)
