"""`tfrec tune`: hyperparameter search with Optuna on a validation split carved from training.

The dataset is split as for :func:`tfrec.train` (``split``, ``test_fraction``, ``seed``); the
test part is set aside untouched. The training part is split again with
:func:`tfrec.data.validation_split` (each user's latest training interaction validates), every
trial fits on the rest and is scored by full-ranking ``metric`` on the validation rows. The
model's defaults are scored the same way first, so the result says whether the search beat them;
when no trial does, the defaults are what gets written.

The JSON written (``output``) is what ``tfrec train MODEL --config FILE`` reads::

    {"model": "ease", "hyperparameters": {"l2": 310.2, "recency_decay": 0.71},
     "validation": {"metric": "ndcg@10", "default": 0.081, "best": 0.094, "improved": true},
     "trials": [{"number": 0, "value": 0.090, "params": {...}}, ...], "dataset": ..., ...}

Example:
  >>> result = tune("ease", "ml-100k", data_dir="../shared/data", trials=20, output="ease.json")  # doctest: +SKIP
  >>> result.hyperparameters                                                                       # doctest: +SKIP
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from tfrec.errors import ConfigError, DataError
from tfrec.models import registry
from tfrec.utils.io import atomic_write_json

CONFIG_FORMAT = 1


# -- search spaces: trial -> constructor/fit keyword arguments ------------------------------------
def _ease(trial) -> dict:
    return {"l2": trial.suggest_float("l2", 10.0, 5000.0, log=True),
            "recency_decay": trial.suggest_float("recency_decay", 0.3, 1.0)}


def _item_knn(trial) -> dict:
    return {"n_neighbors": trial.suggest_int("n_neighbors", 10, 1000, log=True),
            "shrinkage": trial.suggest_float("shrinkage", 0.0, 50.0),
            "history": trial.suggest_int("history", 1, 100, log=True),
            "recency_decay": trial.suggest_float("recency_decay", 0.3, 1.0)}


def _user_knn(trial) -> dict:
    return {"n_neighbors": trial.suggest_int("n_neighbors", 5, 300, log=True),
            "shrinkage": trial.suggest_float("shrinkage", 0.0, 50.0),
            "history": trial.suggest_int("history", 1, 100, log=True),
            "recency_decay": trial.suggest_float("recency_decay", 0.3, 1.0)}


def _als(trial) -> dict:
    return {"factors": trial.suggest_int("factors", 16, 256, log=True),
            "regularization": trial.suggest_float("regularization", 1e-3, 1.0, log=True),
            "alpha": trial.suggest_float("alpha", 0.1, 50.0, log=True),
            "iterations": trial.suggest_int("iterations", 5, 30)}


def _two_tower(trial) -> dict:
    return {"learning_rate": trial.suggest_float("learning_rate", 1e-3, 2e-2, log=True),
            "temperature": trial.suggest_float("temperature", 0.03, 0.3, log=True),
            "embedding_dim": trial.suggest_categorical("embedding_dim", [32, 64, 128]),
            "id_dropout": trial.suggest_float("id_dropout", 0.0, 0.3),
            "history_length": trial.suggest_int("history_length", 5, 50, log=True)}


def _two_tower_id(trial) -> dict:
    return {k: v for k, v in _two_tower(trial).items() if k != "history_length"}


SEARCH_SPACES: dict[str, Callable] = {
    "ease": _ease, "item_knn": _item_knn, "user_knn": _user_knn, "als": _als,
    "two_tower": _two_tower, "two_tower_id": _two_tower_id,
}


@dataclass
class TuneResult:
    """What :func:`tune` returns (and writes to ``output`` as JSON, see the module docstring).

    Attributes:
      model_name: registry name.
      hyperparameters: the settings to train with (the best trial's plus ``fixed``; the
        defaults plus ``fixed`` when no trial beat them).
      default_score, best_score: validation ``metric`` of the defaults and of those settings.
      trials: one dict per trial: ``number``, ``value``, ``params``.
    """

    model_name: str
    hyperparameters: dict
    metric: str
    default_score: float
    best_score: float
    trials: list = field(default_factory=list)
    config: dict = field(default_factory=dict)

    @property
    def improved(self) -> bool:
        return self.best_score > self.default_score


def tune(model_name: str, dataset="ml-100k", *, trials: int = 20, data_dir=None, split: str = "leave_last_out",
         test_fraction: float = 0.2, seed: int = 0, metric: str = "ndcg@10", fixed: Optional[dict] = None,
         timeout: Optional[float] = None, output=None, verbose: int = 1) -> TuneResult:
    """Search ``model_name``'s hyperparameters with Optuna (TPE, seeded) on a validation split.

    Args:
      model_name: a registry name with a search space (``SEARCH_SPACES``).
      dataset, data_dir, split, test_fraction, seed: as for :func:`tfrec.train`; only the training
        part of the split is used (the test rows are never read).
      trials: Optuna trials (each one fit on the training part minus validation).
      metric: full-ranking metric maximised on validation (``ndcg@10``, ``hr@10``, ``mrr``, ...).
      fixed: hyperparameters held constant (not searched), e.g. ``{"epochs": 3}``.
      timeout: stop starting new trials after this many seconds (None: run all ``trials``).
      output: JSON file to write the result to (read by ``tfrec train --config``).
    """
    import optuna

    from tfrec.data import validation_split
    from tfrec.evaluation import full_ranking
    from tfrec.training.result import init_params, is_keras
    from tfrec.training.trainer import _FIT_KEYS, make_split, resolve_dataset

    if model_name not in SEARCH_SPACES:
        registry.get_model_class(model_name)  # unknown names: the registry's error
        raise ConfigError(f"no search space for model {model_name!r}; tunable models: {', '.join(SEARCH_SPACES)}")
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"trials must be a positive integer, got {trials!r}")
    fixed = dict(fixed or {})
    cls = registry.get_model_class(model_name)
    data = resolve_dataset(dataset, data_dir=data_dir, seed=seed)
    train_df, _, _ = make_split(data.ratings, split, test_fraction=test_fraction, seed=seed)
    fit_part, val = validation_split(train_df, seed=seed)
    if len(val) == 0:
        raise DataError(f"{data.name}: no user has two training interactions, so no validation split can be carved")

    def score(hyperparameters: dict) -> float:
        ctor = {k: v for k, v in hyperparameters.items() if k not in _FIT_KEYS}
        fit_kwargs = {k: v for k, v in hyperparameters.items() if k in _FIT_KEYS}
        if "seed" in init_params(cls) and "seed" not in ctor:
            ctor["seed"] = seed
        model = registry.create_model(model_name, **ctor)
        if is_keras(model):
            fit_kwargs.setdefault("verbose", 0)
        elif fit_kwargs:
            raise ConfigError(f"model {model_name!r} is not trained with Keras; it takes no {', '.join(fit_kwargs)}")
        model.fit(fit_part, items=data.items, users=data.users, **fit_kwargs)
        result = full_ranking(model, fit_part, val)
        if metric not in result:
            raise ConfigError(f"unknown metric {metric!r}; expected one of: {', '.join(sorted(result))}")
        return float(result[metric])

    t0 = time.perf_counter()
    default_score = score(fixed)
    if verbose:
        print(f"[tfrec tune] {model_name}: defaults {metric}={default_score:.4f} on validation "
              f"({len(fit_part)} fit / {len(val)} validation ratings)", file=sys.stderr)

    space = SEARCH_SPACES[model_name]

    def objective(trial) -> float:
        params = {k: v for k, v in space(trial).items() if k not in fixed}
        trial.set_user_attr("params", params)  # what was used (a fixed value replaces a suggested one)
        value = score({**params, **fixed})
        if verbose:
            print(f"[tfrec tune] trial {trial.number}: {metric}={value:.4f} {params}", file=sys.stderr)
        return value

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=trials, timeout=timeout)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        raise ConfigError(f"no trial finished within timeout={timeout!r} s")
    best = study.best_trial
    improved = best.value > default_score
    searched = dict(best.user_attrs["params"]) if improved else {}
    result = TuneResult(
        model_name=model_name, hyperparameters={**searched, **fixed}, metric=metric, default_score=default_score,
        best_score=float(best.value) if improved else default_score,
        trials=[{"number": t.number, "value": float(t.value), "params": dict(t.user_attrs["params"])} for t in done])
    result.config = {
        "format_version": CONFIG_FORMAT, "model": model_name, "hyperparameters": result.hyperparameters,
        "validation": {"metric": metric, "default": default_score, "best": result.best_score,
                       "improved": improved, "fit_ratings": len(fit_part), "validation_ratings": len(val)},
        "trials": result.trials, "dataset": data.name, "synthetic": bool(data.synthetic), "split": split,
        "test_fraction": test_fraction, "seed": seed, "seconds": round(time.perf_counter() - t0, 1),
    }
    if output is not None:
        atomic_write_json(Path(output), result.config)
    return result


def load_tuned_config(path, model_name: Optional[str] = None) -> dict:
    """The ``hyperparameters`` of a file written by :func:`tune` (ConfigError naming what is wrong)."""
    path = Path(path)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a JSON config ({exc})") from None
    if not isinstance(config, dict) or not isinstance(config.get("hyperparameters"), dict):
        raise ConfigError(f"{path}: expected a JSON object with a 'hyperparameters' object (as `tfrec tune` writes)")
    tuned_for = config.get("model")
    if model_name is not None and tuned_for is not None and tuned_for != model_name:
        raise ConfigError(f"{path}: field 'model' is {tuned_for!r}, but the model to train is {model_name!r}")
    return dict(config["hyperparameters"])


__all__ = ["SEARCH_SPACES", "TuneResult", "load_tuned_config", "tune"]
