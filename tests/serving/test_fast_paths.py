"""The request path's fast paths give the same answers as the plain ones; the batch scheduler's rules.

No timing assertions: the scheduler tests hold a batch thread on an event and look at batch sizes.
"""

import asyncio
import json
import threading
import types

import numpy as np
import pytest
import tfrec  # noqa: F401  (first: Keras 2 behind tf.keras)
import tensorflow as tf

from tfrec.serving import rest_api
from tfrec.serving.app import Batcher, BatchQueueFull
from tfrec.serving.model_manager import InvalidRequest, Signature
from tfrec.serving.server_config import BatchingParameters

RNG = np.random.default_rng(0)

OUTPUTS = [
    {"item_ids": np.array([[b"1", b"22"], [b"3", b"4"]], dtype=object),
     "scores": RNG.random((2, 2)).astype(np.float32)},
    {"scores": RNG.random(3).astype(np.float32)},
    {"x": np.array([1, -2], dtype=np.int64), "y": np.array([True, False]), "z": RNG.random((2, 3))},
    {"x": np.array([1e-5, 3.4e38, 1.0, 0.0, -0.0, 123456.78], dtype=np.float32)},
    {"x": np.array([np.nan, np.inf, -np.inf, 1.5], dtype=np.float32)},  # NaN/Infinity as TF Serving writes them
    {"x_bytes": np.array([b"\xff\x00", b"a"], dtype=object)},  # *_bytes outputs are b64
    {"x": np.array([b"\xff", b"a"], dtype=object)},  # non-UTF-8 strings fall back to b64
    {"x": np.array([b"caf\xc3\xa9"], dtype=object), "n": np.array([3], dtype=np.uint8)},
    {"x": np.zeros((2, 0), dtype=np.float32)},
    {"x": np.array([], dtype=object)},
    {"x": np.array([1, 2], dtype=np.float16)},
    {"x": np.arange(12, dtype=np.float32).reshape(3, 4)[:, 1:3]},  # not C-contiguous
]


def _doc(raw: bytes):
    return json.loads(raw, parse_constant=lambda c: c)  # keep NaN/Infinity comparable


def _expected(arr: np.ndarray, name: str):
    """What a client reading the answer gets for one output tensor (strings decoded, *_bytes as b64)."""
    def conv(v):
        if isinstance(v, bytes):
            if name.endswith("_bytes"):
                return {"b64": __import__("base64").b64encode(v).decode()}
            try:
                return v.decode("utf-8")
            except UnicodeDecodeError:
                return {"b64": __import__("base64").b64encode(v).decode()}
        if isinstance(v, float):
            return v if np.isfinite(v) else str(v).replace("inf", "Infinity").replace("nan", "NaN")
        return v

    def walk(a):
        return [walk(x) for x in a] if isinstance(a, list) else conv(a)

    return walk(arr.tolist())


def _close(got, want):
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(_close(g, w) for g, w in zip(got, want))
    if isinstance(want, float):
        return isinstance(got, float) and np.float32(got) == np.float32(want)
    if isinstance(want, str) and want in ("Infinity", "-Infinity", "NaN"):
        return got == want
    return got == want


@pytest.mark.parametrize("outputs", [o for o in OUTPUTS if not any(a.dtype == np.float16 for a in o.values())])
@pytest.mark.parametrize("fmt", ["row", "columnar"])
def test_encode_response_writes_every_value(outputs, fmt):
    doc = _doc(rest_api.encode_response(outputs, fmt))
    names = sorted(outputs)
    cols = {n: _expected(outputs[n], n) for n in names}
    if fmt == "columnar":
        got = doc["outputs"] if len(names) > 1 else {names[0]: doc["outputs"]}
        assert all(_close(got[n], cols[n]) for n in names), doc
    else:
        rows = doc["predictions"]
        for i, row in enumerate(rows):
            got = row if len(names) > 1 else {names[0]: row}
            assert all(_close(got[n], cols[n][i]) for n in names), doc


