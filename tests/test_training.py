"""tfrec.train / load_run / evaluate on small synthetic data."""

import json

import numpy as np
import pytest

import tfrec
from tfrec.data import random_split, synthetic_movielens
from tfrec.errors import ConfigError


@pytest.fixture(scope="module")
def data():
    return synthetic_movielens(n_users=150, n_items=400, n_ratings=5000, seed=1)


def test_train_mf_returns_model_metrics_and_run_folder(data, tmp_path):
    result = tfrec.train("mf", data, split="random", seed=0, epochs=2, verbose=0, output=tmp_path / "run")
    assert set(result.metrics) >= {"rmse", "mae", "fit_seconds", "hyperparameters"}
    assert 0 < result.metrics["rmse"] < 2.0
    # The same seed gives the same split as the public function.
    train, test = random_split(data.ratings, 0.2, 0)
    assert result.test.equals(test) and len(result.train) == len(train)
    run = tmp_path / "run"
    for name in ("config.json", "metrics.json", "train_ratings.csv", "items.csv", "users.csv", "learning_curve.png"):
        assert (run / name).is_file(), name
    assert json.loads((run / "metrics.json").read_text())["rmse"] == pytest.approx(result.metrics["rmse"])


def test_load_run_gives_the_same_predictions(data, tmp_path):
    result = tfrec.train("mf", data, epochs=1, verbose=0, output=tmp_path / "run")
    again = tfrec.load_run(tmp_path / "run")
    users, items = result.test.user_id.to_numpy()[:50], result.test.item_id.to_numpy()[:50]
    np.testing.assert_allclose(result.model.predict_ratings(users, items), again.model.predict_ratings(users, items),
                               rtol=1e-5)
    pd_a = result.model.recommend(["1", "2"], k=5)
    pd_b = again.model.recommend(["1", "2"], k=5)
    assert pd_a.item_id.tolist() == pd_b.item_id.tolist()


def test_baseline_run_reloads_by_refitting(data, tmp_path):
    result = tfrec.train("item_knn", data, split="leave_last_out", verbose=0, output=tmp_path / "knn")
    assert set(result.metrics) >= {"full", "sampled_100", "fit_seconds"}
    assert set(result.metrics["full"]) >= {"hr@10", "ndcg@10", "map@10", "recall@10", "mrr"}
    again = tfrec.load_run(tmp_path / "knn")
    assert again.model.recommend(["3"], k=5).item_id.tolist() == result.model.recommend(["3"], k=5).item_id.tolist()


def test_evaluate_compares_runs(data, tmp_path):
    a = tfrec.train("popularity", data, split="leave_last_out", verbose=0, output=tmp_path / "pop")
    b = tfrec.train("item_knn", data, split="leave_last_out", verbose=0, output=tmp_path / "knn")
    table = tfrec.evaluate([tmp_path / "pop", tmp_path / "knn"], chart=tmp_path / "chart.png")
    assert list(table.index) == ["pop", "knn"]
    assert table.loc["knn", "full/hr@10"] == pytest.approx(b.metrics["full"]["hr@10"])
    assert (tmp_path / "chart.png").stat().st_size > 1000
    assert a.metrics["full"]["coverage"] < b.metrics["full"]["coverage"]


def test_bad_inputs_give_clear_errors(data):
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        tfrec.train("nope", data)
    with pytest.raises(ConfigError, match="unknown split"):
        tfrec.train("mf", data, split="sideways")
    with pytest.raises(ConfigError, match="embedding_dim"):
        tfrec.train("mf", data, embedding_dim=-3, verbose=0)
    with pytest.raises(ConfigError, match="not trained with Keras"):
        tfrec.train("popularity", data, epochs=3, verbose=0)
