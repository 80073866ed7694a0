"""The gRPC side of :class:`tfrec.serving.client.Client` (official ``tensorflow_serving.apis`` stubs).

Requests are built as the REST API builds them (the signature's dtypes from GetModelMetadata, the
same ``instances``/``inputs`` rules) and answers are shaped as REST shapes them, so a caller gets the
same Python values whichever protocol it picks.
"""

from __future__ import annotations

import json
from typing import Optional

from tfrec.errors import ServingError


class GrpcClient:
    def __init__(self, target: str, timeout: float = 30.0):
        import grpc
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        self.target = target
        self.timeout = timeout
        self._channel = grpc.insecure_channel(target)
        self._predict = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._model = model_service_pb2_grpc.ModelServiceStub(self._channel)
        self._specs: dict = {}

    def _call(self, fn, request):
        import grpc

        try:
            return fn(request, self.timeout)
        except grpc.RpcError as exc:
            raise ServingError(f"{self.target}: gRPC {exc.code().name}: {exc.details()}") from None

    @staticmethod
    def _spec(msg, name: str, version: Optional[int], label: Optional[str], signature_name: str = "") -> None:
        msg.name = name
        if version is not None:
            msg.version.value = int(version)
        elif label is not None:
            msg.version_label = label
        if signature_name:
            msg.signature_name = signature_name

    def status(self, name: str, version=None, label=None) -> dict:
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_status_pb2

        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec, name, version, label)
        reply = self._call(self._model.GetModelStatus, request)
        return json_format.MessageToDict(reply, preserving_proto_field_name=True,
                                         always_print_fields_with_no_presence=True)

    def _metadata_reply(self, name: str, version=None, label=None):
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest()
        self._spec(request.model_spec, name, version, label)
        request.metadata_field.append("signature_def")
        reply = self._call(self._predict.GetModelMetadata, request)
        sig_map = get_model_metadata_pb2.SignatureDefMap()
        reply.metadata["signature_def"].Unpack(sig_map)
        return reply, sig_map

    def metadata(self, name: str, version=None, label=None) -> dict:
        from google.protobuf import json_format

        reply, sig_map = self._metadata_reply(name, version, label)
        opts = dict(preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
        return {"model_spec": json_format.MessageToDict(reply.model_spec, **opts),
                "metadata": {"signature_def": json_format.MessageToDict(sig_map, **opts)}}

    def _input_specs(self, name, version, label, signature_name: str) -> dict:
        from tfrec.serving.bundle import tensor_info_spec

        key = (name, version, label, signature_name)
        if key not in self._specs:
            _, sig_map = self._metadata_reply(name, version, label)
            if signature_name not in sig_map.signature_def:
                raise ServingError(f"{self.target}: model {name} has no signature {signature_name!r}")
            sig = sig_map.signature_def[signature_name]
            self._specs[key] = {a: tensor_info_spec(i) for a, i in sig.inputs.items()}
        return self._specs[key]

    def predict(self, name: str, version=None, label=None, *, instances=None, inputs=None,
                signature_name: Optional[str] = None):
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        from tfrec.serving import rest_api
        from tfrec.serving.model_manager import InvalidRequest

        sig = signature_name or "serving_default"
        specs = self._input_specs(name, version, label, sig)
        try:
            if instances is not None:
                if not instances:
                    raise InvalidRequest("No values in 'instances' array")
                arrays, fmt = rest_api._from_instances(list(instances), specs), "row"
            else:
                arrays, fmt = rest_api._from_inputs(inputs, specs), "columnar"
        except InvalidRequest as exc:
            raise ServingError(f"{self.target}: {exc}") from None
        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, name, version, label, signature_name or "")
        for alias, arr in arrays.items():
            request.inputs[alias].CopyFrom(tf.make_tensor_proto(arr, dtype=specs[alias].dtype))
        reply = self._call(self._predict.Predict, request)
        outputs = {alias: tf.make_ndarray(t) for alias, t in reply.outputs.items()}
        doc = json.loads(rest_api.encode_response(outputs, fmt))
        return doc["predictions"] if fmt == "row" else doc["outputs"]

    def close(self) -> None:
        self._channel.close()
