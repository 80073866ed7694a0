"""TensorFlow Serving's REST request and response bodies: JSON <-> tensors, tf.Example JSON.

Follows TF Serving's ``util/json_tensor.cc`` (Apache-2.0; the behaviour spec, no code copied):

* ``:predict`` bodies with ``instances`` (row format -> ``predictions``) or ``inputs`` (columnar ->
  ``outputs``), optional ``signature_name``, ``{"b64": ...}`` for strings; one output tensor is not
  wrapped in an object; ``*_bytes`` string outputs are written as ``{"b64": ...}``.
* ``:classify`` / ``:regress`` bodies with ``examples`` (and optional ``context``) as tf.Example
  JSON: numbers with a fraction -> float_list, integers and booleans -> int64_list, strings and b64
  objects -> bytes_list.
* Floats are written as TF Serving writes them: six significant digits when that round-trips, else
  full precision (9 digits for float32, 17 for double), whole numbers with ``.0``, ``NaN``,
  ``Infinity`` and ``-Infinity`` literals.
* Parse errors carry RapidJSON's wording (``JSON Parse error: Invalid value. at offset: 0``).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re

import numpy as np

try:  # a fast JSON codec; the standard library gives the same documents without it
    import orjson
except ImportError:  # pragma: no cover
    orjson = None

from tfrec.serving.model_manager import InvalidRequest, Signature

MAX_BODY_BYTES = 16 * 1024 * 1024
# RapidJSON parses iteratively with no depth limit; deeper documents than this are refused with a
# 400 instead (a deliberate difference: no TF Serving request is nested this deep).
MAX_NESTING = 512

# ------------------------------------------------------------------------------------------------ parsing
# RapidJSON's GetParseError_En texts for the errors Python's parser reports.
_RAPIDJSON_ERRORS = [
    ("Expecting value", "Invalid value."),
    ("Expecting property name enclosed in double quotes", "Missing a name for object member."),
    ("Expecting ':' delimiter", "Missing a colon after a name of object member."),
    ("Unterminated string", "Missing a closing quotation mark in string."),
    ("Invalid \\escape", "Invalid escape character in string."),
    ("Invalid \\uXXXX escape", "Incorrect hex digit after \\u escape in string."),
    ("Invalid control character", "Invalid encoding in string."),
]


class _ParseError(ValueError):
    def __init__(self, text: str, pos: int):
        super().__init__(text)
        self.text, self.pos = text, pos


def _parse_error(text: str, pos: int) -> InvalidRequest:
    return InvalidRequest(f"JSON Parse error: {text} at offset: {pos}")


def _number_too_big(s: str):
    raise _ParseError("Number too big to be stored in double.", 0)


def _parse_int(s: str):
    # RapidJSON keeps integers up to 64 bits and reads larger ones as doubles.
    if len(s) <= 19 or (len(s) <= 20 and (s[0] == "-" or int(s) < 2 ** 64)):
        return int(s)
    value = float(s) if len(s) < 400 else math.inf
    if math.isinf(value):
        _number_too_big(s)
    return value


def _parse_float(s: str):
    value = float(s)
    if math.isinf(value):
        _number_too_big(s)
    return value


_CONSTANTS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_DECODER = json.JSONDecoder(parse_int=_parse_int, parse_float=_parse_float,
                            parse_constant=_CONSTANTS.__getitem__)
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _has_lone_surrogate(value) -> bool:
    if isinstance(value, str):
        return bool(_SURROGATE.search(value))
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    return False


def _depth_ok(body: bytes) -> bool:
    """Cheap upper bound on nesting: brackets outside strings are rare beyond MAX_NESTING."""
    if body.count(b"[") + body.count(b"{") <= MAX_NESTING:
        return True
    depth = 0
    in_str = esc = False
    for c in body:
        if in_str:
            if esc:
                esc = False
            elif c == 0x5C:
                esc = True
            elif c == 0x22:
                in_str = False
        elif c == 0x22:
            in_str = True
        elif c in (0x5B, 0x7B):
            depth += 1
            if depth > MAX_NESTING:
                return False
        elif c in (0x5D, 0x7D):
            depth -= 1
    return True


def loads(body: bytes):
    """Parse a request body as TF Serving does (RapidJSON with NaN/Inf, stop when done)."""
    if not body:
        raise InvalidRequest("JSON Parse error: The document is empty")
    if orjson is not None:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    if not _depth_ok(body):
        raise InvalidRequest(f"JSON Parse error: document nested deeper than {MAX_NESTING} levels "
                             f"(tfrec serve's limit)")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _parse_error("Invalid encoding in string.", exc.start) from None
    start = len(text) - len(text.lstrip(" \t\n\r"))
    if start == len(text):
        raise _parse_error("The document is empty.", start)
    try:
        # raw_decode: trailing text after the document is ignored (kParseStopWhenDoneFlag).
        doc, _ = _DECODER.raw_decode(text, start)
    except _ParseError as exc:
        raise _parse_error(exc.text, exc.pos) from None
    except json.JSONDecodeError as exc:
        msg = exc.msg
        if msg == "Expecting ',' delimiter":
            opener = _innermost_open(text, exc.pos)
            msg = ("Missing a comma or '}' after an object member." if opener == "{"
                   else "Missing a comma or ']' after an array element.")
        else:
            msg = next((r for p, r in _RAPIDJSON_ERRORS if exc.msg.startswith(p)), "Invalid value.")
        raise _parse_error(msg, exc.pos) from None
    except (RecursionError, ValueError) as exc:  # ValueError: int digits limit and the like
        raise _parse_error(f"Invalid value. ({type(exc).__name__})", start) from None
    if _has_lone_surrogate(doc):
        raise _parse_error("The surrogate pair in string is invalid.", start)
    return doc


def _innermost_open(text: str, pos: int) -> str:
    stack = []
    in_str = esc = False
    for c in text[:pos]:
        if in_str:
            if esc:
                esc = False
            elif c == "\\":
                esc = True
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c in "[{":
            stack.append(c)
        elif c in "]}" and stack:
            stack.pop()
    return stack[-1] if stack else "["


# ------------------------------------------------------------------------------------------------ JSON -> tensors
def dtype_string(dtype) -> str:
    """TensorFlow's DataTypeString: float, double, int32, string, ..."""
    return {"float32": "float", "float64": "double", "float16": "half"}.get(dtype.name, dtype.name)


