"""tfrec: Keras/TensorFlow recommenders you can train, evaluate honestly, export and serve.

The path data takes, one sub-package per step, each an attribute of ``tfrec`` loaded on first use
(``import tfrec; tfrec.data.load_movielens("ml-100k")`` works without importing it yourself)::

    tfrec.data        MovieLens loaders, synthetic data, splits, vocabularies, tf.data pipelines
    tfrec.models      MF, FM, Wide & Deep, NeuMF, two-tower (TFRS), classic baselines
    tfrec.training    train -> evaluate -> run folder; comparing runs
    tfrec.evaluation  rating and ranking metrics, evaluation protocols
    tfrec.export      versioned SavedModels (ScaNN and brute-force retrieval, rating signatures)
    tfrec.serving     a local server speaking TensorFlow Serving's REST API, and a client

``import tfrec`` does not import TensorFlow, and neither does touching ``tfrec.data``,
``tfrec.evaluation``, ``tfrec.serving`` or ``tfrec.models`` itself; a Keras model class
(``tfrec.models.TwoTower``), ``tfrec.export`` and training a Keras model do.

Public verbs: :func:`train`, :func:`load_run`, :func:`evaluate`.
"""

from tfrec._keras_guard import ensure_legacy_keras

# Must run before anything below imports TensorFlow.
ensure_legacy_keras()

__version__ = "0.1.0"

SUBPACKAGES = ("data", "models", "training", "evaluation", "export", "serving")


def __getattr__(name):
    # Lazy so that `import tfrec` (and `tfrec --help`) does not pay for importing TensorFlow.
    if name in SUBPACKAGES:
        import importlib

        return importlib.import_module(f"tfrec.{name}")
    if name in ("train", "load_run", "TrainResult"):
        from tfrec import training

        return getattr(training, name)
    if name == "evaluate":
        from tfrec.training.compare import evaluate

        return evaluate
    raise AttributeError(f"module 'tfrec' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(SUBPACKAGES) | {"train", "load_run", "evaluate", "TrainResult"})


__all__ = ["train", "load_run", "evaluate", "TrainResult", "__version__"]
