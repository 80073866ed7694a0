"""The errors tfrec raises at its boundaries.

Every error a user can cause (a bad file, flag, hyperparameter or request) is one of these, and its
message names the file/field/value at fault and what was expected. They subclass ``ValueError`` (or
``OSError`` for I/O) so code that already catches the builtin keeps working.
"""

from __future__ import annotations


class TfrecError(Exception):
    """Base class of every tfrec error."""


class DataError(TfrecError, ValueError):
    """A data file or DataFrame is malformed (message names file, line, field and value)."""


class DatasetNotFoundError(TfrecError, FileNotFoundError):
    """A dataset is neither on disk nor downloadable (message says where tfrec looked)."""


class DownloadError(TfrecError, OSError):
    """A download failed, was truncated, or did not match its checksum."""


class ConfigError(TfrecError, ValueError):
    """A hyperparameter, CLI flag or config file value is invalid."""


class ExportError(TfrecError, ValueError):
    """An export cannot be written (e.g. the version exists and overwrite was not asked for)."""


class ServingError(TfrecError, ValueError):
    """A serving request or model config is invalid."""


__all__ = [
    "TfrecError",
    "DataError",
    "DatasetNotFoundError",
    "DownloadError",
    "ConfigError",
    "ExportError",
    "ServingError",
]
