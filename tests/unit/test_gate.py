"""Unit tests of the gate: each check, user checks by import path, and the decision."""

from __future__ import annotations

import json

import numpy as np
import pytest

from continuous_training.bootstrap import BootstrapResult
from continuous_training.config import GatesConfig
from continuous_training.gate import (
    CheckResult,
    GateContext,
    GateDecision,
    build_gate_context,
    evaluate_gate,
    measure_latency_ms_per_1k,
)
from continuous_training.metrics import EvaluationError
from tests.unit.holdouts import bootstrap_result as _boot
from tests.unit.holdouts import classification as _classification
from tests.unit.holdouts import gates as _gates
from tests.unit.holdouts import regression as _regression

HERE = __name__  # "tests.unit.test_gate" when pytest runs from the repo root


def _ctx(
    gates: GatesConfig,
    *,
    challenger: dict[str, float] | None = None,
    champion: dict[str, float] | None = None,
    bootstrap: BootstrapResult | None = None,
    latency: float | None = 10.0,
) -> GateContext:
    return GateContext(
        gates=gates,
        task="classification",
        challenger_metrics=challenger or {"roc_auc": 0.80, "log_loss": 0.40},
        holdout_rows=2100,
        champion_metrics=champion,
        bootstrap=bootstrap,
        challenger_latency_ms_per_1k=latency,
    )


CHAMPION = {"roc_auc": 0.78, "log_loss": 0.41}


# user checks referenced by import path from the gate config


def check_always_fails(ctx: GateContext) -> CheckResult:
    return CheckResult("min_holdout", False, f"holdout of {ctx.holdout_rows} rows is too small")


def check_always_passes(ctx: GateContext) -> CheckResult:
    return CheckResult("sanity", True, "sanity ok")


def check_raises(ctx: GateContext) -> CheckResult:
    raise RuntimeError("feature store unreachable")


def test_no_champion_only_floor_applies() -> None:
    gates = _gates()
    passed = evaluate_gate(_ctx(gates))
    assert passed.passed
    names = [c.name for c in passed.checks]
    assert names == ["floor", "champion", "latency"]
    assert "no champion: improvement and guardrails not applicable" in passed.reason

    below = evaluate_gate(_ctx(gates, challenger={"roc_auc": 0.60, "log_loss": 0.6}))
    assert not below.passed
    assert below.reason == "rejected: roc_auc 0.6000 < floor 0.65"


def test_floor_of_a_lower_is_better_metric_is_a_ceiling() -> None:
    gates = GatesConfig(primary_metric="rmse", floor=2.0)
    ok = GateContext(
        gates=gates, task="regression", challenger_metrics={"rmse": 1.5}, holdout_rows=9
    )
    bad = GateContext(
        gates=gates, task="regression", challenger_metrics={"rmse": 2.5}, holdout_rows=9
    )
    assert evaluate_gate(ok).passed
    assert not evaluate_gate(bad).passed
    assert "rmse 2.5000 > ceiling 2" in evaluate_gate(bad).reason


@pytest.mark.parametrize("min_improvement", [0.0, 0.005])
def test_exact_tie_is_rejected(min_improvement: float) -> None:
    gates = _gates(min_improvement=min_improvement)
    ctx = _ctx(gates, champion=CHAMPION, challenger=dict(CHAMPION), bootstrap=_boot(0.0, 0.0))
    decision = evaluate_gate(ctx)
    assert not decision.passed
    assert [c.name for c in decision.checks if not c.passed] == ["improvement"]


def test_ci_straddling_the_threshold_is_rejected() -> None:
    ctx = _ctx(_gates(), champion=CHAMPION, bootstrap=_boot(-0.004, 0.006, observed=0.02))
    decision = evaluate_gate(ctx)
    assert not decision.passed
    assert decision.reason.startswith("rejected: roc_auc improvement +0.0200")
    assert "CI [-0.0040, 0.0060] does not clear min_improvement 0.005" in decision.reason


