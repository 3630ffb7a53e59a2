"""End to end: the real weekly retraining DAG against a real MLflow server and real files."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from tests.integration.dag_runs import (
    champion,
    run_dag,
    run_note,
    task_states,
    versions,
    write_pipeline,
    xcom_value,
)
from tests.integration.postgres import fresh_database

pytestmark = pytest.mark.integration

WEEK_1 = datetime(2026, 3, 1, 2, tzinfo=UTC)  # holdout: the last week before the drift onset
WEEK_1_LATER = datetime(2026, 3, 1, 5, tzinfo=UTC)  # same day, so the same data window
AFTER_DRIFT = datetime(2026, 3, 15, 2, tzinfo=UTC)  # one of three training weeks is post-drift
MIN_IMPROVEMENT = 0.005  # churn.yaml's gates.min_improvement


def test_first_run_promotes_same_data_rejects_post_drift_promotes(client) -> None:
    run1 = run_dag("churn_weekly_retraining", WEEK_1)
    assert str(run1.state) == "success", task_states(run1)
    [v1] = versions(client, "churn")
    assert champion(client, "churn") == "1"
    assert v1.tags["ct.decision"] == "promoted"
    assert v1.tags["ct.replaced_version"] == "none"
    assert "no champion" in v1.tags["ct.decision_reason"]
    for key in ("ct.trigger", "ct.airflow_run_id", "ct.train_data_sha256", "ct.holdout_sha256"):
        assert v1.tags[key], key
    assert v1.tags["ct.git_sha"] == "test-sha"
    note = run_note(run1)  # the outcome, where the Runs list shows it
    assert note.startswith("**PROMOTED** version 1 (the first champion)"), note
    assert "Data 2026-02-01 to 2026-03-01; trigger manual" in note
    assert v1.tags["ct.trigger"] == "manual"  # dag.test() makes manual runs
    assert v1.tags["ct.airflow_run_id"] == run1.run_id
    run_url = xcom_value(run1, "train_candidate")["mlflow_run_url"]
    assert run_url.endswith(f"/runs/{v1.run_id}")
    for task_id in ("train_candidate", "evaluate_vs_champion"):
        assert xcom_value(run1, task_id, "_link_MLflowRunLink") == run_url
    card = Path(client.download_artifacts(v1.run_id, "evaluation/model_card.md")).read_text()
    assert "| train | 2026-02-01T00:00:00+00:00 to 2026-02-22T00:00:00+00:00 | 6300 |" in card
    assert "## Final decision\n- decision: **promoted**" in card
    assert "Power: no champion (first model): there is no paired difference" in card
    artifacts = {a.path for a in client.list_artifacts(v1.run_id, "evaluation")}
    assert {
        "evaluation/decision_record.json",
        "evaluation/model_card.md",
        "evaluation/comparison.png",
    } <= artifacts

    run2 = run_dag("churn_weekly_retraining", WEEK_1_LATER)
    assert str(run2.state) == "success", task_states(run2)
    v1, v2 = versions(client, "churn")
    assert v2.tags["ct.holdout_sha256"] == v1.tags["ct.holdout_sha256"]
    assert v2.tags["ct.train_data_sha256"] == v1.tags["ct.train_data_sha256"]
    assert v2.tags["ct.decision"] == "rejected"
    assert "does not clear" in v2.tags["ct.decision_reason"]
    assert champion(client, "churn") == "1"
    note = run_note(run2)
    assert note.startswith("**REJECTED** version 2 (champion stays version 1)"), note
    assert "roc_auc " in note and " vs champion " in note and "does not clear" in note
    # the rejection says what this holdout could have detected, in the XCom and on the card
    detectable = xcom_value(run2, "evaluate_vs_champion")["minimum_detectable_improvement"]
    assert detectable >= MIN_IMPROVEMENT  # the same model twice: SE 0, exactly the threshold
    card = Path(client.download_artifacts(v2.run_id, "evaluation/model_card.md")).read_text()
    assert f"Power: with this holdout, an improvement of {detectable:.4f} in roc_auc" in card

    run3 = run_dag("churn_weekly_retraining", AFTER_DRIFT)
    assert str(run3.state) == "success", task_states(run3)
    v3 = versions(client, "churn")[-1]
    assert v3.version == "3"
    assert v3.tags["ct.decision"] == "promoted", v3.tags["ct.decision_reason"]
    assert v3.tags["ct.replaced_version"] == "1"
    assert champion(client, "churn") == "3"
    record = client.download_artifacts(v3.run_id, "evaluation/decision_record.json")
    decision = pd.read_json(record, typ="series")
    assert decision["champion"]["version"] == "1"
    assert (
        decision["minimum_detectable_improvement"]
        == decision["power"]["minimum_detectable_improvement"]
    )
    assert decision["bootstrap"]["std_error"] > 0
    assert decision["minimum_detectable_improvement"] > MIN_IMPROVEMENT
    assert decision["final"]["decision"] == "promoted"


def test_data_failing_validation_stops_at_validation_and_registers_nothing(
    client, tmp_path
) -> None:
    from continuous_training.config import find_pipeline
    from continuous_training.sources import Window, fetch_window, make_source

    good = find_pipeline("churn")
    frame = fetch_window(
        make_source(good),
        good,
        Window(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)),
    )
    frame.loc[frame.index[-25:], "tenure_months"] = -3
    frame.loc[frame.index[-5:], "plan"] = "platinum"
    frame.to_parquet(tmp_path / "customers.parquet", index=False)
    write_pipeline(
        "churn_bad_data", source={"kind": "file", "path": str(tmp_path / "customers.parquet")}
    )

    run = run_dag("churn_bad_data_weekly_retraining", WEEK_1)
    states = task_states(run)
    assert str(run.state) == "failed"
    assert states["fetch"] == "success"
    assert states["validate"] == "failed"
    assert states["train_candidate"] == "upstream_failed"
    assert versions(client, "churn_bad_data") == []
    assert run_note(run) == "**FAILED** at validate: its log says why"
    [report_path] = Path(os.environ["CT_DATA_ROOT"]).glob("churn_bad_data/runs/*/validation.json")
    report = json.loads(report_path.read_text())
    assert report["success"] is False
    failed = {(f["expectation"], f["column"]) for f in report["failures"]}
    assert ("expect_column_values_to_be_between", "tenure_months") in failed
    assert ("expect_column_values_to_be_in_set", "plan") in failed


def test_force_promote_needs_a_reason_and_is_recorded_as_manual(client) -> None:
    write_pipeline("churn_forced")
    refused = run_dag("churn_forced_weekly_retraining", WEEK_1, {"force_promote": True})
    assert str(refused.state) == "failed"
    assert task_states(refused)["fetch"] == "failed"
    assert versions(client, "churn_forced") == []

    assert str(run_dag("churn_forced_weekly_retraining", WEEK_1_LATER).state) == "success"
    forced = run_dag(
        "churn_forced_weekly_retraining",
        datetime(2026, 3, 1, 9, tzinfo=UTC),
        {"force_promote": True, "reason": "hotfix for ticket 42"},
    )
    assert str(forced.state) == "success", task_states(forced)
    _v1, v2 = versions(client, "churn_forced")
    assert v2.tags["ct.decision"] == "promoted"
    assert v2.tags["ct.trigger"] == "manual"
    assert "hotfix for ticket 42" in v2.tags["ct.decision_reason"]
    assert v2.tags["ct.replaced_version"] == "1"
    assert champion(client, "churn_forced") == "2"


def test_dry_run_never_promotes(client) -> None:
    write_pipeline("churn_dry")
    run = run_dag("churn_dry_weekly_retraining", WEEK_1, {"dry_run": True})
    assert str(run.state) == "success", task_states(run)
    [v1] = versions(client, "churn_dry")
    assert v1.tags["ct.decision"] == "rejected"
    assert v1.tags["ct.dry_run"] == "true"
    assert "would" in v1.tags["ct.decision_reason"] or "dry run" in v1.tags["ct.decision_reason"]
    assert champion(client, "churn_dry") is None


def test_sql_source_through_an_airflow_connection(client, monkeypatch) -> None:
    from continuous_training import storage
    from continuous_training.config import find_pipeline
    from continuous_training.sources import Window, fetch_window, make_source

    churn = find_pipeline("churn")
    expected = fetch_window(
        make_source(churn),
        churn,
        Window(datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)),
    )
    query = "SELECT * FROM customers WHERE event_time >= :window_start AND event_time < :window_end"
    with fresh_database({"customers": expected}) as uri:
        # the Airflow connection, as a deployment would define it
        monkeypatch.setenv("AIRFLOW_CONN_CHURN_WAREHOUSE", uri.replace("+psycopg2", ""))
        write_pipeline(
            "churn_sql", source={"kind": "sql", "conn_id": "churn_warehouse", "query": query}
        )
        run = run_dag("churn_sql_weekly_retraining", WEEK_1)
    assert str(run.state) == "success", task_states(run)
    [snapshot] = Path(os.environ["CT_DATA_ROOT"]).glob("churn_sql/runs/*/snapshot.parquet")
    pd.testing.assert_frame_equal(storage.read_parquet(str(snapshot)), expected)
    assert champion(client, "churn_sql") == "1"
