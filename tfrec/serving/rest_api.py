"""TensorFlow Serving's REST API on Starlette: the same URLs, bodies, status codes and errors.

Routes (as ``tensorflow_model_server --rest_api_port``):

* ``GET  /v1/models/{name}[/versions/{v}|/labels/{l}]`` -> ``{"model_version_status": [...]}``
* ``GET  /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata`` -> ``model_spec`` + signature defs
* ``POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict`` with ``instances`` (row format ->
  ``predictions``) or ``inputs`` (columnar -> ``outputs``), optional ``signature_name``,
  ``{"b64": ...}`` for strings; a single output is not wrapped in an object.
* ``:classify`` / ``:regress`` answer as TF Serving does for a model without such signatures.

Errors are ``{"error": "..."}`` with 400 for invalid arguments and 404 for unknown models,
versions and labels; messages follow TF Serving's ``json_tensor.cc`` wording.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import time
from typing import Optional

import numpy as np

try:  # a fast JSON codec that also writes numpy arrays (float32 in its shortest round-trip form)
    import orjson
except ImportError:  # pragma: no cover - the standard library path below gives the same documents
    orjson = None

from tfrec.serving.model_manager import InvalidRequest, ModelManager, Servable, ServableNotFound, Signature

MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_NESTING = 32


# ------------------------------------------------------------------------------------------------ JSON -> tensors
def _dtype_name(dtype) -> str:
    return "DT_" + dtype.name.upper().replace("FLOAT32", "FLOAT").replace("FLOAT64", "DOUBLE")


def _json_str(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def _json_type(value) -> str:
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def _is_b64(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _type_error(value, dtype) -> InvalidRequest:
    return InvalidRequest(f"JSON Value: {_json_str(value)} Type: {_json_type(value)} is not of expected type: "
                          f"{_dtype_name(dtype)}")


_KINDS: dict = {}


def _kind(dtype) -> str:
    """"string", "bool", "int", "float" or "other" for a tf.DType (cached: DType comparisons are slow)."""
    kind = _KINDS.get(dtype)
    if kind is None:
        if dtype.name == "string":
            kind = "string"
        elif dtype.is_bool:
            kind = "bool"
        elif dtype.is_integer:
            kind = "int"
        elif dtype.is_floating:
            kind = "float"
        else:
            kind = "other"
        _KINDS[dtype] = kind
    return kind


def _scalar(value, dtype):
    kind = _kind(dtype)
    if kind == "string":
        if type(value) is str:  # the common case first
            return value.encode("utf-8")
        if _is_b64(value):
            try:
                return base64.b64decode(value["b64"], validate=True)
            except (ValueError, TypeError):
                raise InvalidRequest("Unable to base64 decode") from None
        if isinstance(value, dict):
            raise InvalidRequest(f"JSON Value: {_json_str(value)} not formatted correctly for base64 data")
        if not isinstance(value, str):
            raise _type_error(value, dtype)
        return value.encode("utf-8")
    if isinstance(value, (dict, list)) or value is None or isinstance(value, str):
        raise _type_error(value, dtype)
    if kind == "bool":
        if not isinstance(value, bool):
            raise _type_error(value, dtype)
        return value
    if isinstance(value, bool):
        raise _type_error(value, dtype)
    if kind == "int":
        if not isinstance(value, int):
            raise _type_error(value, dtype)
        info = np.iinfo(dtype.as_numpy_dtype)
        if not info.min <= value <= info.max:
            raise _type_error(value, dtype)
        return value
    if kind == "float":
        return float(value)
    raise InvalidRequest(f"Conversion of JSON Value: {_json_str(value)} to type: {_dtype_name(dtype)}")


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
            raise InvalidRequest(f"JSON Value: {_json_str(value)} found at incorrect level: {level + 1} in the JSON "
                                 f"DOM. Expected at level: {rank}")
        out.append(_scalar(value, dtype))
        return
    if level >= rank:
        raise InvalidRequest(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise InvalidRequest(f"Encountered list at unexpected size: {len(value)} at level: {level} expected size: "
                             f"{shape[level]}")
    for v in value:
        _fill(v, level + 1, shape, dtype, out)


def to_array(value, dtype) -> np.ndarray:
    """A JSON value (scalar or nested lists) -> numpy array of the signature's dtype."""
    np_dtype = object if _kind(dtype) == "string" else dtype.as_numpy_dtype
    if not isinstance(value, list):
        return np.array(_scalar(value, dtype), dtype=np_dtype)
    shape = _shape_of(value)
    flat: list = []
    _fill(value, 0, shape, dtype, flat)
    arr = np.array(flat, dtype=np_dtype)
    return arr.reshape(shape)


def _depth(value, level=0) -> int:
    if level > MAX_NESTING:
        return level
    if isinstance(value, list):
        return max([_depth(v, level + 1) for v in value[:1]] + [level + 1])
    if isinstance(value, dict):
        return max([_depth(v, level + 1) for v in value.values()] + [level + 1])
    return level


