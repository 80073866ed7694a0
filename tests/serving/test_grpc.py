"""The gRPC API with the official ``tensorflow_serving.apis`` stubs.

Ports the gRPC cases of TensorFlow Serving's ``model_servers/tensorflow_model_server_test.py``
(Apache-2.0; named per test) onto the TF Serving-like test models (tf_serving_models.py), plus the
ScaNN export answering the same over gRPC and REST.
"""

import grpc
import numpy as np
import pytest
import tfrec  # noqa: F401
import tensorflow as tf
from starlette.testclient import TestClient
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from tfrec.serving.app import create_app
from tfrec.serving.grpc_server import create_grpc_server
from tfrec.serving.model_manager import ModelManager
from tfrec.serving.server_config import ModelEntry

TIMEOUT = 30


@pytest.fixture(scope="module")
def grpc_models(tf_serving_models):
    p = tf_serving_models
    m = ModelManager([ModelEntry("default", p["saved_model_half_plus_two_cpu"]),
                      ModelEntry("tf2", p["saved_model_half_plus_two_tf2_cpu"]),
                      ModelEntry("half_plus_three", p["saved_model_half_plus_three"]),
                      ModelEntry("labelled", p["saved_model_half_plus_two_2_versions"], policy="all",
                                 labels={"stable": 123, "canary": 124})], poll_seconds=0)
    m.refresh()
    server, port = create_grpc_server(m, port=0)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield m, channel
    channel.close()
    server.stop(0)


def _predict_stub(channel):
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


