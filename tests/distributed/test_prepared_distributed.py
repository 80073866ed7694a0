"""Distributed training from prepared shards: every worker reads its own files.

A small synthetic PREPARED folder (4 shard files) trained with ``--prepared`` under each strategy:
a 2-worker multi_worker job in subprocesses (disjoint files, equal steps, chief-only run folder,
export loads in plain TF), an in-process parameter-server cluster (each worker draws its own share
of the files; sharded embeddings export as plain variables) and MirroredStrategy over 2 logical
CPUs (and in memory). Each learns like the single-process ``--prepared`` run with the same settings.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import _cluster as C  # noqa: E402

# These tests are about how shards reach workers: the cheap mean encoder (the attention default
# runs under strategies in test_multi_worker and test_parameter_server).
HYPER = {"ensemble_size": 1, "embedding_dim": 16, "layer_sizes": [32], "history_length": 4, "batch_size": 512,
         "epochs": 3, "history_encoder": "mean"}
SETTINGS = ["--set", "ensemble_size=1", "--set", "embedding_dim=16", "--set", "layer_sizes=[32]", "--set",
            "history_length=4", "--set", "history_encoder=mean", "--batch-size", "512", "--epochs", "3"]
SHARDS = [f"train-{j:05d}-of-00004.tfrecord" for j in range(4)]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """40k synthetic ratings of 1,500 users (enough test users for a steady NDCG) in 4 shard files."""
    from tfrec.commands import run

    root = tmp_path_factory.mktemp("prepared_dist")
    assert run(["data", "synthesize", "--layout", "ml-32m", "--out", str(root / "syn"), "--n-ratings", "40000",
                "--n-users", "1500", "--n-items", "300", "--json"]) == 0
    assert run(["data", "prepare", "--dataset", "ml-32m", "--data-dir", str(root / "syn"), "--split",
                "leave_last_out", "--out", str(root / "prep"), "--history-length", "4", "--num-shards", "4",
                "--json"]) == 0
    return root / "prep"


@pytest.fixture(scope="module")
def single(prepared):
    """The single-process --prepared run with the same settings, and NDCG@10 of a random ranking."""
    import tfrec

    result = tfrec.train("two_tower", prepared=str(prepared), verbose=0, **HYPER)
    chance = sum(1.0 / np.log2(r + 1) for r in range(1, 11)) / len(result.model.catalog_)
    return result.metrics["full"]["ndcg@10"], chance


def _learned_like_single(ndcg: float, single, tolerance: float = 0.15) -> None:
    reference, chance = single
    assert ndcg > 4 * chance, (ndcg, chance)
    assert abs(ndcg - reference) <= tolerance * reference, (ndcg, reference)


def _test_user(prepared) -> str:
    import pandas as pd

    return str(pd.read_csv(prepared / "test.csv", dtype={"user_id": str})["user_id"].iloc[0])


def test_plan_splits_files_across_pipelines_and_refuses_too_few_files(monkeypatch):
    import tensorflow as tf

    from tfrec.errors import ConfigError
    from tfrec.models import distributed_input as D

    monkeypatch.setattr(D, "input_pipelines", lambda strategy: 3)
    plan = D.plan_file_shards(tf.distribute.get_strategy(), ["a", "b", "c", "d"], [10, 10, 10, 9], batch_size=6)
    assert plan.shards == (("a", "d"), ("b",), ("c",)) and plan.examples == (19, 10, 10)
    # 2 rows from each pipeline a step; as many steps as the smallest share fills, on every worker.
    assert plan.rows_per_step == 2 and plan.steps_per_epoch == 5
    assert D.plan_file_shards(tf.distribute.get_strategy(), ["a", "b", "c"], [9, 9, 9], batch_size=6,
                              steps_per_epoch=7).steps_per_epoch == 7
    with pytest.raises(ConfigError, match="2 shard file.*3 workers.*--num-shards 3"):
        D.plan_file_shards(tf.distribute.get_strategy(), ["a", "b"], [9, 9], batch_size=6)


@pytest.mark.slow
def test_two_workers_read_disjoint_shards_take_equal_steps_learn_and_export(prepared, single, tmp_path):
    from tfrec.export import export_model

    out, logs = tmp_path / "run", tmp_path / "logs"
    ports = C.free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    argv = C.tfrec_cmd("train", "two_tower", "--prepared", prepared, *SETTINGS, "--strategy", "multi_worker",
                       "--output", out, "--no-tensorboard", "--no-plots", "--connect-timeout", "120")
    specs = [(f"worker{i}", argv, C.env_with(TF_CONFIG=C.tf_config(cluster, "worker", i))) for i in range(2)]
    with C.processes(specs, logs) as procs:
        try:
            codes = C.wait_all(procs, timeout=600)
        except TimeoutError as exc:
            pytest.fail(f"{exc}\n{C.log_tail(logs)}")
    assert codes == {"worker0": 0, "worker1": 0}, C.log_tail(logs)

    # Each worker says which files its input pipeline reads: disjoint halves of the 4 shards.
    reads, steps, examples = {}, {}, {}
    for i in range(2):
        text = (logs / f"worker{i}.log").read_text(errors="replace")
        line = re.search(r"input pipeline (\d) of 2 reads 2 shard file\(s\) \((\d+) examples\): (.*?); (\d+) steps "
                         r"of 256 rows an epoch", text)
        assert line and int(line.group(1)) == i, text[-3000:]
        examples[i], reads[i], steps[i] = int(line.group(2)), set(line.group(3).split(", ")), int(line.group(4))
        # Every epoch's progress bar completes the planned steps.
        assert re.findall(r"(\d+)/\1 \[=+\] - (?!ETA)", text) == [str(steps[i])] * HYPER["epochs"], text[-3000:]
    assert reads[0].isdisjoint(reads[1]) and reads[0] | reads[1] == set(SHARDS)
    # Equal steps on both workers: as many global batches (256 rows from each) as the smaller share fills.
    n_train = json.loads((prepared / "prepared.json").read_text())["counts"]["train"]
    assert examples[0] + examples[1] == n_train
    assert steps[0] == steps[1] == min(examples.values()) // 256
    assert "non-chief" in (logs / "worker1.log").read_text(errors="replace")

    # The chief wrote the run folder with the plan; it learned like one process.
    config = json.loads((out / "config.json").read_text())
    assert config["strategy"] == "multi_worker" and config["prepared"] == str(prepared.resolve())
    plan = config["input_plan"]
    assert plan["pipelines"] == 2 and [set(s) for s in plan["shards"]] == [reads[0], reads[1]]
    assert plan["steps_per_epoch"] == steps[0] and plan["rows_per_step"] == 256
    _learned_like_single(json.loads((out / "metrics.json").read_text())["full"]["ndcg@10"], single)

    # The export of the run loads and serves in a fresh plain-TF process.
    info = export_model(str(out), name="tt", base_dir=tmp_path / "export", scann=False)
    assert C.load_export_in_plain_tf(info["paths"][0], _test_user(prepared)) == 10


@pytest.mark.slow
def test_parameter_server_workers_draw_disjoint_shards_learn_and_export_plain(prepared, single, tmp_path):
    from tfrec.export import export_model

    out = tmp_path / "run"
    hyper = dict(HYPER, prepared=str(prepared), verbose=1)
    proc = subprocess.run([sys.executable, str(Path(__file__).parent / "_ps_cluster.py"), str(out),
                           *map(str, C.free_ports(5)), json.dumps(hyper)],
                          capture_output=True, text=True, env=C.env_with(), timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    # Two worker datasets were made; each printed its draw and read its own half of the shards.
    assert report["draws"] == 2
    drawn = re.findall(r"parameter_server input: draw (\d) reads share (\d) of 2 : \[(.*?)\]", proc.stderr)
    assert sorted((d, s) for d, s, _ in drawn) == [("0", "0"), ("1", "1")], proc.stderr[-3000:]
    files = [{Path(f.strip('"')).name for f in names.split()} for _, _, names in drawn]
    assert files[0].isdisjoint(files[1]) and files[0] | files[1] == set(SHARDS)
    # The user table (1,500 x 16 floats) was split over the 2 ps tasks while training.
    assert any("user_embedding" in name and n == 2 for name, n in report["sharded"].items()), report["sharded"]
    # Asynchronous steps on slightly stale weights learn a little less in 3 epochs (measured 0.114
    # vs 0.127-0.130 for one process with seeds 0-3), hence a wider band than the synchronous runs'.
    _learned_like_single(report["metrics"]["full"]["ndcg@10"], single, tolerance=0.25)
    config = json.loads((out / "config.json").read_text())
    assert config["strategy"] == "parameter_server" and config["input_plan"]["pipelines"] == 2
    info = export_model(str(out), name="tt", base_dir=tmp_path / "export", scann=False)
    assert C.load_export_in_plain_tf(info["paths"][0], _test_user(prepared)) == 10


@pytest.mark.slow
def test_mirrored_over_two_logical_cpus_from_shards_and_in_memory(prepared, single, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, str(Path(__file__).parent / "_mirrored.py"), str(prepared),
                           str(prepared.parent / "syn"), str(out), json.dumps(HYPER)],
                          capture_output=True, text=True, env=C.env_with(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    # From shards: one input pipeline feeding both replicas (256 rows each), one pass an epoch.
    plan = report["input_plan"]
    assert plan["strategy"] == "mirrored" and plan["replicas"] == 2 and plan["pipelines"] == 1
    n_train = json.loads((prepared / "prepared.json").read_text())["counts"]["train"]
    assert plan["shards"] == [SHARDS] and plan["steps_per_epoch"] == n_train // 512
    _learned_like_single(report["metrics"]["full"]["ndcg@10"], single)
    assert json.loads((out / "config.json").read_text())["strategy"] == "mirrored"
    # In memory, on the same split: 2 replicas of 256 rows learn like one process with batch 512.
    _learned_like_single(report["in_memory"], single)
