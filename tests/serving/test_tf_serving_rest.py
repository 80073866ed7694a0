"""TensorFlow Serving's REST test cases replayed against ``tfrec serve`` (see tf_serving_cases.py)."""

import json
import sys
from pathlib import Path

import pytest
from starlette.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))
from tf_serving_cases import CASES  # noqa: E402

from tfrec.serving.app import create_app  # noqa: E402


@pytest.fixture(scope="module")
def tfs_client(tf_serving_manager):
    return TestClient(create_app(tf_serving_manager))


@pytest.mark.parametrize("case", CASES, ids=[f"{i:02d}-{c[0]}" for i, c in enumerate(CASES)])
def test_tf_serving_rest_case(tfs_client, case):
    _, method, path, body, status, expected = case
    content = json.dumps(body) if isinstance(body, (dict, list)) else body
    r = tfs_client.request(method, path, content=content.encode() if content is not None else None)
    doc = json.loads(r.content)  # every answer is JSON, errors included (NaN/Infinity literals allowed)
    assert r.status_code == status, (r.status_code, doc)
    if isinstance(expected, str):
        assert set(doc) == {"error"} and expected in doc["error"], doc
    elif isinstance(expected, tuple):  # ("raw", text): numbers compared as the text TF Serving writes
        as_text = dict(parse_float=str, parse_int=str, parse_constant=str)
        assert json.loads(r.content, **as_text) == json.loads(expected[1], **as_text), r.content
    else:
        assert doc == expected


def test_model_metadata_prints_protos_as_tf_serving(tfs_client):
    """HttpRestApiHandlerTest.GetModelMetadata / testGetModelMetadataREST: json_format with TF Serving's options."""
    doc = tfs_client.get("/v1/models/hp2v/metadata").json()
    assert doc["model_spec"] == {"name": "hp2v", "signature_name": "", "version": "123"}
    sigs = doc["metadata"]["signature_def"]["signature_def"]
    assert set(sigs) == {"serving_default", "regress_x_to_y", "regress_x_to_y2", "regress_x2_to_y3",
                         "classify_x_to_y"}
    assert sigs["serving_default"] == {
        "inputs": {"x": {"dtype": "DT_FLOAT", "tensor_shape": {
            "dim": [{"size": "-1", "name": ""}, {"size": "1", "name": ""}], "unknown_rank": False}, "name": "x:0"}},
        "outputs": {"y": {"dtype": "DT_FLOAT", "tensor_shape": {
            "dim": [{"size": "-1", "name": ""}, {"size": "1", "name": ""}], "unknown_rank": False}, "name": "y:0"}},
        "method_name": "tensorflow/serving/predict", "defaults": {}}
    assert sigs["classify_x_to_y"]["inputs"]["inputs"]["tensor_shape"] == {"dim": [], "unknown_rank": False} or \
        sigs["classify_x_to_y"]["inputs"]["inputs"]["name"] == "tf_example:0"
    assert "@type" not in json.dumps(doc)


def test_float_text_is_tf_serving_six_digits(tfs_client):
    """FromJsonSingleFloatTensorSixDigitPrecision: six significant digits when they round-trip."""
    r = tfs_client.post("/v1/models/default:predict", content=b'{"inputs": [0.1, 2, 1e7, 1e8]}')
    assert r.content.replace(b" ", b"") == b'{"outputs":[2.05,3.0,5000002.0,5e+07]}'
