"""Model warm-up at load: TF Serving's saved_model_warmup(_util)_test.cc cases, on real SavedModels."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import tfrec  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    inference_pb2,
    model_pb2,
    predict_pb2,
    prediction_log_pb2,
    regression_pb2,
)

from tfrec.serving.model_manager import ModelManager, StatusError, load_servable
from tfrec.serving.server_config import ModelEntry
from tfrec.serving.warmup import MAX_RECORDS, load_warmed_servable, run_warmup, warmup_requests_path


def _example(x: float):
    return tf.train.Example(features=tf.train.Features(feature={"x": tf.train.Feature(
        float_list=tf.train.FloatList(value=[x]))}))


def _mixed_logs() -> list:
    """One record of each runnable log type against half_plus_two (AddMixedWarmupData)."""
    spec = lambda sig: model_pb2.ModelSpec(name="any name", signature_name=sig)  # noqa: E731
    predict = predict_pb2.PredictRequest(model_spec=spec("serving_default"))
    predict.inputs["x"].CopyFrom(tf.make_tensor_proto([[1.0]], dtype=tf.float32))
    classify = classification_pb2.ClassificationRequest(model_spec=spec("classify_x_to_y"))
    classify.input.example_list.examples.add().CopyFrom(_example(2.0))
    regress = regression_pb2.RegressionRequest(model_spec=spec("regress_x_to_y"))
    regress.input.example_list.examples.add().CopyFrom(_example(2.0))
    multi = inference_pb2.MultiInferenceRequest()
    for sig, method in (("regress_x_to_y", "tensorflow/serving/regress"),
                        ("classify_x_to_y", "tensorflow/serving/classify")):
        task = multi.tasks.add()
        task.model_spec.CopyFrom(spec(sig))
        task.method_name = method
    multi.input.example_list.examples.add().CopyFrom(_example(2.0))
    P = prediction_log_pb2
    return [P.PredictionLog(predict_log=P.PredictLog(request=predict)),
            P.PredictionLog(classify_log=P.ClassifyLog(request=classify)),
            P.PredictionLog(regress_log=P.RegressLog(request=regress)),
            P.PredictionLog(multi_inference_log=P.MultiInferenceLog(request=multi))]


def _write(version: Path, records: list, times: int = 1, framed: bool = True) -> Path:
    path = warmup_requests_path(version)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = [r if isinstance(r, bytes) else r.SerializeToString() for r in records] * times
    if framed:
        with tf.io.TFRecordWriter(str(path)) as w:
            for r in raw:
                w.write(r)
    else:  # WriteWarmupDataAsSerializedProtos: the protos back to back, no TFRecord framing
        path.write_bytes(b"".join(raw))
    return path


@pytest.fixture()
def version(tf_serving_models, tmp_path):
    """A private copy of half_plus_two's version 123 (the warm-up file is written per test)."""
    dst = tmp_path / "hp2" / "123"
    shutil.copytree(tf_serving_models["saved_model_half_plus_two_cpu"] / "00000123", dst)
    return dst


def _counting(servable):
    """Count Session::Run calls of a loaded servable (TF Serving's MockSession counts)."""
    calls = []
    run = servable.loaded.run
    servable.loaded.run = lambda feeds, fetches: calls.append(tuple(fetches)) or run(feeds, fetches)
    return calls


@pytest.mark.parametrize("iterations", [1, 2])
def test_every_logged_request_runs_iterations_times(version, iterations):  # MixedWarmupData
    _write(version, _mixed_logs(), times=10)
    servable = load_servable("hp2", 123, version)
    calls = _counting(servable)
    assert run_warmup(servable, iterations=iterations) == 40
    # Per pass: predict, classify, regress, and the multi-inference's two tasks.
    assert len(calls) == 10 * 5 * iterations
    servable.loaded.close()


def test_no_file_or_an_empty_file_runs_nothing(version):  # NoWarmupDataFile, WarmupDataFileEmpty
    servable = load_servable("hp2", 123, version)
    calls = _counting(servable)
    assert run_warmup(servable) == 0
    _write(version, [])
    assert run_warmup(servable) == 0
    assert calls == []
    servable.loaded.close()


@pytest.mark.parametrize("case, code, text", [
    ("not TFRecord", "DATA_LOSS", "Please verify your warmup data is in TFRecord format"),  # UnsupportedFileFormat
    ("too many", "INVALID_ARGUMENT", f"Number of warmup records exceeds the maximum ({MAX_RECORDS})"),
    ("unparsable", "INVALID_ARGUMENT", "Failed to parse warmup record"),  # UnparsableRecord
    ("session run", "UNIMPLEMENTED", "Unsupported log_type for warmup"),  # UnsupportedLogType_SessionRun
    ("predict streamed", "UNIMPLEMENTED", "Unsupported log_type for warmup"),
    ("failing request", "FAILED_PRECONDITION", 'Serving signature key "no_such_signature" not found'),  # RunFailure
])
def test_bad_warmup_data_fails_with_tf_servings_status(version, case, code, text):
    P = prediction_log_pb2
    logs = _mixed_logs()
    if case == "not TFRecord":
        _write(version, [P.PredictionLog(session_run_log=P.SessionRunLog())], times=10, framed=False)
    elif case == "too many":
        _write(version, logs[:1], times=MAX_RECORDS + 1)
    elif case == "unparsable":
        _write(version, [b"malformed_record"], times=10)
    elif case == "session run":
        _write(version, [P.PredictionLog(session_run_log=P.SessionRunLog())])
    elif case == "predict streamed":
        _write(version, [P.PredictionLog(predict_streamed_log=P.PredictStreamedLog())])
    else:
        bad = predict_pb2.PredictRequest()
        bad.CopyFrom(logs[0].predict_log.request)
        bad.model_spec.signature_name = "no_such_signature"
        _write(version, [logs[0], P.PredictionLog(predict_log=P.PredictLog(request=bad))])
    servable = load_servable("hp2", 123, version)
    with pytest.raises(StatusError) as err:
        run_warmup(servable)
    assert err.value.code == code and text in str(err.value), (err.value.code, str(err.value))
    servable.loaded.close()


def test_a_version_whose_warmup_fails_is_not_served(version):
    """The failed load is reported and the version stays unserved; with warm-up off it serves."""
    bad = predict_pb2.PredictRequest()
    bad.CopyFrom(_mixed_logs()[0].predict_log.request)
    bad.inputs["x"].CopyFrom(tf.make_tensor_proto(["not a float"]))
    _write(version, [prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=bad))])
    entry = ModelEntry("hp2", version.parent)
    manager = ModelManager([entry], poll_seconds=0, loader=load_warmed_servable)
    manager.refresh()
    assert manager.versions("hp2") == {} and "hp2/123" in manager.errors, manager.errors
    off = ModelManager([entry], poll_seconds=0, loader=lambda *a: load_warmed_servable(*a, warmup=False))
    off.refresh()
    assert list(off.versions("hp2")) == [123]


def test_tfrec_exports_warm_up_cleanly(exported):
    """tfrec's own exports carry warm-up requests for their signatures; replaying them succeeds and
    leaves each logged signature's callable built (the work a first request would otherwise pay)."""
    for path in (exported["tt_info"]["paths"][-1], exported["mf_info"]["paths"][0]):
        servable = load_warmed_servable("m", 1, Path(path))
        n_logged = sum(1 for _ in tf.data.TFRecordDataset(str(warmup_requests_path(path))))
        assert n_logged >= 1
        assert len(servable.loaded._callables) >= 1  # noqa: SLF001
        assert run_warmup(servable) == n_logged
        servable.loaded.close()
