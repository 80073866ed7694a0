"""Version folders of an export: ``<base_dir>/<name>/<version>/`` as TensorFlow Serving lays them out."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import numpy as np

from tfrec.errors import ConfigError, ExportError

def existing_versions(model_dir) -> list[int]:
    """Integer version folders under ``model_dir`` (temporary folders are ignored)."""
    d = Path(model_dir)
    if not d.is_dir():
        return []
    return sorted(int(p.name) for p in d.iterdir() if p.is_dir() and re.fullmatch(r"\d+", p.name))


def next_version(model_dir) -> int:
    versions = existing_versions(model_dir)
    return (versions[-1] + 1) if versions else 1


def version_dir(base_dir, name: str, version: Optional[int], overwrite: bool) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name or ""):
        raise ConfigError(f"export name must be letters, digits, '_', '-' or '.', got {name!r}")
    model_dir = Path(base_dir) / name
    if version is None:
        version = next_version(model_dir)
    if isinstance(version, bool) or not isinstance(version, (int, np.integer)) or version < 1:
        raise ConfigError(f"version must be a positive integer, got {version!r}")
    target = model_dir / str(int(version))
    if target.exists() and not overwrite:
        raise ExportError(f"{target} already exists; pass overwrite=True (--overwrite) or choose another version")
    return target
