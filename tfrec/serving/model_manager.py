"""Loaded servables: versions per model, version policies, labels, hot reloading.

A model's versions are integer folders under its base path. The manager loads the versions the
policy wants (latest N, all, or specific), serves them, and on each poll loads new versions
*before* dropping old ones; a request holds a reference to the servable it resolved, so a swap
never fails a request in flight.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from tfrec.serving.server_config import ModelEntry


class StatusError(Exception):
    """An error with TF Serving's status code (``code`` is the gRPC/absl code name)."""

    code = "INVALID_ARGUMENT"

    def __init__(self, message: str, code: Optional[str] = None):
        super().__init__(message)
        if code is not None:
            self.code = code


class ServableNotFound(StatusError, LookupError):
    """NOT_FOUND (HTTP 404)."""

    code = "NOT_FOUND"


class InvalidRequest(StatusError, ValueError):
    """INVALID_ARGUMENT (HTTP 400)."""

    code = "INVALID_ARGUMENT"


# TF Serving's http_server.cc ToHTTPStatusCode.
HTTP_STATUS = {"OK": 200, "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400, "DEADLINE_EXCEEDED": 504,
               "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403, "RESOURCE_EXHAUSTED": 429,
               "FAILED_PRECONDITION": 400, "ABORTED": 409, "OUT_OF_RANGE": 400, "UNIMPLEMENTED": 501,
               "INTERNAL": 500, "UNAVAILABLE": 503, "DATA_LOSS": 500, "UNAUTHENTICATED": 401}


@dataclass
class Signature:
    """One SignatureDef of a loaded SavedModel.

    ``function(_outputs=None, **{alias: np.ndarray}) -> {alias: np.ndarray}`` runs it; ``inputs`` and
    ``outputs`` map aliases to ``tf.TensorSpec`` (dtype and shape from the TensorInfo; the shape is
    informative only, as in TF Serving); ``definition`` is the SignatureDef proto.
    """

    name: str
    function: object
    inputs: dict
    outputs: dict
    method_name: str = "tensorflow/serving/predict"
    definition: object = None


@dataclass
class Servable:
    """One loaded SavedModel version."""

    name: str
    version: int
    path: Path
    loaded: object
    signatures: dict = field(default_factory=dict)
    signature_defs: object = None  # the SignatureDef protos (for metadata)
    loaded_at: float = field(default_factory=time.time)

    def signature(self, name: Optional[str]) -> Signature:
        """The signature a ``:predict`` names (TF Serving's REST GetInfoMap wording when missing)."""
        key = name or "serving_default"
        if key not in self.signatures:
            raise InvalidRequest(f"Serving signature name: \"{key}\" not found in signature def")
        return self.signatures[key]


def load_servable(name: str, version: int, path: Path, *, intra_op_threads: int = 0,
                  inter_op_threads: int = 0) -> Servable:
    """Load one version as TF Serving's SavedModelBundle does (see :mod:`tfrec.serving.bundle`)."""
    from tfrec.serving.bundle import SavedModelBundle, bundle_function, tensor_info_spec

    bundle = SavedModelBundle(path, intra_op_threads=intra_op_threads, inter_op_threads=inter_op_threads)
    signatures = {}
    for sig_name, sig_def in bundle.signature_defs.items():
        if any(info.dtype == 0 for info in list(sig_def.inputs.values()) + list(sig_def.outputs.values())):
            continue  # e.g. TF2's __saved_model_init_op: an op to run at load, not a servable signature
        inputs = {alias: tensor_info_spec(info) for alias, info in sig_def.inputs.items()}
        outputs = {alias: tensor_info_spec(info) for alias, info in sig_def.outputs.items()}
        signatures[sig_name] = Signature(sig_name, bundle_function(bundle, sig_def), inputs, outputs,
                                         sig_def.method_name, sig_def)
    return Servable(name=name, version=version, path=path, loaded=bundle, signatures=signatures,
                    signature_defs=bundle.signature_defs)


def version_dirs(base_path: Path) -> dict[int, Path]:
    if not base_path.is_dir():
        return {}
    return {int(p.name): p for p in base_path.iterdir()
            if p.is_dir() and re.fullmatch(r"[0-9]+", p.name) and (p / "saved_model.pb").is_file()}


def wanted_versions(entry: ModelEntry, available: list[int]) -> list[int]:
    available = sorted(available)
    if entry.policy == "all":
        return available
    if entry.policy == "specific":
        return [v for v in available if v in entry.versions]
    return available[-entry.num_versions:]


class ModelManager:
    """Keeps the configured models' wanted versions loaded (see the module docstring)."""

    def __init__(self, entries: list[ModelEntry], *, poll_seconds: float = 1.0, loader=load_servable):
        self.entries = {e.name: e for e in entries}
        self.poll_seconds = float(poll_seconds)
        self._loader = loader
        self._servables: dict[str, dict[int, Servable]] = {name: {} for name in self.entries}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.errors: dict[str, str] = {}

    # -- loading ---------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Load wanted versions that are not loaded, then unload unwanted ones (in that order)."""
        for name, entry in list(self.entries.items()):
            dirs = version_dirs(entry.base_path)
            want = wanted_versions(entry, list(dirs))
            with self._lock:
                current = dict(self._servables.get(name, {}))
            new = dict(current)
            for v in want:
                if v not in current:
                    try:
                        new[v] = self._loader(name, v, dirs[v])
                        self.errors.pop(f"{name}/{v}", None)
                    except Exception as exc:  # a broken version must not take the others down
                        self.errors[f"{name}/{v}"] = str(exc)
            keep = {v: s for v, s in new.items() if v in want}
            if not want and current:
                keep = current  # never drop the last good versions because a folder vanished
            with self._lock:
                if name in self.entries:
                    self._servables[name] = keep

    def reload_config(self, entries: list[ModelEntry]) -> None:
        """Serve exactly ``entries`` from now on (ModelService.HandleReloadConfigRequest).

        Models that stay keep their loaded versions; new ones load before this returns; removed
        ones are dropped (requests holding one of their servables finish on it).
        """
        with self._lock:
            self.entries = {e.name: e for e in entries}
            self._servables = {name: self._servables.get(name, {}) for name in self.entries}
        self.refresh()

    def start_polling(self) -> None:
        if self.poll_seconds <= 0 or self._thread is not None:
            return

        def loop():
            while not self._stop.wait(self.poll_seconds):
                self.refresh()

        self._thread = threading.Thread(target=loop, name="tfrec-model-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- lookup ------------------------------------------------------------------------------------------
    def versions(self, name: str) -> dict[int, Servable]:
        if name not in self.entries:
            raise ServableNotFound(f"Could not find any versions of model {name}")
        with self._lock:
            return dict(self._servables.get(name, {}))

    def resolve(self, name: str, version: Optional[int] = None, label: Optional[str] = None) -> Servable:
        if name not in self.entries:
            request = f"Specific({name}, {version})" if version is not None else f"Latest({name})"
            raise ServableNotFound(f"Servable not found for request: {request}")
        loaded = self.versions(name)
        if label is not None:
            labels = self.entries[name].labels
            if label not in labels:  # TF Serving: INVALID_ARGUMENT
                raise InvalidRequest(f"Unrecognized servable version label: {label}")
            version = labels[label]
        if version is not None:
            if version not in loaded:
                raise ServableNotFound(f"Servable not found for request: Specific({name}, {version})")
            return loaded[version]
        if not loaded:
            raise ServableNotFound(f"Servable not found for request: Latest({name})")
        return loaded[max(loaded)]
