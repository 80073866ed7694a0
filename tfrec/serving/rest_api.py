"""TensorFlow Serving's REST request bodies -> tensors and tf.Examples.

Follows TF Serving's ``util/json_tensor.cc`` (Apache-2.0; the behaviour spec, no code copied):

* ``:predict`` bodies with ``instances`` (row format) or ``inputs`` (columnar), optional
  ``signature_name``, ``{"b64": ...}`` for strings, TF Serving's checks and error texts
  ("Expecting tensor size", "not of expected type: float", ...).
* ``:classify`` / ``:regress`` bodies with ``examples`` (and optional ``context``) as tf.Example
  JSON: numbers with a fraction -> float_list, integers and booleans -> int64_list, strings and b64
  objects -> bytes_list.

Parsing is :mod:`tfrec.serving.json_values`; responses are :mod:`tfrec.serving.json_output` (both
re-exported here).
"""

from __future__ import annotations

import json
import math

import numpy as np

from tfrec.serving.json_output import (  # noqa: F401  (re-exported)
    encode_classification,
    encode_regression,
    encode_response,
    format_float,
    tensor_json,
)
from tfrec.serving.json_values import (  # noqa: F401  (re-exported)
    MAX_NESTING,
    _b64decode,
    _is_b64,
    _json_type,
    _type_error,
    debug_string,
    dtype_string,
    loads,
)
from tfrec.serving.model_manager import InvalidRequest, Signature

MAX_BODY_BYTES = 16 * 1024 * 1024


_KINDS: dict = {}


def _kind(dtype) -> str:
    """"string", "bool", "int", "uint", "float" or "other" for a tf.DType (cached)."""
    kind = _KINDS.get(dtype)
    if kind is None:
        if dtype.name == "string":
            kind = "string"
        elif dtype.is_bool:
            kind = "bool"
        elif dtype.is_integer:
            kind = "uint" if dtype.is_unsigned else "int"
        elif dtype.is_floating and dtype.name in ("float32", "float64"):
            kind = "float"
        else:
            kind = "other"
        _KINDS[dtype] = kind
    return kind


