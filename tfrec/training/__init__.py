"""Training: :func:`train` (dataset -> split -> fit -> evaluate), run folders, run comparison.

* :mod:`~tfrec.training.trainer`: ``train``, ``TrainResult``, ``resolve_dataset``, ``make_split``,
  ``evaluate_model``.
* :mod:`~tfrec.training.run_folder`: ``save_run``, ``load_run``.
* :mod:`~tfrec.training.compare`: ``evaluate`` (one table and chart over run folders).
* :mod:`~tfrec.training.tuning`: ``tune`` (Optuna on a validation split carved from train),
  ``load_tuned_config`` (what ``tfrec train --config`` reads).
"""

from tfrec.training.compare import evaluate, flatten_metrics, plot_comparison
from tfrec.training.run_folder import load_run, save_run
from tfrec.training.result import TrainResult
from tfrec.training.trainer import SPLITS, evaluate_model, make_split, resolve_dataset, train
from tfrec.training.tuning import TuneResult, load_tuned_config, tune

__all__ = [
    "SPLITS",
    "TrainResult",
    "TuneResult",
    "evaluate",
    "evaluate_model",
    "flatten_metrics",
    "load_tuned_config",
    "load_run",
    "make_split",
    "plot_comparison",
    "resolve_dataset",
    "save_run",
    "train",
    "tune",
]
