"""The `tfrec` CLI's subcommands, in process (the console script calls the same `run`)."""

import json
import subprocess
import sys

import pytest

from tfrec.commands import run


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_help_for_every_subcommand(capsys):
    for cmd in (["--help"], ["data", "--help"], ["train", "--help"], ["evaluate", "--help"], ["export", "--help"],
                ["serve", "--help"], ["recommend", "--help"], ["bench", "--help"], ["demo", "--help"]):
        with pytest.raises(SystemExit) as exit_:
            run(cmd)
        assert exit_.value.code == 0
        assert "usage: tfrec" in capsys.readouterr().out


def test_data_describe_json(ml100k_dir, capsys):
    assert run(["data", "describe", "--dataset", "ml-100k", "--data-dir", str(ml100k_dir), "--json"]) == 0
    out = _json(capsys)
    assert out["n_ratings"] == 100_000 and out["n_users"] == 943


def test_data_split_writes_csvs(tmp_path, capsys):
    assert run(["data", "split", "--dataset", "synthetic", "--split", "temporal", "--output", str(tmp_path),
                "--json"]) == 0
    out = _json(capsys)
    assert {"train", "validation", "test"} <= set(out)
    assert (tmp_path / "validation.csv").is_file()


def test_train_json_then_evaluate_and_export_errors(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert run(["train", "mf", "--dataset", "synthetic", "--epochs", "1", "--output", str(run_dir), "--json",
                "--no-tensorboard"]) == 0
    metrics = _json(capsys)
    assert {"rmse", "mae", "fit_seconds", "hyperparameters"} <= set(metrics)
    assert metrics["hyperparameters"]["epochs"] == 1
    assert run(["evaluate", str(run_dir), "--json"]) == 0
    table = _json(capsys)
    assert table["run"]["rmse"] == pytest.approx(metrics["rmse"])


def test_exit_codes_and_messages(tmp_path, capsys):
    assert run(["train", "nope", "--dataset", "synthetic"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert run(["data", "describe", "--dataset", "ml-999k"]) == 3
    assert "unknown MovieLens dataset" in capsys.readouterr().err
    assert run(["evaluate", str(tmp_path / "missing")]) == 3
    with pytest.raises(SystemExit) as exit_:
        run(["train", "mf", "--test-fraction", "2"])
    assert exit_.value.code == 2
    assert "expected a number in (0, 1)" in capsys.readouterr().err


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "tfrec.cli", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("tfrec ")


def test_evaluate_names_a_file_that_is_not_metrics_json(tmp_path, capsys):
    png = tmp_path / "comparison.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    assert run(["evaluate", str(png)]) == 3
    err = capsys.readouterr().err
    assert "comparison.png" in err and "not a metrics JSON file" in err


def test_broken_pipe_exits_quietly(ml100k_dir):
    # `tfrec data describe | head -1`: the reader closes the pipe early; no traceback.
    proc = subprocess.run(f"'{sys.executable}' -m tfrec.cli data describe --dataset ml-100k --data-dir "
                          f"'{ml100k_dir}' | head -c 1", shell=True, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
