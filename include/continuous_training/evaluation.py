"""Champion vs challenger on one holdout: metrics, a paired bootstrap, and the gate.

TFX-Evaluator style: a challenger is "blessed" when its primary metric clears a value
threshold (the floor) and its change over the champion clears a change threshold. Unlike a
bare point comparison, the change threshold is applied to the lower bound of a paired
bootstrap interval, so a lucky holdout does not ship a model that is not really better.

Everything here is a pure function of arrays and config: no Airflow, no MLflow, and numpy,
sklearn and matplotlib are imported inside the functions that need them so that importing
this module from a DAG file costs nothing.
"""

from __future__ import annotations

import importlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from continuous_training.config import (
    CLASSIFICATION_METRICS,
    HIGHER_IS_BETTER,
    LOWER_IS_BETTER,
    REGRESSION_METRICS,
)
from continuous_training.errors import BadInputError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from continuous_training.config import GatesConfig, PipelineConfig
    from continuous_training.explanations import Explanations
    from continuous_training.slices import SliceReport

# Metrics that need both classes in the labels to be defined at all.
_NEEDS_BOTH_CLASSES = {"roc_auc": "ROC AUC", "average_precision": "average precision"}
# Probability at or below which a classifier's `predict` says "negative"; matches sklearn's
# argmax-based `predict`, which picks class 0 on an exact 0.5 tie.
_DECISION_THRESHOLD = 0.5
# Bootstrap work is done on (chunk x rows) weight matrices; this bounds their size (~32 MB).
_CHUNK_CELLS = 4_000_000
# Guardrail comparisons subtract two metrics; allow for float noise at an exact tolerance.
_FLOAT_SLACK = 1e-12


class EvaluationError(BadInputError):
    """The holdout, the predictions or the gate configuration cannot be evaluated."""


# --------------------------------------------------------------------------- metrics


def metric_direction(metric: str) -> int:
    """+1 if a larger value of `metric` is better, -1 if a smaller one is."""
    if metric in HIGHER_IS_BETTER:
        return 1
    if metric in LOWER_IS_BETTER:
        return -1
    known = sorted(HIGHER_IS_BETTER | LOWER_IS_BETTER)
    raise EvaluationError(f"unknown metric {metric!r}: use one of {known}")


def _task_metrics(task: str) -> list[str]:
    if task == "classification":
        return ["roc_auc", "average_precision", "log_loss", "brier", "accuracy", "f1"]
    if task == "regression":
        return ["rmse", "mae", "r2"]
    raise EvaluationError(f"unknown task {task!r}: use 'classification' or 'regression'")


def _task_of(metric: str) -> str:
    if metric in CLASSIFICATION_METRICS:
        return "classification"
    if metric in REGRESSION_METRICS:
        return "regression"
    metric_direction(metric)  # raises the "unknown metric" error
    raise AssertionError("unreachable")  # pragma: no cover


