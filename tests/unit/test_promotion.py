"""The decision of a retrain from its gate and its trigger-form options (no MLflow server)."""

from __future__ import annotations

import pytest

from continuous_training import registry
from continuous_training.promotion import RunOptions, decide
from tests.unit.decisions import evaluated as _evaluated
from tests.unit.decisions import run as _run

# --------------------------------------------------------------------------- RunOptions


def test_run_options_defaults() -> None:
    options = RunOptions()
    assert (options.dry_run, options.force_promote, options.reason) == (False, False, "")


@pytest.mark.parametrize("reason", ["", "   "])
def test_force_promote_needs_a_reason(reason: str) -> None:
    with pytest.raises(ValueError, match=r"params\.reason"):
        RunOptions(force_promote=True, reason=reason)


def test_force_promote_and_dry_run_exclude_each_other() -> None:
    with pytest.raises(ValueError, match=r"force_promote.*dry_run"):
        RunOptions(force_promote=True, dry_run=True, reason="hotfix")


# --------------------------------------------------------------------------- decide


def test_gate_passed_promotes_and_records_the_replaced_version() -> None:
    decision = decide(_evaluated(True), RunOptions(), _run())
    assert decision.decision == registry.PROMOTED
    assert decision.promote is True
    assert decision.replaced_version == "3"
    assert decision.trigger == "schedule"
    assert decision.reason == _evaluated(True)["gate_reason"]
    assert decision.airflow_run_id == _run().airflow_run_id
    assert decision.tags()[registry.TAG_REPLACED] == "3"


def test_gate_failed_rejects() -> None:
    decision = decide(_evaluated(False), RunOptions(), _run("drift"))
    assert decision.decision == registry.REJECTED
    assert decision.promote is False
    assert decision.trigger == "drift"
    assert decision.reason.startswith("failed")
    assert registry.TAG_REPLACED not in decision.tags()


def test_dry_run_rejects_even_a_winner() -> None:
    decision = decide(_evaluated(True), RunOptions(dry_run=True), _run("manual"))
    assert decision.decision == registry.REJECTED
    assert decision.promote is False
    assert decision.dry_run is True
    assert "dry run" in decision.reason and "passed" in decision.reason
    assert decision.tags()[registry.TAG_DRY_RUN] == "true"


@pytest.mark.parametrize("passed", [True, False])
def test_force_promotes_as_manual_with_the_reason(passed: bool) -> None:
    options = RunOptions(force_promote=True, reason="  hotfix for INC-42  ")
    decision = decide(_evaluated(passed), options, _run("schedule"))
    assert decision.decision == registry.PROMOTED
    assert decision.promote is True
    assert decision.trigger == "manual"
    assert "hotfix for INC-42" in decision.reason
    assert _evaluated(passed)["gate_reason"] in decision.reason  # the overridden gate stays
    assert decision.replaced_version == "3"


def test_first_promotion_replaces_none() -> None:
    decision = decide(_evaluated(True, champion=None), RunOptions(), _run())
    assert decision.promote is True
    assert decision.tags()[registry.TAG_REPLACED] == "none"
