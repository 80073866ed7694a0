"""`tfrec tune` / tfrec.training.tuning.tune: the search uses training rows only, writes a config that
`tfrec train --config` reads, and keeps the defaults when no trial beats them."""

import json

import pandas as pd
import pytest

from tfrec.commands import run
from tfrec.data import leave_last_out_split, synthetic_movielens
from tfrec.errors import ConfigError
from tfrec.models.baselines import EASE
from tfrec.training.tuning import load_tuned_config, tune


@pytest.fixture(scope="module")
def small_data():
    return synthetic_movielens(n_users=150, n_items=100, n_ratings=4000, seed=1)


def _keys(frame):
    return set(zip(frame.user_id.astype(str), frame.item_id.astype(str), frame.timestamp))


def test_tune_fits_and_scores_on_training_rows_only(small_data, tmp_path, monkeypatch):
    seen_frames = []
    original = EASE.fit

    def recording_fit(self, train, *args, **kwargs):
        seen_frames.append(train)
        return original(self, train, *args, **kwargs)

    monkeypatch.setattr(EASE, "fit", recording_fit)
    out = tmp_path / "ease.json"
    result = tune("ease", small_data, trials=4, output=out, verbose=0)
    _, test = leave_last_out_split(small_data.ratings)
    assert len(seen_frames) >= 5  # the defaults + 4 trials (+ EASE's own inner l2 choice)
    for frame in seen_frames:
        assert not (_keys(frame) & _keys(test)), "a trial was fitted on test rows"
    written = json.loads(out.read_text())
    assert written["model"] == "ease" and len(written["trials"]) == 4
    assert written["validation"]["best"] >= written["validation"]["default"]
    assert written["hyperparameters"] == result.hyperparameters
    if result.improved:
        best = max(written["trials"], key=lambda t: t["value"])
        assert result.hyperparameters == best["params"] and result.best_score == pytest.approx(best["value"])
    else:
        assert result.hyperparameters == {}


def test_defaults_are_kept_when_no_trial_beats_them(small_data, monkeypatch):
    import tfrec.training.tuning as tuning

    # A search space of one terrible setting (no recent items, almost no neighbours).
    monkeypatch.setitem(tuning.SEARCH_SPACES, "item_knn",
                        lambda trial: {"n_neighbors": trial.suggest_int("n_neighbors", 1, 1), "history": 1})
    result = tune("item_knn", small_data, trials=1, verbose=0, fixed={"shrinkage": 5.0})
    assert not result.improved
    assert result.hyperparameters == {"shrinkage": 5.0}  # fixed settings always kept
    assert result.best_score == result.default_score


def test_cli_tune_then_train_with_config_and_overrides(tmp_path, capsys):
    cfg = tmp_path / "knn.json"
    assert run(["tune", "item_knn", "--dataset", "synthetic", "--trials", "2", "--output", str(cfg), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    tuned = load_tuned_config(cfg, "item_knn")
    assert tuned == printed["hyperparameters"]
    assert run(["train", "item_knn", "--dataset", "synthetic", "--split", "leave_last_out", "--config", str(cfg),
                "--set", "history=3", "--json"]) == 0
    used = json.loads(capsys.readouterr().out)["hyperparameters"]
    for key, value in tuned.items():
        if key != "history":
            assert used[key] == value
    assert used["history"] == 3  # the flag overrides the file
    # The file was written for item_knn: using it for another model is a clear error.
    assert run(["train", "ease", "--dataset", "synthetic", "--config", str(cfg)]) == 2
    assert "item_knn" in capsys.readouterr().err


def test_bad_tune_requests_are_config_errors(tmp_path, small_data):
    with pytest.raises(ConfigError, match="no search space"):
        tune("popularity", small_data, trials=1)
    with pytest.raises(ConfigError, match="unknown model"):
        tune("nope", small_data, trials=1)
    with pytest.raises(ConfigError, match="trials"):
        tune("ease", small_data, trials=0)
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="hyperparameters"):
        load_tuned_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_tuned_config(tmp_path / "missing.json")


def test_two_tower_tune_smoke(tmp_path):
    data = synthetic_movielens(n_users=80, n_items=60, n_ratings=1500, seed=2)
    out = tmp_path / "tt.json"
    result = tune("two_tower", data, trials=1, output=out, verbose=0,
                  fixed={"epochs": 1, "ensemble_size": 1, "embedding_dim": 8, "layer_sizes": [8]})
    written = json.loads(out.read_text())
    assert len(written["trials"]) == 1 and 0.0 <= written["validation"]["best"] <= 1.0
    assert result.hyperparameters["embedding_dim"] == 8  # fixed, so not searched
    assert "embedding_dim" not in written["trials"][0]["params"]
    assert {"learning_rate", "temperature", "history_length"} <= set(written["trials"][0]["params"])
