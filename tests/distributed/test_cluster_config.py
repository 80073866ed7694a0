"""TF_CONFIG checks, strategy names, the cross-replica loss, and bad clusters failing fast (loopback only)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import _cluster as C  # noqa: E402

from tfrec.errors import ConfigError  # noqa: E402
from tfrec.training.distribute import STRATEGIES, make_strategy, read_tf_config, unreachable_peers  # noqa: E402

TWO = {"worker": ["127.0.0.1:20001", "127.0.0.1:20002"]}


def _env(config) -> dict:
    return {"TF_CONFIG": config if isinstance(config, str) else json.dumps(config)}


def test_read_tf_config_parses_cluster_and_chief():
    cfg = read_tf_config(_env({"cluster": TWO, "task": {"type": "worker", "index": 1}}))
    assert (cfg.task_type, cfg.task_index, cfg.address) == ("worker", 1, "127.0.0.1:20002")
    assert not cfg.is_chief and cfg.peers() == [("worker", 0, "127.0.0.1:20001")]
    assert read_tf_config(_env({"cluster": TWO, "task": {"type": "worker", "index": 0}})).is_chief
    ps = {"chief": ["127.0.0.1:1"], "worker": ["127.0.0.1:2"], "ps": ["127.0.0.1:3"]}
    assert read_tf_config(_env({"cluster": ps, "task": {"type": "chief", "index": 0}})).is_chief
    assert not read_tf_config(_env({"cluster": ps, "task": {"type": "worker", "index": 0}})).is_chief


@pytest.mark.parametrize("raw, message", [
    ("", "TF_CONFIG is not set"),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": ', "not valid JSON"),
    ('["a"]', "must be a JSON object"),
    (json.dumps({"task": {"type": "worker", "index": 0}}), "no 'cluster'"),
    (json.dumps({"cluster": TWO}), "no 'task'"),
    (json.dumps({"cluster": TWO, "task": {"type": "ps", "index": 0}}), "task type 'ps' is not a job"),
    (json.dumps({"cluster": TWO, "task": {"type": "worker", "index": 2}}), "index 2 is out of range"),
    (json.dumps({"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", "index": 0}}), "'host:port'"),
    (json.dumps({"cluster": {"worker": ["127.0.0.1:99999"]}, "task": {"type": "worker", "index": 0}}), "1..65535"),
    (json.dumps({"cluster": {"boss": ["127.0.0.1:1"]}, "task": {"type": "boss", "index": 0}}), "unknown job 'boss'"),
])
def test_bad_tf_config_names_the_problem(raw, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        read_tf_config({"TF_CONFIG": raw})


def test_strategy_names_and_cluster_shape_checked():
    assert STRATEGIES == ("none", "mirrored", "multi_worker", "parameter_server")
    assert make_strategy("none").strategy is None and make_strategy("none").is_chief
    with pytest.raises(ConfigError, match="unknown strategy 'horovod'"):
        make_strategy("horovod")
    ps = {"chief": ["127.0.0.1:1"], "worker": ["127.0.0.1:2"], "ps": ["127.0.0.1:3"]}
    with pytest.raises(ConfigError, match="may hold only 'worker'"):
        make_strategy("multi_worker", environ=_env({"cluster": ps, "task": {"type": "chief", "index": 0}}))
    with pytest.raises(ConfigError, match="no 'chief' job"):
        make_strategy("parameter_server", environ=_env({"cluster": TWO, "task": {"type": "worker", "index": 0}}))
    with pytest.raises(ConfigError, match="runs on the chief"):
        make_strategy("parameter_server", environ=_env({"cluster": ps, "task": {"type": "worker", "index": 0}}))


def test_parameter_server_chief_fails_fast_on_unreachable_peers():
    ports = C.free_ports(3)
    cluster = {"chief": [f"127.0.0.1:{ports[0]}"], "worker": [f"127.0.0.1:{ports[1]}"],
               "ps": [f"127.0.0.1:{ports[2]}"]}
    env = _env({"cluster": cluster, "task": {"type": "chief", "index": 0}})
    assert unreachable_peers(read_tf_config(env)) == [f"worker 0 at 127.0.0.1:{ports[1]}",
                                                        f"ps 0 at 127.0.0.1:{ports[2]}"]
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match=rf"unreachable after 1 s: worker 0 at 127.0.0.1:{ports[1]}, ps 0"):
        make_strategy("parameter_server", environ=env, connect_timeout=1)
    assert time.monotonic() - t0 < 10


def _train(tmp_path, tf_config, *extra, timeout=240):
    argv = C.tfrec_cmd("train", "two_tower", "--dataset", "synthetic", "--epochs", "1", "--strategy", "multi_worker",
                       "--output", tmp_path / "run", *extra)
    t0 = time.monotonic()
    out = subprocess.run(argv, capture_output=True, text=True, env=C.env_with(TF_CONFIG=tf_config), timeout=timeout)
    return out, time.monotonic() - t0


def test_cli_bad_tf_config_exits_2_naming_it(tmp_path):
    out, _ = _train(tmp_path, '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker"')
    assert out.returncode == 2 and "TF_CONFIG is not valid JSON" in out.stderr, out.stderr[-2000:]
    out, _ = _train(tmp_path, json.dumps({"cluster": TWO}))
    assert out.returncode == 2 and "TF_CONFIG has no 'task'" in out.stderr, out.stderr[-2000:]
    assert not (tmp_path / "run").exists()


def test_cli_unreachable_multi_worker_peer_fails_within_the_timeout(tmp_path):
    ports = C.free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    out, seconds = _train(tmp_path, C.tf_config(cluster, "worker", 0), "--connect-timeout", "5")
    assert out.returncode == 2, out.stderr[-2000:]
    assert f"unreachable after 5 s: worker 1 at 127.0.0.1:{ports[1]}" in out.stderr, out.stderr[-2000:]
    assert seconds < 200  # interpreter start and imports on a loaded machine, plus the 5 s wait
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_global_retrieval_two_replicas_step_like_one_process_with_the_whole_batch():
    """One SGD step on 2 replicas of B/2 equals one step on 1 replica of B (weights to ~1e-5)."""
    script = Path(__file__).parent / "_replica_step.py"
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=C.env_with(), timeout=400)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["moved"] > 1e-2  # the step did something
    assert result["diff"] <= 1e-4 * max(1.0, result["moved"]), result
