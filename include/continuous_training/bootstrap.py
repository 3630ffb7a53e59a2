"""Bootstrap intervals: of one model's metric, and of the paired difference of two models.

Both models are scored on the same resampled rows in every round, so the paired interval
reflects the difference between the models, not the noise of each one separately. The gate
applies its change threshold to the interval's lower bound (TFX-Evaluator style, with an
interval instead of a point), and the power statement says what improvement this holdout
could have detected at all.

No Airflow, no MLflow; numpy and scipy are imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from continuous_training.metrics import (
    EvaluationError,
    checked_arrays,
    get_metric,
    metric_value,
    weighted_metric,
)

if TYPE_CHECKING:
    import numpy as np

    from continuous_training.config import GatesConfig

# Bootstrap work is done on (chunk x rows) weight matrices; this bounds their size (~32 MB).
_CHUNK_CELLS = 4_000_000


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


def _interval(values: np.ndarray, confidence: float) -> dict[str, Any]:
    """The fields both results share: the central `confidence` percentile interval of the
    resampled `values`, the confidence and how many resamples it rests on."""
    import numpy as np

    alpha = 1.0 - confidence
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return {
        "low": float(low),
        "high": float(high),
        "confidence": confidence,
        "resamples": int(values.size),
    }


def _check_settings(resamples: int, confidence: float) -> None:
    if resamples < 1:
        raise EvaluationError(f"resamples must be at least 1, got {resamples}")
    if not 0.0 < confidence < 1.0:
        raise EvaluationError(f"confidence must be in (0, 1), got {confidence}")


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

    _check_settings(resamples, confidence)
    entry = get_metric(metric)
    direction = entry.direction
    y, p_new = checked_arrays(entry.task, y_true, pred_challenger)
    _, p_old = checked_arrays(entry.task, y_true, pred_champion)
    observed = direction * (metric_value(metric, y, p_new) - metric_value(metric, y, p_old))

    def diff(w: np.ndarray) -> np.ndarray:
        return direction * (
            weighted_metric(metric, y, p_new, w) - weighted_metric(metric, y, p_old, w)
        )

    all_diffs = _resampled(metric, y, diff, resamples, seed)
    return BootstrapResult(
        metric=metric,
        observed_diff=float(observed),
        **_interval(all_diffs, confidence),
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
    _check_settings(resamples, confidence)
    y, p = checked_arrays(get_metric(metric).task, y_true, prediction)
    observed = metric_value(metric, y, p)
    all_values = _resampled(metric, y, lambda w: weighted_metric(metric, y, p, w), resamples, seed)
    return MetricInterval(metric=metric, value=float(observed), **_interval(all_values, confidence))


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


__all__ = [
    "BootstrapResult",
    "MetricInterval",
    "PowerStatement",
    "bootstrap_interval",
    "minimum_detectable_improvement",
    "paired_bootstrap",
    "power_statement",
]
