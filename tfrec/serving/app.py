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

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tfrec.serving import rest_api
from tfrec.serving.model_manager import InvalidRequest, ModelManager, Servable, ServableNotFound, Signature
from tfrec.serving.server_config import BatchingParameters, MonitoringConfig

_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?:(?P<metadata>/metadata)|:(?P<verb>predict|classify|regress))?/?$"
)


def _json(obj, status: int = 200) -> Response:
    return Response(rest_api.dumps(obj), status_code=status, media_type="application/json")


def _error(message: str, status: int) -> Response:
    return _json({"error": message}, status)


# ------------------------------------------------------------------------------------------------ batching
class BatchQueueFull(RuntimeError):
    """The batch queue holds ``max_enqueued_batches`` batches already (TF Serving: UNAVAILABLE -> 503)."""


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
        outputs = rest_api.run_signature(batch.signature, merged)
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
class Metrics:
    """Prometheus counters/histograms under TF Serving's metric names."""

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

    def observe(self, model: str, api: str, status: int, seconds: float) -> None:
        self.requests.labels(model_name=model, status="OK" if status == 200 else str(status)).inc()
        self.latency.labels(model_name=model, API=api, entrypoint="REST").observe(seconds * 1e6)

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


# ------------------------------------------------------------------------------------------------ app
def _status_json(servables: list[Servable]) -> dict:
    return {"model_version_status": [
        {"version": str(s.version), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        for s in sorted(servables, key=lambda s: -s.version)]}


def _metadata_json(servable: Servable) -> dict:
    from google.protobuf import json_format
    from tensorflow_serving.apis import get_model_metadata_pb2

    sig_map = get_model_metadata_pb2.SignatureDefMap()
    for name, sig in servable.signature_defs.items():
        sig_map.signature_def[name].CopyFrom(sig)
    resp = get_model_metadata_pb2.GetModelMetadataResponse()
    resp.model_spec.name = servable.name
    resp.model_spec.version.value = servable.version
    resp.metadata["signature_def"].Pack(sig_map)
    out = json_format.MessageToDict(resp, preserving_proto_field_name=True)
    out["model_spec"].setdefault("signature_name", "")
    out["model_spec"]["version"] = str(servable.version)
    return out


def create_app(manager: ModelManager, *, batching: Optional[BatchingParameters] = None,
               monitoring: Optional[MonitoringConfig] = None, max_body_bytes: int = rest_api.MAX_BODY_BYTES,
               predict_threads: int = 2) -> Starlette:
    """A Starlette app serving ``manager``'s models over TF Serving's REST API."""
    batcher = Batcher(batching) if batching is not None else None
    # Unbatched predicts run here: a few threads (TF releases the GIL inside its kernels; more Python
    # threads than cores only fight over the GIL).
    predict_pool = ThreadPoolExecutor(max(1, int(predict_threads)), thread_name_prefix="tfrec-predict")
    metrics = Metrics(monitoring) if monitoring is not None and monitoring.enable else None

    def parse_path(path: str):
        m = _PATH.match(path)
        if not m:
            return None
        version = m.group("version")
        if version is not None:
            if not version.isdigit():
                raise InvalidRequest(f"Failed to convert version: {version} to numeric.")
            version = int(version)
        return m.group("name"), version, m.group("label"), bool(m.group("metadata")), m.group("verb")

    async def handle(request: Request) -> Response:
        started = time.perf_counter()
        path = request.scope["path"]  # (request.url builds a URL object: measurably slower per request)
        model, api, status = "", "", 500
        try:
            if metrics is not None and path == metrics.config.path and request.method == "GET":
                return Response(metrics.render(), media_type="text/plain; version=0.0.4")
            parsed = parse_path(path)
            if parsed is None:
                status = 404
                return _error(f"Malformed request: {request.method} {path}", 404)
            model, version, label, is_metadata, verb = parsed
            if request.method == "GET" and verb is None:
                api = "GetModelMetadata" if is_metadata else "GetModelStatus"
                if is_metadata:
                    servable = manager.resolve(model, version, label)
                    status = 200
                    return _json(_metadata_json(servable))
                loaded = manager.versions(model)
                if version is not None or label is not None:
                    servables = [manager.resolve(model, version, label)]
                else:
                    servables = list(loaded.values())
                    if not servables:
                        raise ServableNotFound(f"Could not find any versions of model {model}")
                status = 200
                return _json(_status_json(servables))
            if request.method == "POST" and verb is not None and not is_metadata:
                api = {"predict": "Predict", "classify": "Classify", "regress": "Regress"}[verb]
                body = await request.body()
                if len(body) > max_body_bytes:
                    status = 400
                    return _error(f"Request body of {len(body)} bytes exceeds the limit of {max_body_bytes}", 400)
                servable = manager.resolve(model, version, label)
                if verb != "predict":
                    status = 400
                    return _error(_classify_regress_error(servable, verb, body), 400)
                signature, arrays, fmt = rest_api.parse_predict_body(body, servable.signature)
                if batcher is not None and Batcher.batchable(signature, arrays):
                    outputs = await batcher.submit(servable, signature, arrays)
                else:
                    outputs = await asyncio.get_running_loop().run_in_executor(
                        predict_pool, rest_api.run_signature, signature, arrays)
                content = rest_api.encode_response(outputs, fmt)
                status = 200
                return Response(content, media_type="application/json")
            status = 405 if _PATH.match(path) else 404
            return _error(f"Malformed request: {request.method} {path}", status)
        except ServableNotFound as exc:
            status = 404
            return _error(str(exc), 404)
        except InvalidRequest as exc:
            status = 400
            return _error(str(exc), 400)
        except BatchQueueFull as exc:
            status = 503
            return _error(str(exc), 503)
        except Exception as exc:  # an internal failure is a 500 with a message, never a dropped connection
            status = 500
            return _error(f"Internal: {type(exc).__name__}: {exc}", 500)
        finally:
            if metrics is not None and model:
                metrics.observe(model, api, status, time.perf_counter() - started)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        try:
            yield
        finally:
            # The worker threads go with the app: an app run in a test or a notebook leaves none behind.
            if batcher is not None:
                batcher.close()
            predict_pool.shutdown(wait=False, cancel_futures=True)

    app = Starlette(routes=[Route("/{path:path}", handle, methods=["GET", "POST", "PUT", "DELETE"])],
                    lifespan=lifespan)
    app.state.manager = manager
    app.state.batcher = batcher
    app.state.predict_pool = predict_pool
    app.state.metrics = metrics
    return app


def _classify_regress_error(servable: Servable, verb: str, body: bytes) -> str:
    import json

    try:
        doc = json.loads(body) if body else None
    except json.JSONDecodeError as exc:
        return f"JSON Parse error: {exc.msg} at offset: {exc.pos}"
    name = (doc or {}).get("signature_name") or "serving_default"
    if name not in servable.signatures:
        return f"Serving signature name: \"{name}\" not found in signature def"
    method = servable.signatures[name].method_name
    wanted = "tensorflow/serving/classify" if verb == "classify" else "tensorflow/serving/regress"
    kind = "classification" if verb == "classify" else "regression"
    return f"Expected {kind} signature method_name to be {wanted}. Was: {method}"
