"""The rating models under MirroredStrategy with two replicas (two logical CPUs, a fresh process).

Their training input ends an epoch with a short batch in one process; under a strategy it drops
that batch, so LazyAdam's sparse gradients of the two replicas always have the same row counts.
Before, MatrixFactorization stopped at the first short batch with a collective shape mismatch
("expected shape [98,8] but another member in the group expected shape [256,8]").
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import _cluster as C  # noqa: E402


def test_rating_models_train_lazily_on_two_replicas_with_a_short_last_batch():
    proc = subprocess.run([sys.executable, str(Path(__file__).parent / "_mirrored_rating.py")], capture_output=True,
                          text=True, env=C.env_with(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(report) == {"mf", "fm", "neumf", "neumf_implicit"}
    for name, row in report.items():
        assert row["optimizer"] == "LazyAdam", (name, row)
        assert row["rows"] % row["batch_size"], "the data must end an epoch with a short batch"
        if name != "neumf_implicit":  # 3 epochs of full batches only; better than the training mean
            assert row["steps"] == 3 * (row["rows"] // row["batch_size"]), (name, row)
            assert row["rmse"] < row["mean_rmse"], (name, row)
        else:  # fresh negatives each epoch: more rows than the ratings, still full batches
            assert row["steps"] > 3 * (row["rows"] // row["batch_size"]), (name, row)