def _scalar(value, dtype):
    kind = _kind(dtype)
    if kind == "string":
        if type(value) is str:
            return value.encode("utf-8")
        if isinstance(value, dict):
            return _b64decode(value)
        raise _type_error(value, dtype)
    if isinstance(value, dict):
        raise _type_error(value, dtype)
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _type_error(value, dtype)
        return float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise _type_error(value, dtype)
        return value
    if kind in ("int", "uint"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(value, dtype)
        # RapidJSON's IsInt (int32 and narrower), IsInt64, IsUint, IsUint64.
        name = dtype.name
        lo, hi = ((0, 2 ** 64 - 1) if name == "uint64" else (0, 2 ** 32 - 1) if name == "uint32"
                  else (-2 ** 63, 2 ** 63 - 1) if name == "int64" else (-2 ** 31, 2 ** 31 - 1))
        if not lo <= value <= hi:
            raise _type_error(value, dtype)
        return value
    raise InvalidRequest(f"Conversion of JSON Value: {debug_string(value)} to type: {dtype_string(dtype)}")


def _shape_of(value) -> list:
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _fill(value, level: int, shape: list, dtype, out: list) -> None:
    rank = len(shape)
    if not isinstance(value, list):
        if level != rank:
            raise InvalidRequest(f"JSON Value: {debug_string(value)} found at incorrect level: {level + 1} in the "
                                 f"JSON DOM. Expected at level: {rank}")
        out.append(_scalar(value, dtype))
        return
    if level >= rank:
        raise InvalidRequest(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise InvalidRequest(f"Encountered list at unexpected size: {len(value)} at level: {level} expected size: "
                             f"{shape[level]}")
    for v in value:
        _fill(v, level + 1, shape, dtype, out)


def _numpy_dtype(dtype):
    return object if _kind(dtype) == "string" else dtype.as_numpy_dtype


def to_array(value, dtype) -> np.ndarray:
    """A JSON value (scalar or nested lists) -> numpy array of the signature's dtype."""
    np_dtype = _numpy_dtype(dtype)
    if not isinstance(value, list):
        return np.array(_scalar(value, dtype), dtype=np_dtype)
    shape = _shape_of(value)
    flat: list = []
    _fill(value, 0, shape, dtype, flat)
    arr = np.empty(len(flat), dtype=np_dtype)
    if flat:
        arr[:] = flat
    return arr.reshape(shape)


def _shape_text(shape) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def _signature_name(doc: dict):
    name = doc.get("signature_name")
    if name is not None and not isinstance(name, str):
        raise InvalidRequest(f"JSON Value: {debug_string(doc)} not formatted correctly. 'signature_name' key must be "
                             f"a string value.")
    return name


def parse_document(body: bytes) -> dict:
    doc = loads(body)
    if not isinstance(doc, dict):
        raise InvalidRequest(f"JSON Value: {debug_string(doc)} Is not object")
    return doc


def parse_predict_body(body: bytes, get_signature) -> tuple[Signature, dict, str]:
    """-> (signature, {input name: np.ndarray}, "row"|"columnar")."""
    doc = parse_document(body)
    sig_name = _signature_name(doc)
    signature = get_signature(sig_name)
    specs = signature.inputs
    if not specs:
        raise InvalidRequest(f"Failed to get input map for signature: {sig_name or 'DEFAULT'}")
    has_instances, has_inputs = "instances" in doc, "inputs" in doc
    if has_instances and has_inputs:
        raise InvalidRequest(f"JSON Value: {debug_string(doc)} Not formatted correctly expecting only one of "
                             f"'inputs' or 'instances' keys to exist ")
    if has_instances:
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise InvalidRequest(f"JSON Value: {debug_string(doc)} Expecting 'instances' to be an list/array")
        if not instances:
            raise InvalidRequest(f"JSON Value: {debug_string(doc)} No values in 'instances' array")
        return signature, _from_instances(instances, specs), "row"
    if has_inputs:
        return signature, _from_inputs(doc["inputs"], specs), "columnar"
    raise InvalidRequest("Missing 'inputs' or 'instances' key")


def _from_instances(instances: list, specs: dict) -> dict:
    def is_obj(v):
        return isinstance(v, dict) and not _is_b64(v)

    if not isinstance(instances[0], dict) and len(specs) > 1:
        raise InvalidRequest("instances is a plain list, but expecting list of objects as multiple input tensors "
                             "required as per tensorinfo_map")
    objects = is_obj(instances[0])
    names = sorted(specs)
    columns: dict = {}
    shapes: dict = {}
    for i, elem in enumerate(instances):
        if objects:
            if not is_obj(elem):
                raise InvalidRequest(f"Expecting object but got list at item {i} of input list")
            for key, value in elem.items():
                try:
                    if key not in specs:
                        raise InvalidRequest(f"JSON object: does not have named input: {key}")
                    columns.setdefault(key, []).append(_instance_item(value, specs[key], shapes, key))
                except InvalidRequest as exc:
                    raise InvalidRequest(f"Failed to process element: {i} key: {key} of 'instances' list. Error: "
                                         f"INVALID_ARGUMENT: {exc}") from None
            if set(elem) != set(names):
                raise InvalidRequest(f"Failed to process element: {i} of 'instances' list. JSON object: "
                                     f"{debug_string(elem)} keys must be equal to: {','.join(names)}")
        else:
            if is_obj(elem):
                raise InvalidRequest(f"Expecting value/list but got object at item {i} of input list")
            name = names[0]
            try:
                columns.setdefault(name, []).append(_instance_item(elem, specs[name], shapes, name))
            except InvalidRequest as exc:
                raise InvalidRequest(f"Failed to process element: {i} of 'instances' list. Error: "
                                     f"INVALID_ARGUMENT: {exc}") from None
    out = {}
    for n, items in columns.items():
        if items[0].ndim == 0 or items[0].dtype == object:
            arr = np.empty((len(items),) + items[0].shape, dtype=items[0].dtype)
            for j, it in enumerate(items):
                arr[j] = it[()] if it.ndim == 0 else it
            out[n] = arr
        else:
            out[n] = np.stack(items)
    return out


def _instance_item(value, spec, shapes: dict, name: str) -> np.ndarray:
    arr = to_array(value, spec.dtype)
    if name not in shapes:
        shapes[name] = arr.shape
    elif arr.size != math.prod(shapes[name]):
        raise InvalidRequest(f"Expecting tensor size: {math.prod(shapes[name])} but got: {arr.size}")
    elif arr.shape != shapes[name]:
        raise InvalidRequest(f"Expecting shape {_shape_text(shapes[name])} but got: {_shape_text(arr.shape)}")
    return arr


def _from_inputs(inputs, specs: dict) -> dict:
    if not isinstance(inputs, dict) or _is_b64(inputs):
        if len(specs) > 1:
            raise InvalidRequest("inputs is a plain value/list, but expecting an object as multiple input tensors "
                                 "required as per tensorinfo_map")
        name = next(iter(sorted(specs)))
        return {name: to_array(inputs, specs[name].dtype)}
    out = {}
    for name in sorted(specs):
        if name not in inputs:
            raise InvalidRequest(f"Missing named input: {name} in 'inputs' object.")
        out[name] = to_array(inputs[name], specs[name].dtype)
    return out


# ------------------------------------------------------------------------------------------------ tf.Example JSON
def _feature_kind(feature) -> str:
    return feature.WhichOneof("kind") or ""


def _incompatible(name: str, feature) -> InvalidRequest:
    kind = {"bytes_list": "bytes", "float_list": "float", "int64_list": "int64"}.get(_feature_kind(feature), "UNKNOWN")
    return InvalidRequest(f"Unexpected element type in feature: {name} expecting type: {kind}")


def _add_feature_value(value, name: str, feature) -> None:
    kind = _feature_kind(feature)
    if value is None or isinstance(value, list) or (isinstance(value, dict) and not _is_b64(value)):
        raise InvalidRequest(f"Feature: {name} has element with unexpected JSON type: {_json_type(value)}")
    if isinstance(value, bool):
        if kind not in ("", "int64_list"):
            raise _incompatible(name, feature)
        feature.int64_list.value.append(int(value))
    elif isinstance(value, dict):
        if kind not in ("", "bytes_list"):
            raise _incompatible(name, feature)
        feature.bytes_list.value.append(_b64decode(value))
    elif isinstance(value, str):
        if kind not in ("", "bytes_list"):
            raise _incompatible(name, feature)
        feature.bytes_list.value.append(value.encode("utf-8"))
    elif isinstance(value, float):
        if kind not in ("", "float_list"):
            raise _incompatible(name, feature)
        feature.float_list.value.append(value)
    else:
        if kind not in ("", "int64_list"):
            raise _incompatible(name, feature)
        if value >= 2 ** 63:
            raise InvalidRequest(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
        if value < -2 ** 63:  # RapidJSON holds it as a double: a float feature
            if kind not in ("", "float_list"):
                raise _incompatible(name, feature)
            feature.float_list.value.append(float(value))
            return
        feature.int64_list.value.append(value)


def example_from_json(value, example) -> None:
    """Fill a ``tf.train.Example`` from TF Serving's JSON form of one example."""
    if not isinstance(value, dict):
        raise InvalidRequest(f"Example must be JSON object but got JSON {_json_type(value)}")
    for name, content in value.items():
        feature = example.features.feature[name]
        feature.Clear()
        for v in (content if isinstance(content, list) else [content]):
            _add_feature_value(v, name, feature)


def parse_examples_body(body: bytes, verb: str):
    """A ``:classify``/``:regress`` body -> (signature name or None, tensorflow_serving ``Input`` proto)."""
    from tensorflow_serving.apis import input_pb2

    doc = parse_document(body)
    sig_name = _signature_name(doc)
    request_input = input_pb2.Input()
    has_context = "context" in doc
    if has_context:
        example_from_json(doc["context"], request_input.example_list_with_context.context)
    if "examples" not in doc:
        raise InvalidRequest(f"JSON Value: {debug_string(doc)} When method is classify, key 'examples' is expected "
                             f"and was not found")
    examples = doc["examples"]
    if not isinstance(examples, list):
        raise InvalidRequest(f"JSON Value: {debug_string(doc)} Expecting 'examples' value to be an list/array")
    if not examples:
        raise InvalidRequest(f"JSON Value: {debug_string(doc)} 'examples' value is an empty array")
    target = (request_input.example_list_with_context.examples if has_context
              else request_input.example_list.examples)
    for value in examples:
        example_from_json(value, target.add())
    return sig_name, request_input




def dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=True, ensure_ascii=False).encode("utf-8")
