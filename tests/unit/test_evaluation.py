"""Unit tests of the champion/challenger evaluation: real numbers on synthetic arrays."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn import metrics as skm

from continuous_training.config import GatesConfig, PipelineConfig, parse_pipeline
from continuous_training.evaluation import (
    BootstrapResult,
    CheckResult,
    EvaluationError,
    GateContext,
    GateDecision,
    _resample_weights,
    _weighted_metric,
    build_gate_context,
    compute_metrics,
    evaluate_gate,
    measure_latency_ms_per_1k,
    metric_direction,
    metric_value,
    minimum_detectable_improvement,
    paired_bootstrap,
    plot_comparison,
    power_statement,
    render_model_card,
)

REPO = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HERE = __name__  # "tests.unit.test_evaluation" when pytest runs from the repo root


# --------------------------------------------------------------------------- fixtures


def _classification(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, a strong challenger and a weak champion (same rows)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    signal = np.where(y == 1, 1.0, -1.0)
    strong = 1 / (1 + np.exp(-(1.5 * signal + rng.normal(0, 1, n))))
    weak = 1 / (1 + np.exp(-(0.6 * signal + rng.normal(0, 1, n))))
    return y, strong, weak


def _regression(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.normal(10, 3, n)
    return y, y + rng.normal(0, 1, n), y + rng.normal(0, 2, n)


def _gates(**overrides: object) -> GatesConfig:
    base: dict[str, object] = {
        "primary_metric": "roc_auc",
        "floor": 0.65,
        "min_improvement": 0.005,
        "guardrails": {"log_loss": {"tolerance": 0.02}},
        "max_latency_ms_per_1k": 500,
    }
    return GatesConfig(**{**base, **overrides})


def _boot(low: float, high: float, observed: float | None = None) -> BootstrapResult:
    mid = (low + high) / 2 if observed is None else observed
    return BootstrapResult("roc_auc", mid, low, high, 0.95, 1000)


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


@pytest.fixture(scope="module")
def churn() -> PipelineConfig:
    path = REPO / "include" / "pipelines" / "churn.yaml"
    return parse_pipeline(yaml.safe_load(path.read_text()), path)


# user checks referenced by import path from the gate config


def check_always_fails(ctx: GateContext) -> CheckResult:
    return CheckResult("min_holdout", False, f"holdout of {ctx.holdout_rows} rows is too small")


def check_always_passes(ctx: GateContext) -> CheckResult:
    return CheckResult("sanity", True, "sanity ok")


def check_raises(ctx: GateContext) -> CheckResult:
    raise RuntimeError("feature store unreachable")


# --------------------------------------------------------------------------- metrics


def test_metric_directions() -> None:
    for metric in ("roc_auc", "average_precision", "accuracy", "f1", "r2"):
        assert metric_direction(metric) == 1
    for metric in ("log_loss", "brier", "rmse", "mae"):
        assert metric_direction(metric) == -1
    with pytest.raises(EvaluationError, match="unknown metric 'auc'"):
        metric_direction("auc")


def test_compute_metrics_classification_matches_sklearn() -> None:
    y, strong, _ = _classification()
    metrics = compute_metrics("classification", y, strong)
    assert set(metrics) == {"roc_auc", "average_precision", "log_loss", "brier", "accuracy", "f1"}
    assert metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(y, strong))
    assert metrics["f1"] == pytest.approx(skm.f1_score(y, strong > 0.5))
    assert metric_value("log_loss", y, strong) == pytest.approx(metrics["log_loss"])


def test_compute_metrics_regression() -> None:
    y, good, _ = _regression()
    metrics = compute_metrics("regression", y, good)
    assert set(metrics) == {"rmse", "mae", "r2"}
    assert metrics["rmse"] == pytest.approx(1.0, abs=0.05)
    assert metrics["r2"] > 0.85


def test_single_class_holdout_is_a_clear_error() -> None:
    y = np.ones(50, dtype=int)
    with pytest.raises(
        EvaluationError, match=r"holdout has a single class \(1\): ROC AUC is undefined"
    ):
        compute_metrics("classification", y, np.linspace(0, 1, 50))
    with pytest.raises(EvaluationError, match="single class"):
        paired_bootstrap("roc_auc", y, np.full(50, 0.6), np.full(50, 0.4), resamples=100, seed=0)


def test_bad_inputs_name_the_problem() -> None:
    with pytest.raises(EvaluationError, match="3 labels but 2 predictions"):
        compute_metrics("classification", [0, 1, 0], [0.1, 0.9])
    with pytest.raises(EvaluationError, match=r"probabilities in \[0, 1\]"):
        compute_metrics("classification", [0, 1], [-2.0, 3.0])
    with pytest.raises(EvaluationError, match="labels must be 0/1"):
        compute_metrics("classification", [0, 2], [0.1, 0.9])


@pytest.mark.parametrize(
    "metric",
    ["roc_auc", "average_precision", "log_loss", "brier", "accuracy", "f1", "rmse", "mae", "r2"],
)
def test_vectorised_bootstrap_metrics_equal_sklearn_with_weights(metric: str) -> None:
    # the bootstrap's fast path must be the same metric sklearn computes
    rng = np.random.default_rng(7)
    if metric in ("rmse", "mae", "r2"):
        y, pred, _ = _regression(500, seed=3)
        reference = {
            "rmse": skm.root_mean_squared_error,
            "mae": skm.mean_absolute_error,
            "r2": skm.r2_score,
        }[metric]
    else:
        y, pred, _ = _classification(500, seed=3)
        y = y.astype(float)
        pred = pred.round(2)  # ties exercise the threshold grouping
        reference = {
            "roc_auc": skm.roc_auc_score,
            "average_precision": skm.average_precision_score,
            "log_loss": lambda t, p, sample_weight: skm.log_loss(
                t, p, sample_weight=sample_weight, labels=[0, 1]
            ),
            "brier": skm.brier_score_loss,
            "accuracy": lambda t, p, sample_weight: skm.accuracy_score(
                t, p > 0.5, sample_weight=sample_weight
            ),
            "f1": lambda t, p, sample_weight: skm.f1_score(t, p > 0.5, sample_weight=sample_weight),
        }[metric]
    weights = _resample_weights(rng, y.size, 4)
    ours = _weighted_metric(metric, y, pred, weights)
    theirs = [reference(y, pred, sample_weight=w) for w in weights]
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_identical_predictions_is_exactly_zero() -> None:
    y, strong, _ = _classification()
    result = paired_bootstrap("roc_auc", y, strong, strong.copy(), resamples=200, seed=0)
    assert result.observed_diff == 0.0
    assert (result.low, result.high) == (0.0, 0.0)
    assert result.resamples == 200


def test_bootstrap_better_challenger_is_positive() -> None:
    y, strong, weak = _classification()
    result = paired_bootstrap("roc_auc", y, strong, weak, resamples=300, seed=0)
    assert result.observed_diff > 0
    assert 0 < result.low < result.observed_diff < result.high


def test_bootstrap_worse_challenger_is_negative() -> None:
    y, strong, weak = _classification()
    result = paired_bootstrap("roc_auc", y, weak, strong, resamples=300, seed=0)
    assert result.low < result.high < 0


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    y, strong, weak = _classification()
    first = paired_bootstrap("average_precision", y, strong, weak, resamples=200, seed=5)
    again = paired_bootstrap("average_precision", y, strong, weak, resamples=200, seed=5)
    other = paired_bootstrap("average_precision", y, strong, weak, resamples=200, seed=6)
    assert first == again
    assert (first.low, first.high) != (other.low, other.high)


def test_bootstrap_lower_is_better_sign_convention() -> None:
    y, strong, weak = _classification()
    result = paired_bootstrap("log_loss", y, strong, weak, resamples=300, seed=0)
    raw = metric_value("log_loss", y, strong) - metric_value("log_loss", y, weak)
    assert raw < 0  # the better model has the LOWER log loss...
    assert result.observed_diff == pytest.approx(-raw)  # ...and the diff says "better" as > 0
    assert result.low > 0


def test_bootstrap_regression_metric() -> None:
    y, good, bad = _regression()
    result = paired_bootstrap("rmse", y, good, bad, resamples=200, seed=0)
    assert result.low > 0.5  # rmse 1 vs 2: the challenger is about 1 better


def test_bootstrap_redraws_one_class_resamples() -> None:
    # 3 positives in 40 rows: ~5% of resamples have none and must be redrawn, not counted
    rng = np.random.default_rng(0)
    y = np.zeros(40, dtype=int)
    y[:3] = 1
    a, b = rng.random(40), rng.random(40)
    result = paired_bootstrap("roc_auc", y, a, b, resamples=500, seed=0)
    assert result.resamples == 500
    assert np.isfinite([result.low, result.high]).all()


# --------------------------------------------------------------------------- gate


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


# --------------------------------------------------------------------------- latency


def test_measure_latency_scales_to_1k_rows() -> None:
    X = np.zeros((2000, 3))
    latency = measure_latency_ms_per_1k(lambda data: data.sum(axis=1), X, repeats=2)
    assert 0 < latency < 1000
    with pytest.raises(EvaluationError, match="zero rows"):
        measure_latency_ms_per_1k(lambda data: data, np.zeros((0, 3)))


# --------------------------------------------------------------------------- card and plot


def test_model_card_has_versions_metrics_and_decision(churn: PipelineConfig) -> None:
    y, strong, weak = _classification()
    ctx = build_gate_context(churn.gates, "classification", y, strong, weak)
    decision = evaluate_gate(ctx)
    card = render_model_card(
        pipeline=churn,
        model_name="churn",
        challenger_version="7",
        champion_version="6",
        data={
            "train_rows": 6300,
            "holdout_rows": y.size,
            "train_window": ("2026-01-04", "2026-01-25"),
            "holdout_window": ("2026-01-25", "2026-02-01"),
            "train_sha256": "a" * 64,
            "holdout_sha256": "b" * 64,
        },
        challenger_metrics=ctx.challenger_metrics,
        champion_metrics=ctx.champion_metrics,
        decision=decision,
        bootstrap=ctx.bootstrap,
    )
    for section in (
        "Model",
        "Data",
        "Features",
        "Metrics",
        "Thresholds",
        "Decision",
        "Limitations",
    ):
        assert f"## {section}\n" in card
    assert "# Model card: churn version 7" in card
    assert "champion: version 6" in card
    assert f"| roc_auc | higher | {ctx.challenger_metrics['roc_auc']:.4f} |" in card
    assert f"{ctx.champion_metrics['roc_auc']:.4f}" in card
    assert "**PASSED (promote)**" in card and decision.reason in card
    assert "`guardrail:log_loss`" in card
    assert "a" * 64 in card and "2026-01-25 to 2026-02-01" in card
    assert "tenure_months" in card and "payment_method" in card
    assert "SYNTHETIC" in card and "most recent 7 day(s)" in card


def test_model_card_without_champion(churn: PipelineConfig) -> None:
    y, strong, _ = _classification()
    metrics = compute_metrics("classification", y, strong)
    decision = evaluate_gate(
        GateContext(
            gates=churn.gates, task="classification", challenger_metrics=metrics, holdout_rows=1
        )
    )
    card = render_model_card(
        pipeline=churn,
        model_name="churn",
        challenger_version=1,
        champion_version=None,
        data={"holdout_rows": y.size},
        challenger_metrics=metrics,
        champion_metrics=None,
        decision=decision,
        bootstrap=None,
    )
    assert "champion: none (first model)" in card
    assert "no champion" in card
    assert "Power: no champion (first model): there is no paired difference" in card


# --------------------------------------------------------------------------- power


def _demo_holdout(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two strongly correlated models, AUC 0.81 vs 0.80, as the demo's retrains."""
    from scipy import stats

    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.2).astype(int)
    noise = rng.standard_normal(rows)
    mu_old, mu_new = (np.sqrt(2) * stats.norm.ppf(a) for a in (0.80, 0.81))
    other = rng.standard_normal(rows)
    new = 0.94 * noise + np.sqrt(1 - 0.94**2) * other + mu_new * y
    old = noise + mu_old * y
    # squash to probabilities: AUC is rank-based, so this changes nothing it measures
    return y, 1 / (1 + np.exp(-new)), 1 / (1 + np.exp(-old))


