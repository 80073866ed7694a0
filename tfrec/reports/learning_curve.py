"""Learning-curve PNG for a Keras training history (loss and metrics per epoch)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Mapping, Sequence

from tfrec.utils.io import atomic_write_bytes


def plot_learning_curve(history: Mapping[str, Sequence[float]], path, *, title: str = "") -> Path:
    """Plot every series in a Keras ``history.history`` dict, train and ``val_`` side by side.

    One panel per metric (``loss``, ``root_mean_squared_error``, ...), with its ``val_`` twin
    dashed in the same panel. Written atomically as a PNG.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Skip series that never move off zero (e.g. TFRS' regularization_loss without regularizers).
    names = [k for k in history if not k.startswith("val_") and len(history[k]) and any(history[k])]
    names = names or [k for k in history if len(history[k])]
    fig, axes = plt.subplots(1, max(len(names), 1), figsize=(4.5 * max(len(names), 1), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        values = list(history[name])
        ax.plot(range(1, len(values) + 1), values, marker="o", label=f"train {name}")
        if f"val_{name}" in history:
            v = list(history[f"val_{name}"])
            ax.plot(range(1, len(v) + 1), v, marker="o", linestyle="--", label=f"validation {name}")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())
