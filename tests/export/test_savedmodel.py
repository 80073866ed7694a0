"""Exports: reload, signatures, exclusions, fallbacks, versioning, atomicity, plain-TF loading."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tfrec.errors import ExportError
from tfrec.export import export_model, read_model_card


def _ids(out, row=0):
    return [x.decode() for x in out["item_ids"].numpy()[row]]


@pytest.fixture(scope="module")
def loaded(exported):
    import scann  # noqa: F401  (the ScaNN variant needs its ops)

    paths = exported["tt_info"]["paths"]
    return {"scann": tf.saved_model.load(paths[0]), "bruteforce": tf.saved_model.load(paths[1])}


def test_layout_and_model_card(exported):
    base = exported["base"]
    assert sorted(p.name for p in base.iterdir()) == ["mf", "two_tower", "two_tower_bruteforce"]
    for name in ("two_tower", "two_tower_bruteforce", "mf"):
        version = base / name / "1"
        assert (version / "saved_model.pb").is_file()
        assert (version / "assets.extra" / "tf_serving_warmup_requests").is_file()
    card = read_model_card(base / "two_tower" / "1")
    assert card["index"]["type"] == "scann" and card["index"]["recall_at_10_vs_bruteforce"] >= 0.9
    # Two-tower candidates are unit-norm: ScaNN's spherical tree and anisotropic quantization.
    assert card["index"]["params"]["spherical"] is True
    assert card["index"]["params"]["anisotropic_quantization_threshold"] == 0.2
    assert card["dataset"] == "synthetic" and card["split"] == "leave_last_out"
    assert card["vocabulary_sizes"]["user_id"] > 1 and "tensorflow" in card["versions"]
    assert "full" in card["metrics"]


def test_serving_default_matches_in_memory_model_and_excludes_seen(exported, loaded):
    model = exported["two_tower"].model
    users = list(model.user_index_)[:20]
    out = loaded["bruteforce"].signatures["serving_default"](user_id=tf.constant(users))
    assert out["item_ids"].shape == (20, 10) and out["scores"].dtype == tf.float32
    expected = model.recommend(users, k=10)
    for r, u in enumerate(users):
        got = _ids(out, r)
        assert got == expected[expected.user_id == u].item_id.tolist()
        seen = set(model.catalog_[model.seen_[u]])
        assert not seen & set(got) and len(set(got)) == 10


def test_scann_agrees_with_bruteforce(exported, loaded):
    users = list(exported["two_tower"].model.user_index_)[:100]
    a = loaded["scann"].signatures["serving_default"](user_id=tf.constant(users))["item_ids"].numpy()
    b = loaded["bruteforce"].signatures["serving_default"](user_id=tf.constant(users))["item_ids"].numpy()
    overlap = np.mean([len(set(x) & set(y)) / 10 for x, y in zip(a, b)])
    assert overlap >= 0.9


def test_scann_never_returns_seen_items_or_exclusions(exported, loaded):
    # The ScaNN path retrieves candidates first, then drops each user's seen items (a binary search
    # in the user's sorted seen row) and the request's exclusions; a batch mixes users with long and
    # short histories and an unknown user.
    model = exported["two_tower"].model
    users = sorted(model.user_index_, key=lambda u: -len(model.seen_[u]))[:5] + list(model.user_index_)[:5]
    out = loaded["scann"].signatures["serving_default"](user_id=tf.constant(users + ["no-such-user"]))
    for r, u in enumerate(users):
        got = _ids(out, r)
        assert len(set(got)) == 10 and not set(model.catalog_[model.seen_[u]]) & set(got)
    excluded = _ids(out, 0)[:2]
    again = loaded["scann"].signatures["recommend"](user_id=tf.constant(users[:1]), k=tf.constant(10),
                                                   exclude_item_ids=tf.constant([excluded]))
    assert not set(excluded) & set(_ids(again)) and _ids(again)[:8] == _ids(out, 0)[2:]


def test_unknown_user_gets_popular_items(exported, loaded):
    model = exported["two_tower"].model
    out = loaded["bruteforce"].signatures["serving_default"](user_id=tf.constant(["no-such-user"]))
    popular = model.catalog_[np.lexsort((np.arange(len(model.popularity_)), -model.popularity_))[:10]]
    assert _ids(out) == list(popular)


def test_recommend_k_and_request_exclusions(exported, loaded):
    user = list(exported["two_tower"].model.user_index_)[0]
    sig = loaded["bruteforce"].signatures["recommend"]
    top = _ids(sig(user_id=tf.constant([user]), k=tf.constant(5), exclude_item_ids=tf.constant([[""]])))
    assert len(top) == 5
    again = _ids(sig(user_id=tf.constant([user]), k=tf.constant(5), exclude_item_ids=tf.constant([[top[0], top[2]]])))
    assert top[0] not in again and top[2] not in again and again[:2] == [top[1], top[3]]
    with pytest.raises(tf.errors.InvalidArgumentError):
        sig(user_id=tf.constant([user]), k=tf.constant(10_000), exclude_item_ids=tf.constant([[""]]))


def test_bruteforce_recommend_is_exact_for_a_batch_with_shared_exclusions(exported, loaded):
    # The brute-force variant masks seen items and exclusions over the whole catalog: its top k_max
    # equals the model's ranking minus the excluded items, for every user of a batch (one row of
    # exclusions applies to all), and an unknown user in the batch gets the popularity ranking.
    model = exported["two_tower"].model
    users = list(model.user_index_)[:8]
    k = read_model_card(exported["tt_info"]["paths"][1])["index"]["k_max"]
    expected = model.recommend(users, k=k + 3)
    excluded = expected[expected.user_id == users[0]].item_id.tolist()[:3] + ["no-such-item"]
    out = loaded["bruteforce"].signatures["recommend"](user_id=tf.constant(users + ["no-such-user"]),
                                                      k=tf.constant(k), exclude_item_ids=tf.constant([excluded]))
    for r, u in enumerate(users):
        want = [i for i in expected[expected.user_id == u].item_id.tolist() if i not in excluded][:k]
        assert _ids(out, r) == want
    order = np.lexsort((np.arange(len(model.popularity_)), -model.popularity_))
    assert _ids(out, len(users)) == [i for i in model.catalog_[order] if i not in excluded][:k]


def test_embeddings_similar_items_and_new_users(exported, loaded):
    model = exported["two_tower"].model
    m = loaded["bruteforce"]
    users = list(model.user_index_)[:3]
    emb = m.signatures["user_embedding"](user_id=tf.constant(users))["embedding"].numpy()
    np.testing.assert_allclose(emb, model.user_embeddings(users), atol=1e-5)
    item = model.catalog_[0]
    sim = _ids(m.signatures["similar_items"](item_id=tf.constant([item]), k=tf.constant(5)))
    assert item not in sim
    assert sim == model.similar_items([item], k=5).similar_item_id.tolist()
    new = m.signatures["recommend_new_user"](gender=tf.constant(["F"]), age=tf.constant([23], tf.int64),
                                             occupation=tf.constant(["student"]), zip=tf.constant(["94305"]))
    q = model.query_from_demographics(["F"], [23], ["student"], ["94305"])
    _, cand = model.candidate_embeddings()
    expected = model.catalog_[np.argsort(-(q @ cand.T)[0], kind="stable")[:10]]
    assert set(_ids(new)) == set(expected)


def test_rating_export_matches_model(exported):
    model = exported["mf"].model
    m = tf.saved_model.load(exported["mf_info"]["paths"][0])
    users, items = ["1", "2", "nobody"], [model.catalog_[0], model.catalog_[1], model.catalog_[0]]
    out = m.signatures["serving_default"](user_id=tf.constant(users), item_id=tf.constant(items))["rating"].numpy()
    np.testing.assert_allclose(out, model.predict_ratings(users, items), rtol=1e-5)


def test_versions_refuse_overwrite_and_failed_export_leaves_nothing(exported, tmp_path, monkeypatch):
    run = exported["mf"].run_dir
    first = export_model(run, name="m", base_dir=tmp_path)
    second = export_model(run, name="m", base_dir=tmp_path)
    assert (first["version"], second["version"]) == (1, 2)
    with pytest.raises(ExportError, match="already exists"):
        export_model(run, name="m", base_dir=tmp_path, version=1)
    export_model(run, name="m", base_dir=tmp_path, version=1, overwrite=True)

    import tfrec.export.savedmodel as sm

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(sm, "write_extras", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        export_model(run, name="m", base_dir=tmp_path)
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["1", "2"]  # no 3, no temp folders


def test_fresh_tensorflow_process_loads_every_export(exported, tmp_path):
    """No tfrec, no TF_USE_LEGACY_KERAS: just TensorFlow (and scann for the ScaNN variant)."""
    model = exported["two_tower"].model
    user = list(model.user_index_)[0]
    expected = {"user": user, "items": model.recommend([user], k=10).item_id.tolist(),
                "mf": float(exported["mf"].model.predict_ratings([user], [model.catalog_[0]])[0]),
                "item": str(model.catalog_[0])}
    paths = exported["tt_info"]["paths"] + exported["mf_info"]["paths"]
    script = tmp_path / "load.py"
    script.write_text(f"""