def debug_string(value) -> str:
    """A JSON value as TF Serving prints it in errors (at most 256 bytes)."""
    try:
        text = json.dumps(value, separators=(", ", ": "), ensure_ascii=False, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        text = str(value)
    return text[:256]


def _json_type(value) -> str:
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
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
    return InvalidRequest(f"JSON Value: {debug_string(value)} Type: {_json_type(value)} is not of expected type: "
                          f"{dtype_string(dtype)}")


def _b64decode(value) -> bytes:
    if not _is_b64(value):
        raise InvalidRequest(f"JSON Value: {debug_string(value)} not formatted correctly for base64 data")
    text = value["b64"]
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, binascii.Error, UnicodeEncodeError):
        try:  # absl::Base64Unescape also accepts unpadded and web-safe input
            padded = text.replace("-", "+").replace("_", "/")
            return base64.b64decode((padded + "=" * (-len(padded) % 4)).encode("ascii"), validate=True)
        except (ValueError, binascii.Error, UnicodeEncodeError):
            raise InvalidRequest("Unable to base64 decode") from None


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


# ------------------------------------------------------------------------------------------------ tensors -> JSON
def format_float(value: float, float32: bool = True) -> str:
    """A float as TF Serving's JSON writer prints it (see the module docstring)."""
    if value != value:
        return "NaN"
    if math.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    text = "%g" % value
    back = float(text)
    if (np.float32(back) != np.float32(value)) if float32 else (back != value):
        text = ("%.9g" if float32 else "%.17g") % value
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def _str_token(value: bytes, as_bytes: bool) -> str:
    if not as_bytes:
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:  # JSON cannot carry raw bytes (TF Serving writes them as they are)
            as_bytes = True
        else:
            return orjson.dumps(text).decode() if orjson is not None else json.dumps(text, ensure_ascii=False)
    return '{"b64": "' + base64.b64encode(value).decode("ascii") + '"}'


