"""The metrics a model is judged on: one table, and each metric computed two ways.

`METRICS` lists every metric once: its task, whether a higher or a lower value is better,
the range its values live in, the scikit-learn function that defines it, and its
sample-weighted form, which the bootstrap evaluates on many resamples at once. The config's
checks, the gate, the card and the bootstrap all read this table, so a metric is added in
one place.

The config imports this module at DAG-parse time: numpy and sklearn are imported inside the
functions that need them, so importing it costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from continuous_training.errors import BadInputError

if TYPE_CHECKING:
    import numpy as np

Task = Literal["classification", "regression"]
TASKS: tuple[Task, ...] = ("classification", "regression")
INF = float("inf")
# Probability at or below which a classifier's `predict` says "negative"; matches sklearn's
# argmax-based `predict`, which picks class 0 on an exact 0.5 tie.
DECISION_THRESHOLD = 0.5


class EvaluationError(BadInputError):
    """The holdout, the predictions or the gate configuration cannot be evaluated."""


Weighted = Callable[["np.ndarray", "np.ndarray", "np.ndarray"], "np.ndarray"]


@dataclass(frozen=True)
class Metric:
    """One metric: what it applies to, which way is better, and how it is computed.

    `sklearn` names the function of `sklearn.metrics` that defines the metric; it is given
    the positive-class probability, or with `on_labels` the label `predict` would give (the
    0.5 threshold). `weighted(y, p, w)` is the same metric under each row of the weight
    matrix `w` (resamples x rows), equal to sklearn with `sample_weight` (unit-tested).
    `two_classes` names the metric in the error raised when the labels have one class only
    (None: defined on one class too).
    """

    name: str
    task: Task
    direction: Literal[1, -1]  # +1: a larger value is better; -1: a smaller one
    low: float
    high: float
    sklearn: str
    weighted: Weighted
    on_labels: bool = False
    sklearn_kwargs: Mapping[str, Any] = field(default_factory=dict)
    two_classes: str | None = None

    @property
    def bounds(self) -> tuple[float, float]:
        """Where the metric's values live: the config refuses a floor outside them, or a
        min_improvement as wide as them, which no candidate could ever meet."""
        return self.low, self.high

    @property
    def better(self) -> str:
        """Which way is better, as the card says it: "higher" or "lower"."""
        return "higher" if self.direction > 0 else "lower"


# --------------------------------------------------------------------------- weighted forms
# A bootstrap resample of row indices is the same as weighting every row by how often it was
# drawn, so each metric becomes a few matrix products over the weight matrix instead of one
# sklearn call per resample.


def _weighted_mean(w: np.ndarray, per_row: np.ndarray) -> np.ndarray:
    return w @ per_row / w.sum(axis=1)


def _weighted_log_loss(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    import numpy as np

    eps = np.finfo(p.dtype).eps  # sklearn clips to the dtype's machine epsilon
    q = np.clip(p, eps, 1 - eps)
    return _weighted_mean(w, -(y * np.log(q) + (1 - y) * np.log1p(-q)))


def _weighted_brier(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    return _weighted_mean(w, (p - y) ** 2)


def _labels(p: np.ndarray) -> np.ndarray:
    return (p > DECISION_THRESHOLD).astype(float)


def _weighted_accuracy(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    return _weighted_mean(w, (_labels(p) == y).astype(float))


def _weighted_f1(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    import numpy as np

    label = _labels(p)
    tp, fp, fn = w @ (y * label), w @ ((1 - y) * label), w @ (y * (1 - label))
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros_like(denom), where=denom > 0)


def _weighted_rmse(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.sqrt(_weighted_mean(w, (y - p) ** 2))


def _weighted_mae(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    import numpy as np

    return _weighted_mean(w, np.abs(y - p))


def _weighted_r2(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    import numpy as np

    total = w.sum(axis=1)
    # centre on the holdout mean first: the textbook sum(y^2) - n*mean^2 cancels badly
    yc = y - y.mean()
    ybar = w @ yc / total
    ss_tot = w @ yc**2 - total * ybar**2
    ss_res = w @ (y - p) ** 2
    ok = ss_tot > 0
    # sklearn's force_finite: constant target gives 1.0 if perfect else 0.0
    fallback = np.where(ss_res == 0, 1.0, 0.0)
    return np.where(ok, 1 - ss_res / np.where(ok, ss_tot, 1.0), fallback)


def _class_weights_by_score(
    y: np.ndarray, p: np.ndarray, w: np.ndarray, *, descending: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Weights of positives and negatives per threshold group, rows sorted by score.

    Tied scores form one threshold group, as in sklearn.
    """
    import numpy as np

    order = np.argsort(-p if descending else p, kind="stable")
    ps, ys = p[order], y[order]
    starts = np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]])
    ws = np.take(w, order, axis=1)
    if starts.size == ps.size:  # no ties (continuous scores): every row is its own group
        return ws * ys, ws * (1.0 - ys)
    pos = np.add.reduceat(ws * ys, starts, axis=1)
    return pos, np.add.reduceat(ws, starts, axis=1) - pos


