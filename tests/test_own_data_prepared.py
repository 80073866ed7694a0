"""Your own data out of core: `tfrec data prepare --dataset FOLDER` on schema.json datasets (an implicit
shop in Parquet, rated recipes in CSV) -> `tfrec train two_tower --prepared` -> export -> recommend_new_user.

The prepared folder must hold what the in-memory path derives from the same data and split: the
held-out rows, the vocabularies and the schema features' fitted specs (numeric statistics from
the training split), so a model trained on the shards builds the same feature towers.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tfrec.commands import run
from tfrec.data.examples import write_ratings_dataset, write_shop_dataset

CHUNK = 500  # rows per chunk: the shop's 3,600 events and the recipes' 3,500 ratings take several


@pytest.fixture(scope="module")
def own(tmp_path_factory, cli_json):
    import tfrec.data.own as own_module

    root = tmp_path_factory.mktemp("own_prepared")
    shop = write_shop_dataset(root / "shop", fmt="parquet")
    recipes = write_ratings_dataset(root / "recipes", fmt="csv")
    reads = []  # (file name, chunksize) of every table read during the prepares
    real = own_module.read_table

    def spy(path, columns, *, chunksize=None):
        reads.append((str(path).rsplit("/", 1)[-1], chunksize))
        return real(path, columns, chunksize=chunksize)

    own_module.read_table = spy
    try:
        meta = {
            "shop": cli_json("data", "prepare", "--dataset", shop, "--split", "leave_last_out", "--out",
                             root / "shop_prep", "--chunk-rows", CHUNK, "--json"),
            "recipes": cli_json("data", "prepare", "--dataset", recipes, "--split", "leave_last_out", "--out",
                                root / "recipes_prep", "--chunk-rows", CHUNK, "--json"),
        }
    finally:
        own_module.read_table = real
    return {"root": root, "shop": shop, "recipes": recipes, "meta": meta, "reads": reads}


def test_prepare_reads_the_interactions_in_chunks(own):
    interactions = [r for r in own["reads"] if r[0] in ("events.parquet", "ratings.csv")]
    assert sorted(name for name, _ in interactions) == ["events.parquet", "ratings.csv"]
    assert all(chunksize == CHUNK for _, chunksize in interactions), own["reads"]
    side = [r for r in own["reads"] if r[0] not in ("events.parquet", "ratings.csv")]
    assert {name for name, _ in side} == {"products.parquet", "customers.parquet", "recipes.csv", "cooks.csv"}


@pytest.mark.parametrize("name", ["shop", "recipes"])
def test_prepared_folder_holds_what_the_in_memory_path_derives(own, name):
    from tfrec.data import load_dataset
    from tfrec.data.prepared import PreparedDataset
    from tfrec.data.vocab import fit_side_features, fit_vocabularies
    from tfrec.training import make_split

    data = load_dataset(own[name])
    train, _, test = make_split(data.ratings, "leave_last_out")
    prep = PreparedDataset(own["root"] / f"{name}_prep")
    meta = own["meta"][name]
    assert meta["schema"] == json.loads(json.dumps(data.schema.to_dict()))
    assert meta["counts"]["train"] == len(train) and meta["counts"]["test"] == len(test)
    # The same held-out rows (implicit data: no rating column), vocabularies and fitted feature specs.
    cols = ["user_id", "item_id"] + (["rating"] if data.has_ratings else []) + ["timestamp"]
    got = prep.test()
    assert list(got.columns) == cols
    key = lambda f: f[cols].sort_values(["user_id", "item_id"]).reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(key(got), key(test), check_dtype=False)
    want_vocabs = fit_vocabularies(train, items=data.items, users=data.users)
    got_vocabs = prep.vocabularies()
    assert set(got_vocabs) == set(want_vocabs) and all(got_vocabs[k] == want_vocabs[k] for k in want_vocabs)
    specs = fit_side_features(train, data.items, data.users)[0]
    assert list(prep.side_features) == list(specs)  # the order the towers concatenate them in
    for feature, spec in specs.items():
        got_spec = prep.side_features[feature]
        assert {k: v for k, v in got_spec.items() if k not in ("mean", "std")} == \
            {k: v for k, v in spec.items() if k not in ("mean", "std")}
        if spec["type"] == "numeric":
            assert got_spec["mean"] == pytest.approx(spec["mean"]) and got_spec["std"] == pytest.approx(spec["std"])
    # The examples carry the schema's features with each row's side-table values.
    assert ("rating" in prep.features) == data.has_ratings
    batch = next(iter(prep.dataset(batch_size=512, shuffle=False)))
    items = data.items.set_index("item_id")
    users = data.users.set_index("user_id")
    for j in range(0, 512, 37):
        item, user = batch["item_id"][j].numpy().decode(), batch["user_id"][j].numpy().decode()
        for feature, spec in specs.items():
            value = (users if spec["side"] == "user" else items).loc[user if spec["side"] == "user" else item, feature]
            got_value = batch[feature][j].numpy()
            if spec["type"] == "numeric":
                assert (np.isnan(value) and np.isnan(got_value)) or got_value == pytest.approx(value)
            elif spec["type"] == "multi_categorical":
                assert [v.decode() for v in got_value if v] == list(value)
            else:
                assert got_value.decode() == value
    # The typed side tables come back as load_dataset gives them.
    pd.testing.assert_frame_equal(prep.items(), data.items, check_dtype=False)
    assert prep.items().attrs["feature_types"] == data.items.attrs["feature_types"]


def _embeddings(model):
    users = list(model.vocabularies["user_id"][:20])
    return np.asarray(model.user_embeddings(users)), np.asarray(model.candidate_embeddings()[1])


def test_train_two_tower_on_prepared_own_data_learns_like_in_memory_and_exports(own, tmp_path):
    import tensorflow as tf

    import tfrec
    from tfrec.export import export_model
    from tfrec.training import load_run

    # The mean encoder: on the recipes' 3,500 ratings the default attention encoder needs more than
    # these 5 epochs (full NDCG@10 0.026 at 5 epochs, 0.103 at 12; the mean encoder 0.130 at 5,
    # popularity 0.044), and this test is about the streaming path, not the encoder.
    fast = dict(epochs=5, ensemble_size=1, plots=False, verbose=0, history_encoder="mean", history_length=20)
    ndcg, runs = {}, {}
    for name in ("shop", "recipes"):
        prepared = tfrec.train("two_tower", prepared=own["root"] / f"{name}_prep", output=tmp_path / f"{name}_prep",
                               **fast)
        # In memory without the early-stopping carve-out: both fits see the whole training split.
        memory = tfrec.train("two_tower", own[name], split="leave_last_out", output=tmp_path / f"{name}_mem",
                             validation_fraction=0.0, **fast)
        popularity = tfrec.train("popularity", own[name], split="leave_last_out", verbose=0)
        ndcg[name] = {k: r.metrics["full"]["ndcg@10"] for k, r in
                      (("prepared", prepared), ("memory", memory), ("popularity", popularity))}
        runs[name] = (prepared, memory)
    for name, m in ndcg.items():
        assert m["prepared"] > m["popularity"], (name, m)
        assert abs(m["prepared"] - m["memory"]) < 0.5 * m["memory"], (name, m)  # same data, split and towers
    # A reloaded run computes what the trained model computed (feature order survives the JSON config).
    for name, (prepared, memory) in runs.items():
        for result, folder in ((prepared, f"{name}_prep"), (memory, f"{name}_mem")):
            for got, want in zip(_embeddings(load_run(tmp_path / folder).model), _embeddings(result.model)):
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=folder)

    result = load_run(tmp_path / "shop_prep")
    assert list(result.model.side_features) == ["age", "brand", "country", "price", "tags", "title"]
    assert result.config["schema"]["name"] == "shop"
    out = export_model(result, name="shop_prepared", base_dir=tmp_path / "export", scann=False)
    card = out["model_card"]
    assert card["signatures"]["recommend_new_user"]["inputs"] == ["age", "country"]
    assert card["schema"]["interactions"]["rating"] is None
    loaded = tf.saved_model.load(next(p for p in out["paths"] if "bruteforce" in p))
    recs = loaded.signatures["recommend_new_user"](country=tf.constant(["de", "jp"]),
                                                   age=tf.constant([30.0, np.nan]))["item_ids"].numpy()
    catalog = {f"P{j:04d}" for j in range(200)}
    assert recs.shape == (2, 10) and {i.decode() for i in recs.ravel()} <= catalog


def test_malformed_own_data_fails_prepare_naming_file_column_line_and_writes_nothing(own, tmp_path, capsys):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(own["recipes"], bad)
    lines = (bad / "ratings.csv").read_text().splitlines()
    fields = lines[2000].split(",")
    fields[2] = "five"
    lines[2000] = ",".join(fields)
    (bad / "ratings.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "prep"
    assert run(["data", "prepare", "--dataset", str(bad), "--split", "random", "--out", str(out),
                "--chunk-rows", str(CHUNK)]) == 3
    err = capsys.readouterr().err
    assert "ratings.csv, line 2001, column 'stars': 'five' is not a number" in err, err
    assert not out.exists() and not list(tmp_path.glob(".prep*"))
    # A column the schema names that the file lacks (Parquet).
    schema = json.loads((own["shop"] / "schema.json").read_text())
    for key in ("interactions", "items", "users"):
        schema[key]["path"] = str(own["shop"] / schema[key]["path"])
    schema["interactions"]["timestamp"] = "time"
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    assert run(["data", "prepare", "--dataset", str(tmp_path), "--out", str(out)]) == 3
    err = capsys.readouterr().err
    assert "events.parquet" in err and "missing column(s) ['time']" in err, err
    assert not out.exists()


def test_null_timestamp_and_implicit_data_are_refused_as_in_memory(own, tmp_path, capsys):
    from tfrec.data import load_dataset
    from tfrec.errors import DataError
    from tfrec.training import make_split

    schema = json.loads((own["shop"] / "schema.json").read_text())
    for key in ("interactions", "items", "users"):
        schema[key]["path"] = str(own["shop"] / schema[key]["path"])
    schema["interactions"]["timestamp"] = None
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    with pytest.raises(DataError) as in_memory:
        make_split(load_dataset(tmp_path).ratings, "leave_last_out")
    assert run(["data", "prepare", "--dataset", str(tmp_path), "--split", "leave_last_out", "--out",
                str(tmp_path / "prep")]) == 3
    assert str(in_memory.value) in capsys.readouterr().err and not (tmp_path / "prep").exists()
    # A rating model on an implicit prepared folder: the in-memory path's error.
    assert run(["train", "mf", "--prepared", str(own["root"] / "shop_prep"), "--no-tensorboard"]) == 3
    err = capsys.readouterr().err
    assert "'rating' column" in err and "implicit feedback" in err
