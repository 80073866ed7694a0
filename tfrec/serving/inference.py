"""Predict, Classify, Regress and MultiInference on a loaded servable, as TF Serving runs them.

Shared by the REST and gRPC front ends. Follows TF Serving's ``servables/tensorflow``
``predict_util.cc``, ``classifier.cc``, ``regressor.cc`` and ``util.cc`` (Apache-2.0; the behaviour
spec, no code copied), with ``--enable_signature_method_name_check`` off (TF Serving's default): any
signature with the right input/output aliases serves ``:classify``/``:regress``, including TF2
signatures whose method name is ``tensorflow/serving/predict``.
"""

from __future__ import annotations

import re
from typing import Optional

import numpy as np

from tfrec.serving.model_manager import InvalidRequest, Servable, Signature, StatusError

CLASSIFY_INPUTS, CLASSIFY_CLASSES, CLASSIFY_SCORES = "inputs", "classes", "scores"
REGRESS_INPUTS, REGRESS_OUTPUTS = "inputs", "outputs"

_OP_CODES = {1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND",
             6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION",
             10: "ABORTED", 11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED", 13: "INTERNAL", 14: "UNAVAILABLE",
             15: "DATA_LOSS", 16: "UNAUTHENTICATED"}
# The graph ran on the client's values: a kernel failing on them is the request's fault. TF Serving
# would pass UNKNOWN/INTERNAL through as 500; tfrec serve answers 400 (a documented difference).
_CLIENT_CODES = {"UNKNOWN", "INTERNAL", "DATA_LOSS"}


def _name_the_input(message: str, signature: Signature, arrays: dict) -> str:
    """Kernel errors that do not say which request input caused them, with the input named."""
    m = re.search(r"input must have at least k columns\. Had (\d+), needed (-?\d+)", message)
    if m and "k" in signature.inputs:
        return f"k must be <= {m.group(1)} (the candidates this model ranks); got k = {m.group(2)}"
    m = re.search(r"indices(?:\[[\d,]+\])? = -1 is not in \[0, \d+\)", message)
    if m:
        names = [n for n, spec in signature.inputs.items() if spec.dtype.name == "string" and n != "user_id"]
        names = names or [n for n, spec in signature.inputs.items() if spec.dtype.name == "string"]
        if names:
            return f"unknown id in input '{'/'.join(sorted(names))}': not in the model's vocabulary ({message})"
    return message


def run_signature(signature: Signature, arrays: dict, output_filter: Optional[list] = None) -> dict:
    """Feed ``arrays`` (by input alias) and fetch the outputs (all, or ``output_filter``'s)."""
    import tensorflow as tf

    from tfrec.serving.bundle import clean_graph_error

    try:
        result = signature.function(_outputs=output_filter, **arrays) if output_filter else signature.function(
            **arrays)
    except tf.errors.OpError as exc:
        code = _OP_CODES.get(exc.error_code, "UNKNOWN")
        if code in _CLIENT_CODES:
            code = "INVALID_ARGUMENT"
        message = _name_the_input(clean_graph_error(exc.message), signature, arrays)
        raise (InvalidRequest(message) if code == "INVALID_ARGUMENT" else StatusError(message, code)) from None
    except (TypeError, ValueError) as exc:  # a feed numpy/TF cannot convert
        raise InvalidRequest(str(exc).split("\n")[0]) from None
    return {k: (v if isinstance(v, np.ndarray) else np.asarray(v.numpy() if hasattr(v, "numpy") else v))
            for k, v in result.items()}


# ------------------------------------------------------------------------------------------------ predict
def check_predict_inputs(signature: Signature, names) -> None:
    """TF Serving's VerifyRequestInputsSize (+ unknown aliases)."""
    sig_inputs = set(signature.inputs)
    sent = set(names)
    defaults = signature.definition is not None and len(signature.definition.defaults) > 0
    if len(sent) > len(sig_inputs) or (len(sent) < len(sig_inputs) and not defaults) or (sent - sig_inputs):
        raise InvalidRequest(
            f"input size does not match signature: {len(sent)}!={len(sig_inputs)} len({{{','.join(sorted(sent))}}}) "
            f"!= len({{{','.join(sorted(sig_inputs))}}}). Sent extra: {{{','.join(sorted(sent - sig_inputs))}}}. "
            f"Missing but required: {{{','.join(sorted(sig_inputs - sent))}}}.")


def check_output_filter(signature: Signature, output_filter: list) -> None:
    seen = set()
    for alias in output_filter:
        if alias not in signature.outputs:
            raise InvalidRequest(f"output tensor alias not found in signature: {alias} Outputs expected to be in the "
                                 f"set {{{','.join(sorted(signature.outputs))}}}.")
        if alias in seen:
            raise InvalidRequest(f"duplicate output tensor alias: {alias}")
        seen.add(alias)


