"""Loopback clusters for the distributed tests and benchmarks: free ports, TF_CONFIG, bounded subprocesses.

Everything binds to 127.0.0.1; every process is killed (SIGKILL, by its own pid) when the block ends.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_ports(n: int) -> list:
    """``n`` distinct free TCP ports on 127.0.0.1 (held open together so none repeats)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def tf_config(cluster: dict, task_type: str, index: int) -> str:
    return json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})


def env_with(**extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.pop("TF_CONFIG", None)
    env.update({k: v for k, v in extra.items() if v is not None})
    return env


def tfrec_cmd(*args) -> list:
    return [sys.executable, "-m", "tfrec.cli", *map(str, args)]


@contextmanager
def processes(specs, log_dir: Path):
    """Start ``[(name, argv, env), ...]`` with output in ``log_dir/<name>.log``; kill all on exit."""
    log_dir.mkdir(parents=True, exist_ok=True)
    procs = {}
    try:
        for name, argv, env in specs:
            log = open(log_dir / f"{name}.log", "wb")
            procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(log_dir),
                                           start_new_session=True)
            log.close()
        yield procs
    finally:
        for p in procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)  # its own process group, started above
                p.wait(timeout=30)


def wait_all(procs: dict, timeout: float) -> dict:
    """Exit codes by name; raises TimeoutError (the caller's block kills the rest) after ``timeout``."""
    deadline = time.monotonic() + timeout
    codes = {}
    for name, p in procs.items():
        remaining = deadline - time.monotonic()
        try:
            codes[name] = p.wait(timeout=max(remaining, 0.1))
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"{name} still running after {timeout:g} s") from None
    return codes


def wait_for_text(path: Path, text: str, timeout: float, procs: dict = None) -> None:
    """Block until ``text`` appears in the file at ``path`` (a log) or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and text in path.read_text(errors="replace"):
            return
        if procs and any(p.poll() not in (None, 0) for p in procs.values()):
            raise RuntimeError(f"a process failed while waiting for {text!r} in {path.name}")
        time.sleep(0.5)
    raise TimeoutError(f"{text!r} not in {path} after {timeout:g} s")


def log_tail(log_dir: Path, chars: int = 3000) -> str:
    return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-chars:]}" for p in sorted(log_dir.glob("*.log")))


LOAD_EXPORT = """
import sys
import tensorflow as tf
m = tf.saved_model.load(sys.argv[1])
out = m.signatures["serving_default"](user_id=tf.constant([sys.argv[2]]))
assert "tfrec" not in sys.modules
print(len(out["item_ids"].numpy()[0]))
"""


def load_export_in_plain_tf(path: str, user: str, timeout: float = 120) -> int:
    """Load an exported SavedModel in a fresh Python without tfrec; the top-k list length it serves."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_USE_LEGACY_KERAS", "PYTHONPATH", "TF_CONFIG")}
    out = subprocess.run([sys.executable, "-c", LOAD_EXPORT, path, user], capture_output=True, text=True, env=env,
                         timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return int(out.stdout.strip().splitlines()[-1])
