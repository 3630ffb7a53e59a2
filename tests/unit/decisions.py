"""A retrain's run and its evaluated candidate, as the promotion and registry tests build them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from continuous_training.training import RunInfo

WINDOW_END = datetime(2026, 3, 8, tzinfo=UTC)  # churn: holdout_days 7 -> holdout from Mar 1


def run(trigger: str = "schedule") -> RunInfo:
    return RunInfo(
        airflow_run_id="scheduled__2026-03-08T02:00:00+00:00",
        trigger=trigger,
        window_end=WINDOW_END,
    )


def evaluated(passed: bool, champion: str | None = "3") -> dict[str, Any]:
    return {
        "model_version": "4",
        "champion_version": champion,
        "gate_passed": passed,
        "gate_reason": "passed: roc_auc 0.81 >= 0.65" if passed else "failed: roc_auc 0.61 < 0.65",
    }
