"""TensorFlow Serving's gRPC API (``PredictionService``, ``ModelService``) on grpcio.

The service definitions and messages are the official ones from ``tensorflow-serving-api``; the
servicers answer from the same :class:`~tfrec.serving.model_manager.ModelManager` as the REST API
(same models, versions and labels). Status codes and texts follow TF Serving's
``prediction_service_impl.cc``, ``predict_util.cc``, ``get_model_metadata_impl.cc``,
``get_model_status_impl.cc`` and ``model_service_impl.cc`` (Apache-2.0; the behaviour spec).
"""

from __future__ import annotations

import time
from concurrent import futures
from typing import Optional

import grpc
import numpy as np

from tfrec.serving import inference
from tfrec.serving.model_manager import InvalidRequest, ModelManager, ServableNotFound, StatusError

_CODES = {name: getattr(grpc.StatusCode, name) for name in (
    "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
    "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED")}


def _spec_target(manager: ModelManager, model_spec):
    """A ModelSpec -> the servable it names (version, version_label or latest)."""
    if not model_spec.name:
        raise InvalidRequest("Missing ModelSpec name")  # (TF Serving: no servable named "")
    choice = model_spec.WhichOneof("version_choice")
    if choice == "version":
        return manager.resolve(model_spec.name, int(model_spec.version.value), None)
    if choice == "version_label":
        return manager.resolve(model_spec.name, None, model_spec.version_label)
    return manager.resolve(model_spec.name)


def _fill_spec(out_spec, servable, signature_name: str) -> None:
    out_spec.name = servable.name
    out_spec.version.value = servable.version
    out_spec.signature_name = signature_name


def _guarded(method, counted: bool = False):
    """Map tfrec's status errors (and anything unexpected) to gRPC statuses; never crash a call.

    ``counted``: the call is one of the APIs TF Serving's metrics count (Predict, Classify,
    Regress; prediction_service_impl.cc): recorded in the servicer's ``metrics`` when it has them.
    """
    def call(self, request, context):
        started, code = time.perf_counter(), "INTERNAL"
        try:
            response = method(self, request, context)
            code = "OK"
            return response
        except StatusError as exc:
            code = exc.code
            context.abort(_CODES.get(exc.code, grpc.StatusCode.UNKNOWN), str(exc))
        except Exception as exc:  # noqa: BLE001 - a message, not a dropped call
            if isinstance(exc, grpc.RpcError) or type(exc).__name__ == "_AbortError":
                raise
            context.abort(grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}")
        finally:
            metrics = getattr(self, "metrics", None)
            if counted and metrics is not None:
                metrics.observe(request.model_spec.name, method.__name__, code, time.perf_counter() - started,
                                entrypoint="GRPC")

    call.__name__ = method.__name__
    call.__doc__ = method.__doc__
    call.__wrapped__ = method  # model warm-up runs the method itself (tfrec.serving.warmup)
    return call


def _counted(method):
    """:func:`_guarded`, and the call counted in the Prometheus metrics."""
    return _guarded(method, counted=True)


def _to_array(tensor_proto) -> np.ndarray:
    import tensorflow as tf

    try:
        return tf.make_ndarray(tensor_proto)
    except Exception as exc:  # noqa: BLE001 - a malformed TensorProto is the client's
        raise InvalidRequest(f"Could not parse input tensor: {exc}") from None


def _to_proto(arr: np.ndarray):
    import tensorflow as tf

    return tf.make_tensor_proto(arr)


