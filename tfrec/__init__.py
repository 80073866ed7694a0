"""tfrec: Keras/TensorFlow recommenders you can train, evaluate honestly, export and serve.

The path data takes, one sub-package per step::

    tfrec.data        MovieLens loaders, synthetic data, splits, vocabularies, tf.data pipelines
    tfrec.models      MF, FM, Wide & Deep, NeuMF, two-tower (TFRS), classic baselines
    tfrec.evaluation  rating and ranking metrics, evaluation protocols
    tfrec.export      versioned SavedModels (ScaNN and brute-force retrieval, rating signatures)
    tfrec.serving     a local server speaking TensorFlow Serving's REST API, and a client

Public verbs: :func:`train`, :func:`load_run`, :func:`evaluate`.
"""

from tfrec._keras_guard import ensure_legacy_keras

# Must run before anything below imports TensorFlow.
ensure_legacy_keras()

__version__ = "0.1.0"


def __getattr__(name):
    # Lazy so that `import tfrec` (and `tfrec --help`) does not pay for importing TensorFlow.
    if name in ("train", "load_run", "TrainResult"):
        from tfrec import training

        return getattr(training, name)
    if name == "evaluate":
        from tfrec.training.compare import evaluate

        return evaluate
    raise AttributeError(f"module 'tfrec' has no attribute {name!r}")


__all__ = ["train", "load_run", "evaluate", "TrainResult", "__version__"]