def loads(body: bytes):
    """Parse a request body; a malformed one is an InvalidRequest with TF Serving's wording.

    orjson parses well-formed RFC 8259 documents; anything it refuses (NaN/Infinity literals, which
    TF Serving accepts, lone surrogates, or plain garbage) goes through the standard library parser,
    so accepted documents and error messages are the same with or without orjson. (Integers beyond
    64 bits: orjson reads them as doubles, as TF Serving's RapidJSON does.)
    """
    if not body:
        raise InvalidRequest("JSON Parse error: The document is empty")
    if orjson is not None:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        pos = getattr(exc, "pos", 0)
        raise InvalidRequest(f"JSON Parse error: {getattr(exc, 'msg', 'Invalid value.')} at offset: {pos}") from None


def parse_predict_body(body: bytes, get_signature) -> tuple[Signature, dict, str]:
    """-> (signature, {input name: np.ndarray}, "row"|"columnar")."""
    doc = loads(body)
    if not isinstance(doc, dict):
        raise InvalidRequest(f"JSON Value: {_json_str(doc)[:200]} Is not object")
    if _depth(doc) > MAX_NESTING:
        raise InvalidRequest(f"JSON Value nested deeper than {MAX_NESTING} levels")
    sig_name = doc.get("signature_name")
    if sig_name is not None and not isinstance(sig_name, str):
        raise InvalidRequest(f"JSON Value: {_json_str(doc)[:200]} not formatted correctly. 'signature_name' key must "
                             f"be a string value.")
    signature = get_signature(sig_name)
    specs = signature.inputs
    if not specs:
        raise InvalidRequest(f"Failed to get input map for signature: {sig_name or 'DEFAULT'}")
    has_instances, has_inputs = "instances" in doc, "inputs" in doc
    if has_instances and has_inputs:
        raise InvalidRequest(f"JSON Value: {_json_str(doc)[:200]} Not formatted correctly expecting only one of "
                             f"'inputs' or 'instances' keys to exist ")
    if has_instances:
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise InvalidRequest(f"JSON Value: {_json_str(doc)[:200]} Excepting 'instances' to be an list/array")
        if not instances:
            raise InvalidRequest(f"JSON Value: {_json_str(doc)[:200]} No values in 'instances' array")
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
    columns: dict = {n: [] for n in names}
    shapes: dict = {}
    for i, elem in enumerate(instances):
        if objects:
            if not is_obj(elem):
                raise InvalidRequest(f"Expecting object but got list at item {i} of input list")
            for key, value in elem.items():
                if key not in specs:
                    raise InvalidRequest(f"Failed to process element: {i} key: {key} of 'instances' list. Error: "
                                         f"INVALID_ARGUMENT: JSON object: does not have named input: {key}")
                columns[key].append(_instance_item(value, key, specs[key], shapes, i))
            if set(elem) != set(names):
                raise InvalidRequest(f"Failed to process element: {i} of 'instances' list. JSON object: "
                                     f"{_json_str(elem)[:200]} must only have keys: {','.join(names)}")
        else:
            if is_obj(elem):
                raise InvalidRequest(f"Expecting value/list but got object at item {i} of input list")
            columns[names[0]].append(_instance_item(elem, names[0], specs[names[0]], shapes, i))
    return {n: np.stack(items) for n, items in columns.items()}


def _instance_item(value, name, spec, shapes: dict, i: int) -> np.ndarray:
    try:
        arr = to_array(value, spec.dtype)
    except InvalidRequest as exc:
        raise InvalidRequest(f"Failed to process element: {i} key: {name} of 'instances' list. Error: "
                             f"INVALID_ARGUMENT: {exc}") from None
    if name not in shapes:
        shapes[name] = list(arr.shape)
    elif list(arr.shape) != shapes[name]:
        raise InvalidRequest(f"Failed to process element: {i} key: {name} of 'instances' list. Error: "
                             f"INVALID_ARGUMENT: Expecting shape [{','.join(map(str, shapes[name]))}] but got: "
                             f"[{','.join(map(str, arr.shape))}]")
    return arr


def _from_inputs(inputs, specs: dict) -> dict:
    if not isinstance(inputs, dict) or _is_b64(inputs):
        if len(specs) > 1:
            raise InvalidRequest("inputs is a plain value/list, but expecting an object as multiple input tensors "
                                 "required as per tensorinfo_map")
        name = next(iter(specs))
        return {name: to_array(inputs, specs[name].dtype)}
    out = {}
    for name in sorted(specs):
        if name not in inputs:
            raise InvalidRequest(f"Missing named input: {name} in 'inputs' object.")
        out[name] = to_array(inputs[name], specs[name].dtype)
    # Inputs that carry a batch dimension must agree on it (TF would otherwise broadcast silently).
    batched = {n: a.shape[0] for n, a in out.items()
               if a.ndim and specs[n].shape.rank and specs[n].shape[0] is None}
    if len(set(batched.values())) > 1:
        sizes = ", ".join(f"{n}: {b}" for n, b in sorted(batched.items()))
        raise InvalidRequest(f"Input tensors must have the same batch size (the first dimension); got {sizes}")
    return out


