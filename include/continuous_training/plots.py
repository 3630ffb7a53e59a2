"""The plots logged to MLflow: a candidate against its champion, the champion over time.

The comparison: ROC and precision-recall curves for classification, residuals for
regression; one PNG, logged beside the model card. The ledger's plot: the champion's primary
metric at each change of champion. matplotlib and sklearn are imported inside the functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from continuous_training.metrics import (
    METRICS,
    checked_arrays,
    metric_names,
    require_both_classes,
)

if TYPE_CHECKING:
    from datetime import datetime

    import numpy as np


def plot_comparison(
    task: str,
    y_true: Any,
    pred_challenger: Any,
    pred_champion: Any | None,
    path: str | Path,
) -> None:
    """Save a PNG comparing both models (ROC + PR, or residual plots) to `path`."""
    import matplotlib

    matplotlib.use("Agg")  # headless workers have no display
    import matplotlib.pyplot as plt

    metric_names(task)  # validates the task name
    y, p_new = checked_arrays(task, y_true, pred_challenger)
    models = [("challenger", p_new)]
    if pred_champion is not None:
        models.append(("champion", checked_arrays(task, y_true, pred_champion)[1]))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    try:
        if task == "classification":
            require_both_classes(METRICS["roc_auc"], y)
            _plot_classification(axes, y, models)
        else:
            _plot_regression(axes, y, models)
        fig.tight_layout()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", dpi=100)
    finally:
        plt.close(fig)  # workers are long-lived: never leak figures


def _plot_classification(axes: Any, y: np.ndarray, models: list[tuple[str, np.ndarray]]) -> None:
    from sklearn import metrics as skm

    roc_ax, pr_ax = axes
    for name, p in models:
        fpr, tpr, _ = skm.roc_curve(y, p)
        roc_ax.plot(fpr, tpr, label=f"{name} (AUC {skm.roc_auc_score(y, p):.3f})")
        precision, recall, _ = skm.precision_recall_curve(y, p)
        ap = skm.average_precision_score(y, p)
        pr_ax.step(recall, precision, where="post", label=f"{name} (AP {ap:.3f})")
    roc_ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    roc_ax.set(title="ROC", xlabel="false positive rate", ylabel="true positive rate")
    pr_ax.axhline(y.mean(), linestyle="--", color="grey", linewidth=0.8)
    pr_ax.set(title="Precision-recall", xlabel="recall", ylabel="precision")
    for ax in axes:
        ax.legend(loc="best")


def _plot_regression(axes: Any, y: np.ndarray, models: list[tuple[str, np.ndarray]]) -> None:
    import numpy as np

    scatter_ax, hist_ax = axes
    # a bounded, fixed sample keeps the scatter readable and the PNG small for big holdouts
    keep = np.random.default_rng(0).permutation(y.size)[:5000]
    # shared bin edges, or two histograms of different widths cannot be compared by eye
    bins = np.histogram_bin_edges(np.concatenate([y - p for _, p in models]), bins=50)
    for name, p in models:
        residual = y - p
        rmse = float(np.sqrt(np.mean(residual**2)))
        scatter_ax.scatter(
            p[keep], residual[keep], s=4, alpha=0.4, label=f"{name} (RMSE {rmse:.3g})"
        )
        hist_ax.hist(residual, bins=bins, alpha=0.5, label=name)
    scatter_ax.axhline(0.0, color="grey", linewidth=0.8)
    scatter_ax.set(
        title="Residuals vs prediction", xlabel="prediction", ylabel="actual - prediction"
    )
    hist_ax.set(title="Residual distribution", xlabel="actual - prediction", ylabel="rows")
    for ax in axes:
        ax.legend(loc="best")


def plot_champion_metric(
    points: list[tuple[datetime, float, str]], metric: str, title: str, path: str | Path
) -> None:
    """Save a PNG of the champion's `metric` over time: (when it became champion, value, version).

    A step line: each champion holds its value until the next one takes over.
    """
    import matplotlib

    matplotlib.use("Agg")  # headless workers have no display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    try:
        if points:
            when = [p[0] for p in points]
            value = [p[1] for p in points]
            ax.step(when, value, where="post", marker="o")
            for moment, metric_value, version in points:
                ax.annotate(
                    f"v{version}", (moment, metric_value), textcoords="offset points", xytext=(4, 6)
                )
        else:
            ax.text(0.5, 0.5, "no champion yet", ha="center", va="center", transform=ax.transAxes)
        ax.set(title=title, xlabel="became champion (UTC)", ylabel=metric)
        fig.autofmt_xdate()
        fig.tight_layout()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", dpi=100)
    finally:
        plt.close(fig)  # workers are long-lived: never leak figures


__all__ = ["plot_champion_metric", "plot_comparison"]
