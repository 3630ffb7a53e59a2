"""Unit tests of the model card: sections, versions, metrics, the power statement."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from continuous_training.bootstrap import power_statement
from continuous_training.config import PipelineConfig, parse_pipeline
from continuous_training.gate import GateContext, build_gate_context, evaluate_gate
from continuous_training.metrics import compute_metrics
from continuous_training.model_card import render_model_card
from tests.unit.holdouts import classification as _classification
from tests.unit.holdouts import demo_holdout as _demo_holdout

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def churn() -> PipelineConfig:
    path = REPO / "include" / "pipelines" / "churn.yaml"
    return parse_pipeline(yaml.safe_load(path.read_text()), path)


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