# ------------------------------------------------------------------------------------------------ tensors -> JSON
def _py(value, as_bytes: bool):
    if isinstance(value, bytes):
        if as_bytes:
            return {"b64": base64.b64encode(value).decode("ascii")}
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:  # JSON cannot carry raw bytes: fall back to b64
            return {"b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, (np.floating, float)):
        v = float(value)
        if math.isnan(v) or math.isinf(v):
            return v
        # float32 values are written with the shortest repr that round-trips float32, as TF Serving does.
        return float(str(np.float32(v))) if isinstance(value, np.float32) else v
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _tolist(arr: np.ndarray, as_bytes: bool):
    if arr.ndim == 0:
        return _py(arr[()], as_bytes)
    return [_tolist(a, as_bytes) for a in arr] if arr.ndim > 1 else [_py(v, as_bytes) for v in arr]


def _row_batch_size(outputs: dict, names: list) -> int:
    """The shared batch size of ``outputs`` for the row format (TF Serving's errors if there is none)."""
    for n in names:
        if outputs[n].ndim == 0:
            raise InvalidRequest(f"Tensor name: {n} has no shape information ")
    batch = outputs[names[0]].shape[0]
    for n in names:
        if outputs[n].shape[0] != batch:
            raise InvalidRequest(f"Tensor name: {n} has inconsistent batch size: {outputs[n].shape[0]} "
                                 f"expecting: {batch}")
    return batch


def make_response(outputs: dict, fmt: str) -> dict:
    names = sorted(outputs)
    if fmt == "row":
        batch = _row_batch_size(outputs, names)
        cols = {n: _tolist(outputs[n], n.endswith("_bytes")) for n in names}
        if len(names) == 1:
            return {"predictions": cols[names[0]]}
        return {"predictions": [{n: cols[n][i] for n in names} for i in range(batch)]}
    cols = {n: _tolist(outputs[n], n.endswith("_bytes")) for n in names}
    return {"outputs": cols[names[0]] if len(names) == 1 else cols}


def dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=True).encode("utf-8")


def _decode_all(value):
    """Nested lists of UTF-8 bytes -> nested lists of str (UnicodeDecodeError/AttributeError if not)."""
    if type(value) is bytes:
        return value.decode("utf-8")
    if value and type(value[0]) is bytes:
        return [v.decode("utf-8") for v in value]
    return [_decode_all(v) for v in value]


def _fast_column(arr: np.ndarray, as_bytes: bool):
    """``arr`` in a form orjson writes exactly as ``_tolist`` + ``dumps`` would, or None when it cannot.

    Finite float32/float64, integer and bool arrays go to orjson as numpy (it writes float32 in the
    shortest form that round-trips float32); UTF-8 string tensors become lists of str. NaN/Infinity,
    ``*_bytes`` outputs, non-UTF-8 strings and other dtypes take the standard path.
    """
    kind = arr.dtype.kind
    if kind in "iub":
        return np.ascontiguousarray(arr)
    if kind == "f":
        if arr.dtype.itemsize not in (4, 8) or not np.isfinite(arr).all():
            return None
        return np.ascontiguousarray(arr)
    if kind in "OS" and not as_bytes:
        try:
            return _decode_all(arr.tolist())
        except (UnicodeDecodeError, AttributeError, TypeError):
            return None
    return None


def encode_response(outputs: dict, fmt: str) -> bytes:
    """``dumps(make_response(outputs, fmt))``, written by orjson straight from numpy when it can."""
    names = sorted(outputs)
    if orjson is None or not names:
        return dumps(make_response(outputs, fmt))
    cols = {}
    for n in names:
        col = _fast_column(outputs[n], n.endswith("_bytes"))
        if col is None:
            return dumps(make_response(outputs, fmt))
        cols[n] = col
    if fmt == "row":
        batch = _row_batch_size(outputs, names)
        if len(names) == 1:
            doc = {"predictions": cols[names[0]]}
        else:
            doc = {"predictions": [{n: cols[n][i] for n in names} for i in range(batch)]}
    else:
        doc = {"outputs": cols[names[0]] if len(names) == 1 else cols}
    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)


# ------------------------------------------------------------------------------------------------ running
def run_signature(signature: Signature, arrays: dict) -> dict:
    import tensorflow as tf

    tensors = {}
    for name, arr in arrays.items():
        spec = signature.inputs[name]
        try:
            tensors[name] = tf.constant(arr, dtype=spec.dtype)
        except (TypeError, ValueError) as exc:
            raise InvalidRequest(str(exc)) from None
        if not spec.shape.is_compatible_with(tensors[name].shape):
            raise InvalidRequest(f"input '{name}' has shape {tensors[name].shape.as_list()}, but the signature "
                                 f"expects {spec.shape.as_list()}")
    try:
        result = signature.function(**tensors)
    except tf.errors.InvalidArgumentError as exc:
        raise InvalidRequest(exc.message.split("\n")[0]) from None
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(str(exc).split("\n")[0]) from None
    return {k: v.numpy() for k, v in result.items()}