def _as_arrays(task: str, y_true: Any, prediction: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert labels and predictions; errors say what is wrong with which."""
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


def _require_both_classes(metric: str, y: np.ndarray) -> None:
    import numpy as np

    classes = np.unique(y)
    if len(classes) < 2:
        name = _NEEDS_BOTH_CLASSES.get(metric, metric)
        raise EvaluationError(
            f"holdout has a single class ({int(classes[0])}): {name} is undefined"
        )


def _sklearn_metric(metric: str, y: np.ndarray, p: np.ndarray) -> float:
    from sklearn import metrics as skm

    if metric == "roc_auc":
        return float(skm.roc_auc_score(y, p))
    if metric == "average_precision":
        return float(skm.average_precision_score(y, p))
    if metric == "log_loss":
        # labels=... keeps a one-class holdout (or resample) well defined
        return float(skm.log_loss(y, p, labels=[0, 1]))
    if metric == "brier":
        return float(skm.brier_score_loss(y, p, labels=[0, 1]))
    if metric == "accuracy":
        return float(skm.accuracy_score(y, p > _DECISION_THRESHOLD))
    if metric == "f1":
        return float(skm.f1_score(y, p > _DECISION_THRESHOLD, zero_division=0.0))
    if metric == "rmse":
        return float(skm.root_mean_squared_error(y, p))
    if metric == "mae":
        return float(skm.mean_absolute_error(y, p))
    if metric == "r2":
        return float(skm.r2_score(y, p))
    raise AssertionError(f"no implementation for {metric!r}")  # pragma: no cover


def metric_value(metric: str, y_true: Any, prediction: Any) -> float:
    """One metric of one model on the holdout (sklearn's definition)."""
    y, p = _as_arrays(_task_of(metric), y_true, prediction)
    if metric in _NEEDS_BOTH_CLASSES:
        _require_both_classes(metric, y)
    return _sklearn_metric(metric, y, p)


def compute_metrics(task: str, y_true: Any, prediction: Any) -> dict[str, float]:
    """Every metric of `task` for one model.

    For classification `prediction` is the positive-class probability; accuracy and f1 use
    the 0.5 threshold of the model's own `predict`.
    """
    names = _task_metrics(task)
    y, p = _as_arrays(task, y_true, prediction)
    if task == "classification":
        _require_both_classes("roc_auc", y)
    return {name: _sklearn_metric(name, y, p) for name in names}


# --------------------------------------------------------------------------- bootstrap


@dataclass(frozen=True)
class BootstrapResult:
    """Paired bootstrap of challenger minus champion on one metric.

    Differences are multiplied by the metric's direction, so a POSITIVE value ALWAYS means
    the challenger is better, for log_loss as much as for roc_auc.
    """

    metric: str
    observed_diff: float
    low: float
    high: float
    confidence: float
    resamples: int
    # standard deviation of the resampled differences: what the power statement rests on.
    # None in records written before it was kept.
    std_error: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BootstrapResult:
        optional = {"std_error"}
        return cls(
            **{k: data[k] for k in cls.__dataclass_fields__ if k in data or k not in optional}
        )


def _weighted_metric(metric: str, y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    """`metric` of one model under each row of `w` (shape: resamples x rows).

    A bootstrap resample of row indices is the same as weighting every row by how often it
    was drawn, so each metric becomes a handful of matrix products over the weight matrix
    instead of 1000 sklearn calls. Equal to sklearn with `sample_weight` (unit-tested).
    """
    import numpy as np

    total = w.sum(axis=1)
    if metric in ("roc_auc", "average_precision"):
        return _weighted_ranking_metric(metric, y, p, w)
    if metric == "log_loss":
        eps = np.finfo(p.dtype).eps  # sklearn clips to the dtype's machine epsilon
        q = np.clip(p, eps, 1 - eps)
        return w @ -(y * np.log(q) + (1 - y) * np.log1p(-q)) / total
    if metric == "brier":
        return w @ (p - y) ** 2 / total
    if metric in ("accuracy", "f1"):
        label = (p > _DECISION_THRESHOLD).astype(float)
        if metric == "accuracy":
            return w @ (label == y).astype(float) / total
        tp, fp, fn = w @ (y * label), w @ ((1 - y) * label), w @ (y * (1 - label))
        denom = 2 * tp + fp + fn
        return np.divide(2 * tp, denom, out=np.zeros_like(denom), where=denom > 0)
    if metric == "rmse":
        return np.sqrt(w @ (y - p) ** 2 / total)
    if metric == "mae":
        return w @ np.abs(y - p) / total
    if metric == "r2":
        # centre on the holdout mean first: the textbook sum(y^2) - n*mean^2 cancels badly
        yc = y - y.mean()
        ybar = w @ yc / total
        ss_tot = w @ yc**2 - total * ybar**2
        ss_res = w @ (y - p) ** 2
        ok = ss_tot > 0
        # sklearn's force_finite: constant target gives 1.0 if perfect else 0.0
        fallback = np.where(ss_res == 0, 1.0, 0.0)
        return np.where(ok, 1 - ss_res / np.where(ok, ss_tot, 1.0), fallback)
    raise AssertionError(f"no implementation for {metric!r}")  # pragma: no cover


def _weighted_ranking_metric(
    metric: str, y: np.ndarray, p: np.ndarray, w: np.ndarray
) -> np.ndarray:
    """Weighted ROC AUC (Mann-Whitney with ties) or average precision, per row of `w`.

    Rows are sorted once by score; tied scores form one threshold group, as in sklearn.
    Resamples without one of the classes come back as NaN.
    """
    import numpy as np

    descending = metric == "average_precision"
    order = np.argsort(-p if descending else p, kind="stable")
    ps, ys = p[order], y[order]
    starts = np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]])
    ws = np.take(w, order, axis=1)
    if starts.size == ps.size:  # no ties (continuous scores): every row is its own group
        pos, neg = ws * ys, ws * (1.0 - ys)
    else:
        pos = np.add.reduceat(ws * ys, starts, axis=1)
        neg = np.add.reduceat(ws, starts, axis=1) - pos
    pos_total, neg_total = pos.sum(axis=1), neg.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        if descending:
            tp, fp = np.cumsum(pos, axis=1), np.cumsum(neg, axis=1)
            seen = tp + fp
            precision = np.divide(tp, seen, out=np.zeros_like(tp), where=seen > 0)
            value = (pos * precision).sum(axis=1) / pos_total
        else:
            # each positive beats the negatives below it and half-beats its ties
            neg_below = np.cumsum(neg, axis=1) - neg
            value = (pos * (neg_below + 0.5 * neg)).sum(axis=1) / (pos_total * neg_total)
    return np.where((pos_total > 0) & (neg_total > 0), value, np.nan)


def _resample_weights(rng: np.random.Generator, rows: int, count: int) -> np.ndarray:
    """`count` bootstrap resamples of `rows` rows, as per-row draw counts (count x rows)."""
    import numpy as np

    idx = rng.integers(0, rows, size=(count, rows))
    idx += np.arange(count)[:, None] * rows
    return np.bincount(idx.ravel(), minlength=count * rows).reshape(count, rows).astype(float)


