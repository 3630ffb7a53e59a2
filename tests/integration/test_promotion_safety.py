"""Promotion safety against a real MLflow server: compare-and-set and one version per run."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.integration.dag_runs import (
    champion,
    run_dag,
    task_states,
    versions,
    write_pipeline,
    xcom_value,
)

pytestmark = pytest.mark.integration

WEEK_1 = datetime(2026, 3, 1, 2, tzinfo=UTC)
WINDOW_END = datetime(2026, 3, 1, tzinfo=UTC)  # the run's window ends at midnight


def test_promotion_refused_when_the_champion_moved_since_evaluation(
    client, mlflow_server: str
) -> None:
    from continuous_training.config import find_pipeline
    from continuous_training.registry import ChampionChangedError
    from continuous_training.retraining import RunOptions, promote_candidate
    from continuous_training.training import RunInfo

    write_pipeline("churn_cas")
    assert str(run_dag("churn_cas_weekly_retraining", WEEK_1).state) == "success"
    stale = run_dag("churn_cas_weekly_retraining", WEEK_1.replace(hour=3), {"dry_run": True})
    evaluated = xcom_value(stale, "evaluate_vs_champion")
    assert evaluated["champion_version"] == "1"
    forced = run_dag(
        "churn_cas_weekly_retraining",
        WEEK_1.replace(hour=4),
        {"force_promote": True, "reason": "another run promotes first"},
    )
    assert str(forced.state) == "success", task_states(forced)
    assert champion(client, "churn_cas") == "3"

    # Version 2 was judged against version 1; promoting it now would skip that judgement.
    with pytest.raises(ChampionChangedError, match="moved from version 1 to 3"):
        promote_candidate(
            find_pipeline("churn_cas"),
            evaluated,
            RunOptions(force_promote=True, reason="late promotion"),
            RunInfo(stale.run_id, "manual", WEEK_1),
            mlflow_server,
        )
    assert champion(client, "churn_cas") == "3"
    v2 = versions(client, "churn_cas")[1]
    assert v2.tags["ct.decision"] == "rejected"  # the dry run's record, untouched


def test_a_retried_training_reuses_its_version(client, mlflow_server: str) -> None:
    from continuous_training.config import find_pipeline
    from continuous_training.training import RunInfo, train_candidate

    write_pipeline("churn_retry")
    run = run_dag("churn_retry_weekly_retraining", WEEK_1)
    assert str(run.state) == "success", task_states(run)
    first = xcom_value(run, "train_candidate")
    snapshot = xcom_value(run, "validate")

    again = train_candidate(
        find_pipeline("churn_retry"),
        snapshot,
        RunInfo(run.run_id, "manual", WINDOW_END),
        mlflow_server,
    )
    assert again["model_version"] == first["model_version"] == "1"
    assert again["holdout"]["sha256"] == first["holdout"]["sha256"]
    assert again["train"]["sha256"] == first["train"]["sha256"]
    assert len(versions(client, "churn_retry")) == 1