def test_bootstrap_keeps_its_standard_error_and_reads_old_records() -> None:
    y, new, old = _demo_holdout(2100)
    boot = paired_bootstrap("roc_auc", y, new, old)
    assert boot.std_error is not None
    # percentile interval of a near-normal statistic: half-width ~ 1.96 SE
    assert boot.std_error == pytest.approx((boot.high - boot.low) / (2 * 1.96), rel=0.15)
    assert BootstrapResult.from_dict(boot.to_dict()) == boot
    old_record = {k: v for k, v in boot.to_dict().items() if k != "std_error"}
    assert BootstrapResult.from_dict(old_record).std_error is None
    with pytest.raises(KeyError):
        BootstrapResult.from_dict({k: v for k, v in old_record.items() if k != "low"})


def test_minimum_detectable_improvement_matches_the_shipped_gate() -> None:
    from scipy import stats

    gates = _gates()  # min_improvement 0.005, 95% confidence, as churn.yaml
    # the demo's ~2,100-row holdout: SE ~0.0045, so a +0.01 candidate is promoted ~20% of runs
    boot = BootstrapResult("roc_auc", 0.01, 0.0012, 0.0188, 0.95, 1000, std_error=0.0045)
    value = minimum_detectable_improvement(boot, gates)
    assert value == pytest.approx(0.005 + (1.959964 + 0.841621) * 0.0045, abs=1e-6)
    assert value == pytest.approx(0.018, abs=0.0005)
    assert stats.norm.cdf((0.01 - 0.005) / 0.0045 - 1.959964) == pytest.approx(0.20, abs=0.02)
    # 20,000 rows: the SE shrinks by sqrt(2100 / 20000) and +0.01 becomes detectable (~90%)
    big = BootstrapResult(
        "roc_auc", 0.01, 0.007, 0.013, 0.95, 1000, std_error=0.0045 * np.sqrt(2100 / 20000)
    )
    assert minimum_detectable_improvement(big, gates) < 0.01
    assert stats.norm.cdf((0.01 - 0.005) / big.std_error - 1.959964) > 0.85
    # more power asks for a larger improvement; nothing to say without a bootstrap
    assert minimum_detectable_improvement(boot, gates, power=0.9) > value
    assert minimum_detectable_improvement(None, gates) is None
    with pytest.raises(EvaluationError, match="power"):
        minimum_detectable_improvement(boot, gates, power=1.0)