def test_ci_at_the_threshold_is_rejected() -> None:
    ctx = _ctx(_gates(), champion=CHAMPION, bootstrap=_boot(0.005, 0.02))
    assert not evaluate_gate(ctx).passed


def test_clear_win_passes() -> None:
    ctx = _ctx(_gates(), champion=CHAMPION, bootstrap=_boot(0.011, 0.034, observed=0.022))
    decision = evaluate_gate(ctx)
    assert decision.passed, decision.reason
    assert [c.name for c in decision.checks] == [
        "floor",
        "improvement",
        "guardrail:log_loss",
        "latency",
    ]
    assert decision.reason.startswith("passed: roc_auc 0.8000 >= floor 0.65; ")
    assert "CI [0.0110, 0.0340] clears min_improvement 0.005" in decision.reason


def test_guardrail_breach_rejects_even_when_primary_wins() -> None:
    worse_calibrated = {"roc_auc": 0.80, "log_loss": 0.45}  # 0.04 worse, tolerance 0.02
    ctx = _ctx(
        _gates(), challenger=worse_calibrated, champion=CHAMPION, bootstrap=_boot(0.01, 0.03)
    )
    decision = evaluate_gate(ctx)
    assert not decision.passed
    failed = [c for c in decision.checks if not c.passed]
    assert [c.name for c in failed] == ["guardrail:log_loss"]
    assert "log_loss worse by 0.0400 exceeds tolerance 0.02" in decision.reason


def test_guardrail_at_exact_tolerance_passes() -> None:
    challenger = {"roc_auc": 0.80, "log_loss": 0.43}  # 0.43 - 0.41 is 0.02 up to float noise
    ctx = _ctx(_gates(), challenger=challenger, champion=CHAMPION, bootstrap=_boot(0.01, 0.03))
    assert evaluate_gate(ctx).passed


def test_latency_over_budget_rejects() -> None:
    decision = evaluate_gate(_ctx(_gates(), latency=750.0))
    assert not decision.passed
    assert decision.reason == "rejected: latency 750.0 ms/1k > budget 500"


def test_extra_check_by_import_path_can_fail_the_gate() -> None:
    gates = _gates(extra_checks=[f"{HERE}.check_always_passes", f"{HERE}.check_always_fails"])
    decision = evaluate_gate(_ctx(gates))
    assert not decision.passed
    assert decision.checks[-2] == CheckResult("sanity", True, "sanity ok")
    assert decision.reason == "rejected: holdout of 2100 rows is too small"


def test_unimportable_extra_check_raises_naming_the_path() -> None:
    for path in ("no_such_module_xyz.check", f"{HERE}.no_such_function"):
        gates = _gates(extra_checks=[path])
        with pytest.raises(EvaluationError, match=rf"gates\.extra_checks.*{path}"):
            evaluate_gate(_ctx(gates))


def test_extra_check_that_raises_becomes_a_failed_check() -> None:
    path = f"{HERE}.check_raises"
    decision = evaluate_gate(_ctx(_gates(extra_checks=[path])))
    assert not decision.passed
    failed = decision.checks[-1]
    assert failed.name == path and not failed.passed
    assert "RuntimeError: feature store unreachable" in failed.detail


def test_decision_json_round_trip() -> None:
    decision = evaluate_gate(_ctx(_gates(), latency=750.0))
    data = json.loads(decision.to_json())
    assert data["passed"] is False and data["reason"] == decision.reason
    assert GateDecision.from_dict(data) == decision


def test_build_gate_context_end_to_end() -> None:
    y, strong, weak = _classification()
    ctx = build_gate_context(_gates(), "classification", y, strong, weak)
    assert ctx.bootstrap is not None and ctx.bootstrap.low > 0.005
    assert ctx.champion_metrics is not None and ctx.holdout_rows == y.size
    # the strong model is also better calibrated, so the log_loss guardrail holds
    assert evaluate_gate(ctx).passed


