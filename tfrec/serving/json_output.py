"""Tensors -> TF Serving's JSON response bodies (``:predict``, ``:classify``, ``:regress``).

Follows TF Serving's ``util/json_tensor.cc`` (Apache-2.0; the behaviour spec, no code copied): row
format (``predictions``, one object per batch item, a single output unwrapped) or columnar
(``outputs``); ``*_bytes`` string outputs as ``{"b64": ...}``; floats as TF Serving's writer prints
them: six significant digits when that round-trips, else full precision (9 digits for float32, 17
for double), whole numbers with ``.0``, ``NaN``/``Infinity``/``-Infinity`` literals.
"""

from __future__ import annotations

import base64
import json
import math

import numpy as np

from tfrec.serving.json_values import dtype_string, orjson
from tfrec.serving.model_manager import InvalidRequest


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


def _float_tokens(flat: np.ndarray) -> list:
    """``format_float`` for a whole finite float32/float64 array (vectorised round-trip check)."""
    f32 = flat.dtype.itemsize == 4
    values = flat.tolist()
    out = ["%g" % v for v in values]
    back = np.array(out, dtype=flat.dtype)
    if back.tobytes() != flat.tobytes():  # (finite values: byte equality is value equality, -0.0 kept)
        wide = "%.9g" if f32 else "%.17g"
        for i in np.flatnonzero(back != flat).tolist():
            out[i] = wide % values[i]
    return [t if ("." in t or "e" in t) else t + ".0" for t in out]


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
    if kind == "f" and arr.dtype.itemsize in (4, 8):
        if np.isfinite(flat).all():
            return _float_tokens(flat)
        return [format_float(v, arr.dtype.itemsize == 4) for v in flat.tolist()]
    elif kind in "iu":
        return [str(v) for v in flat.tolist()]
    elif kind == "b":
        return ["true" if v else "false" for v in flat.tolist()]
    elif kind in "OS":
        values = flat.tolist()
        if not as_bytes and orjson is not None:
            try:  # the common case: UTF-8 strings
                return [orjson.dumps(v.decode("utf-8")).decode() for v in values]
            except (UnicodeDecodeError, AttributeError, TypeError):
                pass
        out = []
        for v in values:
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


def _decode_all(value):
    """Nested lists of UTF-8 bytes -> nested lists of str (UnicodeDecodeError/AttributeError if not)."""
    if type(value) is bytes:
        return value.decode("utf-8")
    return [_decode_all(v) for v in value]


def _texts(arr: np.ndarray, as_bytes: bool, per_row: bool):
    """``arr``'s JSON text (or, ``per_row``, one text per item of its first dimension).

    Integers, booleans and UTF-8 strings go through orjson in one call (it writes them as TF
    Serving does); floats, ``*_bytes`` and non-UTF-8 strings through ``_tokens``.
    """
    kind = arr.dtype.kind
    if orjson is not None and (kind in "iub" or (kind in "OS" and not as_bytes)):
        try:
            value = arr.tolist() if kind in "iub" else _decode_all(arr.tolist())
        except (UnicodeDecodeError, AttributeError, TypeError, RecursionError):
            pass
        else:
            if per_row:
                return [orjson.dumps(v).decode() for v in value]
            return orjson.dumps(value).decode()
    tokens = _tokens(arr, as_bytes)
    if not per_row:
        return _nest(tokens, arr.shape)
    batch = arr.shape[0]
    step = len(tokens) // batch if batch else 0
    return [_nest(tokens[i * step:(i + 1) * step], arr.shape[1:]) for i in range(batch)]


def tensor_json(arr: np.ndarray, as_bytes: bool = False) -> str:
    return _texts(arr, as_bytes, per_row=False)


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
        per_name = {n: _texts(outputs[n], _is_bytes_output(n, outputs[n]), per_row=True) for n in names}
        if len(names) == 1:
            items = per_name[names[0]]
        else:
            items = ["{" + ", ".join(f"{_key(n)}: {per_name[n][i]}" for n in names) + "}" for i in range(batch)]
        return ('{"predictions": [' + ", ".join(items) + "]}").encode("utf-8")
    cols = {n: tensor_json(outputs[n], _is_bytes_output(n, outputs[n])) for n in names}
    if len(names) == 1:
        return ('{"outputs": ' + cols[names[0]] + "}").encode("utf-8")
    return ('{"outputs": {' + ", ".join(f"{_key(n)}: {cols[n]}" for n in names) + "}}").encode("utf-8")


_KEYS: dict = {}


def _key(name: str) -> str:
    text = _KEYS.get(name)
    if text is None:
        text = _KEYS[name] = json.dumps(name, ensure_ascii=False)
    return text


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
