"""End to end: batch inference, drift, the drift retrain and rollback, on real DAG runs.

One pipeline walks through the product's loop against a real MLflow server: a weekly
retrain before the drift onset makes v1 champion; scoring a pre-drift day emits no drift
event, scoring a post-drift day emits one; the drift retrain trains on post-drift data
and promotes; a repeat of the event and an event inside the cooldown are skipped; a
rollback restores v1 and the next batch inference serves it.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from tests.integration.dag_runs import (
    asset_events,
    champion,
    run_dag,
    run_note,
    task_states,
    versions,
    write_pipeline,
    xcom_value,
)

pytestmark = pytest.mark.integration

NAME = "churn_loop"
WEEKLY = datetime(2026, 3, 1, 2, tzinfo=UTC)
BEFORE_DRIFT = datetime(2026, 2, 26, 3, tzinfo=UTC)  # scores 2026-02-25
AFTER_DRIFT = datetime(2026, 3, 15, 3, tzinfo=UTC)  # scores 2026-03-14
NEXT_DAY = datetime(2026, 3, 16, 3, tzinfo=UTC)  # scores 2026-03-15
DRIFT_ASSET = f"ct.{NAME}.drift"
PREDICTIONS_ASSET = f"ct.{NAME}.predictions"


def predictions(run) -> pd.DataFrame:
    published = xcom_value(run, "publish_predictions")
    frames = [pd.read_parquet(part["uri"]) for part in published["parts"]]
    return pd.concat(frames, ignore_index=True).sort_values("customer_id", ignore_index=True)


def champion_and_rejected_challenger(client, name: str, **overrides) -> None:
    """v1 champion and v2 rejected: the same data twice, so the candidate cannot win."""
    write_pipeline(name, **overrides)
    assert str(run_dag(f"{name}_weekly_retraining", WEEKLY).state) == "success"
    assert str(run_dag(f"{name}_weekly_retraining", WEEKLY.replace(hour=5)).state) == "success"
    assert champion(client, name) == "1"
    assert versions(client, name)[1].tags["ct.decision"] == "rejected"


def test_inference_drift_retrain_rollback_loop(client) -> None:
    write_pipeline(NAME)
    weekly = run_dag(f"{NAME}_weekly_retraining", WEEKLY)
    assert str(weekly.state) == "success", task_states(weekly)
    assert champion(client, NAME) == "1"

    calm = run_dag(f"{NAME}_batch_inference", BEFORE_DRIFT)
    states = task_states(calm)
    assert str(calm.state) == "success", states
    assert states["score_partition"] == "success*4"
    assert states["emit_drift_event"] == "skipped"
    assert asset_events(DRIFT_ASSET) == []
    scored = predictions(calm)
    assert len(scored) == 300
    assert set(scored["model_version"]) == {"1"}
    assert scored["probability"].between(0, 1).all()
    [event] = asset_events(PREDICTIONS_ASSET)
    assert event["model_version"] == "1" and event["rows"] == 300
    note = run_note(calm)
    assert note.startswith("**SCORED** 300 rows with version 1, 2026-02-"), note
    assert "of the features drifted (threshold 30%): no drift event" in note

    drifted = run_dag(f"{NAME}_batch_inference", AFTER_DRIFT)
    assert str(drifted.state) == "success", task_states(drifted)
    [drift_event] = asset_events(DRIFT_ASSET)
    assert drift_event["drifted_share"] >= 0.3
    assert drift_event["episode"] == f"{NAME}/champion-v1"
    assert drift_event["window_end"] == "2026-03-15T00:00:00+00:00"
    assert drift_event["report_uri"].endswith("drift/report.html")
    summary = xcom_value(drifted, "check_drift")
    assert set(summary["drifted_columns"]) <= set(summary["columns"])
    run_id = xcom_value(drifted, "pin_champion")["mlflow_run_id"]
    assert "drift/report.html" in {a.path for a in client.list_artifacts(run_id, "drift")}
    assert f"{summary['drifted_share']:.0%} of the features drifted" in run_note(drifted)
    assert "a drift event follows" in run_note(drifted)

    retrain = run_dag(f"{NAME}_drift_retraining", AFTER_DRIFT)
    assert str(retrain.state) == "success", task_states(retrain)
    v2 = versions(client, NAME)[-1]
    assert v2.version == "2" and champion(client, NAME) == "2"
    assert v2.tags["ct.trigger"] == "drift"
    assert v2.tags["ct.drift_episode"] == f"{NAME}/champion-v1"
    assert v2.tags["ct.window_end"] == "2026-03-15T00:00:00+00:00"
    assert v2.tags["ct.decision"] == "promoted", v2.tags["ct.decision_reason"]

    again = run_dag(f"{NAME}_drift_retraining", AFTER_DRIFT)
    assert task_states(again)["debounce_drift"] == "skipped"
    assert task_states(again)["promote"] == "skipped"
    assert run_note(again).startswith("**SKIPPED**: "), run_note(again)
    assert len(versions(client, NAME)) == 2

    # A new episode (champion v2) one day after v2's data ends: inside the 24 h cooldown.
    write_pipeline(NAME, drift={"column_threshold": 1e-9, "drifted_share_threshold": 0.01})
    next_day = run_dag(f"{NAME}_batch_inference", NEXT_DAY)
    assert task_states(next_day)["emit_drift_event"] == "success"
    assert asset_events(DRIFT_ASSET)[-1]["episode"] == f"{NAME}/champion-v2"
    cooled = run_dag(f"{NAME}_drift_retraining", NEXT_DAY)
    assert task_states(cooled)["debounce_drift"] == "skipped"
    assert len(versions(client, NAME)) == 2

    from continuous_training.registry import CHALLENGER, alias_version

    assert alias_version(client, NAME, CHALLENGER) == "2"  # the latest candidate, promoted
    rollback = run_dag(f"{NAME}_rollback", NEXT_DAY, {"reason": "v2 misbehaves in the CRM"})
    assert str(rollback.state) == "success", task_states(rollback)
    assert champion(client, NAME) == "1"
    # v2 was taken out of service: it is not a challenger to shadow-score or promote again
    assert alias_version(client, NAME, CHALLENGER) is None
    v1, v2 = versions(client, NAME)
    assert v1.tags["ct.rollback.replaced_version"] == "2"
    assert v1.tags["ct.rollback.decision_reason"] == "v2 misbehaves in the CRM"
    assert v2.tags["ct.rollback.demoted_by_run"] == rollback.run_id
    assert run_note(rollback) == (
        "**ROLLED BACK** champion to version 1 (from version 2)\n\nReason: v2 misbehaves in the CRM"
    )
    from continuous_training.cli import decision_rows

    ledger = decision_rows(os.environ["MLFLOW_TRACKING_URI"], NAME)
    assert ledger[0]["version"] == "1 *" and "[restored by rollback" in ledger[0]["reason"]
    assert ledger[1]["trigger"] == "drift" and "[rolled back by" in ledger[1]["reason"]
    assert {row["decided at from"] for row in ledger} == {"ct.decided_at"}
    assert_ledger_summary(client, NAME, rollback.run_id)

    served = run_dag(f"{NAME}_batch_inference", NEXT_DAY)
    assert str(served.state) == "success", task_states(served)
    assert set(predictions(served)["model_version"]) == {"1"}
    assert unfinished_runs(client, NAME) == {}


def assert_ledger_summary(client, name: str, rollback_run_id: str) -> None:
    """One ledger run, rewritten by each promotion and the rollback: table, plot, FINISHED."""
    from mlflow.entities import ViewType

    from continuous_training import ledger, registry
    from continuous_training.config import find_pipeline

    experiment = client.get_experiment_by_name(find_pipeline(name).experiment_name)
    [run] = client.search_runs(
        [experiment.experiment_id], "tags.`ct.ledger` = 'true'", run_view_type=ViewType.ALL
    )
    assert (run.info.run_name, run.info.status) == (f"{name}-ledger", "FINISHED")
    local = Path(client.download_artifacts(run.info.run_id, "ledger")).parent
    table = json.loads((local / ledger.TABLE_PATH).read_text())
    rows = [dict(zip(table["columns"], row, strict=True)) for row in table["data"]]
    v1, v2 = versions(client, name)
    assert [(r["version"], r["decision"], r["trigger"]) for r in rows] == [
        ("1", "promoted", v1.tags[registry.TAG_TRIGGER]),  # dag.test's run is a manual one
        ("2", "promoted", "drift"),
        ("1", "rollback", "manual"),
    ]
    assert [r["decided_at"] for r in rows] == [
        v1.tags[registry.TAG_DECIDED_AT],
        v2.tags[registry.TAG_DECIDED_AT],
        v1.tags["ct.rollback.decided_at"],
    ]
    assert rows[2]["airflow_run_id"] == rollback_run_id
    assert rows[2]["reason"] == "v2 misbehaves in the CRM"
    for row, version in zip(rows, (v1, v2, v1), strict=True):
        metric = client.get_run(version.run_id).data.metrics["eval_challenger_roc_auc"]
        assert row["primary_metric"] == pytest.approx(metric)
    assert (local / ledger.PLOT_PATH).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def unfinished_runs(client, name: str) -> dict[str, str]:
    """Every MLflow run of the pipeline's experiment that did not end FINISHED: name -> status.

    Training, evaluation, batch inference and its drift check each opened one or more.
    """
    from mlflow.entities import ViewType

    from continuous_training.config import find_pipeline

    experiment = client.get_experiment_by_name(find_pipeline(name).experiment_name)
    runs = client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL)
    assert len(runs) >= 6, [run.info.run_name for run in runs]
    return {run.info.run_name: run.info.status for run in runs if run.info.status != "FINISHED"}


def test_rerun_of_a_date_replaces_its_output(client) -> None:
    name = "churn_rerun"
    write_pipeline(name)
    assert str(run_dag(f"{name}_weekly_retraining", WEEKLY).state) == "success"
    first = run_dag(f"{name}_batch_inference", BEFORE_DRIFT)
    before = predictions(first)  # read now: the re-run removes the set it supersedes
    second = run_dag(f"{name}_batch_inference", BEFORE_DRIFT.replace(hour=9))
    assert first.run_id != second.run_id
    folder = xcom_value(second, "publish_predictions")["uri"]
    from continuous_training import storage

    parts = storage.list_files(folder, "part-*.parquet")
    assert len(parts) == 4
    again = pd.concat([pd.read_parquet(p) for p in parts]).sort_values("customer_id")
    superseded = xcom_value(first, "publish_predictions")["parts"]
    assert not any(Path(p["uri"]).exists() for p in superseded)
    assert len(again) == len(before) == 300
    columns = ["customer_id", "prediction", "probability", "model_version"]
    pd.testing.assert_frame_equal(
        again[columns].reset_index(drop=True), before[columns].reset_index(drop=True)
    )


def test_rollback_refuses_a_version_that_never_served(client) -> None:
    name = "churn_refuse"
    champion_and_rejected_challenger(client, name)
    refused = run_dag(f"{name}_rollback", WEEKLY, {"to_version": 2, "reason": "try it"})
    assert str(refused.state) == "failed"
    assert champion(client, name) == "1"
    assert "ct.rollback.airflow_run_id" not in versions(client, name)[1].tags


def test_shadow_challenger_is_scored_but_not_served(client) -> None:
    name = "churn_shadow"
    champion_and_rejected_challenger(client, name)
    run = run_dag(f"{name}_batch_inference", BEFORE_DRIFT)
    assert str(run.state) == "success", task_states(run)
    assert set(predictions(run)["model_version"]) == {"1"}
    pinned = xcom_value(run, "pin_champion")
    assert pinned["challenger_version"] == "2"
    shadow = xcom_value(run, "publish_predictions")["shadow"]
    assert shadow["challenger_version"] == "2" and shadow["rows"] == 300
    assert sum(shadow["champion_hist"]) == sum(shadow["challenger_hist"]) == 300
    metrics = client.get_run(pinned["mlflow_run_id"]).data.metrics
    assert 0 <= metrics["shadow.disagreement_rate"] <= 1
    # the shadow's scores per row, beside each published part: same rows, same order
    for part in xcom_value(run, "publish_predictions")["parts"]:
        served, shadowed = pd.read_parquet(part["uri"]), pd.read_parquet(part["shadow_uri"])
        assert "/_shadow/" in part["shadow_uri"]
        assert shadowed["customer_id"].tolist() == served["customer_id"].tolist()
        assert set(shadowed["model_version"]) == {"2"}


def test_promotion_during_a_run_does_not_mix_versions(client) -> None:
    import mlflow

    name = "churn_midrun"
    source = {
        "kind": "tests.integration.alias_moving_source.AliasMovingSource",
        "seed": 7,
        "rows_per_day": 300,
        "options": {"move_to": 2},
    }
    champion_and_rejected_challenger(client, name, inference={"source": source, "shadow": False})

    run = run_dag(f"{name}_batch_inference", BEFORE_DRIFT)
    assert str(run.state) == "success", task_states(run)
    assert champion(client, name) == "2"  # moved while the partitions were being scored
    scored = predictions(run)
    assert set(scored["model_version"]) == {"1"}
    assert xcom_value(run, "publish_predictions")["model_version"] == "1"
    # Every row carries v1's own probability, including the partitions scored after the move.
    from continuous_training import sources
    from continuous_training.config import find_pipeline

    config = find_pipeline(name)
    inputs = config.model_copy(update={"source": config.scoring_source})
    window = sources.Window(datetime(2026, 2, 25, tzinfo=UTC), datetime(2026, 2, 26, tzinfo=UTC))
    frame = sources.SyntheticSource(inputs).fetch(window).sort_values("customer_id")
    model_v1 = mlflow.sklearn.load_model(f"models:/{name}/1")
    expected = model_v1.predict_proba(frame[config.features.all])[:, 1]
    assert scored["probability"].to_numpy() == pytest.approx(expected)