def test_measure_latency_scales_to_1k_rows() -> None:
    X = np.zeros((2000, 3))
    latency = measure_latency_ms_per_1k(lambda data: data.sum(axis=1), X, repeats=2)
    assert 0 < latency < 1000
    with pytest.raises(EvaluationError, match="zero rows"):
        measure_latency_ms_per_1k(lambda data: data, np.zeros((0, 3)))


def _few_positives(positives: int, n: int = 2100, seed: int = 3):
    """A holdout with `positives` positive rows; the challenger ranks them first, by luck."""
    rng = np.random.default_rng(seed)
    y = np.zeros(n, dtype=int)
    y[rng.choice(n, positives, replace=False)] = 1
    champion = rng.random(n)
    challenger = np.where(y == 1, 0.99, rng.random(n) * 0.9)
    return y, challenger, champion


def test_a_holdout_with_one_positive_never_decides_for_the_candidate() -> None:
    """Seen: +0.52, CI [0.50, 0.54] from one positive promoted a worse model."""
    y, challenger, champion = _few_positives(1)
    ctx = build_gate_context(_gates(), "classification", y, challenger, champion)
    assert ctx.bootstrap is None  # nothing is estimated from one row of a class
    decision = evaluate_gate(ctx)
    assert not decision.passed
    assert "holdout has 1 positive and 2099 negative rows" in decision.reason
    assert "gates.min_holdout_per_class=30" in decision.reason
    assert ctx.holdout_class_counts == {"0": 2099, "1": 1}


def test_the_minimum_per_class_comes_from_the_yaml() -> None:
    y, challenger, champion = _few_positives(40)
    enough = evaluate_gate(build_gate_context(_gates(), "classification", y, challenger, champion))
    assert next(c for c in enough.checks if c.name == "holdout_classes").passed
    assert any(c.name == "improvement" for c in enough.checks)
    stricter = _gates(min_holdout_per_class=50)
    refused = evaluate_gate(build_gate_context(stricter, "classification", y, challenger, champion))
    assert not refused.passed and "fewer than gates.min_holdout_per_class=50" in refused.reason


def test_a_first_champion_on_few_positives_is_promoted_with_a_warning() -> None:
    y, challenger, _ = _few_positives(3)
    decision = evaluate_gate(build_gate_context(_gates(), "classification", y, challenger))
    assert decision.passed
    [classes] = [c for c in decision.checks if c.name == "holdout_classes"]
    assert classes.detail.startswith("WARNING: holdout has 3 positive and 2097 negative rows")
    assert "WARNING" in decision.reason


def test_regression_has_no_class_check() -> None:
    y, strong, weak = _regression()
    ctx = build_gate_context(
        _gates(primary_metric="rmse", floor=5.0, guardrails={}), "regression", y, strong, weak
    )
    assert ctx.holdout_class_counts is None
    assert not any(c.name == "holdout_classes" for c in evaluate_gate(ctx).checks)


@pytest.mark.parametrize(
    ("challenger_end", "champion_end", "passed"),
    [
        ("2026-03-01T00:00:00+00:00", "2026-11-29T00:00:00+00:00", False),
        ("2026-11-29T00:00:00+00:00", "2026-11-29T00:00:00+00:00", True),
        ("2026-12-06T00:00:00+00:00", "2026-11-29T00:00:00+00:00", True),
    ],
)
def test_a_model_of_older_data_never_replaces_a_newer_one(
    challenger_end: str, champion_end: str, passed: bool
) -> None:
    y, strong, weak = _classification()
    ctx = build_gate_context(
        _gates(),
        "classification",
        y,
        strong,
        weak,
        challenger_data_end=challenger_end,
        champion_data_end=champion_end,
    )
    decision = evaluate_gate(ctx)
    [recency] = [c for c in decision.checks if c.name == "data_recency"]
    assert recency.passed is passed and decision.passed is passed
    if not passed:
        assert "data ends 2026-03-01, before the champion's (2026-11-29)" in decision.reason
        assert "force_promote" in decision.reason
