"""Old history runs and backfills; a model of older data never replaces a newer champion.

Two stories on real DAG runs against a real MLflow server:
- a user's history from 2019 (a file source): a weekly retraining for a 2019 date trains and
  promotes (no run is dropped because it precedes a start date), and Airflow's backfill of
  past weeks creates one run per week;
- the drift loop run back-dated: a champion trained on data up to late November, batch
  inference for a February day sees drift, and the drift retrain it starts trains on February
  data and is rejected for that reason; `force_promote` with a reason still promotes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.integration.dag_runs import (
    asset_events,
    champion,
    run_dag,
    task_states,
    versions,
    write_pipeline,
)

pytestmark = pytest.mark.integration


def test_a_2019_history_trains_and_backfills(client, tmp_path: Path) -> None:
    from airflow.models.backfill import _create_backfill
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from continuous_training.config import find_pipeline
    from continuous_training.sources import Window, fetch_window, make_source

    churn = find_pipeline("churn")
    recent_end = datetime(2026, 3, 1, tzinfo=UTC)
    shift = recent_end - datetime(2019, 3, 3, tzinfo=UTC)
    frame = fetch_window(make_source(churn), churn, Window.from_end(recent_end, 35))
    frame["event_time"] = frame["event_time"] - shift
    frame.to_parquet(tmp_path / "history.parquet", index=False)
    name = "churn_2019"
    write_pipeline(name, source={"kind": "file", "path": str(tmp_path / "history.parquet")})

    run = run_dag(f"{name}_weekly_retraining", datetime(2019, 3, 3, 2, tzinfo=UTC))
    assert str(run.state) == "success", task_states(run)
    assert set(task_states(run).values()) == {"success"}  # every task ran, none was dropped
    [v1] = versions(client, name)
    assert champion(client, name) == "1"
    assert v1.tags["ct.window_end"] == "2019-03-03T00:00:00+00:00"

    dag_id = f"{name}_weekly_retraining"
    backfill = _create_backfill(
        dag_id=dag_id,
        from_date=datetime(2019, 2, 1, tzinfo=UTC),
        to_date=datetime(2019, 2, 28, tzinfo=UTC),
        max_active_runs=1,
        reverse=False,
        dag_run_conf={},
        triggering_user_name="test",
    )
    with create_session() as session:
        dates = session.scalars(
            select(DagRun.logical_date).where(DagRun.backfill_id == backfill.id)
        ).all()
    expected = [datetime(2019, 2, 3, 2, tzinfo=UTC) + timedelta(weeks=i) for i in range(4)]
    assert sorted(d.astimezone(UTC) for d in dates) == expected


RECENT = datetime(2026, 11, 29, 2, tzinfo=UTC)
BACK_DATED = datetime(2026, 2, 26, 3, tzinfo=UTC)  # scores 2026-02-25, before the drift onset


def test_a_model_of_older_data_does_not_replace_the_champion(client) -> None:
    name = "churn_recency"
    write_pipeline(name)
    weekly = run_dag(f"{name}_weekly_retraining", RECENT)
    assert str(weekly.state) == "success", task_states(weekly)
    assert champion(client, name) == "1"

    scored = run_dag(f"{name}_batch_inference", BACK_DATED)
    assert str(scored.state) == "success", task_states(scored)
    [event] = asset_events(f"ct.{name}.drift")  # February has drifted away from November
    assert event["window_end"] == "2026-02-26T00:00:00+00:00"

    retrain = run_dag(f"{name}_drift_retraining", BACK_DATED)
    assert str(retrain.state) == "success", task_states(retrain)
    _, v2 = versions(client, name)
    assert champion(client, name) == "1"
    assert v2.tags["ct.decision"] == "rejected"
    reason = v2.tags["ct.decision_reason"]
    assert "data ends 2026-02-26, before the champion's (2026-11-29)" in reason, reason

    conf = {"force_promote": True, "reason": "re-serve the February model for an audit"}
    forced = run_dag(f"{name}_weekly_retraining", BACK_DATED, conf)
    assert str(forced.state) == "success", task_states(forced)
    v3 = versions(client, name)[-1]
    assert champion(client, name) == v3.version == "3"
    assert v3.tags["ct.trigger"] == "manual"
    assert "re-serve the February model" in v3.tags["ct.decision_reason"]
    assert "before the champion's" in v3.tags["ct.decision_reason"]  # the gate, recorded