# ------------------------------------------------------------------------------------------------ classify/regress
def serialized_examples(request_input) -> np.ndarray:
    """A tensorflow_serving ``Input`` -> 1-D string array of serialized tf.Examples (context prepended)."""
    kind = request_input.WhichOneof("kind")
    if kind == "example_list":
        out = [e.SerializeToString() for e in request_input.example_list.examples]
    elif kind == "example_list_with_context":
        # Serialized protos concatenate as a merge: the example's features override the context's.
        context = request_input.example_list_with_context.context.SerializeToString()
        out = [context + e.SerializeToString() for e in request_input.example_list_with_context.examples]
    else:
        out = []
    if not out:
        raise InvalidRequest("Input is empty.")
    arr = np.empty(len(out), dtype=object)
    arr[:] = out
    return arr


def _signature_for(servable: Servable, name: Optional[str]) -> Signature:
    key = name or "serving_default"
    if key not in servable.signatures:
        raise InvalidRequest(f"No signature was found with the name: {key}")
    return servable.signatures[key]


def _debug(signature: Signature) -> str:
    return str(signature.definition).replace("\n", " ").strip() if signature.definition is not None else ""


def classification_signature(servable: Servable, name: Optional[str]) -> Signature:
    sig = _signature_for(servable, name)
    if len(sig.inputs) != 1:
        raise InvalidRequest("Expected one input Tensor.")
    if len(sig.outputs) not in (1, 2):
        raise InvalidRequest(f"Expected one or two output Tensors, found {len(sig.outputs)}")
    if CLASSIFY_INPUTS not in sig.inputs:
        raise InvalidRequest(f"No classification inputs found in SignatureDef: {_debug(sig)}")
    if CLASSIFY_CLASSES not in sig.outputs and CLASSIFY_SCORES not in sig.outputs:
        raise InvalidRequest(f"Expected classification signature outputs to contain at least one of \"classes\" or "
                             f"\"scores\". Signature was: {_debug(sig)}")
    return sig


def regression_signature(servable: Servable, name: Optional[str]) -> Signature:
    sig = _signature_for(servable, name)
    if len(sig.inputs) != 1:
        raise InvalidRequest("Expected one input Tensor.")
    if len(sig.outputs) != 1:
        raise InvalidRequest("Expected one output Tensor.")
    if REGRESS_INPUTS not in sig.inputs:
        raise InvalidRequest(f"No regression inputs found in SignatureDef: {_debug(sig)}")
    if REGRESS_OUTPUTS not in sig.outputs:
        raise InvalidRequest(f"No regression outputs found in SignatureDef: {_debug(sig)}")
    return sig


def _shape_debug(arr: np.ndarray) -> str:
    return "[" + ",".join(str(d) for d in arr.shape) + "]"


def classify(servable: Servable, signature_name: Optional[str], request_input):
    """-> (ClassificationResult, signature)."""
    from tensorflow_serving.apis import classification_pb2

    sig = classification_signature(servable, signature_name)
    examples = serialized_examples(request_input)
    n = len(examples)
    out = run_signature(sig, {CLASSIFY_INPUTS: examples})
    classes, scores = out.get(CLASSIFY_CLASSES), out.get(CLASSIFY_SCORES)
    for arr, what, kind in ((classes, "classes", "OS"), (scores, "scores", "f")):
        if arr is None:
            continue
        if arr.ndim != 2:
            raise InvalidRequest(f"Expected Tensor shape: [batch_size num_classes] but got {_shape_debug(arr)}")
        if arr.dtype.kind not in kind or (what == "scores" and arr.dtype != np.float32):
            dtype = "DT_STRING" if what == "classes" else "DT_FLOAT"
            raise InvalidRequest(f"Expected {what} Tensor of {dtype}. Got: {arr.dtype}")
        if arr.shape[0] != n:
            raise InvalidRequest(f"Expected {what} output batch size of {n}. Got: {arr.shape[0]}")
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise InvalidRequest(f"Tensors class and score should match in dim_size(1). Got {classes.shape[1]} vs. "
                             f"{scores.shape[1]}")
    num_classes = (classes if classes is not None else scores).shape[1]
    result = classification_pb2.ClassificationResult()
    for i in range(n):
        c = result.classifications.add()
        for j in range(num_classes):
            cls = c.classes.add()
            if classes is not None:
                label = classes[i, j]
                cls.label = label.decode("utf-8", "replace") if isinstance(label, bytes) else str(label)
            if scores is not None:
                cls.score = float(scores[i, j])
    return result, sig


def regress(servable: Servable, signature_name: Optional[str], request_input):
    """-> (RegressionResult, signature)."""
    from tensorflow_serving.apis import regression_pb2

    sig = regression_signature(servable, signature_name)
    examples = serialized_examples(request_input)
    n = len(examples)
    out = run_signature(sig, {REGRESS_INPUTS: examples})[REGRESS_OUTPUTS]
    if not (out.ndim == 1 or (out.ndim == 2 and out.shape[1] == 1)):
        raise InvalidRequest(f"Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got "
                             f"{_shape_debug(out)}")
    if out.shape[0] != n:
        raise InvalidRequest(f"Input batch size did not match output batch size: {n} vs. {out.shape[0]}")
    if out.dtype != np.float32:
        raise InvalidRequest(f"Expected output Tensor of DT_FLOAT.  Got: {out.dtype}")
    result = regression_pb2.RegressionResult()
    for v in out.reshape(-1).tolist():
        result.regressions.add().value = v
    return result, sig
