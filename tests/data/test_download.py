"""Downloads served from a loopback HTTP server: good, truncated, corrupt, wrong, missing, unreachable.

Every failure must raise a clear error and leave the cache exactly as it was.
"""

import http.server
import io
import socket
import threading
import zipfile

import pytest

from tfrec.data import download_movielens, load_movielens
from tfrec.data import movielens as ml
from tfrec.errors import DatasetNotFoundError, DownloadError


def _zip_of(folder, top="ml-latest-small", *, skip=(), compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for path in sorted(folder.iterdir()):
            if path.name not in skip:
                zf.write(path, f"{top}/{path.name}")
    return buf.getvalue()


@pytest.fixture()
def server():
    """A loopback server; ``files[name] = (body, claimed Content-Length or None)``."""
    files: dict = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            name = self.path.rsplit("/", 1)[-1]
            if name not in files:
                self.send_error(404)
                return
            body, claimed = files[name]
            self.send_response(200)
            if claimed is not None:
                self.send_header("Content-Length", str(claimed))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/datasets/movielens", files
    httpd.shutdown()
    httpd.server_close()


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_download_extracts_and_caches(env, tiny_csv_dir, capsys):
    cache, files = env
    body = _zip_of(tiny_csv_dir / "ml-latest-small")
    files["ml-latest-small.zip"] = (body, len(body))
    data = load_movielens("ml-latest-small")
    assert len(data.ratings) == 7 and data.source == str(cache / "ml-latest-small")
    assert (cache / "ml-latest-small" / "ratings.csv").is_file()
    assert sorted(p.name for p in cache.iterdir()) == ["ml-latest-small"]  # no temp leftovers
    assert "downloading" in capsys.readouterr().err  # the progress line
    files.clear()  # the second load comes from the cache, not the network
    assert len(load_movielens("ml-latest-small").ratings) == 7


def test_download_without_content_length_or_top_folder(env, tiny_csv_dir, tmp_path):
    cache, files = env
    body = _zip_of(tiny_csv_dir / "ml-latest-small", top=".")  # files at the zip's root
    files["ml-latest-small.zip"] = (body, None)
    path = download_movielens("ml-latest-small", cache_dir=tmp_path / "elsewhere", progress=False)
    assert path == tmp_path / "elsewhere" / "ml-latest-small"
    assert sorted(p.name for p in path.iterdir()) == ["movies.csv", "ratings.csv"]
    assert _cache_is_empty(cache)  # cache_dir= was used instead of $TFREC_CACHE


def test_force_replaces_and_failed_force_keeps_the_old_copy(env, tiny_csv_dir):
    cache, files = env
    body = _zip_of(tiny_csv_dir / "ml-latest-small")
    files["ml-latest-small.zip"] = (body, len(body))
    path = download_movielens("ml-latest-small", progress=False)
    files.clear()
    assert download_movielens("ml-latest-small", progress=False) == path  # cached: no request made
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_movielens("ml-latest-small", force=True, progress=False)
    assert sorted(p.name for p in cache.iterdir()) == ["ml-latest-small"]
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


def test_crc_error_inside_a_well_formed_zip(env, tiny_csv_dir):
    cache, files = env
    body = bytearray(_zip_of(tiny_csv_dir / "ml-latest-small", compression=zipfile.ZIP_STORED))
    at = body.index(b"964982703")  # a byte of ratings.csv's stored data
    body[at] = ord("7")
    files["ml-latest-small.zip"] = (bytes(body), len(body))
    with pytest.raises(DownloadError, match="corrupt zip member 'ml-latest-small/ratings.csv'"):
        download_movielens("ml-latest-small", progress=False)
    assert _cache_is_empty(cache)


def test_zip_without_the_expected_files(env, tiny_csv_dir):
    cache, files = env
    body = _zip_of(tiny_csv_dir / "ml-latest-small", skip=("movies.csv",))
    files["ml-latest-small.zip"] = (body, len(body))
    with pytest.raises(DownloadError, match="has no movies.csv"):
        download_movielens("ml-latest-small", progress=False)
    assert _cache_is_empty(cache)


def test_checksum_mismatch_is_refused(env, tiny_csv_dir, monkeypatch):
    cache, files = env
    body = _zip_of(tiny_csv_dir / "ml-latest-small")
    files["ml-latest-small.zip"] = (body, len(body))
    monkeypatch.setitem(ml.DATASETS, "ml-latest-small", {**ml.DATASETS["ml-latest-small"], "md5": "0" * 32})
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download_movielens("ml-latest-small", progress=False)
    assert _cache_is_empty(cache)


def test_a_different_ml100k_is_never_accepted(env, tmp_path):
    """A zip that is not the official ml-100k (size/MD5 known) is refused, not substituted."""
    cache, files = env
    folder = tmp_path / "src" / "ml-100k"
    folder.mkdir(parents=True)
    (folder / "u.data").write_text("1\t1\t5\t881250949\n")
    (folder / "u.item").write_text("|".join(["1", "Toy Story (1995)", "01-Jan-1995", "", ""] + ["0"] * 19) + "\n")
    (folder / "u.user").write_text("1|24|M|technician|85711\n")
    assert len(load_movielens("ml-100k", data_dir=folder.parent).ratings) == 1  # a valid layout...
    body = _zip_of(folder, top="ml-100k")
    files["ml-100k.zip"] = (body, len(body))
    with pytest.raises(DatasetNotFoundError, match="official archive"):
        load_movielens("ml-100k")
    files["ml-100k.zip"] = (body, None)  # no Content-Length: caught after the download
    with pytest.raises(DatasetNotFoundError, match="official archive has 4924029"):
        load_movielens("ml-100k")
    assert _cache_is_empty(cache)


def test_404_and_unreachable(env, monkeypatch):
    cache, _ = env
    with pytest.raises(DatasetNotFoundError, match="HTTP 404") as err:
        load_movielens("ml-latest-small")
    assert str(cache / "ml-latest-small") in str(err.value)
    monkeypatch.setenv("TFREC_MOVIELENS_URL", f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(DatasetNotFoundError, match="could not download") as err:
        load_movielens("ml-latest-small")
    assert "--data-dir" in str(err.value) and "TFREC_DATA_DIR" in str(err.value)
    assert _cache_is_empty(cache)


def test_failure_leaves_other_cached_datasets_alone(env, tiny_csv_dir):
    cache, files = env
    (cache / "ml-1m").mkdir(parents=True)
    (cache / "ml-1m" / "keep.txt").write_text("x")
    with pytest.raises(DownloadError):
        download_movielens("ml-latest-small", progress=False)
    assert sorted(p.name for p in cache.iterdir()) == ["ml-1m"]
    assert (cache / "ml-1m" / "keep.txt").read_text() == "x"