def test_a_demo_sized_holdout_is_too_small_for_a_001_gain() -> None:
    # real bootstrap on a simulated 2,100-row holdout of two correlated models: the SE the
    # shipped gate sees, and the warning it must give
    y, new, old = _demo_holdout(2100, seed=1)
    boot = paired_bootstrap("roc_auc", y, new, old)
    assert 0.0035 < boot.std_error < 0.0055
    statement = power_statement(boot, _gates(), has_champion=True)
    assert statement.warning
    assert 0.015 < statement.minimum_detectable_improvement < 0.021
    assert statement.text.startswith(
        f"Power: with this holdout, an improvement of "
        f"{statement.minimum_detectable_improvement:.4f} in roc_auc is promoted with 80% "
        "power at 95% confidence"
    )
    assert (
        "WARNING: that is more than twice min_improvement (0.005): a real gain of 0.01 is "
        "likely to be rejected; a larger holdout (windows.holdout_days) narrows it."
    ) in statement.text


def test_power_statement_without_warning_champion_or_bootstrap() -> None:
    small = BootstrapResult("roc_auc", 0.01, 0.007, 0.013, 0.95, 1000, std_error=0.0015)
    quiet = power_statement(small, _gates(), has_champion=True)
    assert not quiet.warning and "WARNING" not in quiet.text
    assert quiet.minimum_detectable_improvement == pytest.approx(0.005 + 2.8016 * 0.0015, 1e-3)
    # min_improvement 0: no "twice the threshold" yardstick, so the figure without a warning
    assert not power_statement(
        BootstrapResult("roc_auc", 0.01, -0.01, 0.03, 0.95, 1000, std_error=0.01),
        _gates(min_improvement=0.0),
        has_champion=True,
    ).warning
    first = power_statement(None, _gates(), has_champion=False)
    assert first.minimum_detectable_improvement is None and not first.warning
    assert "no champion (first model): there is no paired difference" in first.text
    thin = power_statement(None, _gates(), has_champion=True)
    assert "not computed" in thin.text and "too few rows of a class" in thin.text
    old = power_statement(_boot(0.0, 0.02), _gates(), has_champion=True)
    assert "keeps no standard error" in old.text
    assert json.loads(json.dumps(first.to_dict())) == first.to_dict()


