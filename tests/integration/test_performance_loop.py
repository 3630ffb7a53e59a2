"""End to end: ground truth closes the loop, on real DAG runs against a real MLflow server.

A champion trained before a concept-drift onset (the label relationship changes, the
features do not) serves two batch windows, one before the onset and one after. Performance
monitoring then joins the labels known at each run's date with those predictions: too few
labels say so and emit nothing; the pre-onset window shows no decay (and a re-run of that
date gives the same metrics and one output); the post-onset window shows the realized AUC
fallen below the champion's holdout AUC, emits a performance event, and the drift retrain
it starts records `ct.trigger=performance` and promotes. Input drift saw nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.environment import SESSION_DIR
from tests.integration.dag_runs import (
    asset_events,
    champion,
    run_dag,
    task_states,
    versions,
    write_pipeline,
    xcom_value,
)

pytestmark = pytest.mark.integration

NAME = "churn_truth"
ONSET = "2026-01-20"
WEEKLY = datetime(2026, 1, 11, 2, tzinfo=UTC)  # trains on data up to 2026-01-11
BEFORE = datetime(2026, 1, 16, 3, tzinfo=UTC)  # scores 2026-01-11 to 2026-01-16
AFTER = datetime(2026, 2, 10, 3, tzinfo=UTC)  # scores 2026-02-05 to 2026-02-10
TOO_EARLY = datetime(2026, 1, 17, 5, tzinfo=UTC)  # the labels of the last days are not in
SETTLED = datetime(2026, 1, 20, 5, tzinfo=UTC)  # every label of the first window is in
DECAYED = datetime(2026, 2, 14, 5, tzinfo=UTC)  # every label of the second window is in
SYNTHETIC = {"drift_onset": None, "concept_drift_onset": ONSET}


def monitoring_folder(date: str) -> Path:
    return SESSION_DIR / "data" / NAME / "monitoring" / f"dt={date}"


def test_concept_drift_is_seen_in_labels_and_retrains(client) -> None:
    write_pipeline(
        NAME,
        source=SYNTHETIC,
        inference={
            "source": {"kind": "synthetic", "seed": 7, "rows_per_day": 300, **SYNTHETIC},
            "window_days": 5,
            "partition_hours": 24,
        },
        labels={"delay_days": 3},
        monitoring={"lookback_days": 21, "window_days": 14, "min_labelled_rows": 1400},
    )
    weekly = run_dag(f"{NAME}_weekly_retraining", WEEKLY)
    assert str(weekly.state) == "success", task_states(weekly)
    assert champion(client, NAME) == "1"
    for when in (BEFORE, AFTER):
        scored = run_dag(f"{NAME}_batch_inference", when)
        assert str(scored.state) == "success", task_states(scored)
    # the concept changed, the inputs did not: input drift sees nothing
    assert asset_events(f"ct.{NAME}.drift") == []

    early = run_dag(f"{NAME}_performance_monitoring", TOO_EARLY)
    states = task_states(early)
    assert str(early.state) == "success", states
    assert states["emit_performance_event"] == "skipped"
    decay = xcom_value(early, "check_decay")
    assert not decay["decayed"]
    assert "1,400 needed" in decay["reason"] and "without a label" in decay["reason"]

    settled = run_dag(f"{NAME}_performance_monitoring", SETTLED)
    assert task_states(settled)["emit_performance_event"] == "skipped"
    calm = xcom_value(settled, "check_decay")
    assert not calm["decayed"], calm["reason"]
    assert calm["extra"]["labelled_rows"] == 1500
    first = monitoring_folder("2026-01-11_2026-01-16")
    metrics = (first / "metrics.json").read_bytes()
    again = run_dag(f"{NAME}_performance_monitoring", SETTLED.replace(minute=30))
    assert str(again.state) == "success"
    assert (first / "metrics.json").read_bytes() == metrics
    assert sorted(p.name for p in first.iterdir()) == ["joined.parquet", "metrics.json"]
    assert asset_events(f"ct.{NAME}.performance") == []

    decayed = run_dag(f"{NAME}_performance_monitoring", DECAYED)
    assert task_states(decayed)["emit_performance_event"] == "success"
    assert_logged_to_mlflow(client, xcom_value(decayed, "check_decay")["mlflow_run_id"])
    [event] = asset_events(f"ct.{NAME}.performance")
    assert event["champion_version"] == "1" and event["metric"] == "roc_auc"
    assert event["interval"][1] < event["expected"] - 0.02
    assert event["labelled_rows"] == 1500
    assert event["window_end"] == "2026-02-14T00:00:00+00:00"
    recorded = json.loads((monitoring_folder("2026-02-05_2026-02-10") / "metrics.json").read_text())
    assert recorded["as_of"].startswith("2026-02-14")

    retrain = run_dag(f"{NAME}_drift_retraining", DECAYED.replace(minute=10))
    assert str(retrain.state) == "success", task_states(retrain)
    assert champion(client, NAME) == "2"
    tags = versions(client, NAME)[1].tags
    assert tags["ct.trigger"] == "performance" and tags["ct.decision"] == "promoted"
    assert tags["ct.window_end"] == "2026-02-14T00:00:00+00:00"


def assert_logged_to_mlflow(client, run_id: str) -> None:
    """MLflow plots realized performance per prediction date, and keeps the report."""
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    history = client.get_metric_history(run_id, "realized_roc_auc")
    first_day = (datetime(2026, 2, 5, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).days
    assert [m.step for m in history] == [first_day]
    assert history[0].value < 0.75  # the concept changed under the champion
    artifacts = {a.path for a in client.list_artifacts(run_id, "monitoring")}
    assert {"monitoring/performance_report.html", "monitoring/summary.json"} <= artifacts