def _tokens(arr: np.ndarray, as_bytes: bool) -> list:
    """Flat list of JSON texts, one per element of ``arr``."""
    kind = arr.dtype.kind
    flat = arr.reshape(-1)
    if kind == "f":
        if arr.dtype.itemsize == 4:
            return [format_float(v, True) for v in flat.tolist()]
        if arr.dtype.itemsize == 8:
            return [format_float(v, False) for v in flat.tolist()]
    elif kind in "iu":
        return [str(v) for v in flat.tolist()]
    elif kind == "b":
        return ["true" if v else "false" for v in flat.tolist()]
    elif kind in "OS":
        out = []
        for v in flat.tolist():
            if isinstance(v, str):
                v = v.encode("utf-8")
            if not isinstance(v, bytes):
                break
            out.append(_str_token(v, as_bytes))
        else:
            return out
    raise InvalidRequest(f"Failed to write JSON value for tensor type: {_dtype_enum_name(arr.dtype)}")


def _dtype_enum_name(np_dtype) -> str:
    try:
        import tensorflow as tf

        return dtype_string(tf.dtypes.as_dtype(np_dtype))
    except TypeError:
        return str(np_dtype)


def _nest(tokens: list, shape: tuple) -> str:
    if not shape:
        return tokens[0]
    if len(shape) == 1:
        return "[" + ", ".join(tokens) + "]"
    step = len(tokens) // shape[0] if shape[0] else 0
    return "[" + ", ".join(_nest(tokens[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])) + "]"


def tensor_json(arr: np.ndarray, as_bytes: bool = False) -> str:
    return _nest(_tokens(arr, as_bytes), arr.shape)


def _row_batch_size(outputs: dict, names: list) -> int:
    """The shared batch size of ``outputs`` for the row format (TF Serving's errors if there is none)."""
    batch = -1
    for n in names:
        if outputs[n].ndim == 0:
            raise InvalidRequest(f"Tensor name: {n} has no shape information ")
        cur = outputs[n].shape[0]
        if batch >= 0 and cur != batch:
            raise InvalidRequest(f"Tensor name: {n} has inconsistent batch size: {cur} expecting: {batch}")
        batch = cur
    return batch


def _is_bytes_output(name: str, arr: np.ndarray) -> bool:
    return name.endswith("_bytes") and arr.dtype.kind in "OS"


def encode_response(outputs: dict, fmt: str) -> bytes:
    """The ``:predict`` response body for ``{output alias: array}`` in row or columnar format."""
    names = sorted(outputs)
    if not names:
        raise InvalidRequest("Cannot convert empty tensor map to JSON")
    if fmt == "row":
        batch = _row_batch_size(outputs, names)
        per_name = {}
        for n in names:
            arr = outputs[n]
            tokens = _tokens(arr, _is_bytes_output(n, arr))
            step = len(tokens) // batch if batch else 0
            per_name[n] = [_nest(tokens[i * step:(i + 1) * step], arr.shape[1:]) for i in range(batch)]
        if len(names) == 1:
            items = per_name[names[0]]
        else:
            items = ["{" + ", ".join(f"{_key(n)}: {per_name[n][i]}" for n in names) + "}" for i in range(batch)]
        return ('{"predictions": [' + ", ".join(items) + "]}").encode("utf-8")
    cols = {n: tensor_json(outputs[n], _is_bytes_output(n, outputs[n])) for n in names}
    if len(names) == 1:
        return ('{"outputs": ' + cols[names[0]] + "}").encode("utf-8")
    return ('{"outputs": {' + ", ".join(f"{_key(n)}: {cols[n]}" for n in names) + "}}").encode("utf-8")


def _key(name: str) -> str:
    return json.dumps(name, ensure_ascii=False)


def encode_classification(result) -> bytes:
    """A ClassificationResult -> ``{"results": [[[label, score], ...], ...]}``."""
    if not result.classifications:
        raise InvalidRequest("Cannot convert empty ClassificationResults to JSON")
    rows = []
    for c in result.classifications:
        rows.append("[" + ", ".join(f"[{_str_token(k.label.encode('utf-8'), False)}, {format_float(k.score)}]"
                                    for k in c.classes) + "]")
    return ('{"results": [' + ", ".join(rows) + "]}").encode("utf-8")


def encode_regression(result) -> bytes:
    if not result.regressions:
        raise InvalidRequest("Cannot convert empty RegressionResults to JSON")
    return ('{"results": [' + ", ".join(format_float(r.value) for r in result.regressions) + "]}").encode("utf-8")


def dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=True, ensure_ascii=False).encode("utf-8")
