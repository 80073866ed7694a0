"""Quiet by default: TensorFlow's, absl's and ScaNN's own logging off unless asked for.

tfrec prints its own progress (stage headers, one line per epoch, results). The libraries under
it log too, mostly from C++: TensorFlow (``E ... cuda_platform.cc:51] failed call to cuInit`` on
a CPU machine, ``oneDNN supports DT_STRING only ...``), ScaNN, which carries its own copy of absl
(``I0000 ... partitioner_factory_base.cc:58] ...`` for every index it builds), and the Python
loggers ``tensorflow`` and ``absl`` (e.g. "Found untraced functions" while saving). None of it is
actionable for a user of the CLI, so :func:`configure_logging` turns it off; ``tfrec --verbose``
or ``TFREC_VERBOSE=1`` leaves everything as the libraries have it.

C++ logging settings only work when made before the library logs: TensorFlow reads
``TF_CPP_MIN_LOG_LEVEL`` once, so :func:`configure_logging` must run before TensorFlow is imported
(the CLI calls it right after parsing flags). The setting travels to child processes (the demo's
``tfrec serve``) through the environment. absl's C++ logging (which ScaNN's ops use, resolved to
the absl inside TensorFlow's framework library) ignores that variable; its minimum level is set
through absl's exported ``SetMinLogLevel`` right after ``tensorflow`` (and ``scann``) are imported,
by an import hook, so every place that imports them lazily is covered.
"""

from __future__ import annotations

import ctypes
import importlib.abc
import logging
import mmap
import os
import re
import sys
import warnings
from typing import Optional

ENV_VERBOSE = "TFREC_VERBOSE"
# TensorFlow's C++ levels: 0 all, 1 no INFO, 2 no WARNING, 3 no ERROR (FATAL still aborts loudly).
QUIET_TF_CPP_LEVEL = "3"
# absl::LogSeverityAtLeast: kInfo 0, kWarning 1, kError 2, kFatal 3.
_ABSL_FATAL = 3
# Modules that load a library with absl inside, whose level is set right after they are imported.
# ScaNN's op library exports its own absl but resolves to TensorFlow's copy when TensorFlow loads
# first (as it always does); it is set too in case a build binds its own.
_ABSL_LIBRARIES = ("tensorflow", "scann.scann_ops.py.scann_ops")
_ABSL_SET_MIN_LOG_LEVEL = re.compile(rb"_ZN4absl(?:\d+lts_\d+)?14SetMinLogLevelENS(?:0_|_)18LogSeverityAtLeastE")
_QUIET_LOGGERS = ("tensorflow", "absl", "h5py")


def verbose_from_env() -> bool:
    """True when ``$TFREC_VERBOSE`` asks for the libraries' own logging (1, true, yes, on)."""
    return os.environ.get(ENV_VERBOSE, "").strip().lower() in ("1", "true", "yes", "on")


def configure_logging(verbose: Optional[bool] = None) -> bool:
    """Quiet the libraries' logging unless ``verbose`` (default: ``$TFREC_VERBOSE``). Returns it.

    Quiet means: ``TF_CPP_MIN_LOG_LEVEL=3`` (exported, so child processes inherit it), the Python
    loggers ``tensorflow`` and ``absl`` at ERROR, Python warnings raised inside TensorFlow, Keras
    and TFRS ignored, and absl's C++ logging at FATAL once TensorFlow (and ScaNN) load. Verbose exports
    ``TFREC_VERBOSE=1`` for child processes and changes nothing else. Call it before TensorFlow is
    imported; afterwards only the Python-side settings and ScaNN's (if not yet loaded) still apply.
    """
    verbose = verbose_from_env() if verbose is None else bool(verbose)
    if verbose:
        os.environ[ENV_VERBOSE] = "1"
        return True
    os.environ[ENV_VERBOSE] = "0"
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = QUIET_TF_CPP_LEVEL
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    for module in (r"tensorflow(\..*)?", r"tf_keras(\..*)?", r"keras(\..*)?", r"tensorflow_recommenders(\..*)?"):
        warnings.filterwarnings("ignore", module=module)
    for name in _ABSL_LIBRARIES:
        if name in sys.modules:
            _quiet_after_import(name)
    if not any(isinstance(f, _QuietAfterImportFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietAfterImportFinder())
    return False


def quiet_absl(library: str, level: int = _ABSL_FATAL) -> bool:
    """Set absl's minimum log level inside a loaded shared ``library``. True when it worked.

    The symbol's name carries absl's versioned namespace, so it is looked up in the library's
    symbol table rather than spelled out; a build without it is left as it is.
    """
    try:
        with open(library, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            match = _ABSL_SET_MIN_LOG_LEVEL.search(data)
            symbol = match.group(0).decode() if match else None
        if symbol is None:
            return False
        # RTLD_NOLOAD: the copy already loaded, never a second one.
        fn = getattr(ctypes.CDLL(library, mode=os.RTLD_NOLOAD | os.RTLD_LAZY), symbol)
        fn.argtypes = [ctypes.c_int]
        fn.restype = None
        fn(int(level))
    except Exception:  # noqa: BLE001 - a logging setting must never break loading a library
        return False
    return True


def _library_of(module_name: str) -> Optional[str]:
    module = sys.modules.get(module_name)
    if module is None or not getattr(module, "__file__", None):
        return None
    folder = os.path.dirname(os.path.abspath(module.__file__))
    if module_name == "tensorflow":
        return os.path.join(folder, "libtensorflow_framework.so.2")
    return os.path.join(os.path.dirname(folder), "cc", "_scann_ops.so")


def _quiet_after_import(module_name: str) -> None:
    library = _library_of(module_name)
    if library is not None and os.path.isfile(library):
        quiet_absl(library)


class _QuietAfterImportFinder(importlib.abc.MetaPathFinder):
    """Runs :func:`quiet_absl` on a library right after the module that loads it is imported."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in _ABSL_LIBRARIES:
            return None
        sys.meta_path.remove(self)  # find the real spec with the other finders
        try:
            import importlib.util

            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _QuietAfterExec(spec.loader)
        return spec


class _QuietAfterExec(importlib.abc.Loader):
    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        _quiet_after_import(module.__name__)
