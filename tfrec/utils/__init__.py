"""Cross-cutting helpers: one of each (atomic writes, logging/progress)."""

from tfrec.utils.io import atomic_directory, atomic_write_bytes, atomic_write_json, atomic_write_text

__all__ = ["atomic_directory", "atomic_write_bytes", "atomic_write_json", "atomic_write_text"]
