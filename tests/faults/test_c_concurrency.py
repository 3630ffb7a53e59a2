"""Weekly and drift retraining of one pipeline at the same moment, beside a second pipeline.

Both retrains of `churn` train on the same drifted window and both beat version 1, so both
would promote if nothing serialised them. Exactly one does; the other is judged against the
new champion and rejected, and both versions carry their decision. `churn_b` runs its weekly
retraining at the same time and touches nothing of `churn`'s.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.faults.conftest import RUN_TIMEOUT, WEEKLY
from tests.faults.waiting import run_folder, until
from tests.stack.airflow_api import AirflowApi
from tests.stack.native import NativeStack
from tests.stack.runs import trigger_then_unpause

pytestmark = pytest.mark.stack

DRIFT = "churn_drift_retraining"
WEEKLY_B = "churn_b_weekly_retraining"
AFTER_DRIFT = "2026-03-22T02:00:00Z"
DRIFTED_WINDOW_END = "2026-03-22T00:00:00+00:00"  # where the weekly run's window ends too


def drift_event(champion: str) -> dict[str, Any]:
    """What batch inference emits on a breach (drift.event_extra)."""
    return {
        "episode": f"churn/champion-v{champion}",
        "champion_version": champion,
        "drifted_share": 0.86,
        "drifted_columns": ["monthly_charges", "support_calls"],
        "report_uri": "emitted by tests/faults for the concurrency test",
        "window_end": DRIFTED_WINDOW_END,
        "prediction_drift_score": 0.5,
    }


def post_asset_event(api: AirflowApi, name: str, extra: dict[str, Any]) -> None:
    [asset] = api.request("GET", f"/api/v2/assets?name_pattern={name}")["assets"]
    api.request("POST", "/api/v2/assets/events", json={"asset_id": asset["id"], "extra": extra})


def drift_run_id(api: AirflowApi) -> str | None:
    runs = [r for r in api.runs(DRIFT) if r["run_type"] == "asset_triggered"]
    return runs[-1]["dag_run_id"] if runs else None


def versions_of(mlflow: Any, model: str) -> list[Any]:
    return sorted(mlflow.search_model_versions(f"name = '{model}'"), key=lambda v: int(v.version))


def test_weekly_and_drift_retraining_at_once_promote_once(
    stack: NativeStack, api: AirflowApi, mlflow: Any, champion_v1: dict[str, Any]
) -> None:
    api.wait_for_dag(DRIFT)
    api.unpause(DRIFT)
    before = {v.version for v in versions_of(mlflow, "churn")}

    other = trigger_then_unpause(api, WEEKLY_B, AFTER_DRIFT)
    weekly = api.trigger(WEEKLY, AFTER_DRIFT)
    post_asset_event(api, "ct.churn.drift", drift_event(str(champion_v1["version"].version)))

    drift = until("the drift retraining run", lambda: drift_run_id(api), 120, every=2)
    ends = {
        run_id: api.wait_for_run(dag_id, run_id, RUN_TIMEOUT)["state"]
        for dag_id, run_id in ((WEEKLY, weekly), (DRIFT, drift), (WEEKLY_B, other))
    }
    assert set(ends.values()) == {"success"}, ends

    new = [v for v in versions_of(mlflow, "churn") if v.version not in before]
    assert {v.tags["ct.airflow_run_id"] for v in new} == {weekly, drift}
    assert {v.tags["ct.trigger"] for v in new} == {"manual", "drift"}
    promoted = [v for v in new if v.tags["ct.decision"] == "promoted"]
    rejected = [v for v in new if v.tags["ct.decision"] == "rejected"]
    assert len(promoted) == 1 and len(rejected) == 1, [(v.version, v.tags) for v in new]
    [winner], [loser] = promoted, rejected
    assert mlflow.get_model_version_by_alias("churn", "champion").version == winner.version
    assert winner.tags["ct.replaced_version"] == str(champion_v1["version"].version)
    # The loser's evidence compares it with the winner, not with the champion it started from.
    record = json.loads(
        Path(mlflow.download_artifacts(loser.run_id, "evaluation/decision_record.json")).read_text()
    )
    assert record["champion"]["version"] == str(winner.version), record["champion"]
    assert record["final"]["decision"] == "rejected"
    (stack.settings.artifacts / "concurrency-record.json").write_text(json.dumps(record, indent=1))
    assert mlflow.search_registered_models("name = 'churn.champion-lock'") == []


def test_two_pipelines_side_by_side_keep_to_their_own(
    stack: NativeStack, api: AirflowApi, mlflow: Any
) -> None:
    dag_runs = {
        model: {run["dag_run_id"] for dag_id in dag_ids for run in api.runs(dag_id)}
        for model, dag_ids in (("churn", (WEEKLY, DRIFT)), ("churn_b", (WEEKLY_B,)))
    }
    for model, own_runs in dag_runs.items():
        versions = versions_of(mlflow, model)
        assert versions, model
        # every version of the model was registered by a run of its own pipeline's DAGs
        assert {v.tags["ct.airflow_run_id"] for v in versions} <= own_runs, model
        experiment = mlflow.get_experiment_by_name(f"ct/{model}")
        for version in versions:
            assert mlflow.get_run(version.run_id).info.experiment_id == experiment.experiment_id
            assert run_folder(stack, model, version.tags["ct.airflow_run_id"]).is_dir()
    # no run of churn_b's wrote into churn's folders (a run id both DAGs have may be in both)
    churn_folders = {p.name for p in (stack.settings.data_root / "churn" / "runs").iterdir()}
    only_b = dag_runs["churn_b"] - dag_runs["churn"]
    assert only_b and not {run_folder(stack, "churn_b", r).name for r in only_b} & churn_folders
    assert (
        mlflow.get_model_version_by_alias("churn_b", "champion").tags["ct.decision"] == "promoted"
    )
