"""The gate: whether a challenger may replace the champion, check by check.

TFX-Evaluator style: a challenger is "blessed" when its primary metric clears a value
threshold (the floor) and its change over the champion clears a change threshold. Unlike a
bare point comparison, the change threshold is applied to the lower bound of a paired
bootstrap interval (`bootstrap.paired_bootstrap`), so a lucky holdout does not ship a model
that is not really better. Guardrails, slices, the holdout's classes, data recency, the
latency budget and the user's own checks (`gates.extra_checks`) complete the decision.

No Airflow, no MLflow; numpy and threadpoolctl are imported inside the functions.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from continuous_training.bootstrap import BootstrapResult, paired_bootstrap
from continuous_training.imports import is_callable, resolve
from continuous_training.metrics import EvaluationError, compute_metrics, metric_direction

if TYPE_CHECKING:
    import pandas as pd

    from continuous_training.config import GatesConfig
    from continuous_training.slices import SliceReport

# Guardrail comparisons subtract two metrics; allow for float noise at an exact tolerance.
_FLOAT_SLACK = 1e-12


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
        return _short_of_a_class(self.holdout_class_counts, self.gates)


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


def _short_of_a_class(counts: dict[str, int] | None, gates: GatesConfig) -> bool:
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
    return resolve(path, key="gates.extra_checks", error=EvaluationError, checks=(is_callable,))


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
    if pred_champion is not None and not _short_of_a_class(counts, gates):
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


__all__ = [
    "CheckResult",
    "ExtraCheck",
    "GateContext",
    "GateDecision",
    "build_gate_context",
    "class_counts",
    "evaluate_gate",
    "measure_latency_ms_per_1k",
]