def test_unsupported_output_dtypes_are_a_400_as_tf_serving():
    with pytest.raises(InvalidRequest, match="Failed to write JSON value for tensor type: half"):
        rest_api.encode_response({"x": np.array([1, 2], dtype=np.float16)}, "columnar")
    with pytest.raises(InvalidRequest, match="Failed to write JSON value for tensor type: complex64"):
        rest_api.encode_response({"x": np.array([1j], dtype=np.complex64)}, "columnar")


def test_encode_response_keeps_row_format_errors():
    with pytest.raises(InvalidRequest, match="inconsistent batch size"):
        rest_api.encode_response({"a": np.zeros(2, np.float32), "b": np.zeros(3, np.float32)}, "row")
    with pytest.raises(InvalidRequest, match="no shape information"):
        rest_api.encode_response({"a": np.array(1.0, dtype=np.float32)}, "row")


def test_floats_are_written_as_tf_serving_writes_them():
    # Six significant digits when they round-trip, else 9 (float32) / 17 (double); ".0" on whole numbers.
    raw = rest_api.encode_response({"s": np.array([0.1, 0.39096573, 3.0, 1e-5, 5e6], dtype=np.float32)}, "row")
    assert raw == b'{"predictions": [0.1, 0.390965730, 3.0, 1e-05, 5e+06]}'.replace(b"0.390965730", b"0.39096573")
    assert rest_api.encode_response({"d": np.array([0.1 + 0.2])}, "columnar") == b'{"outputs": [0.30000000000000004]}'
    assert rest_api.encode_response({"s": np.array(2.5, dtype=np.float32)}, "columnar") == b'{"outputs": 2.5}'


@pytest.mark.parametrize("body", [b'{"a": NaN}', b'{"a": Infinity}', b'{"a": [1, 2.5, "x"]}'])
def test_loads_accepts_what_the_standard_parser_accepts(body):
    got = rest_api.loads(body)
    want = json.loads(body)
    assert json.dumps(got) == json.dumps(want)


def test_integers_beyond_64_bits_parse_as_doubles_like_tf_serving():
    # RapidJSON (TF Serving's parser) reads integers that overflow uint64 as doubles.
    assert rest_api.loads(b'{"a": 123456789012345678901234567890}') == {"a": 1.2345678901234568e29}


@pytest.mark.parametrize("body,text", [
    (b"{not json", "Missing a name for object member."), (b"[", "Invalid value."),
    (b'{"a": 1,}', "Missing a name for object member."), (b"\xff\xfe", "Invalid encoding in string."),
    (b'{"a": "\\ud800"}', "The surrogate pair in string is invalid."), (b'{"a": 1e999}', "Number too big"),
    (b'{"a": ' + b"9" * 5000 + b"}", "Number too big"), (b'{"a": [1 2]}', "Missing a comma or ']'"),
    (b'{"a": 1 "b": 2}', "Missing a comma or '}'"),
])
def test_loads_errors_keep_rapidjson_wording(body, text):
    with pytest.raises(InvalidRequest, match=r"^JSON Parse error: .* at offset: \d+$") as info:
        rest_api.loads(body)
    assert text in str(info.value)


def test_trailing_text_after_the_document_is_ignored_as_rapidjson_stop_when_done():
    assert rest_api.loads(b'{"a": 1} trailing') == {"a": 1}


def test_scalar_instances_fast_path_matches_nested_values():
    spec = {"user_id": tf.TensorSpec([None], tf.string, "user_id")}
    arrays = rest_api._from_instances([{"user_id": "1"}, {"user_id": {"b64": "Mg=="}}], spec)
    assert arrays["user_id"].tolist() == [b"1", b"2"]
    with pytest.raises(InvalidRequest, match="is not of expected type"):
        rest_api._from_instances([{"user_id": 1}], spec)
    num = {"k": tf.TensorSpec([None], tf.int32, "k")}
    assert rest_api._from_instances([3, 4], num)["k"].dtype == np.int32
    with pytest.raises(InvalidRequest, match="is not of expected type: int32"):
        rest_api._from_instances([2 ** 40], num)