class PredictionServicer:
    """``tensorflow.serving.PredictionService``.

    ``batch_submit(servable, signature, arrays)`` (optional, from the REST app) runs a Predict through
    the server-side batcher, so gRPC and REST requests share batches; it returns None for requests
    that cannot be batched.
    """

    def __init__(self, manager: ModelManager, batch_submit=None, metrics=None):
        self.manager = manager
        self.batch_submit = batch_submit
        self.metrics = metrics  # the REST app's Metrics (one registry, served at its metrics path)

    @_counted
    def Predict(self, request, context):  # noqa: N802 - gRPC method names
        from tensorflow_serving.apis import predict_pb2

        servable = _spec_target(self.manager, request.model_spec)
        name = request.model_spec.signature_name or "serving_default"
        signature = servable.signatures.get(name)
        if signature is None:
            raise StatusError(f"Serving signature key \"{name}\" not found.", "FAILED_PRECONDITION")
        inference.check_predict_inputs(signature, list(request.inputs))
        output_filter = list(request.output_filter)
        inference.check_output_filter(signature, output_filter)
        arrays = {alias: _to_array(t) for alias, t in request.inputs.items()}
        outputs = None
        if self.batch_submit is not None and len(arrays) == len(signature.inputs):
            outputs = self.batch_submit(servable, signature, arrays)
            if outputs is not None and output_filter:
                outputs = {alias: outputs[alias] for alias in output_filter}
        if outputs is None:
            outputs = inference.run_signature(signature, arrays, output_filter or None)
        response = predict_pb2.PredictResponse()
        _fill_spec(response.model_spec, servable, name)
        for alias, arr in outputs.items():
            response.outputs[alias].CopyFrom(_to_proto(arr))
        return response

    @_counted
    def Classify(self, request, context):  # noqa: N802
        from tensorflow_serving.apis import classification_pb2

        servable = _spec_target(self.manager, request.model_spec)
        result, sig = inference.classify(servable, request.model_spec.signature_name or None, request.input)
        response = classification_pb2.ClassificationResponse()
        _fill_spec(response.model_spec, servable, sig.name)
        response.result.CopyFrom(result)
        return response

    @_counted
    def Regress(self, request, context):  # noqa: N802
        from tensorflow_serving.apis import regression_pb2

        servable = _spec_target(self.manager, request.model_spec)
        result, sig = inference.regress(servable, request.model_spec.signature_name or None, request.input)
        response = regression_pb2.RegressionResponse()
        _fill_spec(response.model_spec, servable, sig.name)
        response.result.CopyFrom(result)
        return response

    @_guarded
    def MultiInference(self, request, context):  # noqa: N802
        from tensorflow_serving.apis import inference_pb2

        if not request.tasks:
            raise InvalidRequest("Expected at least one task")
        names = {t.model_spec.name for t in request.tasks}
        if len(names) > 1:
            raise InvalidRequest("All ModelSpecs in a MultiInferenceRequest must access the same model name.")
        seen = set()
        for t in request.tasks:
            if t.model_spec.signature_name in seen:
                raise InvalidRequest("Duplicate evaluation of signature: " + t.model_spec.signature_name)
            seen.add(t.model_spec.signature_name)
        response = inference_pb2.MultiInferenceResponse()
        for task in request.tasks:
            servable = _spec_target(self.manager, task.model_spec)
            out = response.results.add()
            if task.method_name == "tensorflow/serving/classify":
                result, sig = inference.classify(servable, task.model_spec.signature_name or None, request.input)
                out.classification_result.CopyFrom(result)
            elif task.method_name == "tensorflow/serving/regress":
                result, sig = inference.regress(servable, task.model_spec.signature_name or None, request.input)
                out.regression_result.CopyFrom(result)
            else:
                raise StatusError(f"Unsupported signature method_name: {task.method_name}", "UNIMPLEMENTED")
            _fill_spec(out.model_spec, servable, sig.name)
        return response

    @_guarded
    def GetModelMetadata(self, request, context):  # noqa: N802
        from tfrec.serving.app import metadata_response

        if not request.metadata_field:
            raise InvalidRequest("GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != "signature_def":
                raise InvalidRequest(f"Metadata field {field} is not supported")
        servable = _spec_target(self.manager, request.model_spec)
        response, _ = metadata_response(servable)
        return response


class ModelServicer:
    """``tensorflow.serving.ModelService``."""

    def __init__(self, manager: ModelManager, on_reload=None):
        self.manager = manager
        self.on_reload = on_reload

    @_guarded
    def GetModelStatus(self, request, context):  # noqa: N802
        from tensorflow_serving.apis import get_model_status_pb2

        if not request.HasField("model_spec"):
            raise InvalidRequest("Missing ModelSpec")
        spec = request.model_spec
        loaded = self.manager.versions(spec.name) if spec.name in self.manager.entries else {}
        response = get_model_status_pb2.GetModelStatusResponse()
        if spec.WhichOneof("version_choice") == "version":
            version = int(spec.version.value)
            if version not in loaded:
                raise ServableNotFound(f"Could not find version {version} of model {spec.name}")
            versions = [version]
        else:
            if not loaded:
                raise ServableNotFound(f"Could not find any versions of model {spec.name}")
            versions = sorted(loaded, reverse=True)
        for v in versions:
            s = response.model_version_status.add()
            s.version = v
            s.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
        return response

    @_guarded
    def HandleReloadConfigRequest(self, request, context):  # noqa: N802
        from tensorflow_serving.apis import model_management_pb2

        from tfrec.errors import ConfigError
        from tfrec.serving.server_config import entries_from_proto

        try:
            entries = entries_from_proto(request.config, "ReloadConfigRequest")
        except ConfigError as exc:
            raise InvalidRequest(str(exc)) from None
        self.manager.reload_config(entries)
        if self.on_reload is not None:
            self.on_reload(entries)
        response = model_management_pb2.ReloadConfigResponse()
        response.status.error_code = 0
        return response


def create_grpc_server(manager: ModelManager, *, port: Optional[int] = 8500, host: str = "127.0.0.1",
                       socket_path: Optional[str] = None, max_workers: int = 8,
                       options: Optional[list] = None, batch_submit=None,
                       metrics=None) -> tuple[grpc.Server, int]:
    """A started-ready (not started) grpc.Server with both services; returns (server, bound port).

    ``port`` 0 picks a free port; ``socket_path`` also listens on that Unix socket (TF Serving's
    ``--grpc_socket_path``); ``metrics`` (the REST app's ``app.state.metrics``) counts Predict,
    Classify and Regress calls as TF Serving does.
    """
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    # No SO_REUSEPORT (grpcio's default): a port another server holds is an error, not a silent share.
    opts = [("grpc.so_reuseport", 0)] + [o for o in (options or []) if o[0] != "grpc.so_reuseport"]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="tfrec-grpc"),
                         options=opts)
    servicer = PredictionServicer(manager, batch_submit, metrics)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(servicer, server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(manager), server)
    bound = None
    if port is not None:
        try:
            bound = server.add_insecure_port(f"{host}:{int(port)}")
        except RuntimeError:
            bound = 0
        if not bound:
            raise OSError(f"cannot bind gRPC to {host}:{port}")
    if socket_path:
        server.add_insecure_port(f"unix:{socket_path}")
    return server, bound
