"""Promotion safety against a real MLflow server: compare-and-set and one version per run."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

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
AFTER_DRIFT = datetime(2026, 3, 22, 2, tzinfo=UTC)


def test_promotion_refused_when_the_champion_moved_since_evaluation(
    client, mlflow_server: str
) -> None:
    from continuous_training.config import find_pipeline
    from continuous_training.promotion import RunOptions, promote_candidate
    from continuous_training.registry import ChampionChangedError
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


def test_a_winner_judged_against_a_stale_champion_is_judged_again(
    client, mlflow_server: str
) -> None:
    from continuous_training.config import find_pipeline
    from continuous_training.promotion import RunOptions, promote_candidate
    from continuous_training.training import RunInfo

    write_pipeline("churn_reeval")
    name = "churn_reeval_weekly_retraining"
    assert str(run_dag(name, WEEK_1).state) == "success"  # v1, before the drift
    waiting = run_dag(name, AFTER_DRIFT, {"dry_run": True})  # v2 beats v1, not promoted
    evaluated = xcom_value(waiting, "evaluate_vs_champion")
    assert evaluated["gate_passed"] and evaluated["champion_version"] == "1"
    # Another run promotes a model of the same data first: v3, the same fit as v2.
    other = run_dag(name, AFTER_DRIFT.replace(hour=3))
    assert str(other.state) == "success", task_states(other)
    assert champion(client, "churn_reeval") == "3"

    outcome = promote_candidate(
        find_pipeline("churn_reeval"),
        evaluated,
        RunOptions(),
        RunInfo(waiting.run_id, "schedule", AFTER_DRIFT.replace(hour=0)),
        mlflow_server,
    )
    assert not outcome["promoted"] and outcome["champion_version"] == "3"
    assert "re-evaluated against version 3, which replaced version 1" in outcome["reason"]
    [stale] = outcome["superseded_evaluations"]
    assert stale["champion_version"] == "1" and stale["gate_passed"] is True
    v2 = client.get_model_version("churn_reeval", "2")
    assert v2.tags["ct.decision"] == "rejected"
    assert "re-evaluated against version 3" in v2.tags["ct.decision_reason"]
    record = json.loads(
        Path(client.download_artifacts(v2.run_id, "evaluation/decision_record.json")).read_text()
    )
    assert record["final"]["superseded_evaluations"] == [stale]
    assert record["champion"]["version"] == "3"  # the evidence is the second judgement's


def test_the_champion_lock_admits_one_holder_at_a_time(client) -> None:
    from continuous_training.registry import champion_lock

    holders: list[str] = []
    inside, peak = [0], [0]
    count = threading.Lock()
    start = threading.Barrier(6)

    def take(i: int) -> None:
        start.wait()
        with champion_lock(client, "churn_lock_race", holder=f"run-{i}", wait=60):
            with count:
                inside[0] += 1
                peak[0] = max(peak[0], inside[0])
            time.sleep(0.2)
            holders.append(f"run-{i}")
            with count:
                inside[0] -= 1

    threads = [threading.Thread(target=take, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(holders) == [f"run-{i}" for i in range(6)]
    assert peak == [1]
    assert client.search_registered_models("name = 'churn_lock_race.champion-lock'") == []
