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


class ServableNotFound(LookupError):
    """Maps to HTTP 404."""


class InvalidRequest(ValueError):
    """Maps to HTTP 400."""


@dataclass
class Signature:
    name: str
    function: object
    inputs: dict  # name -> tf.TensorSpec
    outputs: dict  # name -> tf.TensorSpec
    method_name: str = "tensorflow/serving/predict"


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
        key = name or "serving_default"
        if key not in self.signatures:
            raise InvalidRequest(f"Serving signature name: \"{key}\" not found in signature def")
        return self.signatures[key]


def _import_scann() -> None:
    try:  # ScaNN exports need its ops registered; brute-force exports do not.
        import scann  # noqa: F401
    except ImportError:  # pragma: no cover
        pass


def load_servable(name: str, version: int, path: Path) -> Servable:
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    _import_scann()
    loaded = tf.saved_model.load(str(path))
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((path / "saved_model.pb").read_bytes())
    sig_defs = proto.meta_graphs[0].signature_def
    signatures = {}
    for sig_name, fn in loaded.signatures.items():
        inputs = dict(fn.structured_input_signature[1])
        outputs = {k: tf.TensorSpec(v.shape, v.dtype, k) for k, v in fn.structured_outputs.items()}
        method = sig_defs[sig_name].method_name if sig_name in sig_defs else "tensorflow/serving/predict"
        signatures[sig_name] = Signature(sig_name, fn, inputs, outputs, method)
    return Servable(name=name, version=version, path=path, loaded=loaded, signatures=signatures,
                    signature_defs=sig_defs)


def version_dirs(base_path: Path) -> dict[int, Path]:
    if not base_path.is_dir():
        return {}
    return {int(p.name): p for p in base_path.iterdir()
            if p.is_dir() and re.fullmatch(r"\d+", p.name) and (p / "saved_model.pb").is_file()}


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
        for name, entry in self.entries.items():
            dirs = version_dirs(entry.base_path)
            want = wanted_versions(entry, list(dirs))
            with self._lock:
                current = dict(self._servables[name])
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
                self._servables[name] = keep

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
            return dict(self._servables[name])

    def resolve(self, name: str, version: Optional[int] = None, label: Optional[str] = None) -> Servable:
        if name not in self.entries:
            raise ServableNotFound(f"Servable not found for request: Latest({name})")
        loaded = self.versions(name)
        if label is not None:
            labels = self.entries[name].labels
            if label not in labels:
                raise ServableNotFound(f"Unrecognized servable version label: {label}")
            version = labels[label]
        if version is not None:
            if version not in loaded:
                raise ServableNotFound(f"Servable not found for request: Specific({name}, {version})")
            return loaded[version]
        if not loaded:
            raise ServableNotFound(f"Servable not found for request: Latest({name})")
        return loaded[max(loaded)]