import json, sys
import tensorflow as tf
exp = json.loads({json.dumps(json.dumps(expected))})
sc, bf, mf = {paths!r}
def ids(out): return [x.decode() for x in out["item_ids"].numpy()[0]]
m = tf.saved_model.load(bf)
assert "scann" not in sys.modules
assert ids(m.signatures["serving_default"](user_id=tf.constant([exp["user"]]))) == exp["items"]
assert len(ids(m.signatures["recommend"](user_id=tf.constant([exp["user"]]), k=tf.constant(3), exclude_item_ids=tf.constant([[""]])))) == 3
m.signatures["user_embedding"](user_id=tf.constant([exp["user"]]))
m.signatures["item_embedding"](item_id=tf.constant([exp["item"]]))
m.signatures["similar_items"](item_id=tf.constant([exp["item"]]), k=tf.constant(3))
m.signatures["recommend_new_user"](gender=tf.constant(["M"]), age=tf.constant([30], tf.int64), occupation=tf.constant(["other"]), zip=tf.constant(["10001"]))
r = tf.saved_model.load(mf).signatures["serving_default"](user_id=tf.constant([exp["user"]]), item_id=tf.constant([exp["item"]]))
assert abs(float(r["rating"].numpy()[0]) - exp["mf"]) < 1e-4
import scann
s = tf.saved_model.load(sc)
assert len(ids(s.signatures["serving_default"](user_id=tf.constant([exp["user"]])))) == 10
print("OK")
""")
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("OK")


def test_saved_model_cli_lists_signatures(exported):
    cli = Path(sys.executable).parent / "saved_model_cli"
    out = subprocess.run([str(cli), "show", "--dir", exported["tt_info"]["paths"][1], "--all"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0
    for sig in ("serving_default", "recommend", "recommend_new_user", "user_embedding", "item_embedding",
                "similar_items"):
        assert f"signature_def['{sig}']" in out.stdout
    assert "outputs['item_ids']" in out.stdout and "outputs['scores']" in out.stdout


def test_warmup_file_holds_prediction_logs(exported):
    from tensorflow_serving.apis import prediction_log_pb2

    path = Path(exported["tt_info"]["paths"][1]) / "assets.extra" / "tf_serving_warmup_requests"
    logs = [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in tf.data.TFRecordDataset(str(path))]
    assert {log.predict_log.request.model_spec.signature_name for log in logs} >= {"serving_default", "recommend"}


def test_served_arrays_are_variables_not_graph_constants(exported):
    """Embeddings, ids, seen items and popularity live in the variables/ checkpoint: a GraphDef is
    capped at 2 GB by protobuf and Grappler folds over its constants on the first run."""
    from tensorflow.core.protobuf import saved_model_pb2

    model = exported["two_tower"].model
    n_users, n_items = len(model.user_index_) + 1, len(model.catalog_)
    for path in exported["tt_info"]["paths"]:
        shapes = [tuple(shape) for _, shape in tf.train.list_variables(str(Path(path) / "variables" / "variables"))]
        saved = saved_model_pb2.SavedModel.FromString((Path(path) / "saved_model.pb").read_bytes())
        nodes = list(saved.meta_graphs[0].graph_def.node)
        for fn in saved.meta_graphs[0].graph_def.library.function:
            nodes += list(fn.node_def)
        const_shapes = {tuple(d.size for d in n.attr["value"].tensor.tensor_shape.dim) for n in nodes if n.op == "Const"}
        dim = model.candidate_embeddings()[1].shape[1]
        assert (n_items,) in shapes, shapes  # popularity scores (the id hash tables keep their own keys)
        for shape in [(n_users, dim), (n_items, dim)]:
            assert shape in shapes, (path, shape, shapes)
            assert shape not in const_shapes, (path, shape)


def test_scann_index_uses_anisotropic_quantization_and_a_spherical_tree():
    """ScaNN's MIPS settings find more of the exact top-10 than the stock tfrs layer's, same budget."""
    import scann  # noqa: F401

    from tfrec.export import scann_index
    from tfrec.export.ann_index import is_unit_norm

    rng = np.random.default_rng(0)

    def clustered(n):
        centres = rng.standard_normal((200, 32)).astype(np.float32)
        x = centres[rng.integers(0, 200, n)] + 0.35 * rng.standard_normal((n, 32)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    items, queries = clustered(50_000), clustered(200)
    assert is_unit_norm(items) and not is_unit_norm(2 * items)
    exact = np.argsort(-(queries @ items.T), axis=1)[:, :10]

    def recall(**settings):
        found = []
        for _ in range(3):  # each build trains its own partition: average a few
            layer = scann_index(k=10, num_leaves=200, num_leaves_to_search=10, num_reordering_candidates=40, **settings)
            layer.index(tf.constant(items), tf.range(len(items), dtype=tf.int64))
            ids = layer(tf.constant(queries))[1].numpy()
            found.append(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, exact)]))
        return float(np.mean(found))

    stock = recall(anisotropic_quantization_threshold=float("nan"), spherical=False)  # what tfrs builds
    tuned = recall(anisotropic_quantization_threshold=0.2, spherical=True)
    assert tuned > stock + 0.01 and tuned > 0.85


def test_choose_scann_params_builds_one_index_and_queries_each_setting(monkeypatch):
    """The grid is measured on one searcher (one k-means tree) through ScaNN's search-time overrides:
    fewer leaves searched finds fewer of the exact top-10, and the widest setting nearly all."""
    import scann  # noqa: F401

    from tfrec.export import ann_index

    builds = []
    real = ann_index.scann_searcher
    monkeypatch.setattr(ann_index, "scann_searcher", lambda *a, **kw: builds.append(kw) or real(*a, **kw))
    rng = np.random.default_rng(0)
    cand = rng.standard_normal((25_000, 16)).astype(np.float32)
    cand /= np.linalg.norm(cand, axis=1, keepdims=True)
    choice = ann_index.choose_scann_params(cand[:50], cand, k=10)
    trials = choice["trials"]
    assert len(builds) == 1 and len(trials) == 12
    by_leaves = {}
    for t in trials:
        by_leaves[t["num_leaves_to_search"]] = max(by_leaves.get(t["num_leaves_to_search"], 0), t["recall_at_k"])
    fewest, most = by_leaves[min(by_leaves)], by_leaves[max(by_leaves)]
    assert most >= 0.95 and fewest < most - 0.2
