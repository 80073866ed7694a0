"""ParameterServerStrategy: an in-process cluster (chief, 2 workers, 2 ps) in one subprocess, and `tfrec worker`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import _cluster as C  # noqa: E402

HYPER = {"ensemble_size": 1, "embedding_dim": 64, "layer_sizes": [32], "batch_size": 512, "epochs": 3,
         "validation_fraction": 0.0}


@pytest.mark.slow
@pytest.mark.parametrize("encoder", ["attention", "gru"])
def test_parameter_server_cluster_trains_shards_embeddings_and_exports_plain(tmp_path, encoder):
    # "attention" is the default (its fast path reads the attention layer's kernels directly, which
    # a parameter server places round-robin). "gru": TensorFlow's GRU op needs its kernels on one ps task (GRUHistoryEncoder colocates them;
    # placed round-robin, the first step failed with "Cannot colocate nodes").
    import tfrec
    from tfrec.export import export_model

    hyper = {**HYPER, "history_encoder": encoder}
    out = tmp_path / "run"
    script = Path(__file__).parent / "_ps_cluster.py"
    ports = C.free_ports(5)
    proc = subprocess.run([sys.executable, str(script), str(out), *map(str, ports), json.dumps(hyper)],
                          capture_output=True, text=True, env=C.env_with(), timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["draws"] == 2  # each worker made its dataset once and kept its own half of the batches
    # The embedding tables were sharded over the 2 ps tasks while training.
    sharded = report["sharded"]
    assert any("item_embedding" in name and n == 2 for name, n in sharded.items()), sharded
    assert any("user_embedding" in name and n == 2 for name, n in sharded.items()), sharded
    # It learned: beside one process with the same settings, and far above a random ranking. (Not
    # "above popularity": on the synthetic data popularity is within seed noise of a 3-epoch
    # two-tower, 0.103 vs 0.089-0.113, so that comparison flipped between runs.)
    ps_ndcg = report["metrics"]["full"]["ndcg@10"]
    single = tfrec.train("two_tower", "synthetic", split="leave_last_out", verbose=0, **hyper)
    n_items = len(single.model.catalog_)
    chance = sum(1.0 / np.log2(r + 1) for r in range(1, 11)) / n_items  # NDCG@10 of one held-out item, random order
    assert ps_ndcg > 4 * chance, (ps_ndcg, chance)
    # Not much worse than one process with the same settings. One-sided and wide on purpose: after 3
    # epochs the single-process fit itself moves with the seed (attention 0.086/0.149/0.108, GRU
    # 0.124/0.155/0.118 for seeds 0-2), so a band around one seed's fit measured that seed, not the
    # strategy: a 25% two-sided band failed both encoders in one run (attention PS 0.115 vs 0.086,
    # GRU PS 0.075 vs 0.124) and passed them in the next. Asynchronous steps on stale weights may
    # also land above the single fit. (Updates that never reach the ps leave the untrained model,
    # near chance: the check above.)
    single_ndcg = single.metrics["full"]["ndcg@10"]
    assert ps_ndcg >= 0.5 * single_ndcg, (ps_ndcg, single_ndcg)
    config = json.loads((out / "config.json").read_text())
    assert config["strategy"] == "parameter_server" and len(config["cluster"]["ps"]) == 2
    # The export of the run holds ordinary variables: it loads and serves in plain TF, no tfrec.
    info = export_model(str(out), name="tt", base_dir=tmp_path / "export", scann=False)
    user = str(single.test["user_id"].iloc[0])
    assert C.load_export_in_plain_tf(info["paths"][0], user) == 10


def test_tfrec_worker_serves_its_task_until_killed(tmp_path):
    ports = C.free_ports(3)
    cluster = {"chief": [f"127.0.0.1:{ports[0]}"], "worker": [f"127.0.0.1:{ports[1]}"],
               "ps": [f"127.0.0.1:{ports[2]}"]}
    specs = [("ps0", C.tfrec_cmd("worker"), C.env_with(TF_CONFIG=C.tf_config(cluster, "ps", 0)))]
    with C.processes(specs, tmp_path / "logs") as procs:
        C.wait_for_text(tmp_path / "logs" / "ps0.log", f"serving ps 0 at 127.0.0.1:{ports[2]}", timeout=180,
                        procs=procs)
        from tfrec.training.distribute import read_tf_config, unreachable_peers

        chief = read_tf_config({"TF_CONFIG": C.tf_config(cluster, "chief", 0)})
        assert unreachable_peers(chief) == [f"worker 0 at 127.0.0.1:{ports[1]}"]  # the ps answers
        time.sleep(1)
        assert procs["ps0"].poll() is None  # still serving
    # A chief's TF_CONFIG is refused by `tfrec worker`.
    bad = subprocess.run(C.tfrec_cmd("worker"), capture_output=True, text=True,
                         env=C.env_with(TF_CONFIG=C.tf_config(cluster, "chief", 0)), timeout=120)
    assert bad.returncode == 2 and "serves a 'worker' or 'ps' task" in bad.stderr, bad.stderr[-2000:]
