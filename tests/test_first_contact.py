"""What a new user meets first: `tfrec demo` offline, quiet output, and `import tfrec` as the way in.

Each check runs in a fresh interpreter, as `make demo` and a user's script do: logging settings
and lazy imports depend on what the process imported before.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# TensorFlow's C++ log lines ("2026-01-01 12:00:00.000000: E external/.../cuda_platform.cc:51] ...")
# and absl's ("I0000 00:00:1700000000.000000   123 partitioner_factory_base.cc:58] ..."), which
# ScaNN writes through.
CPP_LOG = re.compile(r"^(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] \S+:\d+\]"
                     r"|[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ \S+:\d+\]"
                     r"|WARNING: All log messages before absl::InitializeLog)", re.M)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def _env(tmp_path: Path, **extra) -> dict:
    """A user's environment: no TFREC_DATA_DIR, an empty cache, downloads that cannot connect."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("TFREC_DATA_DIR", "TF_CPP_MIN_LOG_LEVEL", "TFREC_VERBOSE", "TF_USE_LEGACY_KERAS")}
    cache = tmp_path / "empty-cache"
    cache.mkdir(exist_ok=True)
    env.update(TFREC_CACHE=str(cache), TFREC_MOVIELENS_URL=f"http://127.0.0.1:{_closed_port()}",
               PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep), **extra)
    return env


def _run(args, tmp_path, timeout=900, **env):
    return subprocess.run([sys.executable, *args], cwd=tmp_path, env=_env(tmp_path, **env), capture_output=True,
                          text=True, timeout=timeout)