def _both_classes_or_nan(value: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """Resamples without one of the classes come back as NaN (the bootstrap redraws them)."""
    import numpy as np

    return np.where((pos.sum(axis=1) > 0) & (neg.sum(axis=1) > 0), value, np.nan)


def _weighted_roc_auc(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Mann-Whitney with ties: each positive beats the negatives below it, half its ties."""
    import numpy as np

    pos, neg = _class_weights_by_score(y, p, w, descending=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        neg_below = np.cumsum(neg, axis=1) - neg
        value = (pos * (neg_below + 0.5 * neg)).sum(axis=1) / (pos.sum(axis=1) * neg.sum(axis=1))
    return _both_classes_or_nan(value, pos, neg)


def _weighted_ap(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Average precision: precision at each positive, from the highest score down."""
    import numpy as np

    pos, neg = _class_weights_by_score(y, p, w, descending=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        tp, fp = np.cumsum(pos, axis=1), np.cumsum(neg, axis=1)
        seen = tp + fp
        precision = np.divide(tp, seen, out=np.zeros_like(tp), where=seen > 0)
        value = (pos * precision).sum(axis=1) / pos.sum(axis=1)
    return _both_classes_or_nan(value, pos, neg)


# --------------------------------------------------------------------------- the table

# labels=[0, 1] keeps a one-class holdout (or resample) well defined for the losses.
_BINARY = {"labels": [0, 1]}
_CLS, _REG = "classification", "regression"

# fmt: off
# One metric per line, in the order the card and the decision record list them.
METRICS: dict[str, Metric] = {m.name: m for m in (
    #      name                 task  dir low   high sklearn.metrics.<fn>       weighted form
    Metric("roc_auc",           _CLS, 1,  0.0,  1.0, "roc_auc_score",           _weighted_roc_auc,
           two_classes="ROC AUC"),
    Metric("average_precision", _CLS, 1,  0.0,  1.0, "average_precision_score", _weighted_ap,
           two_classes="average precision"),
    Metric("log_loss",          _CLS, -1, 0.0,  INF, "log_loss",                _weighted_log_loss,
           sklearn_kwargs=_BINARY),
    Metric("brier",             _CLS, -1, 0.0,  1.0, "brier_score_loss",        _weighted_brier,
           sklearn_kwargs=_BINARY),
    Metric("accuracy",          _CLS, 1,  0.0,  1.0, "accuracy_score",          _weighted_accuracy,
           on_labels=True),
    Metric("f1",                _CLS, 1,  0.0,  1.0, "f1_score",                _weighted_f1,
           on_labels=True, sklearn_kwargs={"zero_division": 0.0}),
    Metric("rmse",              _REG, -1, 0.0,  INF, "root_mean_squared_error", _weighted_rmse),
    Metric("mae",               _REG, -1, 0.0,  INF, "mean_absolute_error",     _weighted_mae),
    Metric("r2",                _REG, 1,  -INF, 1.0, "r2_score",                _weighted_r2),
)}
# fmt: on


def metric_names(task: str | None = None) -> list[str]:
    """The metrics of `task` (all of them with None), in the table's order."""
    if task is not None and task not in TASKS:
        raise EvaluationError(f"unknown task {task!r}: use 'classification' or 'regression'")
    return [name for name, m in METRICS.items() if task is None or m.task == task]


def get_metric(name: str) -> Metric:
    """The table's entry for `name`; EvaluationError lists the known metrics."""
    try:
        return METRICS[name]
    except KeyError:
        raise EvaluationError(f"unknown metric {name!r}: use one of {sorted(METRICS)}") from None


def metric_direction(metric: str) -> int:
    """+1 if a larger value of `metric` is better, -1 if a smaller one is."""
    return get_metric(metric).direction


# --------------------------------------------------------------------------- computing


def checked_arrays(task: str, y_true: Any, prediction: Any) -> tuple[np.ndarray, np.ndarray]:
    """Labels and predictions as float arrays; errors say what is wrong with which."""
    import numpy as np

    try:
        y = np.asarray(y_true, dtype=float).ravel()
        p = np.asarray(prediction, dtype=float).ravel()
    except (TypeError, ValueError) as exc:
        raise EvaluationError(f"labels and predictions must be numeric: {exc}") from None
    if y.size == 0:
        raise EvaluationError("holdout is empty: nothing to evaluate")
    if y.shape != p.shape:
        raise EvaluationError(f"holdout has {y.size} labels but {p.size} predictions")
    if not np.isfinite(y).all():
        raise EvaluationError("holdout labels contain NaN or infinite values")
    if not np.isfinite(p).all():
        raise EvaluationError("predictions contain NaN or infinite values")
    if task == "classification":
        if not np.isin(y, (0.0, 1.0)).all():
            raise EvaluationError(
                f"classification labels must be 0/1, got {sorted(np.unique(y))[:5]!r}"
            )
        if p.min() < 0.0 or p.max() > 1.0:
            raise EvaluationError(
                "classification predictions must be positive-class probabilities in [0, 1], "
                f"got values in [{p.min():.4g}, {p.max():.4g}]"
            )
    return y, p


def require_both_classes(metric: Metric, y: np.ndarray) -> None:
    """EvaluationError naming `metric` when the labels hold a single class."""
    import numpy as np

    classes = np.unique(y)
    if len(classes) < 2:
        raise EvaluationError(
            f"holdout has a single class ({int(classes[0])}): "
            f"{metric.two_classes or metric.name} is undefined"
        )


def _sklearn_value(metric: Metric, y: np.ndarray, p: np.ndarray) -> float:
    from sklearn import metrics as skm

    score = p > DECISION_THRESHOLD if metric.on_labels else p
    return float(getattr(skm, metric.sklearn)(y, score, **metric.sklearn_kwargs))


def metric_value(metric: str, y_true: Any, prediction: Any) -> float:
    """One metric of one model on the holdout (sklearn's definition)."""
    entry = get_metric(metric)
    y, p = checked_arrays(entry.task, y_true, prediction)
    if entry.two_classes:
        require_both_classes(entry, y)
    return _sklearn_value(entry, y, p)


def compute_metrics(task: str, y_true: Any, prediction: Any) -> dict[str, float]:
    """Every metric of `task` for one model.

    For classification `prediction` is the positive-class probability; accuracy and f1 use
    the 0.5 threshold of the model's own `predict`.
    """
    names = metric_names(task)
    y, p = checked_arrays(task, y_true, prediction)
    if task == "classification":
        require_both_classes(METRICS["roc_auc"], y)
    return {name: _sklearn_value(METRICS[name], y, p) for name in names}


def weighted_metric(metric: str, y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    """`metric` of one model under each row of the weight matrix `w` (resamples x rows)."""
    return get_metric(metric).weighted(y, p, w)


__all__ = [
    "DECISION_THRESHOLD",
    "METRICS",
    "EvaluationError",
    "Metric",
    "checked_arrays",
    "compute_metrics",
    "get_metric",
    "metric_direction",
    "metric_names",
    "metric_value",
    "require_both_classes",
    "weighted_metric",
]