# ------------------------------------------------------------------------------------------------ scheduler
class _Model:
    """A signature whose batch thread can be held on an event; records every batch size it runs."""

    def __init__(self):
        self.sizes: list = []
        self.gate = threading.Event()
        self.started = threading.Event()
        self.fail = False
        spec = {"user_id": tf.TensorSpec([None], tf.string, "user_id")}
        self.signature = Signature("serving_default", self, spec, {})
        self.servable = types.SimpleNamespace(name="m", version=1)

    def __call__(self, user_id):
        self.sizes.append(int(user_id.shape[0]))
        self.started.set()
        assert self.gate.wait(30)
        if self.fail:
            raise tf.errors.InvalidArgumentError(None, None, "bad input\nmore")
        return {"n": tf.strings.length(user_id)}

    def submit(self, batcher, *ids):
        arrays = {"user_id": np.array([i.encode() for i in ids], dtype=object)}
        return asyncio.ensure_future(batcher.submit(self.servable, self.signature, arrays))


async def _until(event: threading.Event):
    for _ in range(3000):  # bounded: a batch thread that never starts fails the test, it does not hang it
        if event.is_set():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("batch thread did not start")


def _run(params, scenario):
    model = _Model()
    batcher = Batcher(params)
    try:
        return asyncio.run(scenario(model, batcher)), model, batcher
    finally:
        model.gate.set()
        batcher.close()


def test_timeout_zero_runs_at_once_and_fills_the_next_batch_while_busy():
    async def scenario(model, batcher):
        first = model.submit(batcher, "a")
        await _until(model.started)  # ran alone: no waiting with batch_timeout_micros 0
        rest = [model.submit(batcher, f"u{i}") for i in range(5)]
        await asyncio.sleep(0)
        model.gate.set()
        return await asyncio.gather(first, *rest)

    results, model, batcher = _run(BatchingParameters(max_batch_size=64, batch_timeout_micros=0,
                                                      num_batch_threads=1), scenario)
    assert model.sizes == [1, 5]
    assert [r["n"].tolist() for r in results] == [[1]] + [[2]] * 5
    assert batcher.batches_run == 2 and batcher.requests_batched == 6


def test_batches_never_exceed_max_batch_size():
    async def scenario(model, batcher):
        first = model.submit(batcher, "a")
        await _until(model.started)
        rest = [model.submit(batcher, "b", "c") for _ in range(3)] + [model.submit(batcher, "d")]
        await asyncio.sleep(0)
        model.gate.set()
        return await asyncio.gather(first, *rest)

    results, model, _ = _run(BatchingParameters(max_batch_size=3, batch_timeout_micros=0, num_batch_threads=1),
                             scenario)
    assert model.sizes == [1, 2, 2, 3]  # a 2-row request never splits; the 1-row one joins the last
    assert [len(r["n"]) for r in results] == [1, 2, 2, 2, 1]


def test_a_full_queue_refuses_requests():
    async def scenario(model, batcher):
        first = model.submit(batcher, "a")
        await _until(model.started)
        queued = model.submit(batcher, "b")  # a closed batch waiting for the thread
        await asyncio.sleep(0)
        with pytest.raises(BatchQueueFull):
            await model.submit(batcher, "c")
        model.gate.set()
        return await asyncio.gather(first, queued)

    results, model, _ = _run(BatchingParameters(max_batch_size=1, batch_timeout_micros=0, num_batch_threads=1,
                                                max_enqueued_batches=1), scenario)
    assert model.sizes == [1, 1] and len(results) == 2


def test_a_failing_batch_fails_each_of_its_requests_with_400_wording():
    async def scenario(model, batcher):
        model.fail = True
        model.gate.set()
        futs = [model.submit(batcher, "a"), model.submit(batcher, "b")]
        return await asyncio.gather(*futs, return_exceptions=True)

    results, _, _ = _run(BatchingParameters(max_batch_size=8, batch_timeout_micros=0, num_batch_threads=1), scenario)
    assert all(isinstance(r, InvalidRequest) and str(r) == "bad input" for r in results)
