"""A small client for TF Serving's REST or gRPC API (works with `tfrec serve` and tensorflow_model_server)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Optional

from tfrec.errors import ServingError


class Client:
    """Client for one server, over REST (default) or gRPC; both give the same Python answers.

    Args:
      url: e.g. ``"http://127.0.0.1:8501"`` (REST) or ``"127.0.0.1:8500"`` (gRPC).
      model: default model name for the calls.
      timeout: seconds per request.
      protocol: ``"rest"`` or ``"grpc"`` (PredictionService/ModelService with the official stubs of
        ``tensorflow-serving-api``; answers are shaped as the REST API shapes them).

    Example:
      >>> client = Client("http://127.0.0.1:8501", model="two_tower")   # doctest: +SKIP
      >>> client.recommend("1", k=5)                                     # doctest: +SKIP
      [('50', 0.71), ...]
    """

    def __init__(self, url: str, model: Optional[str] = None, timeout: float = 30.0, protocol: str = "rest"):
        if protocol not in ("rest", "grpc"):
            raise ServingError(f"protocol must be 'rest' or 'grpc', got {protocol!r}")
        self.url = url.rstrip("/")
        self.model = model
        self.timeout = float(timeout)
        self.protocol = protocol
        self._grpc = None

    def _grpc_client(self):
        if self._grpc is None:
            from tfrec.serving.grpc_client import GrpcClient

            target = self.url.split("://", 1)[-1]
            self._grpc = GrpcClient(target, timeout=self.timeout)
        return self._grpc

    def _path(self, model: Optional[str], version: Optional[int], label: Optional[str]) -> str:
        name = model or self.model
        if not name:
            raise ServingError("no model name: pass model= here or to Client(...)")
        path = f"{self.url}/v1/models/{name}"
        if version is not None:
            path += f"/versions/{int(version)}"
        elif label is not None:
            path += f"/labels/{label}"
        return path

    def _request(self, url: str, body: Optional[dict] = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error", "")
            except Exception:
                message = exc.reason
            raise ServingError(f"{url}: HTTP {exc.code}: {message}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ServingError(f"{url}: cannot reach the server ({exc})") from None

    def _name(self, model: Optional[str]) -> str:
        name = model or self.model
        if not name:
            raise ServingError("no model name: pass model= here or to Client(...)")
        return name

    def status(self, model: Optional[str] = None, version: Optional[int] = None, label: Optional[str] = None) -> dict:
        """``GET /v1/models/{name}`` -> ``{"model_version_status": [...]}``."""
        if self.protocol == "grpc":
            return self._grpc_client().status(self._name(model), version, label)
        return self._request(self._path(model, version, label))

    def metadata(self, model: Optional[str] = None, version: Optional[int] = None,
                 label: Optional[str] = None) -> dict:
        """``GET /v1/models/{name}/metadata`` -> model spec and signature defs."""
        if self.protocol == "grpc":
            return self._grpc_client().metadata(self._name(model), version, label)
        return self._request(self._path(model, version, label) + "/metadata")

    def predict(self, instances=None, *, inputs=None, signature_name: Optional[str] = None,
                model: Optional[str] = None, version: Optional[int] = None, label: Optional[str] = None):
        """``:predict`` in row (``instances``) or columnar (``inputs``) format; returns
        ``predictions`` or ``outputs``."""
        if (instances is None) == (inputs is None):
            raise ServingError("give exactly one of instances= or inputs=")
        if self.protocol == "grpc":
            return self._grpc_client().predict(self._name(model), version, label, instances=instances,
                                               inputs=inputs, signature_name=signature_name)
        body: dict = {"instances": instances} if instances is not None else {"inputs": inputs}
        if signature_name:
            body["signature_name"] = signature_name
        out = self._request(self._path(model, version, label) + ":predict", body)
        return out["predictions"] if instances is not None else out["outputs"]

    def recommend(self, user_id, k: int = 10, *, exclude_item_ids=None, model: Optional[str] = None) -> list:
        """Top-k (item_id, score) for one user, seen items excluded, via the export's signatures."""
        if k == 10 and not exclude_item_ids:
            out = self.predict([{"user_id": str(user_id)}], model=model)[0]
        else:
            out = self.predict(inputs={"user_id": [str(user_id)], "k": int(k),
                                       "exclude_item_ids": [list(exclude_item_ids or [""])]},
                               signature_name="recommend", model=model)
            out = {"item_ids": out["item_ids"][0], "scores": out["scores"][0]}
        return list(zip(out["item_ids"], (float(s) for s in out["scores"])))
