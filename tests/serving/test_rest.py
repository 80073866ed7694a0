"""The REST server: TF Serving's API, errors, versions, hot reload, batching, metrics, fuzzing."""

import json
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tfrec.serving.app import create_app
from tfrec.serving.model_manager import ModelManager
from tfrec.serving.server_config import BatchingParameters, ModelEntry, MonitoringConfig

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def manager(exported):
    base = exported["base"]
    entries = [ModelEntry(n, base / n) for n in ("two_tower", "two_tower_bruteforce", "mf")]
    entries[2].labels = {"stable": 1}
    m = ModelManager(entries, poll_seconds=0)
    m.refresh()
    return m


@pytest.fixture(scope="module")
def client(manager):
    return TestClient(create_app(manager, monitoring=MonitoringConfig(enable=True)))


def test_status_and_metadata(client):
    r = client.get("/v1/models/two_tower")
    assert r.status_code == 200
    assert r.json() == {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    assert client.get("/v1/models/mf/versions/1").status_code == 200
    assert client.get("/v1/models/mf/labels/stable").status_code == 200
    meta = client.get("/v1/models/two_tower_bruteforce/metadata").json()
    assert meta["model_spec"] == {"name": "two_tower_bruteforce", "signature_name": "", "version": "1"}
    sigs = meta["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "recommend", "similar_items"} <= set(sigs)
    assert sigs["serving_default"]["inputs"]["user_id"]["dtype"] == "DT_STRING"
    assert set(sigs["serving_default"]["outputs"]) == {"item_ids", "scores"}


def test_predict_row_and_columnar(client, exported):
    user = list(exported["two_tower"].model.user_index_)[0]
    scann = client.post("/v1/models/two_tower:predict", json={"instances": [{"user_id": user}]}).json()
    assert len(scann["predictions"][0]["item_ids"]) == 10 and len(scann["predictions"][0]["scores"]) == 10
    row = client.post("/v1/models/two_tower_bruteforce:predict", json={"instances": [{"user_id": user}]}).json()
    pred = row["predictions"][0]
    assert pred["item_ids"] == exported["two_tower"].model.recommend([user]).item_id.tolist()
    plain = client.post("/v1/models/two_tower_bruteforce:predict", json={"instances": [user]}).json()
    assert plain == row  # a single-input signature also takes a plain list
    col = client.post("/v1/models/two_tower_bruteforce:predict", json={"inputs": {"user_id": [user]}}).json()
    assert col["outputs"]["item_ids"] == [pred["item_ids"]]
    b64 = client.post("/v1/models/two_tower_bruteforce:predict",
                      json={"instances": [{"b64": __import__("base64").b64encode(user.encode()).decode()}]}).json()
    assert b64["predictions"][0]["item_ids"] == pred["item_ids"]
    rec = client.post("/v1/models/two_tower_bruteforce:predict", json={
        "signature_name": "recommend", "inputs": {"user_id": [user], "k": 3, "exclude_item_ids": [[""]]}}).json()
    assert rec["outputs"]["item_ids"] == [pred["item_ids"][:3]]
    # A single output collapses: predictions are bare numbers.
    mf = client.post("/v1/models/mf/versions/1:predict",
                     json={"instances": [{"user_id": "1", "item_id": "2"}, {"user_id": "2", "item_id": "2"}]}).json()
    assert isinstance(mf["predictions"][0], float) and len(mf["predictions"]) == 2


@pytest.mark.parametrize("path,body,status,fragment", [
    ("/v1/models/nope:predict", {"instances": ["1"]}, 404, "Servable not found"),
    ("/v1/models/mf/versions/9:predict", {"instances": ["1"]}, 404, "Specific(mf, 9)"),
    ("/v1/models/mf/labels/canary:predict", {"instances": ["1"]}, 400, "Unrecognized servable version label: canary"),
    ("/v1/models/mf:predict", {}, 400, "Missing 'inputs' or 'instances' key"),
    ("/v1/models/mf:predict", {"instances": [{"user_id": "1", "item_id": "2"}], "inputs": {}}, 400, "only one of"),
    ("/v1/models/mf:predict", {"instances": [{"user_id": 1, "item_id": "2"}]}, 400, "is not of expected type"),
    ("/v1/models/mf:predict", {"instances": [{"user_id": "1"}]}, 400, "keys must be equal to: item_id,user_id"),
    ("/v1/models/mf:predict", {"inputs": {"user_id": ["1"]}}, 400, "Missing named input: item_id"),
    ("/v1/models/mf:predict", {"instances": []}, 400, "No values in 'instances' array"),
    ("/v1/models/mf:predict", {"instances": ["1"], "signature_name": "nope"}, 400, "not found in signature def"),
    ("/v1/models/mf:classify", {"examples": [{"x": 1}]}, 400, "Expected one input Tensor."),
    ("/v1/models/mf:regress", {"examples": [{"x": 1}]}, 400, "Expected one input Tensor."),
    ("/v1/models/two_tower_bruteforce:predict", {"signature_name": "recommend", "inputs": {
        "user_id": ["1"], "k": 0, "exclude_item_ids": [[""]]}}, 400, "k must be >= 1 (got 0)"),
    ("/v1/models/two_tower_bruteforce:predict", {"signature_name": "recommend", "inputs": {
        "user_id": ["1"], "k": 5000, "exclude_item_ids": [[""]]}}, 400, "k must be <= "),
    ("/v1/models/two_tower_bruteforce:predict", {"signature_name": "similar_items", "inputs": {
        "item_id": ["no-such-item"], "k": 3}}, 400, "unknown id in input 'item_id'"),
])
def test_errors_match_tf_serving(client, path, body, status, fragment):
    r = client.post(path, json=body)
    assert r.status_code == status
    assert set(r.json()) == {"error"} and fragment in r.json()["error"]


def test_malformed_json_and_unknown_model_status(client):
    r = client.post("/v1/models/mf:predict", content=b"{not json")
    assert r.status_code == 400 and r.json()["error"].startswith("JSON Parse error")
    assert client.get("/v1/models/nope").status_code == 404
    assert client.get("/v1/models/mf/versions/x").status_code == 400


def test_metrics_endpoint_counts_requests(client):
    client.post("/v1/models/mf:predict", json={"instances": [{"user_id": "1", "item_id": "2"}]})
    text = client.get("/monitoring/prometheus/metrics").text
    assert ':tensorflow:serving:request_count_total{model_name="mf",status="OK"}' in text
    assert ":tensorflow:serving:request_latency_bucket" in text


def test_fuzzed_bodies_only_get_4xx_and_the_server_keeps_answering(client):
    rng = random.Random(0)
    atoms = ['"1"', "1", "1.5", "null", "true", "[]", "{}", '{"b64": "!!"}', '"\\u0000"']
    bodies = [b"", b"[", b"null", b"[]", b'{"instances": "x"}', b"{" * 5000, b"[" * 100000, b"x" * 20_000_000]
    for _ in range(150):
        depth = rng.randint(0, 40)
        value = rng.choice(atoms)
        for _ in range(depth):
            value = rng.choice([f"[{value}]", f'{{"user_id": {value}}}', f"[{value}, {value}]"])
        key = rng.choice(["instances", "inputs", "signature_name", "x"])
        bodies.append(f'{{"{key}": {value}}}'.encode())
    for body in bodies:
        r = client.post("/v1/models/mf:predict", content=body)
        assert 400 <= r.status_code < 500, (body[:80], r.status_code, r.text[:200])
    assert client.get("/v1/models/mf").status_code == 200


def test_batching_merges_concurrent_requests(exported, manager):
    import asyncio

    import httpx2 as httpx

    app = create_app(manager, batching=BatchingParameters(max_batch_size=64, batch_timeout_micros=20_000))
    users = list(exported["two_tower"].model.user_index_)[:32]

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            rs = await asyncio.gather(*[c.post("/v1/models/two_tower_bruteforce:predict",
                                               json={"instances": [{"user_id": u}]}) for u in users])
        return rs

    responses = asyncio.run(main())
    assert all(r.status_code == 200 for r in responses)
    expected = exported["two_tower"].model.recommend(users)
    for u, r in zip(users, responses):
        assert r.json()["predictions"][0]["item_ids"] == expected[expected.user_id == u].item_id.tolist()
    batcher = app.state.batcher
    assert batcher.requests_batched == 32 and batcher.batches_run < 32


def test_app_shutdown_stops_its_worker_threads(exported, manager):
    app = create_app(manager, batching=BatchingParameters(max_batch_size=8, batch_timeout_micros=0))
    user = list(exported["two_tower"].model.user_index_)[0]
    with TestClient(app) as c:  # runs the app's lifespan: startup here, shutdown on exit
        r = c.post("/v1/models/two_tower_bruteforce:predict", json={"instances": [{"user_id": user}]})
        assert r.status_code == 200 and app.state.batcher.requests_batched == 1
    for pool in (app.state.predict_pool, app.state.batcher._executor):
        with pytest.raises(RuntimeError, match="shutdown"):
            pool.submit(int)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url, body=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def test_real_server_hot_loads_new_versions_without_failures(exported, tmp_path):
    """tfrec serve on loopback; a new version appears mid-traffic; old one is unloaded; 0 failures."""
    base = tmp_path / "mf"
    shutil.copytree(Path(exported["mf_info"]["paths"][0]), base / "1")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tfrec.cli", "serve", "--model_name", "mf", "--model_base_path",
                             str(base), "--rest_api_port", str(port), "--port", "0",
                             "--file_system_poll_wait_seconds", "0.3"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1/models/mf"
    try:
        deadline = time.time() + 90
        while True:
            try:
                _get(url)
                break
            except OSError:
                assert time.time() < deadline and proc.poll() is None, "server did not start"
                time.sleep(0.3)
        failures, done = [], threading.Event()

        def traffic():
            n = 0
            while not done.is_set() and n < 2000:
                n += 1
                try:
                    _get(url + ":predict", {"instances": [{"user_id": "1", "item_id": "2"}]})
                except Exception as exc:  # noqa: BLE001 - any failure counts
                    failures.append(repr(exc))

        threads = [threading.Thread(target=traffic) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        # Versions appear atomically (written aside, then renamed), as tfrec export does.
        shutil.copytree(base / "1", tmp_path / ".2.tmp")
        (tmp_path / ".2.tmp").rename(base / "2")
        deadline = time.time() + 60
        while [s["version"] for s in _get(url)["model_version_status"]] != ["2"]:
            assert time.time() < deadline, "version 2 was not loaded"
            time.sleep(0.2)
        time.sleep(0.5)
        done.set()
        for t in threads:
            t.join(timeout=30)
        assert failures == []
        assert _get(url + "/versions/2")["model_version_status"][0]["state"] == "AVAILABLE"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