def _resampled(
    metric: str,
    y: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    resamples: int,
    seed: int,
) -> np.ndarray:
    """`resamples` values of `statistic` under bootstrap weights, in bounded chunks.

    Resamples that miss a class (AUC-type metrics give NaN) are redrawn; a cap on redraws
    makes a holdout with, say, one positive fail instead of looping.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    chunk = max(1, min(resamples, _CHUNK_CELLS // y.size))
    max_draws = 10 * resamples
    values: list[np.ndarray] = []
    collected = drawn = 0
    while collected < resamples:
        if drawn >= max_draws:
            raise EvaluationError(
                f"only {collected} of {drawn} bootstrap resamples contained both classes "
                f"({int(y.sum())} positives in {y.size} rows): {metric} is too unstable "
                "on this holdout"
            )
        found = statistic(_resample_weights(rng, y.size, chunk))
        drawn += chunk
        found = found[~np.isnan(found)]
        values.append(found)
        collected += found.size
    return np.concatenate(values)[:resamples]


def paired_bootstrap(
    metric: str,
    y_true: Any,
    pred_challenger: Any,
    pred_champion: Any,
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> BootstrapResult:
    """Percentile interval of (challenger - champion) x direction on paired resamples.

    Both models are scored on the same resampled rows in every round, so the interval
    reflects the difference between the models, not the noise of each one separately.
    Resamples that miss a class (AUC-type metrics) are redrawn. Deterministic for a seed.
    """
    import numpy as np

    if resamples < 1:
        raise EvaluationError(f"resamples must be at least 1, got {resamples}")
    if not 0.0 < confidence < 1.0:
        raise EvaluationError(f"confidence must be in (0, 1), got {confidence}")
    direction = metric_direction(metric)
    task = _task_of(metric)
    y, p_new = _as_arrays(task, y_true, pred_challenger)
    _, p_old = _as_arrays(task, y_true, pred_champion)
    observed = direction * (metric_value(metric, y, p_new) - metric_value(metric, y, p_old))

    def diff(w: np.ndarray) -> np.ndarray:
        return direction * (
            _weighted_metric(metric, y, p_new, w) - _weighted_metric(metric, y, p_old, w)
        )

    all_diffs = _resampled(metric, y, diff, resamples, seed)
    alpha = 1.0 - confidence
    low, high = np.quantile(all_diffs, [alpha / 2, 1 - alpha / 2])
    return BootstrapResult(
        metric=metric,
        observed_diff=float(observed),
        low=float(low),
        high=float(high),
        confidence=confidence,
        resamples=int(all_diffs.size),
        std_error=float(np.std(all_diffs, ddof=1)) if all_diffs.size > 1 else 0.0,
    )


@dataclass(frozen=True)
class MetricInterval:
    """One model's metric on some rows with its percentile bootstrap interval."""

    metric: str
    value: float
    low: float
    high: float
    confidence: float
    resamples: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- power


def minimum_detectable_improvement(
    bootstrap: BootstrapResult | None, gates: GatesConfig, power: float = 0.8
) -> float | None:
    """The true improvement the gate promotes with probability `power` on this holdout.

    The gate promotes when the interval's lower bound, about observed - z_(1+c)/2 * SE, is
    above min_improvement. With the observed difference normal around the true one with
    this SE, that happens with probability `power` when the true improvement is
    min_improvement + (z_(1+c)/2 + z_power) * SE. None without a bootstrap (no champion, or
    a holdout too thin to compare on) or with an old record that kept no SE.
    """
    from scipy import stats

    if not 0.0 < power < 1.0:
        raise EvaluationError(f"power must be in (0, 1), got {power}")
    if bootstrap is None or bootstrap.std_error is None:
        return None
    z = stats.norm.ppf((1.0 + bootstrap.confidence) / 2.0) + stats.norm.ppf(power)
    return gates.min_improvement + float(z) * bootstrap.std_error