def test_model_card_states_the_power_and_warns(churn: PipelineConfig) -> None:
    y, new, old = _demo_holdout(2100, seed=1)
    ctx = build_gate_context(churn.gates, "classification", y, new, old)
    card = render_model_card(
        pipeline=churn,
        model_name="churn",
        challenger_version="7",
        champion_version="6",
        data={"holdout_rows": y.size},
        challenger_metrics=ctx.challenger_metrics,
        champion_metrics=ctx.champion_metrics,
        decision=evaluate_gate(ctx),
        bootstrap=ctx.bootstrap,
    )
    expected = power_statement(ctx.bootstrap, churn.gates, has_champion=True)
    assert expected.warning and f"\n{expected.text}\n" in card
    assert "Power: with this holdout, an improvement of 0.0" in card
    assert "more than twice min_improvement (0.005)" in card


def test_plot_comparison_writes_png(tmp_path: Path) -> None:
    y, strong, weak = _classification(1000)
    targets = {
        "cls.png": ("classification", y, strong, weak),
        "cls_alone.png": ("classification", y, strong, None),
        "reg.png": ("regression", *_regression(1000)),
    }
    for name, (task, truth, new, old) in targets.items():
        path = tmp_path / "plots" / name
        plot_comparison(task, truth, new, old, path)
        content = path.read_bytes()
        assert content.startswith(PNG_MAGIC) and len(content) > 5000, name


# --------------------------------------------------------------------------- too few per class


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


# --------------------------------------------------------------------------- data recency


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
