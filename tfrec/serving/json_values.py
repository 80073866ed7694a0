"""JSON request values as TF Serving's RapidJSON reads them: parsing, type names, debug text, b64.

Follows TF Serving's ``util/json_tensor.cc`` (Apache-2.0; the behaviour spec, no code copied):
RapidJSON with NaN/Infinity literals and "stop when done" (trailing text after the document is
ignored); parse errors carry RapidJSON's English texts (``JSON Parse error: Invalid value. at
offset: 0``); integers beyond 64 bits read as doubles, beyond double range as "Number too big".
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re

try:  # a fast JSON codec; the standard library gives the same documents without it
    import orjson
except ImportError:  # pragma: no cover
    orjson = None

from tfrec.serving.model_manager import InvalidRequest

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
