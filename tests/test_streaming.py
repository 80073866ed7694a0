"""Training from prepared shards: synthesize -> prepare -> train --prepared -> evaluate -> load -> export.

Small synthetic data (a few thousand ratings); the same commands run at ML-32M size in
benchmarks/scale.py.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tfrec.commands import run


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("streaming")
    assert run(["data", "synthesize", "--layout", "ml-32m", "--out", str(root / "syn"), "--n-ratings", "4000",
                "--n-users", "150", "--n-items", "120", "--json"]) == 0
    assert run(["data", "prepare", "--dataset", "ml-32m", "--data-dir", str(root / "syn"), "--split",
                "leave_last_out", "--out", str(root / "prep"), "--history-length", "6", "--json"]) == 0
    return root


def test_prepared_history_is_the_two_towers_own_training_history(prepared):
    """The shards' history_items equal what TwoTower computes in-graph from the whole log."""
    import tensorflow as tf

    from tfrec.data import fit_vocabularies, leave_last_out_split, load_movielens
    from tfrec.data.prepared import PreparedDataset
    from tfrec.models.two_tower import TwoTower

    data = load_movielens("ml-32m", data_dir=prepared / "syn")
    train, _ = leave_last_out_split(data.ratings)
    vocabs = fit_vocabularies(train, items=data.items)
    model = TwoTower(history_length=6, ensemble_size=1, vocabularies={k: v.values for k, v in vocabs.items()})
    model._prepare(train, data.items, None)
    tower = model.query_towers[0]
    batches = list(PreparedDataset(prepared / "prep").dataset(batch_size=1000, shuffle=False))
    cols = {k: np.concatenate([b[k].numpy() for b in batches]) for k in ("user_id", "item_id", "timestamp",
                                                                         "history_items")}
    inputs = {"timestamp": tf.constant(cols["timestamp"]),
              "target_item_index": model._prob_lookup(tf.constant(cols["item_id"]))}
    want = tower._history_items(tower.user_lookup(tf.constant(cols["user_id"])), inputs).numpy()
    assert np.array_equal(cols["history_items"], want)
    assert (want > 0).mean() > 0.5  # most examples do have a history
    from tfrec.data.prepared import PreparedDataset as P

    assert np.array_equal(P(prepared / "prep").state()["history"], tower.history.numpy())


def test_train_prepared_evaluate_load_export(prepared, tmp_path, capsys):
    import tensorflow as tf

    from tfrec.export import export_model
    from tfrec.training import load_run

    run_dir = tmp_path / "run"
    code = run(["train", "two_tower", "--prepared", str(prepared / "prep"), "--epochs", "2", "--steps-per-epoch",
                "6", "--batch-size", "256", "--set", "ensemble_size=1", "--set", "history_length=4", "--set",
                "embedding_dim=16", "--set", "layer_sizes=[32,16]", "--output", str(run_dir), "--no-tensorboard",
                "--no-plots", "--json"])
    assert code == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["full"]["n_users"] == 150 and 0.0 <= metrics["full"]["ndcg@10"] <= 1.0
    assert metrics["examples_per_second"] > 0 and metrics["full"]["seconds_per_1000_users"] > 0
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history["loss"]) == 2 and np.isfinite(history["loss"]).all()
    config = json.loads((run_dir / "config.json").read_text())
    assert config["prepared"] and not (run_dir / "train_ratings.csv").exists()

    result = load_run(run_dir)
    model = result.model
    seen = pd.read_csv(prepared / "prep" / "test.csv", dtype={"user_id": str})["user_id"].iloc[0]
    recs = model.recommend([seen], k=5)
    assert len(recs) == 5 and not set(recs["item_id"]) & set(model.catalog_[model.seen_[seen]])
    again = model.recommend([seen], k=5)
    assert list(again["item_id"]) == list(recs["item_id"])

    info = export_model(run_dir, name="tt", base_dir=tmp_path / "export", scann=False, warmup=False)
    loaded = tf.saved_model.load(info["paths"][0])
    out = loaded.signatures["serving_default"](user_id=tf.constant([seen]))
    assert list(out["item_ids"].numpy()[0][:5].astype(str)) == list(recs["item_id"])


def test_rating_model_streams_too_and_baselines_are_refused(prepared, capsys):
    code = run(["train", "mf", "--prepared", str(prepared / "prep"), "--epochs", "1", "--steps-per-epoch", "3",
                "--no-tensorboard", "--json", "--output", str(prepared / "run_mf")])
    assert code == 0
    metrics = json.loads(capsys.readouterr().out)
    assert 0.0 < metrics["rmse"] < 3.0 and "full" in metrics  # leave-last-out: rating models are ranked too
    assert run(["train", "item_knn", "--prepared", str(prepared / "prep"), "--no-tensorboard"]) == 2
    assert "cannot be trained from --prepared" in capsys.readouterr().err


def test_prepared_flag_on_a_folder_that_is_not_one(prepared, capsys):
    assert run(["train", "two_tower", "--prepared", str(prepared / "syn"), "--no-tensorboard"]) == 3
    err = capsys.readouterr().err
    assert "not a prepared dataset" in err and "tfrec data prepare" in err


def test_prepare_offers_only_datasets_it_reads(tmp_path, capsys):
    # `synthetic` is generated in memory for the in-memory commands; prepare streams files, so its
    # help must not list it and asking for it points at `tfrec data synthesize`.
    with pytest.raises(SystemExit):
        run(["data", "prepare", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "ml-32m, or a folder holding schema.json" in help_text and "synthetic," not in help_text
    assert run(["data", "prepare", "--dataset", "synthetic", "--out", str(tmp_path / "p")]) == 2
    assert "tfrec data synthesize" in capsys.readouterr().err and not (tmp_path / "p").exists()
    with pytest.raises(SystemExit):
        run(["train", "--help"])
    assert "ml-32m, synthetic, or a folder" in " ".join(capsys.readouterr().out.split())
