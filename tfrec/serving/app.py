"""The Starlette application: routes, server-side batching and Prometheus metrics."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Optional
from urllib.parse import unquote

import numpy as np
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from tfrec.serving import inference, rest_api
from tfrec.serving.model_manager import (
    HTTP_STATUS,
    InvalidRequest,
    ModelManager,
    Servable,
    ServableNotFound,
    Signature,
    StatusError,
)
from tfrec.serving.server_config import BatchingParameters, MonitoringConfig

# TF Serving's http_rest_api_util.cc regexes (RE2 FullMatch, case-insensitive; \d is ASCII there).
_DISPATCH = re.compile(r"(?i)/v1/.*", re.DOTALL)
_PREDICTION_API = re.compile(
    r"(?i)/v1/models/([^/:]+)(?:(?:/versions/([0-9]+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)",
    re.DOTALL)
_MODEL_STATUS_API = re.compile(
    r"(?i)/v1/models(?:/([^/:]+))?(?:(?:/versions/([0-9]+))|(?:/labels/([^/:]+)))?(?:/(metadata))?", re.DOTALL)
_ORIGIN = re.compile(r"https?://")
_VERB_APIS = {"predict": "Predict", "classify": "Classify", "regress": "Regress"}


def _json(obj, status: int = 200) -> Response:
    return Response(rest_api.dumps(obj), status_code=status, media_type="application/json")


def _error(message: str, status: int) -> Response:
    return _json({"error": message}, status)


def _status_error(exc: StatusError) -> Response:
    return _error(str(exc), HTTP_STATUS.get(exc.code, 500))


def parse_model_info(method: str, path: str):
    """TF Serving's ParseModelInfo: (name, version, label, verb, subresource) or None when no match."""
    if method == "POST":
        m = _PREDICTION_API.fullmatch(path)
        if not m:
            return None
        name, version, label, verb = m.groups()
        sub = None
    elif method == "GET":
        m = _MODEL_STATUS_API.fullmatch(path)
        if not m:
            return None
        name, version, label, sub = m.groups()
        verb = None
    else:
        return None
    name = unquote(name) if name else ""
    if version is not None:
        v = int(version)
        if v >= 2 ** 63:
            raise InvalidRequest(f"Failed to convert version: {version} to numeric.")
        version = v
    if label is not None:
        label = unquote(label)
    return name, version, label, verb, sub


# ------------------------------------------------------------------------------------------------ batching
class BatchQueueFull(StatusError, RuntimeError):
    """The batch queue holds ``max_enqueued_batches`` batches already (TF Serving: UNAVAILABLE -> 503)."""

    code = "UNAVAILABLE"


@dataclass
class _Pending:
    arrays: dict
    rows: int
    future: asyncio.Future


@dataclass
class _Batch:
    key: tuple
    signature: Signature
    opened: float
    items: list = field(default_factory=list)
    rows: int = 0


