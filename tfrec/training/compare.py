"""Compare training runs: one table and one bar chart (`tfrec evaluate`, `tfrec.evaluate`)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Iterable, Optional

import pandas as pd

from tfrec.errors import ConfigError, DataError
from tfrec.training.run_folder import load_run
from tfrec.training.result import TrainResult
from tfrec.training.trainer import evaluate_model
from tfrec.utils.io import atomic_write_bytes

# Lower is better for these; everything else in the table is higher-is-better.
LOWER_IS_BETTER = ("rmse", "mae", "fit_seconds")


def flatten_metrics(metrics: dict) -> dict:
    """``{"full": {"hr@10": x}}`` -> ``{"full/hr@10": x}``; drops hyperparameters."""
    out = {}
    for key, value in metrics.items():
        if key == "hyperparameters":
            continue
        if isinstance(value, dict):
            for sub, v in value.items():
                if isinstance(v, (int, float)):
                    out[f"{key}/{sub}"] = v
        elif isinstance(value, (int, float)):
            out[key] = value
    return out


def _run_row(run) -> tuple[str, dict]:
    if isinstance(run, TrainResult):
        label = str(run.run_dir.name) if run.run_dir else run.model_name
        return label, flatten_metrics(run.metrics)
    path = Path(run)
    metrics_path = path / "metrics.json" if path.is_dir() else path
    if not metrics_path.is_file():
        raise DataError(f"{run}: no metrics.json (expected a run folder written by `tfrec train --output`)")
    label = path.name if path.is_dir() else path.parent.name
    try:
        metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{metrics_path}: not a metrics JSON file ({e.__class__.__name__}); expected a run folder "
                        "written by `tfrec train --output` or its metrics.json") from None
    if not isinstance(metrics, dict):
        raise DataError(f"{metrics_path}: expected a JSON object of metrics, got {type(metrics).__name__}")
    return label, flatten_metrics(metrics)


def evaluate(runs: Iterable, *, metrics: Optional[list] = None, chart=None, recompute: bool = False) -> pd.DataFrame:
    """One row per run, one column per metric.

    Args:
      runs: run folders (paths) or :class:`tfrec.training.TrainResult` objects.
      metrics: columns to keep (e.g. ``["rmse", "full/ndcg@10"]``); all by default.
      chart: a PNG path for a grouped bar chart of the table.
      recompute: reload each run folder and evaluate the model again on its stored test split
        (instead of reading ``metrics.json``).
    """
    runs = list(runs)
    if not runs:
        raise ConfigError("evaluate: give at least one run folder")
    rows = {}
    for run in runs:
        if recompute and not hasattr(run, "metrics"):
            result = load_run(run)
            fresh = evaluate_model(result.model, result.train, result.test, model_name=result.model_name,
                                   split=result.config.get("split", "random"), seed=result.config.get("seed", 0),
                                   users=result.users)
            label, row = Path(run).name, flatten_metrics(fresh)
        else:
            label, row = _run_row(run)
        rows[label] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "run"
    if metrics:
        missing = [m for m in metrics if m not in table.columns]
        if missing:
            raise ConfigError(f"evaluate: unknown metric(s) {missing}; available: {list(table.columns)}")
        table = table[metrics]
    if chart is not None:
        plot_comparison(table, chart)
    return table


def plot_comparison(table: pd.DataFrame, path) -> Path:
    """A grouped bar chart (one group per metric, one bar per run), written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = [c for c in table.columns if c != "fit_seconds" and not c.endswith("n_users")]
    cols = cols or list(table.columns)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(cols) * max(len(table), 1) * 0.5 + 3), 4))
    width = 0.8 / max(len(table), 1)
    for i, (label, row) in enumerate(table[cols].iterrows()):
        xs = [j + i * width for j in range(len(cols))]
        ax.bar(xs, row.fillna(0).to_numpy(dtype=float), width=width, label=str(label))
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(cols))])
    ax.set_xticklabels(cols, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("value (rmse/mae: lower is better)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())
