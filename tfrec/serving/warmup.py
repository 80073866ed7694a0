"""Model warm-up at load time: replay ``assets.extra/tf_serving_warmup_requests`` as TF Serving does.

TF Serving (``--enable_model_warmup``, on by default) reads that file -- a TFRecord of
``PredictionLog`` protos -- after loading a version and before serving it, and runs each logged
request ``num_request_iterations`` times (``--num_request_iterations_for_warmup``; default 1)
against the new version directly, whatever model name the logged ``model_spec`` carries. The
first ``Session::Run`` of a signature pays for graph optimisation (Grappler) and lazy
initialisation; replaying makes the version pay it before it is reported AVAILABLE instead of on
a user's first request. A warm-up request that fails fails the load of that version.

Rules from ``saved_model_warmup_util.cc`` / ``saved_model_warmup.cc`` (Apache-2.0, the spec):

* no file: nothing to do (warm-up data is optional);
* a record that is not a ``PredictionLog``: INVALID_ARGUMENT ``Failed to parse warmup record``;
* more than 1,000 records (``WarmupConsts::kMaxNumRecords``): INVALID_ARGUMENT;
* a file that is not TFRecord: DATA_LOSS ``... Please verify your warmup data is in TFRecord format.``;
* ``predict_log``, ``classify_log``, ``regress_log``, ``multi_inference_log`` run;
  ``session_run_log`` and ``predict_streamed_log`` are UNIMPLEMENTED; a log with none set is skipped.
"""

from __future__ import annotations

from pathlib import Path

from tfrec.serving.model_manager import InvalidRequest, Servable, StatusError, load_servable

REQUESTS_FILE = "tf_serving_warmup_requests"
MAX_RECORDS = 1000


class _OneServable:
    """The part of :class:`~tfrec.serving.model_manager.ModelManager` the gRPC servicer reads,
    answering every model spec with the version being warmed up (TF Serving runs warm-up requests
    on the new bundle itself, not through the manager)."""

    def __init__(self, servable: Servable):
        self.servable = servable

    def resolve(self, name=None, version=None, label=None) -> Servable:
        return self.servable


def warmup_requests_path(version_dir) -> Path:
    return Path(version_dir) / "assets.extra" / REQUESTS_FILE


def _records(path: Path):
    """The file's records (bytes); a corrupt or non-TFRecord file raises DATA_LOSS."""
    import tensorflow as tf

    try:
        for record in tf.data.TFRecordDataset(str(path)):
            yield record.numpy()
    except (tf.errors.DataLossError, tf.errors.OutOfRangeError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StatusError(f"{message}. Please verify your warmup data is in TFRecord format.", "DATA_LOSS") from None


def run_warmup(servable: Servable, *, iterations: int = 1) -> int:
    """Replay the version's warm-up requests (each ``iterations`` times); returns the records read.

    Raises :class:`~tfrec.serving.model_manager.StatusError` (with TF Serving's code and wording)
    when the file is malformed, holds too many records, or a request fails.
    """
    from tensorflow_serving.apis import prediction_log_pb2

    from tfrec.serving.grpc_server import PredictionServicer

    path = warmup_requests_path(servable.path)
    if not path.is_file():
        return 0
    servicer = PredictionServicer(_OneServable(servable))
    # The servicer's methods without their gRPC error mapping: a failure raises its StatusError.
    run = {"predict_log": PredictionServicer.Predict.__wrapped__,
           "classify_log": PredictionServicer.Classify.__wrapped__,
           "regress_log": PredictionServicer.Regress.__wrapped__,
           "multi_inference_log": PredictionServicer.MultiInference.__wrapped__}
    n = 0
    for record in _records(path):
        log = prediction_log_pb2.PredictionLog()
        try:
            log.ParseFromString(record)
        except Exception:  # noqa: BLE001 - protobuf's DecodeError
            raise InvalidRequest(f"Failed to parse warmup record: {record[:64]!r} from {path}") from None
        kind = log.WhichOneof("log_type")
        if kind in ("session_run_log", "predict_streamed_log"):
            raise StatusError(f"Unsupported log_type for warmup: {kind}", "UNIMPLEMENTED")
        if kind is not None:
            request = getattr(log, kind).request
            for _ in range(max(int(iterations), 1)):
                run[kind](servicer, request, None)
        n += 1
        if n > MAX_RECORDS:
            raise InvalidRequest(f"Number of warmup records exceeds the maximum ({MAX_RECORDS}) at {path}")
    return n


def load_warmed_servable(name: str, version: int, path: Path, *, warmup: bool = True, iterations: int = 1,
                         **session_options) -> Servable:
    """:func:`~tfrec.serving.model_manager.load_servable`, then :func:`run_warmup` (``warmup=True``).

    The version is handed to the manager, and so served, only after its warm-up requests ran; if
    one fails, its session is closed and the load fails with that error (TF Serving's
    ``LoadSavedModelBundle`` -> ``RunSavedModelWarmup``).
    """
    servable = load_servable(name, version, path, **session_options)
    if warmup:
        try:
            run_warmup(servable, iterations=iterations)
        except Exception:
            servable.loaded.close()
            raise
    return servable