class Batcher:
    """Merges concurrent predict requests for the same servable + signature into one call.

    The scheduling follows TF Serving's shared batch scheduler: each servable + signature (+ non-batch
    input shapes) has a queue whose open batch collects requests; a batch closes when adding a request
    would exceed ``max_batch_size``. ``num_batch_threads`` threads run batches; a free thread takes a
    closed batch first, else an open batch that has waited ``batch_timeout_micros`` (with 0: at once).
    While every thread is busy, batches keep filling, so under load batch sizes grow with the load
    and an idle server adds no delay beyond the timeout. A queue holding ``max_enqueued_batches``
    batches refuses new requests (503, as TF Serving's UNAVAILABLE). Outputs are split back by rows.
    """

    def __init__(self, params: BatchingParameters):
        self.params = params
        self.max_batch_size = max(1, int(params.max_batch_size))
        self.timeout = max(0, int(params.batch_timeout_micros)) / 1e6
        self.threads = max(1, int(params.num_batch_threads))
        self.max_enqueued = max(1, int(params.max_enqueued_batches))
        self._open: dict = {}  # key -> _Batch still accepting requests
        self._closed: collections.deque = collections.deque()  # full batches, oldest first
        self._closed_per_key: collections.Counter = collections.Counter()
        self._busy = 0
        self._timer: Optional[asyncio.TimerHandle] = None
        self._timer_at = math.inf
        self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="tfrec-batch")
        self.batches_run = 0
        self.requests_batched = 0

    @staticmethod
    def batchable(signature: Signature, arrays: dict) -> bool:
        for name, spec in signature.inputs.items():
            if spec.shape.rank is None or spec.shape.rank == 0 or spec.shape[0] is not None:
                return False
            if arrays[name].ndim == 0:
                return False
        rows = {a.shape[0] for a in arrays.values()}
        return len(rows) == 1

    async def submit(self, servable: Servable, signature: Signature, arrays: dict) -> dict:
        loop = asyncio.get_running_loop()
        key = (servable.name, servable.version, id(servable), signature.name,
               tuple((n, a.shape[1:]) for n, a in sorted(arrays.items())))
        rows = next(iter(arrays.values())).shape[0]
        batch = self._open.get(key)
        if batch is not None and batch.rows + rows > self.max_batch_size:
            self._close(batch)
            batch = None
        if batch is None:
            if self._closed_per_key[key] >= self.max_enqueued:
                raise BatchQueueFull("The batch scheduling queue to which this task was submitted is full")
            batch = self._open[key] = _Batch(key, signature, loop.time())
        fut = loop.create_future()
        batch.items.append(_Pending(arrays, rows, fut))
        batch.rows += rows
        if batch.rows >= self.max_batch_size:
            self._close(batch)
        self._schedule()
        return await fut

    def _close(self, batch: _Batch) -> None:
        del self._open[batch.key]
        self._closed.append(batch)
        self._closed_per_key[batch.key] += 1

    def _schedule(self) -> None:
        """Hand batches to free threads; arm a timer for the oldest open batch if a thread is free."""
        loop = asyncio.get_running_loop()
        while self._busy < self.threads:
            if self._closed:
                batch = self._closed.popleft()
                self._closed_per_key[batch.key] -= 1
                if not self._closed_per_key[batch.key]:
                    del self._closed_per_key[batch.key]
            elif self._open:
                batch = min(self._open.values(), key=lambda b: b.opened)
                if loop.time() < batch.opened + self.timeout:
                    break
                del self._open[batch.key]
            else:
                break
            self._start(loop, batch)
        if self._busy < self.threads and self._open and not self._closed:
            due = min(b.opened for b in self._open.values()) + self.timeout
            if due < self._timer_at:
                if self._timer is not None:
                    self._timer.cancel()
                self._timer_at = due
                self._timer = loop.call_at(due, self._on_timer)

    def _on_timer(self) -> None:
        self._timer, self._timer_at = None, math.inf
        self._schedule()

    def _start(self, loop, batch: _Batch) -> None:
        self._busy += 1
        self.batches_run += 1
        self.requests_batched += len(batch.items)
        cf = self._executor.submit(self._execute, batch)
        cf.add_done_callback(lambda f: loop.call_soon_threadsafe(self._finished, batch, f))

    @staticmethod
    def _execute(batch: _Batch) -> list:
        """In a batch thread: merge, run the signature once, split the outputs by request."""
        items = batch.items
        if len(items) == 1:
            merged = items[0].arrays
        else:
            merged = {n: np.concatenate([it.arrays[n] for it in items]) for n in items[0].arrays}
        outputs = inference.run_signature(batch.signature, merged)
        parts, start = [], 0
        for it in items:
            parts.append({n: (v[start:start + it.rows] if v.ndim else v) for n, v in outputs.items()})
            start += it.rows
        return parts

    def _finished(self, batch: _Batch, cf) -> None:
        self._busy -= 1
        exc = cf.exception()
        if exc is not None:  # every request of the batch gets the error
            for it in batch.items:
                if not it.future.done():
                    it.future.set_exception(exc)
        else:
            for it, part in zip(batch.items, cf.result()):
                if not it.future.done():
                    it.future.set_result(part)
        self._schedule()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


# ------------------------------------------------------------------------------------------------ metrics
# An HTTP status back to a status code name, for answers built without a StatusError (the first
# code of HTTP_STATUS with that HTTP status: 400 -> INVALID_ARGUMENT).
_CODE_OF_HTTP: dict = {}
for _code, _http in HTTP_STATUS.items():
    _CODE_OF_HTTP.setdefault(_http, _code)


class Metrics:
    """Prometheus counters/histograms under TF Serving's metric names, for REST and gRPC alike.

    As TF Serving (``RecordModelRequestCount`` / ``RecordRequestLatency`` in
    servables/tensorflow/util.cc): every request to a model counts once under its status code name
    (``OK``, ``INVALID_ARGUMENT``, ``NOT_FOUND``, ...); only successful ones add their latency, in
    microseconds, labelled with the API (REST: the method, e.g. ``predict``; gRPC: ``Predict``,
    ``Classify``, ``Regress``) and the entrypoint (``REST`` or ``GRPC``). Thread-safe
    (prometheus_client), so the gRPC threads and the event loop share one registry.
    """

    def __init__(self, config: MonitoringConfig):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.config = config
        self.registry = CollectorRegistry()
        self.requests = Counter(":tensorflow:serving:request_count", "Number of requests.",
                                ["model_name", "status"], registry=self.registry)
        self.latency = Histogram(":tensorflow:serving:request_latency", "Request latency in microseconds.",
                                 ["model_name", "API", "entrypoint"], registry=self.registry,
                                 buckets=(100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
                                          1000000))

    def observe(self, model: str, api: str, code: str, seconds: float, entrypoint: str = "REST") -> None:
        """One request to ``model`` that ended with status ``code`` (a gRPC/absl code name)."""
        self.requests.labels(model_name=model, status=code).inc()
        if code == "OK":
            self.latency.labels(model_name=model, API=api, entrypoint=entrypoint).observe(seconds * 1e6)

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