# ------------------------------------------------------------------------------------------------ demo
@pytest.mark.slow
def test_offline_demo_runs_the_whole_path_on_synthetic_data_quietly(tmp_path):
    """No MovieLens anywhere and no network: exit 0, a banner at both ends, ten titles over REST,
    and none of TensorFlow's or ScaNN's own log lines or retracing warnings."""
    proc = _run(["-m", "tfrec.cli", "demo", "--quick", "--base-dir", "export", "--runs-dir", "runs"], tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    banner = "SYNTHETIC DATA: MovieLens 100K could not be found or downloaded"
    assert out.count(banner) == 2 and proc.stdout.index(banner) < proc.stdout.index("=== Train")
    assert proc.stdout.rstrip().endswith("#" * 90), "the closing banner is the last thing printed"
    assert not CPP_LOG.findall(out), "\n".join(line for line in out.splitlines() if CPP_LOG.match(line))
    assert "retracing" not in out and "WARNING:tensorflow" not in out and "WARNING:absl" not in out
    assert "POST http://127.0.0.1:" in out
    table = proc.stdout.split("recommended over REST by two_tower")[1].split("MF's predicted ratings")[0]
    rows = [line for line in table.splitlines() if "Synthetic Movie" in line]
    assert len(rows) == 10 and all(re.search(r"\d\.\d{3}  Synthetic Movie \d+ \(\d{4}\)$", r) for r in rows)
    for name in ("two_tower", "two_tower_bruteforce", "mf"):
        assert any((tmp_path / "export" / name).glob("*/saved_model.pb")), name
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 2 and all((r / "config.json").is_file() and (r / "history.json").is_file() for r in runs)
    assert not list((tmp_path / "runs").glob("*/*.png")), "the demo writes its run folders without plots"
    assert re.search(r"Done in \d+ s wall \(data \d+, two_tower \d+, mf \d+, evaluate \d+, export \d+, serve \d+\), "
                     r"\d+ CPU-seconds", out)


def test_demo_of_a_named_dataset_that_cannot_be_had_fails_with_exit_code_3(tmp_path):
    for args in (["--dataset", "ml-100k"], ["--data-dir", str(tmp_path / "nowhere")]):
        proc = _run(["-m", "tfrec.cli", "demo", "--quick", *args], tmp_path, timeout=120)
        assert proc.returncode == 3, proc.stdout + proc.stderr
        assert "MovieLens 'ml-100k' not found" in proc.stderr and "SYNTHETIC" not in proc.stdout


def test_demo_data_prefers_movielens_and_names_the_reason_it_falls_back(ml100k_dir, tmp_path, monkeypatch):
    from tfrec.demo import demo_data, synthetic_banner

    for key, value in _env(tmp_path).items():
        if key.startswith("TFREC_"):
            monkeypatch.setenv(key, value)
    monkeypatch.delenv("TFREC_DATA_DIR", raising=False)
    data, why = demo_data()
    assert data.synthetic and len(data.ratings) == 100_000 and data.ratings["user_id"].nunique() == 943
    assert "ml-100k" in why and "download" in why
    assert "could not be found or downloaded" in synthetic_banner(data, why)
    monkeypatch.setenv("TFREC_DATA_DIR", str(ml100k_dir))
    data, why = demo_data()
    assert not data.synthetic and data.name == "ml-100k" and why is None and synthetic_banner(data, why) is None


# ------------------------------------------------------------------------------------------------ logging
SCANN_SCRIPT = """
import sys
from tfrec.utils.logs import configure_logging
configure_logging({verbose})
import numpy as np
import tfrec
from tfrec.export.ann_index import choose_scann_params
rng = np.random.default_rng(0)
cand = rng.normal(size=(300, 8)).astype(np.float32)
cand /= np.linalg.norm(cand, axis=1, keepdims=True)
choice = choose_scann_params(cand[:40], cand, k=10)
print("recall", choice["trials"][0]["recall_at_k"])
"""


def test_configure_logging_silences_tensorflow_and_scann_and_verbose_brings_them_back(tmp_path):
    quiet = _run(["-c", SCANN_SCRIPT.format(verbose="")], tmp_path, timeout=300)
    assert quiet.returncode == 0, quiet.stderr
    assert "recall" in quiet.stdout
    assert not CPP_LOG.findall(quiet.stdout + quiet.stderr), quiet.stderr
    loud = _run(["-c", SCANN_SCRIPT.format(verbose="")], tmp_path, timeout=300, TFREC_VERBOSE="1")
    assert loud.returncode == 0, loud.stderr
    # ScaNN logs its partitioner's training through absl on every index it builds.
    assert "partitioner" in loud.stderr and CPP_LOG.search(loud.stderr), loud.stderr


def test_verbose_is_a_global_flag_before_or_after_the_subcommand(monkeypatch):
    from tfrec.commands import run

    seen = []
    monkeypatch.setattr("tfrec.commands.configure_logging", lambda verbose=None: seen.append(verbose))
    monkeypatch.setattr("tfrec.demo.run_demo", lambda *args, **kwargs: 0)
    for argv, expected in ((["demo"], None), (["--verbose", "demo"], True), (["demo", "--verbose"], True)):
        seen.clear()
        assert run(argv) == 0 and seen == [expected], argv


# ------------------------------------------------------------------------------------------------ import tfrec
def test_subpackages_are_attributes_of_tfrec_and_load_tensorflow_only_when_needed(tmp_path):
    code = """
import sys
import tfrec
assert callable(tfrec.data.load_movielens) and callable(tfrec.data.synthetic_movielens)
assert callable(tfrec.evaluation.ndcg_at_k)
assert tfrec.serving.Client.__name__ == "Client"
assert tfrec.models.Popularity.__name__ == "Popularity" and "mf" in tfrec.models.model_names()
assert tfrec.training is sys.modules["tfrec.training"]
assert "tensorflow" not in sys.modules, "touching data/evaluation/serving/models imported TensorFlow"
assert tfrec.models.TwoTower.__name__ == "TwoTower" and callable(tfrec.export.export_model)
assert "tensorflow" in sys.modules
try:
    tfrec.nope
except AttributeError as exc:
    assert "nope" in str(exc)
else:
    raise AssertionError("tfrec.nope")
print("ok")
"""
    proc = _run(["-c", code], tmp_path, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
