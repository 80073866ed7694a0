"""Make sure TensorFlow runs with Keras 2 (tf-keras), which TensorFlow Recommenders needs.

``TF_USE_LEGACY_KERAS=1`` only works if it is set before TensorFlow is first imported. ``import
tfrec`` sets it; if TensorFlow is already imported with Keras 3 behind ``tf.keras``, we cannot fix
that from here, so we fail loudly with instructions instead of producing models TFRS cannot train.
"""

from __future__ import annotations

import os
import sys

_HOW_TO_FIX = (
    "tfrec needs Keras 2 (the tf-keras package) behind tf.keras, because TensorFlow Recommenders "
    "does not work with Keras 3. TensorFlow was imported before tfrec with Keras 3 active. Either "
    "`import tfrec` before `import tensorflow`, or set the environment variable "
    "TF_USE_LEGACY_KERAS=1 before starting Python (e.g. `export TF_USE_LEGACY_KERAS=1`)."
)


def ensure_legacy_keras() -> None:
    """Set ``TF_USE_LEGACY_KERAS=1`` or raise ImportError if it is too late for that."""
    if "tensorflow" not in sys.modules:
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        # TensorFlow's C++ INFO lines (shuffle buffers, CUDA probing) drown Keras' own progress.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
        return
    tf = sys.modules["tensorflow"]
    version = ""
    try:
        version = str(getattr(tf.keras, "__version__", ""))
    except Exception:  # pragma: no cover - a half-imported TF; let the real import error surface
        return
    if version.startswith("3"):
        raise ImportError(_HOW_TO_FIX + f" (tf.keras is Keras {version}.)")
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