# ------------------------------------------------------------------------------------------------ app
def _status_json(servables: list[Servable]) -> dict:
    return {"model_version_status": [
        {"version": str(s.version), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        for s in sorted(servables, key=lambda s: -s.version)]}  # newest first, as TF Serving's VersionMap


def _message_json(message) -> dict:
    """A proto as TF Serving's REST API prints it: field names as in the .proto, fields without
    presence printed even when default (``always_print_fields_with_no_presence``)."""
    from google.protobuf import json_format

    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


def metadata_response(servable: Servable):
    """The GetModelMetadataResponse proto for ``servable`` (signature_def metadata, as TF Serving)."""
    from tensorflow_serving.apis import get_model_metadata_pb2

    sig_map = get_model_metadata_pb2.SignatureDefMap()
    for name, sig in servable.signature_defs.items():
        sig_map.signature_def[name].CopyFrom(sig)
    resp = get_model_metadata_pb2.GetModelMetadataResponse()
    resp.model_spec.name = servable.name
    resp.model_spec.version.value = servable.version
    resp.metadata["signature_def"].Pack(sig_map)
    return resp, sig_map


def _metadata_json(servable: Servable) -> dict:
    # TF Serving prints model_spec and the unpacked SignatureDefMap separately (no "@type").
    resp, sig_map = metadata_response(servable)
    return {"model_spec": _message_json(resp.model_spec), "metadata": {"signature_def": _message_json(sig_map)}}


def create_app(manager: ModelManager, *, batching: Optional[BatchingParameters] = None,
               monitoring: Optional[MonitoringConfig] = None, max_body_bytes: int = rest_api.MAX_BODY_BYTES,
               predict_threads: int = 2) -> Starlette:
    """A Starlette app serving ``manager``'s models over TF Serving's REST API."""
    batcher = Batcher(batching) if batching is not None else None
    # Unbatched predicts run here: a few threads (TF releases the GIL inside its kernels; more Python
    # threads than cores only fight over the GIL).
    predict_pool = ThreadPoolExecutor(max(1, int(predict_threads)), thread_name_prefix="tfrec-predict")
    metrics = Metrics(monitoring) if monitoring is not None and monitoring.enable else None

    def run_predict(signature, arrays):
        return inference.run_signature(signature, arrays)

    async def process(scope, method: str, raw_path: str, body: bytes, state: dict) -> Response:
        """TF Serving's HttpRestApiHandler::ProcessRequest."""
        if method == "OPTIONS":  # a CORS preflight
            if _ORIGIN.search(Headers(scope=scope).get("origin", "")):
                return Response(b"", media_type="application/json")
            raise StatusError("Origin header is missing in CORS preflight", "FAILED_PRECONDITION")
        parsed = parse_model_info(method, raw_path)
        if parsed is None:
            raise InvalidRequest(f"Malformed request: {method} {raw_path}")
        model, version, label, verb, sub = parsed
        state["model"] = model
        if version is not None and label is not None:  # (the regexes never give both)
            raise InvalidRequest(f"Both model version ({version}) and model version label ({label}) cannot be "
                                 f"supplied.")
        loop = asyncio.get_running_loop()
        if method == "GET":
            if not model:
                raise InvalidRequest("Missing model name in request.")
            if sub:
                servable = manager.resolve(model, version, label)
                return _json(_metadata_json(servable))
            if version is not None:
                loaded = manager.versions(model) if model in manager.entries else {}
                if version not in loaded:
                    raise ServableNotFound(f"Could not find version {version} of model {model}")
                servables = [loaded[version]]
            elif label is not None:
                servables = [manager.resolve(model, None, label)]
            else:
                servables = list(manager.versions(model).values())
                if not servables:
                    raise ServableNotFound(f"Could not find any versions of model {model}")
            return _json(_status_json(servables))
        api = _VERB_APIS.get(verb)
        if api is None:  # matched case-insensitively, dispatched exactly
            raise InvalidRequest(f"Malformed request: {method} {raw_path}")
        state["api"] = verb  # TF Serving's metrics label: the method as in the path (GETs: none)
        if len(body) > max_body_bytes:
            raise InvalidRequest(f"Request body of {len(body)} bytes exceeds tfrec serve's limit of "
                                 f"{max_body_bytes}")
        if verb == "predict":
            servable = manager.resolve(model, version, label)
            signature, arrays, fmt = rest_api.parse_predict_body(body, servable.signature)
            if batcher is not None and Batcher.batchable(signature, arrays):
                outputs = await batcher.submit(servable, signature, arrays)
            else:
                outputs = await loop.run_in_executor(predict_pool, run_predict, signature, arrays)
            return Response(rest_api.encode_response(outputs, fmt), media_type="application/json")
        sig_name, request_input = rest_api.parse_examples_body(body, verb)
        servable = manager.resolve(model, version, label)
        if verb == "classify":
            result, _ = await loop.run_in_executor(predict_pool, inference.classify, servable, sig_name,
                                                   request_input)
            return Response(rest_api.encode_classification(result), media_type="application/json")
        result, _ = await loop.run_in_executor(predict_pool, inference.regress, servable, sig_name, request_input)
        return Response(rest_api.encode_regression(result), media_type="application/json")

    async def read_body(receive) -> bytes:
        # Starlette's Request.body without its stream generator (this runs once per request).
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise ClientDisconnect()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def handle(scope, receive) -> Response:
        started = time.perf_counter()
        method = scope["method"]
        raw = scope.get("raw_path")
        # TF Serving matches the path as sent (names and labels are URL-decoded after matching).
        raw_path = raw.decode("latin-1").split("?", 1)[0] if raw else scope["path"]
        state = {"model": "", "api": ""}
        code = "INTERNAL"  # the request's status as TF Serving's metrics name it
        try:
            # The whole body is read first, whatever the method and path (as TF Serving's dispatcher
            # does): an answer sent while the client is still sending would reset its connection.
            body = await read_body(receive)
            if metrics is not None and scope["path"] == metrics.config.path and method == "GET":
                return Response(metrics.render(), media_type="text/plain; version=0.0.4")
            if not _DISPATCH.fullmatch(raw_path):
                # TF Serving's HTTP server: no handler for the path
                return _error(f"Not found: {method} {raw_path}", 404)
            response = await process(scope, method, raw_path, body, state)
            code = "OK" if response.status_code == 200 else _CODE_OF_HTTP.get(response.status_code, "UNKNOWN")
            return response
        except StatusError as exc:
            code = exc.code
            return _status_error(exc)
        except BatchQueueFull as exc:
            code = "UNAVAILABLE"
            return _error(str(exc), 503)
        except Exception as exc:  # an internal failure is a 500 with a message, never a dropped connection
            return _error(f"Internal: {type(exc).__name__}: {exc}", 500)
        finally:
            if metrics is not None and state["model"]:
                metrics.observe(state["model"], state["api"], code, time.perf_counter() - started)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        app.state.loop = asyncio.get_running_loop()  # gRPC threads hand batches to this loop
        try:
            yield
        finally:
            app.state.loop = None
            # The worker threads go with the app: an app run in a test or a notebook leaves none behind.
            if batcher is not None:
                batcher.close()
            predict_pool.shutdown(wait=False, cancel_futures=True)

    app = _ServingApp(handle, lifespan=lifespan)
    app.state.loop = None

    def batch_submit(servable, signature, arrays, timeout: float = 60.0):
        """From another thread (gRPC): run through the REST batcher when batching is on and the app's
        loop runs; None when the request cannot be batched (the caller runs it itself)."""
        loop = app.state.loop
        if batcher is None or loop is None or not Batcher.batchable(signature, arrays):
            return None
        return asyncio.run_coroutine_threadsafe(batcher.submit(servable, signature, arrays), loop).result(timeout)

    app.state.batch_submit = batch_submit
    app.state.manager = manager
    app.state.batcher = batcher
    app.state.predict_pool = predict_pool
    app.state.metrics = metrics
    return app


class _ServingApp(Starlette):
    """Every HTTP request (any method, any path, even one Starlette's router cannot match) goes to
    the handler, so every answer is JSON; the lifespan is Starlette's."""

    def __init__(self, handler, **kwargs):
        super().__init__(**kwargs)
        self._handler = handler

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            scope["app"] = self
            response = await self._handler(scope, receive)
            # Response.__call__'s two messages (no background tasks here).
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": response.raw_headers})
            await send({"type": "http.response.body", "body": response.body})
            return
        await super().__call__(scope, receive, send)