def _verify_predict(channel, expected, model="default", signature_name="serving_default", specify_output=True,
                    batch_input=False, version=None, label=None):
    """tensorflow_model_server_test_base.VerifyPredictRequest."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    request.inputs["x"].dtype = types_pb2.DT_FLOAT
    request.inputs["x"].float_val.append(2.0)
    request.inputs["x"].tensor_shape.dim.add().size = 1
    if batch_input:
        request.inputs["x"].tensor_shape.dim.add().size = 1
    if specify_output:
        request.output_filter.append("y")
    result = _predict_stub(channel).Predict(request, TIMEOUT)
    assert "y" in result.outputs
    assert result.outputs["y"].dtype == types_pb2.DT_FLOAT
    assert tf.make_ndarray(result.outputs["y"]).reshape(-1).tolist() == [expected]
    assert result.model_spec.name == model
    assert result.model_spec.signature_name == signature_name
    return result


def test_get_model_status(grpc_models):  # testGetModelStatus
    _, channel = grpc_models
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "default"
    result = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, TIMEOUT)
    assert len(result.model_version_status) == 1
    assert result.model_version_status[0].version == 123
    assert result.model_version_status[0].status.error_code == 0


def test_get_model_metadata(grpc_models):  # testGetModelMetadata
    _, channel = grpc_models
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "default"
    request.metadata_field.append("signature_def")
    result = _predict_stub(channel).GetModelMetadata(request, TIMEOUT)
    assert result.model_spec.name == "default" and result.model_spec.version.value == 123
    assert len(result.metadata) == 1 and "signature_def" in result.metadata
    sig_map = get_model_metadata_pb2.SignatureDefMap()
    result.metadata["signature_def"].Unpack(sig_map)
    assert sig_map.signature_def["regress_x_to_y"].method_name == "tensorflow/serving/regress"


@pytest.mark.parametrize("model", ["default", "tf2"])  # testClassify, testClassifyTf2
def test_classify(grpc_models, model):
    _, channel = grpc_models
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = "classify_x_to_y"
    request.input.example_list.examples.add().features.feature["x"].float_list.value.extend([2.0])
    result = _predict_stub(channel).Classify(request, TIMEOUT)
    assert len(result.result.classifications) == 1
    assert len(result.result.classifications[0].classes) == 1
    assert result.result.classifications[0].classes[0].score == 3.0
    assert (result.model_spec.name, result.model_spec.signature_name, result.model_spec.version.value) == (
        model, "classify_x_to_y", 123)


@pytest.mark.parametrize("model", ["default", "tf2"])  # testRegress, testRegressTf2
def test_regress(grpc_models, model):
    _, channel = grpc_models
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = "regress_x_to_y"
    request.input.example_list.examples.add().features.feature["x"].float_list.value.extend([2.0])
    result = _predict_stub(channel).Regress(request, TIMEOUT)
    assert len(result.result.regressions) == 1 and result.result.regressions[0].value == 3.0
    assert (result.model_spec.name, result.model_spec.signature_name, result.model_spec.version.value) == (
        model, "regress_x_to_y", 123)


@pytest.mark.parametrize("model", ["default", "tf2"])  # testMultiInference, testMultiInferenceTf2
def test_multi_inference(grpc_models, model):
    _, channel = grpc_models
    request = inference_pb2.MultiInferenceRequest()
    request.tasks.add().model_spec.name = model
    request.tasks[0].model_spec.signature_name = "regress_x_to_y"
    request.tasks[0].method_name = "tensorflow/serving/regress"
    request.tasks.add().model_spec.name = model
    request.tasks[1].model_spec.signature_name = "classify_x_to_y"
    request.tasks[1].method_name = "tensorflow/serving/classify"
    request.input.example_list.examples.add().features.feature["x"].float_list.value.extend([2.0])
    result = _predict_stub(channel).MultiInference(request, TIMEOUT)
    assert len(result.results) == 2
    assert result.results[0].regression_result.regressions[0].value == 3.0
    assert result.results[1].classification_result.classifications[0].classes[0].score == 3.0
    for i in range(2):
        assert result.results[i].model_spec.name == model
        assert result.results[i].model_spec.signature_name == request.tasks[i].model_spec.signature_name
        assert result.results[i].model_spec.version.value == 123


def test_predict_saved_model(grpc_models):  # testPredictSavedModel, testGoodModelConfig
    _, channel = grpc_models
    _verify_predict(channel, 3.0)
    _verify_predict(channel, 3.0, specify_output=False)
    _verify_predict(channel, 4.0, model="half_plus_three")
    _verify_predict(channel, 4.0, model="half_plus_three", specify_output=False)
    _verify_predict(channel, 3.0, model="tf2", specify_output=False)
    _verify_predict(channel, 3.0, model="labelled", version=124)
    assert _verify_predict(channel, 3.0, model="labelled", label="stable").model_spec.version.value == 123


def test_tf_saved_model_save_multiple_signatures(tmp_path):  # test_tf_saved_model_save(_multiple_signatures)
    root = tf.train.Checkpoint()
    root.v1, root.v2 = tf.Variable(3.0), tf.Variable(2.0)
    root.f = tf.function(lambda x: {"y": root.v1 * root.v2 * x})
    tf.saved_model.save(root, str(tmp_path / "a" / "00000123"), root.f.get_concrete_function(
        tf.TensorSpec(None, tf.float32)))
    multi = tf.train.Checkpoint()
    multi.f = tf.function(lambda x: {"y": 1.0}, input_signature=[tf.TensorSpec(None, tf.float32)])
    multi.g = tf.function(lambda x: {"y": 2.0}, input_signature=[tf.TensorSpec(None, tf.float32)])
    tf.saved_model.save(multi, str(tmp_path / "b" / "00000123"),
                        signatures={"serving_default": multi.f, "custom_signature_key": multi.g})
    m = ModelManager([ModelEntry("default", tmp_path / "a"), ModelEntry("multi", tmp_path / "b")], poll_seconds=0)
    m.refresh()
    server, port = create_grpc_server(m, port=0)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            _verify_predict(channel, 12.0, specify_output=False)
            _verify_predict(channel, 2.0, model="multi", signature_name="custom_signature_key")
            _verify_predict(channel, 1.0, model="multi")
    finally:
        server.stop(0)


@pytest.mark.parametrize("mutate,code,text", [
    (lambda r: setattr(r.model_spec, "name", "nope"), grpc.StatusCode.NOT_FOUND, "Servable not found"),
    (lambda r: setattr(r.model_spec, "signature_name", "nope"), grpc.StatusCode.FAILED_PRECONDITION,
     'Serving signature key "nope" not found.'),
    (lambda r: r.output_filter.append("zz"), grpc.StatusCode.INVALID_ARGUMENT,
     "output tensor alias not found in signature: zz"),
    (lambda r: r.inputs["extra"].CopyFrom(tf.make_tensor_proto([1.0])), grpc.StatusCode.INVALID_ARGUMENT,
     "input size does not match signature: 2!=1"),
    (lambda r: setattr(r.model_spec, "version_label", "nope"), grpc.StatusCode.INVALID_ARGUMENT,
     "Unrecognized servable version label: nope"),
])
def test_predict_errors_carry_tf_serving_status(grpc_models, mutate, code, text):
    _, channel = grpc_models
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "default"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto([2.0]))
    mutate(request)
    with pytest.raises(grpc.RpcError) as info:
        _predict_stub(channel).Predict(request, TIMEOUT)
    assert info.value.code() == code and text in info.value.details()


def test_reload_config_swaps_models(tf_serving_models):  # testModelConfigReload (over HandleReloadConfigRequest)
    p = tf_serving_models
    m = ModelManager([ModelEntry("half_plus_two", p["saved_model_half_plus_two_cpu"])], poll_seconds=0)
    m.refresh()
    server, port = create_grpc_server(m, port=0)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            _verify_predict(channel, 3.0, model="half_plus_two")
            request = model_management_pb2.ReloadConfigRequest()
            cfg = request.config.model_config_list.config.add()
            cfg.name, cfg.base_path, cfg.model_platform = "half_plus_three", str(
                p["saved_model_half_plus_three"]), "tensorflow"
            reply = model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(request, TIMEOUT)
            assert reply.status.error_code == 0
            _verify_predict(channel, 4.0, model="half_plus_three")
            with pytest.raises(grpc.RpcError) as info:
                _verify_predict(channel, 3.0, model="half_plus_two")
            assert info.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        server.stop(0)


def test_scann_export_answers_the_same_over_grpc_and_rest(exported):
    base = exported["base"]
    m = ModelManager([ModelEntry("two_tower", base / "two_tower")], poll_seconds=0)
    m.refresh()
    users = [str(u) for u in list(exported["two_tower"].model.user_index_)[:3]]
    rest = TestClient(create_app(m)).post("/v1/models/two_tower:predict",
                                          json={"instances": [{"user_id": u} for u in users]}).json()
    server, port = create_grpc_server(m, port=0)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "two_tower"
            request.inputs["user_id"].CopyFrom(tf.make_tensor_proto(users))
            reply = _predict_stub(channel).Predict(request, TIMEOUT)
    finally:
        server.stop(0)
    ids = tf.make_ndarray(reply.outputs["item_ids"])
    scores = tf.make_ndarray(reply.outputs["scores"])
    assert ids.shape == (3, 10)
    for i, pred in enumerate(rest["predictions"]):
        assert [x.decode() for x in ids[i]] == pred["item_ids"]
        np.testing.assert_allclose(scores[i], pred["scores"], rtol=1e-6)


def test_grpc_predicts_share_the_rest_batcher(tf_serving_models):
    from concurrent.futures import ThreadPoolExecutor

    from tfrec.serving.server_config import BatchingParameters

    m = ModelManager([ModelEntry("default", tf_serving_models["saved_model_half_plus_two_cpu"])], poll_seconds=0)
    m.refresh()
    app = create_app(m, batching=BatchingParameters(max_batch_size=8, batch_timeout_micros=0))
    with TestClient(app) as rest:  # runs the app's loop (the batcher lives there)
        server, port = create_grpc_server(m, port=0, batch_submit=app.state.batch_submit)
        server.start()
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel, ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(lambda x: _predict_x(channel, x), [float(i) for i in range(16)]))
        finally:
            server.stop(0)
        assert answers == [0.5 * i + 2 for i in range(16)]
        assert app.state.batcher.requests_batched == 16
        assert rest.post("/v1/models/default:predict", json={"instances": [[2.0]]}).json() == {"predictions": [[3.0]]}
        assert app.state.batcher.requests_batched == 17


def _predict_x(channel, x):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "default"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto([[x]], dtype=tf.float32))
    request.output_filter.append("y")
    return float(tf.make_ndarray(_predict_stub(channel).Predict(request, TIMEOUT).outputs["y"])[0, 0])


def test_grpc_and_rest_requests_are_counted_in_one_metrics_registry(tf_serving_models):
    # TF Serving's RecordModelRequestCount / RecordRequestLatency: every request under its status code
    # name, latency only for successes, labelled API and entrypoint (GRPC "Predict", REST "predict").
    from tfrec.serving.server_config import MonitoringConfig

    m = ModelManager([ModelEntry("default", tf_serving_models["saved_model_half_plus_two_cpu"])], poll_seconds=0)
    m.refresh()
    app = create_app(m, monitoring=MonitoringConfig(enable=True))
    server, port = create_grpc_server(m, port=0, metrics=app.state.metrics)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            assert [_predict_x(channel, x) for x in (1.0, 2.0)] == [2.5, 3.0]
            bad = predict_pb2.PredictRequest()
            bad.model_spec.name = "default"
            bad.inputs["nope"].CopyFrom(tf.make_tensor_proto([[1.0]], dtype=tf.float32))
            with pytest.raises(grpc.RpcError) as err:
                _predict_stub(channel).Predict(bad, TIMEOUT)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        server.stop(0)
    rest = TestClient(app)
    assert rest.post("/v1/models/default:predict", json={"instances": [[2.0]]}).status_code == 200
    assert rest.post("/v1/models/default:predict", json={"instances": [{"nope": 1.0}]}).status_code == 400
    text = rest.get("/monitoring/prometheus/metrics").text
    assert ':tensorflow:serving:request_count_total{model_name="default",status="OK"} 3.0' in text
    assert ':tensorflow:serving:request_count_total{model_name="default",status="INVALID_ARGUMENT"} 2.0' in text
    assert ('request_latency_count{API="Predict",entrypoint="GRPC",model_name="default"} 2.0' in text), text
    assert 'request_latency_count{API="predict",entrypoint="REST",model_name="default"} 1.0' in text
