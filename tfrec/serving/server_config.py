"""Reading TensorFlow Serving's config files with its official protos.

``models.config`` is a ``tensorflow.serving.ModelServerConfig`` text proto (parsed with the
``tensorflow-serving-api`` package's own ``model_server_config_pb2``). The batching parameters and
monitoring config protos are not shipped in that package; their text formats are small and flat,
so they are read here field by field with the same field names as TF Serving's
``session_bundle_config.proto`` (BatchingParameters) and ``monitoring_config.proto``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from tfrec.errors import ConfigError


@dataclass
class ModelEntry:
    """One served model: where its versions live and which of them to serve."""

    name: str
    base_path: Path
    policy: str = "latest"  # "latest", "all" or "specific"
    num_versions: int = 1
    versions: tuple = ()
    labels: dict = field(default_factory=dict)


@dataclass
class BatchingParameters:
    """Server-side batching settings (TF Serving's BatchingParameters field names)."""

    max_batch_size: int = 64
    batch_timeout_micros: int = 1000
    max_enqueued_batches: int = 1000
    num_batch_threads: int = 2
    allowed_batch_sizes: tuple = ()


@dataclass
class MonitoringConfig:
    enable: bool = False
    path: str = "/monitoring/prometheus/metrics"


def _resolve(base: str, config_file: Optional[Path]) -> Path:
    p = Path(base).expanduser()
    if not p.is_absolute() and config_file is not None:
        # Relative base paths are relative to the directory tfrec serve runs from, like
        # tensorflow_model_server; fall back to the config file's parent's parent (the repo root
        # for serving_configs/models.config) when that does not exist.
        if not p.exists():
            candidate = config_file.resolve().parent.parent / p
            if candidate.exists():
                return candidate
    return p


def parse_model_config(text: str, config_file: Optional[Path] = None) -> list[ModelEntry]:
    """Parse a ``ModelServerConfig`` text proto into :class:`ModelEntry` objects."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    msg = model_server_config_pb2.ModelServerConfig()
    where = str(config_file) if config_file else "model config"
    try:
        text_format.Parse(text, msg)
    except text_format.ParseError as exc:
        raise ConfigError(f"{where}: not a valid ModelServerConfig text proto: {exc}") from exc
    return entries_from_proto(msg, where, config_file)


def entries_from_proto(msg, where: str = "model config", config_file: Optional[Path] = None) -> list[ModelEntry]:
    """A ``ModelServerConfig`` proto -> :class:`ModelEntry` objects (ConfigError naming what is wrong)."""
    if msg.WhichOneof("config") != "model_config_list":
        raise ConfigError(f"{where}: expected a model_config_list")
    entries = []
    seen = set()
    for cfg in msg.model_config_list.config:
        if not cfg.name:
            raise ConfigError(f"{where}: a config entry has no name")
        if cfg.name in seen:
            raise ConfigError(f"{where}: model {cfg.name!r} is listed twice")
        seen.add(cfg.name)
        if not cfg.base_path:
            raise ConfigError(f"{where}: model {cfg.name!r} has no base_path")
        if cfg.model_platform and cfg.model_platform != "tensorflow":
            raise ConfigError(f"{where}: model {cfg.name!r}: model_platform must be 'tensorflow'")
        policy = cfg.model_version_policy.WhichOneof("policy_choice") or "latest"
        entry = ModelEntry(name=cfg.name, base_path=_resolve(cfg.base_path, config_file), policy=policy,
                           labels={k: int(v) for k, v in cfg.version_labels.items()})
        if policy == "latest":
            entry.num_versions = max(1, cfg.model_version_policy.latest.num_versions or 1)
        elif policy == "specific":
            entry.versions = tuple(int(v) for v in cfg.model_version_policy.specific.versions)
            if not entry.versions:
                raise ConfigError(f"{where}: model {cfg.name!r}: specific policy lists no versions")
        entries.append(entry)
    if not entries:
        raise ConfigError(f"{where}: no models configured")
    return entries


def load_model_config(path) -> list[ModelEntry]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--model_config_file: {path} does not exist")
    return parse_model_config(path.read_text(), path)


_FIELD = re.compile(r"(\w+)\s*(?::\s*|\s*)(\{[^}]*\}|\"[^\"]*\"|[^\s{}]+)")


def _fields(text: str, where: str) -> list[tuple[str, str]]:
    text = re.sub(r"#.*", "", text)
    out = []
    pos = 0
    for m in _FIELD.finditer(text):
        if text[pos:m.start()].strip():
            raise ConfigError(f"{where}: cannot parse {text[pos:m.start()].strip()[:40]!r}")
        out.append((m.group(1), m.group(2)))
        pos = m.end()
    if text[pos:].strip():
        raise ConfigError(f"{where}: cannot parse {text[pos:].strip()[:40]!r}")
    return out


def _wrapped_int(value: str, name: str, where: str) -> int:
    m = re.fullmatch(r"\{\s*value\s*:\s*(\d+)\s*\}", value) or re.fullmatch(r"(\d+)", value)
    if not m:
        raise ConfigError(f"{where}: {name} must be like '{name} {{ value: 8 }}', got {value!r}")
    return int(m.group(1))


def parse_batching_parameters(text: str, where: str = "batching parameters") -> BatchingParameters:
    """Parse TF Serving's ``--batching_parameters_file`` text format."""
    params = BatchingParameters()
    allowed = []
    known = {"max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads",
             "allowed_batch_sizes", "pad_variable_length_inputs", "thread_pool_name",
             "enable_large_batch_splitting", "max_execution_batch_size"}
    for name, value in _fields(text, where):
        if name not in known:
            raise ConfigError(f"{where}: unknown field {name!r}")
        if name == "allowed_batch_sizes":
            allowed.append(int(value))
        elif name in ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads"):
            setattr(params, name, _wrapped_int(value, name, where))
    params.allowed_batch_sizes = tuple(allowed)
    if params.max_batch_size < 1:
        raise ConfigError(f"{where}: max_batch_size must be >= 1")
    return params


def parse_monitoring_config(text: str, where: str = "monitoring config") -> MonitoringConfig:
    """Parse ``prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }``."""
    cfg = MonitoringConfig()
    for name, value in _fields(text, where):
        if name != "prometheus_config":
            raise ConfigError(f"{where}: unknown field {name!r}")
        inner = value.strip()[1:-1] if value.startswith("{") else ""
        for key, val in _fields(inner.replace(",", " "), where):
            if key == "enable":
                cfg.enable = val.strip().lower() == "true"
            elif key == "path":
                cfg.path = val.strip().strip('"')
            else:
                raise ConfigError(f"{where}: unknown prometheus_config field {key!r}")
    if not cfg.path.startswith("/"):
        raise ConfigError(f"{where}: path must start with '/', got {cfg.path!r}")
    return cfg