@dataclass(frozen=True)
class PowerStatement:
    """The smallest improvement the holdout can show, said in one sentence for card and log."""

    minimum_detectable_improvement: float | None
    power: float
    warning: bool
    text: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def bootstrap_interval(
    metric: str,
    y_true: Any,
    prediction: Any,
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> MetricInterval:
    """Percentile bootstrap interval of one model's `metric` (not a difference).

    The same weighted resampling as `paired_bootstrap`, for one model: realized performance
    of a served model over time. Resamples that miss a class (AUC-type metrics) are redrawn.
    Deterministic for a seed.
    """
    import numpy as np

    if resamples < 1:
        raise EvaluationError(f"resamples must be at least 1, got {resamples}")
    if not 0.0 < confidence < 1.0:
        raise EvaluationError(f"confidence must be in (0, 1), got {confidence}")
    y, p = _as_arrays(_task_of(metric), y_true, prediction)
    observed = metric_value(metric, y, p)
    all_values = _resampled(metric, y, lambda w: _weighted_metric(metric, y, p, w), resamples, seed)
    alpha = 1.0 - confidence
    low, high = np.quantile(all_values, [alpha / 2, 1 - alpha / 2])
    return MetricInterval(
        metric=metric,
        value=float(observed),
        low=float(low),
        high=float(high),
        confidence=confidence,
        resamples=int(all_values.size),
    )


def power_statement(
    bootstrap: BootstrapResult | None,
    gates: GatesConfig,
    *,
    has_champion: bool,
    power: float = 0.8,
) -> PowerStatement:
    """What this holdout can detect, with a WARNING when it is blind to gains worth having.

    The warning fires when the detectable improvement is more than twice min_improvement:
    a challenger truly better by twice the threshold, clearly worth shipping, is then
    rejected more often than not. With min_improvement <= 0 there is no such yardstick and
    the figure is stated without a warning.
    """
    value = minimum_detectable_improvement(bootstrap, gates, power)
    if not has_champion:
        text = (
            "Power: no champion (first model): there is no paired difference, so no "
            "improvement to detect."
        )
        return PowerStatement(None, power, False, text)
    if bootstrap is None:
        text = (
            "Power: not computed: no paired bootstrap was run (the holdout has too few rows "
            "of a class to compare the models on)."
        )
        return PowerStatement(None, power, False, text)
    if value is None:
        text = "Power: not computed: this bootstrap record keeps no standard error."
        return PowerStatement(None, power, False, text)
    floor = gates.min_improvement
    text = (
        f"Power: with this holdout, an improvement of {value:.4f} in {bootstrap.metric} is "
        f"promoted with {power:.0%} power at {bootstrap.confidence:.0%} confidence "
        f"(bootstrap SE {bootstrap.std_error:.4f})."
    )
    warning = floor > 0 and value > 2 * floor
    if warning:
        text += (
            f" WARNING: that is more than twice min_improvement ({floor:g}): a real gain of "
            f"{2 * floor:g} is likely to be rejected; a larger holdout "
            "(windows.holdout_days) narrows it."
        )
    return PowerStatement(value, power, warning, text)


# --------------------------------------------------------------------------- gate


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    checks: list[CheckResult]

    @property
    def reason(self) -> str:
        """One line: every check when passed, only the failing ones when rejected."""
        if self.passed:
            return "passed: " + "; ".join(c.detail for c in self.checks)
        return "rejected: " + "; ".join(c.detail for c in self.checks if not c.passed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reason": self.reason,
            "checks": [asdict(c) for c in self.checks],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateDecision:
        return cls(
            passed=bool(data["passed"]),
            checks=[CheckResult(**c) for c in data["checks"]],
        )


@dataclass(frozen=True, kw_only=True)
class GateContext:
    """Everything the gate decides on; also what a user's extra check receives."""

    gates: GatesConfig
    task: str
    challenger_metrics: dict[str, float]
    holdout_rows: int
    champion_metrics: dict[str, float] | None = None
    bootstrap: BootstrapResult | None = None
    challenger_latency_ms_per_1k: float | None = None
    # classification: holdout rows per class, {"0": n, "1": n}
    holdout_class_counts: dict[str, int] | None = None
    # where each model's training data ends (ISO datetimes), when known
    challenger_data_end: str | None = None
    champion_data_end: str | None = None
    # per-slice comparison (gates.slices), None when not configured
    slices: SliceReport | None = None

    @property
    def too_few_per_class(self) -> bool:
        return too_few_per_class(self.holdout_class_counts, self.gates)


ExtraCheck = Callable[[GateContext], CheckResult]


def _metric(metrics: Mapping[str, float], name: str, whose: str) -> float:
    try:
        return float(metrics[name])
    except KeyError:
        raise EvaluationError(
            f"{whose} metrics have no {name!r} (have {sorted(metrics)})"
        ) from None


def _check_floor(ctx: GateContext) -> CheckResult:
    metric, floor = ctx.gates.primary_metric, ctx.gates.floor
    value = _metric(ctx.challenger_metrics, metric, "challenger")
    if metric_direction(metric) > 0:
        ok, op, word = value >= floor, (">=" if value >= floor else "<"), "floor"
    else:
        # for a loss the "floor" is a ceiling: the challenger may be at most this bad
        ok, op, word = value <= floor, ("<=" if value <= floor else ">"), "ceiling"
    return CheckResult("floor", ok, f"{metric} {value:.4f} {op} {word} {floor:g}")


def _check_improvement(ctx: GateContext) -> CheckResult:
    boot, gates = ctx.bootstrap, ctx.gates
    if boot is None:
        raise EvaluationError("a champion was given without a bootstrap result to compare on")
    if boot.metric != gates.primary_metric:
        raise EvaluationError(
            f"bootstrap is on {boot.metric!r} but gates.primary_metric is {gates.primary_metric!r}"
        )
    # strictly greater: an exact tie (CI [0, 0]) must never replace the champion
    ok = boot.low > gates.min_improvement
    verdict = "clears" if ok else "does not clear"
    detail = (
        f"{boot.metric} improvement {boot.observed_diff:+.4f}, {boot.confidence:.0%} CI "
        f"[{boot.low:.4f}, {boot.high:.4f}] {verdict} min_improvement {gates.min_improvement:g}"
    )
    return CheckResult("improvement", ok, detail)


def _check_guardrail(ctx: GateContext, metric: str, tolerance: float) -> CheckResult:
    assert ctx.champion_metrics is not None
    new = _metric(ctx.challenger_metrics, metric, "challenger")
    old = _metric(ctx.champion_metrics, metric, "champion")
    worse_by = metric_direction(metric) * (old - new)  # > 0: the challenger is worse
    ok = worse_by <= tolerance + _FLOAT_SLACK
    values = f"(challenger {new:.4f}, champion {old:.4f})"
    if worse_by <= 0:
        detail = f"{metric} no worse than the champion {values}"
    else:
        verdict = "within" if ok else "exceeds"
        detail = f"{metric} worse by {worse_by:.4f} {verdict} tolerance {tolerance:g} {values}"
    return CheckResult(f"guardrail:{metric}", ok, detail)


def _check_slices(ctx: GateContext) -> CheckResult:
    """No large slice of the holdout may be clearly worse under the challenger.

    Mirrors a guardrail per slice, on the paired bootstrap interval of the slice's rows: the
    check fails when, on some judged slice, the interval's upper bound of (challenger -
    champion), positive = better, lies below -tolerance. The rejection names every such
    slice with its difference and interval.
    """
    report = ctx.slices
    assert report is not None
    judged, failed = report.judged, report.failed
    reported = len(report.results) - len(judged)
    counts = (
        f"{len(judged)} slice(s) with >= {report.min_rows} rows judged, {reported} reported only"
    )
    if failed:
        worst = "; ".join(
            f"{r.label} ({r.rows} rows) {report.metric} {r.diff:+.4f}, "
            f"{report.confidence:.2%} CI [{r.low:+.4f}, {r.high:+.4f}]"
            for r in sorted(failed, key=lambda r: r.high or 0.0)
        )
        return CheckResult(
            "slices",
            False,
            f"worse than the champion by more than tolerance {report.tolerance:g} on {worst} "
            f"({counts})",
        )
    return CheckResult(
        "slices",
        True,
        f"{report.metric} on no slice clearly worse than tolerance {report.tolerance:g} ({counts})",
    )


def too_few_per_class(counts: dict[str, int] | None, gates: GatesConfig) -> bool:
    """Whether a class has fewer holdout rows than a decision may rest on."""
    return bool(counts) and min(counts.values()) < gates.min_holdout_per_class


def class_counts(y: Any) -> dict[str, int]:
    """Rows per class of 0/1 labels, as the record and the card show them."""
    import numpy as np

    y = np.asarray(y, dtype=float)
    return {"0": int((y == 0).sum()), "1": int((y == 1).sum())}


def _check_classes(ctx: GateContext) -> CheckResult | None:
    """A metric estimated from a handful of one class says nothing: never decide on it.

    With a champion to beat, the candidate is rejected. A first model is let through (with
    no champion nothing would be served at all), but the check says so in the decision.
    """
    counts = ctx.holdout_class_counts
    if not counts:
        return None
    needed = ctx.gates.min_holdout_per_class
    seen = f"{counts['1']} positive and {counts['0']} negative rows"
    if not ctx.too_few_per_class:
        return CheckResult("holdout_classes", True, f"holdout has {seen} (at least {needed} each)")
    short = f"holdout has {seen}, fewer than gates.min_holdout_per_class={needed} of a class"
    if ctx.champion_metrics is None:
        return CheckResult(
            "holdout_classes",
            True,
            f"WARNING: {short}: the first champion's {ctx.gates.primary_metric} is an "
            "unreliable estimate",
        )
    return CheckResult(
        "holdout_classes",
        False,
        f"{short}: the comparison with the champion says nothing, the champion stays",
    )


def _check_recency(ctx: GateContext) -> CheckResult | None:
    """A model of older data never replaces one of newer data without a person saying so."""
    from datetime import datetime

    if ctx.champion_metrics is None or not (ctx.challenger_data_end and ctx.champion_data_end):
        return None
    new = datetime.fromisoformat(ctx.challenger_data_end)
    old = datetime.fromisoformat(ctx.champion_data_end)
    if new >= old:
        return CheckResult(
            "data_recency", True, f"data ends {new:%Y-%m-%d}, the champion's {old:%Y-%m-%d}"
        )
    return CheckResult(
        "data_recency",
        False,
        f"the candidate's data ends {new:%Y-%m-%d}, before the champion's ({old:%Y-%m-%d}): "
        "an older model does not replace a newer one (force_promote with a reason to do so)",
    )


def _check_latency(ctx: GateContext) -> CheckResult | None:
    budget = ctx.gates.max_latency_ms_per_1k
    if budget is None:
        return None
    latency = ctx.challenger_latency_ms_per_1k
    if latency is None:
        # recorded rather than silently skipped, so the card shows it was not enforced
        return CheckResult("latency", True, f"latency not measured (budget {budget:g} ms/1k)")
    ok = latency <= budget
    op = "<=" if ok else ">"
    return CheckResult("latency", ok, f"latency {latency:.1f} ms/1k {op} budget {budget:g}")


def _import_check(path: str) -> ExtraCheck:
    module_name, _, attr = path.rpartition(".")
    try:
        if not module_name:
            raise ImportError("not a dotted import path like 'my_package.checks.fn'")
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise EvaluationError(f"gates.extra_checks: cannot import {path!r}: {exc}") from exc
    if not callable(obj):
        raise EvaluationError(f"gates.extra_checks: {path!r} is not callable")
    return obj


def _run_extra_check(path: str, check: ExtraCheck, ctx: GateContext) -> CheckResult:
    # a buggy user check fails the gate (nothing ships) but does not crash the evaluation
    try:
        result = check(ctx)
    except Exception as exc:
        return CheckResult(path, False, f"{path} raised {type(exc).__name__}: {exc}")
    if not isinstance(result, CheckResult):
        return CheckResult(
            path, False, f"{path} returned {type(result).__name__}, expected CheckResult"
        )
    return result


def evaluate_gate(ctx: GateContext) -> GateDecision:
    """Decide whether the challenger may replace the champion; passes only if all checks do."""
    # resolve user checks first: a typo in the config is a config error, not a rejection
    extra = [(path, _import_check(path)) for path in ctx.gates.extra_checks]
    checks = [_check_floor(ctx)]
    checks += [c for c in (_check_classes(ctx), _check_recency(ctx)) if c is not None]
    if ctx.champion_metrics is None:
        checks.append(
            CheckResult("champion", True, "no champion: improvement and guardrails not applicable")
        )
    elif not ctx.too_few_per_class:  # else the classes check has rejected, with its reason
        checks.append(_check_improvement(ctx))
        checks += [
            _check_guardrail(ctx, metric, guard.tolerance)
            for metric, guard in ctx.gates.guardrails.items()
        ]
        if ctx.slices is not None:
            checks.append(_check_slices(ctx))
    latency = _check_latency(ctx)
    if latency is not None:
        checks.append(latency)
    checks += [_run_extra_check(path, check, ctx) for path, check in extra]
    return GateDecision(passed=all(c.passed for c in checks), checks=checks)


def build_gate_context(
    gates: GatesConfig,
    task: str,
    y_true: Any,
    pred_challenger: Any,
    pred_champion: Any | None = None,
    *,
    challenger_latency_ms_per_1k: float | None = None,
    challenger_data_end: str | None = None,
    champion_data_end: str | None = None,
    slice_frame: pd.DataFrame | None = None,
) -> GateContext:
    """Metrics of both models and the bootstrap on the primary metric, ready for the gate.

    The bootstrap is skipped when the holdout has too few rows of a class to judge on.
    With `gates.slices`, `slice_frame` holds the holdout's slice columns (row for row).
    """
    challenger = compute_metrics(task, y_true, pred_challenger)
    counts = class_counts(y_true) if task == "classification" else None
    champion = boot = None
    if pred_champion is not None:
        champion = compute_metrics(task, y_true, pred_champion)
    if pred_champion is not None and not too_few_per_class(counts, gates):
        cfg = gates.bootstrap
        boot = paired_bootstrap(
            gates.primary_metric,
            y_true,
            pred_challenger,
            pred_champion,
            resamples=cfg.resamples,
            confidence=cfg.confidence,
            seed=cfg.seed,
        )
    report = None
    if gates.slices is not None:
        from continuous_training.slices import compute_slices

        if slice_frame is None:
            raise EvaluationError("gates.slices is set but no slice columns were given")
        report = compute_slices(gates, task, y_true, pred_challenger, pred_champion, slice_frame)
    return GateContext(
        gates=gates,
        task=task,
        challenger_metrics=challenger,
        holdout_rows=len(y_true),
        champion_metrics=champion,
        bootstrap=boot,
        challenger_latency_ms_per_1k=challenger_latency_ms_per_1k,
        holdout_class_counts=counts,
        challenger_data_end=challenger_data_end,
        champion_data_end=champion_data_end,
        slices=report,
    )


# --------------------------------------------------------------------------- latency


def measure_latency_ms_per_1k(predict_fn: Callable[[Any], Any], X: Any, repeats: int = 3) -> float:
    """Best-of-`repeats` single-threaded wall time to score `X`, scaled to 1,000 rows.

    Best-of rather than mean: the minimum is the least disturbed by other work on the host.
    One thread, after a warm-up call: OpenMP thread pools on a busy host can make a
    multi-threaded timing hundreds of times slower than the model really is.
    """
    from threadpoolctl import threadpool_limits

    rows = len(X)
    if rows == 0:
        raise EvaluationError("cannot measure latency on zero rows")
    if repeats < 1:
        raise EvaluationError(f"repeats must be at least 1, got {repeats}")
    best = math.inf
    with threadpool_limits(limits=1):
        predict_fn(X)
        for _ in range(repeats):
            start = time.perf_counter()
            predict_fn(X)
            best = min(best, time.perf_counter() - start)
    return best * 1000.0 * 1000.0 / rows


# --------------------------------------------------------------------------- model card


def _fmt(value: float | None, spec: str = ".4f") -> str:
    return "n/a" if value is None else format(value, spec)


def _window(data: Mapping[str, Any], split: str) -> str:
    window = data.get(f"{split}_window")
    if window is None and (f"{split}_start" in data or f"{split}_end" in data):
        window = (data.get(f"{split}_start"), data.get(f"{split}_end"))
    if isinstance(window, Sequence) and not isinstance(window, str) and len(window) == 2:
        return f"{window[0]} to {window[1]}"
    return "n/a" if window is None else str(window)


_DATA_KEYS = {
    f"{split}_{part}"
    for split in ("train", "holdout")
    for part in ("window", "start", "end", "rows", "sha256")
}


def _data_section(data: Mapping[str, Any]) -> list[str]:
    lines = ["| Split | Window | Rows | sha256 |", "|---|---|---:|---|"]
    for split in ("train", "holdout"):
        rows = data.get(f"{split}_rows", "n/a")
        sha = data.get(f"{split}_sha256", "n/a")
        lines.append(f"| {split} | {_window(data, split)} | {rows} | `{sha}` |")
    lines += [f"- {key}: {value}" for key, value in data.items() if key not in _DATA_KEYS]
    return lines


def _metrics_section(
    task: str,
    challenger: Mapping[str, float],
    champion: Mapping[str, float] | None,
    bootstrap: BootstrapResult | None,
) -> list[str]:
    lines = [
        "| Metric | Better | Challenger | Champion | Difference (challenger - champion) |",
        "|---|---|---:|---:|---:|",
    ]
    for name in [m for m in _task_metrics(task) if m in challenger] + sorted(
        set(challenger) - set(_task_metrics(task))
    ):
        new = challenger[name]
        old = None if champion is None else champion.get(name)
        diff = None if old is None else new - old
        better = "higher" if metric_direction(name) > 0 else "lower"
        lines.append(f"| {name} | {better} | {_fmt(new)} | {_fmt(old)} | {_fmt(diff, '+.4f')} |")
    if bootstrap is not None:
        lines += [
            "",
            f"Paired bootstrap on `{bootstrap.metric}` ({bootstrap.resamples} resamples of the "
            f"holdout rows, positive = challenger better): improvement "
            f"{bootstrap.observed_diff:+.4f}, {bootstrap.confidence:.0%} CI "
            f"[{bootstrap.low:.4f}, {bootstrap.high:.4f}].",
        ]
    return lines


def _thresholds_section(gates: GatesConfig) -> list[str]:
    direction = "at least" if metric_direction(gates.primary_metric) > 0 else "at most"
    boot = gates.bootstrap
    lines = [
        f"- primary metric: `{gates.primary_metric}`",
        f"- floor: challenger {direction} {gates.floor:g}",
        f"- min_improvement: bootstrap CI lower bound must be greater than "
        f"{gates.min_improvement:g}",
        f"- bootstrap: {boot.resamples} resamples, {boot.confidence:.0%} confidence, "
        f"seed {boot.seed}",
    ]
    lines += [
        f"- guardrail `{m}`: may not be worse than the champion by more than {g.tolerance:g}"
        for m, g in gates.guardrails.items()
    ]
    if gates.slices is not None:
        sl = gates.slices
        lines.append(
            f"- slices `{', '.join(sl.columns)}`: on every group with at least {sl.min_rows} "
            f"rows, the {gates.slice_metric} CI upper bound of (challenger - champion) must "
            f"not be below -{sl.tolerance:g}"
        )
    if gates.max_latency_ms_per_1k is not None:
        lines.append(f"- max latency: {gates.max_latency_ms_per_1k:g} ms per 1,000 rows")
    lines += [f"- extra check: `{path}`" for path in gates.extra_checks]
    return lines


def _limitations_section(pipeline: PipelineConfig, holdout_rows: Any) -> list[str]:
    windows = pipeline.windows
    lines = [
        f"- The holdout is the most recent {windows.holdout_days} day(s) "
        f"({holdout_rows} rows) after {windows.training_days} training day(s): it measures "
        "one recent period, not seasonality or what comes next.",
        "- The bootstrap interval assumes independent rows; repeated entities or days that "
        "move together make the true uncertainty wider than shown.",
        "- Both models are scored on this run's holdout only; the champion's score here can "
        "differ from the one recorded when it was promoted.",
    ]
    if pipeline.task == "classification":
        lines.append(
            "- accuracy and f1 use a fixed 0.5 threshold; the serving threshold may differ."
        )
    lines.append("- Latency is measured on the training worker, not on the serving infrastructure.")
    if pipeline.source.kind == "synthetic":
        lines.append(
            "- The data are SYNTHETIC demo data from the embedded generator: these numbers "
            "say nothing about any real population."
        )
    return lines


def _cell(value: float | None) -> str:
    return _fmt(value)


def _slices_section(report: SliceReport) -> list[str]:
    lines = [
        f"`{report.metric}` per group of the holdout. A group with at least {report.min_rows} "
        "rows is judged on a paired bootstrap of its rows: it fails when the CI upper bound "
        f"of (challenger - champion), positive = challenger better, is below "
        f"-{report.tolerance:g}. CIs are {report.confidence:.2%} each (Bonferroni over "
        f"{max(len(report.judged), 1)} judged group(s), {report.family_confidence:.0%} "
        "together).",
        "",
        "| Column | Group | Rows | Champion | Challenger | Difference [CI] | Judged | Verdict |",
        "|---|---|---:|---:|---:|---|---|---|",
    ]
    for r in report.results:
        diff = "n/a"
        if r.diff is not None:
            diff = f"{r.diff:+.4f} [{r.low:+.4f}, {r.high:+.4f}]"
        elif r.challenger is not None and r.champion is not None:
            point = metric_direction(report.metric) * (r.challenger - r.champion)
            diff = f"{point:+.4f}"
        prefix = "" if not r.judged else "pass: " if r.passed else "**FAIL**: "
        verdict = prefix + r.note
        judged = "judged" if r.judged else "reported"
        lines.append(
            f"| {r.column} | {r.group} | {r.rows} | {_cell(r.champion)} | "
            f"{_cell(r.challenger)} | {diff} | {judged} | {verdict} |"
        )
    for column, rest in report.omitted.items():
        lines.append(
            f"\n- `{column}`: {rest['groups']} more group(s) with {rest['rows']} rows in all, "
            "beyond gates.slices.max_groups: neither listed nor judged."
        )
    return lines


def _fairness_section(report: SliceReport) -> list[str]:
    if not report.fairness:
        return ["No sensitive column named (gates.slices.sensitive)."]
    lines = [
        f"- sensitive columns: {', '.join(f'`{f.column}`' for f in report.fairness)}",
        f"- metric: `{report.metric}`; gaps are between groups with at least "
        f"{report.min_rows} rows where it is defined.",
    ]
    for f in report.fairness:
        lines += [
            "",
            f"### `{f.column}`",
            "",
            "| Group | Rows | Challenger | Champion |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| {g} | {v['rows']} | {_cell(v['challenger'])} | {_cell(v['champion'])} |"
            for g, v in f.groups.items()
        ]
        lines.append("")
        for whose, gap, worst, best in (
            ("challenger", f.challenger_gap, f.challenger_worst, f.challenger_best),
            ("champion", f.champion_gap, f.champion_worst, f.champion_best),
        ):
            if whose == "champion" and not report.has_champion:
                lines.append("- champion: none (first model)")
            elif gap is None:
                lines.append(
                    f"- {whose}: largest gap not computed (fewer than two groups with "
                    f"{report.min_rows} rows and a defined {report.metric})"
                )
            else:
                lines.append(
                    f"- {whose}: largest gap between groups {gap:.4f} "
                    f"(worst `{worst}`, best `{best}`)"
                )
    return lines


def _explanations_section(explanations: Explanations | str) -> list[str]:
    if isinstance(explanations, str):
        return [f"Not computed: {explanations}"]
    ex = explanations
    lines = [
        f"Permutation importance on {ex.rows} holdout rows ({ex.n_repeats} repeats, seed "
        f"{ex.seed}): the drop in `{ex.metric}` when one feature is shuffled (positive = the "
        "model relies on it). Plot: `evaluation/permutation_importance.png`.",
        "",
        "| Feature | Challenger (mean ± std) | Champion (mean ± std) |",
        "|---|---:|---:|",
    ]
    old = {f.feature: f for f in ex.champion or []}
    for f in ex.challenger:
        prev = old.get(f.feature)
        champ = "n/a" if prev is None else f"{prev.mean:.4f} ± {prev.std:.4f}"
        lines.append(f"| {f.feature} | {f.mean:.4f} ± {f.std:.4f} | {champ} |")
    lines.append("")
    if not ex.changes:
        lines.append("Changed most: no champion to compare with.")
    else:
        from continuous_training.explanations import TOP_CHANGES

        lines.append("Changed most between champion and challenger:")
        lines += [
            f"- `{c.feature}`: {c.champion:.4f} -> {c.challenger:.4f} ({c.change:+.4f})"
            for c in ex.changes[:TOP_CHANGES]
        ]
    return lines


def _evidence_sections(
    slices: SliceReport | None, explanations: Explanations | str | None
) -> list[str]:
    out: list[str] = []
    if slices is not None:
        out += ["## Slices", *_slices_section(slices), ""]
        out += ["## Fairness", *_fairness_section(slices), ""]
    if explanations is not None:
        out += ["## Explanations", *_explanations_section(explanations), ""]
    return out


def _search_section(search: Mapping[str, Any] | None) -> list[str]:
    """The hyperparameter search behind the candidate (`model.search`); nothing without one."""
    if not search:
        return []
    metric = search.get("metric", "score")
    stopped = search.get("stopped_by")
    budget = (
        f"n_trials={search.get('n_trials')}"
        if stopped == "n_trials"
        else f"timeout_minutes={search.get('timeout_minutes')}"
    )
    defaults = search.get("defaults_score")
    best = ", ".join(f"`{k}={v!r}`" for k, v in sorted(search.get("best_params", {}).items()))
    return [
        "## Search",
        f"- trials: {search.get('trials')} ({search.get('complete')} complete, "
        f"{search.get('pruned')} pruned, {search.get('failed')} failed); stopped by "
        f"{stopped} ({budget}); {search.get('seconds', 0.0):.1f} s",
        f"- sampler: {search.get('sampler')} (seed {search.get('seed')}); "
        f"pruner: {search.get('pruner')}",
        f"- best params (trial {search.get('best_trial')}): {best or 'none'}",
        f"- best validation {metric}: {_fmt(search.get('best_score'))}"
        + ("" if defaults is None else f" (the YAML's params, trial 0: {_fmt(defaults)})"),
        f"- validation: {search.get('validation_rows')} rows from "
        f"{search.get('validation_start')} to the holdout start; trials fitted on "
        f"{search.get('fit_rows')} earlier rows; the best params refitted on the whole "
        "training part. The holdout was never seen by the search.",
        f"- optimisation history: `{search.get('plot')}` in the candidate's MLflow run; "
        "each trial is a nested run of it",
        "",
    ]


def render_model_card(
    *,
    pipeline: PipelineConfig,
    model_name: str,
    challenger_version: str | int | None,
    champion_version: str | int | None,
    data: Mapping[str, Any],
    challenger_metrics: Mapping[str, float],
    champion_metrics: Mapping[str, float] | None,
    decision: GateDecision,
    bootstrap: BootstrapResult | None,
    slices: SliceReport | None = None,
    explanations: Explanations | str | None = None,
    search: Mapping[str, Any] | None = None,
) -> str:
    """A markdown model card for one challenger and its gate decision.

    `slices` adds the Slices and Fairness sections; `explanations` (or the reason it was
    not computed) the Explanations section; `search` the summary of `model.search`
    (search.SearchResult.summary()), if one ran.

    `data` keys read: train_/holdout_ `rows`, `sha256`, and `window` (a (start, end) pair or
    a string) or `start`/`end`; any other key is listed under Data as is.
    """
    verdict = "PASSED (promote)" if decision.passed else "REJECTED (keep the champion)"
    champion = "none (first model)" if champion_version is None else f"version {champion_version}"
    features = pipeline.features
    out = [
        f"# Model card: {model_name} version {challenger_version}",
        "",
        "## Model",
        f"- pipeline: `{pipeline.name}` ({pipeline.task}) - {pipeline.description or 'n/a'}",
        f"- owner: {pipeline.owner}",
        f"- estimator: `{pipeline.model.estimator}` with params `{pipeline.model.params}`",
        f"- target: `{pipeline.target}`; time column: `{pipeline.time_column}`",
        f"- challenger: version {challenger_version}",
        f"- champion: {champion}",
        "",
        "## Data",
        f"- source: `{pipeline.source.kind}`",
        "",
        *_data_section(data),
        "",
        "## Features",
        f"- numeric: {', '.join(features.numeric) or 'none'}",
        f"- categorical: {', '.join(features.categorical) or 'none'}",
        "",
        *_search_section(search),
        "## Metrics",
        *_metrics_section(pipeline.task, challenger_metrics, champion_metrics, bootstrap),
        "",
        power_statement(bootstrap, pipeline.gates, has_champion=champion_metrics is not None).text,
        "",
        *_evidence_sections(slices, explanations),
        "## Thresholds",
        *_thresholds_section(pipeline.gates),
        "",
        "## Decision",
        f"**{verdict}**",
        "",
        f"Reason: {decision.reason}",
        "",
        *[f"- [{'x' if c.passed else ' '}] `{c.name}`: {c.detail}" for c in decision.checks],
        "",
        "## Limitations",
        *_limitations_section(pipeline, data.get("holdout_rows", "n/a")),
    ]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- plots


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

    _task_metrics(task)  # validates the task name
    y, p_new = _as_arrays(task, y_true, pred_challenger)
    models = [("challenger", p_new)]
    if pred_champion is not None:
        models.append(("champion", _as_arrays(task, y_true, pred_champion)[1]))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    try:
        if task == "classification":
            _require_both_classes("roc_auc", y)
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


__all__ = [
    "BootstrapResult",
    "CheckResult",
    "EvaluationError",
    "GateContext",
    "GateDecision",
    "MetricInterval",
    "PowerStatement",
    "bootstrap_interval",
    "build_gate_context",
    "compute_metrics",
    "evaluate_gate",
    "measure_latency_ms_per_1k",
    "metric_direction",
    "metric_value",
    "minimum_detectable_improvement",
    "paired_bootstrap",
    "plot_comparison",
    "power_statement",
    "render_model_card",
]
