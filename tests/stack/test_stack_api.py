"""The compose topology, natively, driven as a user drives it: REST API with a login, MLflow.

Runs in file order: the weekly retraining promotes a champion that batch inference then serves.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
import requests

from tests.stack.airflow_api import AirflowApi
from tests.stack.native import NativeStack

pytestmark = pytest.mark.stack

WEEKLY = "churn_weekly_retraining"
BATCH = "churn_batch_inference"
MAPPED_TASK = "score_partition"
MODEL = "churn"
WEEKLY_DATE = "2026-03-01T02:00:00Z"
BATCH_DATE = "2026-03-02T03:00:00Z"
# Not the YAML's 21 days: the window in the fetch task's XCom proves the conf reached the worker.
TRAINING_DAYS = 14
HOLDOUT_DAYS = 7  # include/pipelines/churn.yaml
RUN_TIMEOUT = 300


def test_login_refuses_a_wrong_password(stack: NativeStack) -> None:
    response = requests.post(
        f"{stack.settings.api_url}/auth/token",
        json={"username": stack.settings.variables["AIRFLOW_ADMIN_USERNAME"], "password": "x"},
        headers={"Connection": "close"},
        timeout=30,
    )
    assert response.status_code == 401, response.text


def test_the_api_needs_a_token(stack: NativeStack) -> None:
    response = requests.get(
        f"{stack.settings.api_url}/api/v2/dags", headers={"Connection": "close"}, timeout=30
    )
    assert response.status_code == 401, response.text


def test_every_component_reports_healthy(api: AirflowApi) -> None:
    health = api.request("GET", "/api/v2/monitor/health")
    assert {part: state["status"] for part, state in health.items()} == {
        "metadatabase": "healthy",
        "scheduler": "healthy",
        "triggerer": "healthy",
        "dag_processor": "healthy",
    }


def worker_hostnames(stack: NativeStack) -> set[str]:
    return {worker.hostname for worker in stack.workers()}


def trigger_then_unpause(
    api: AirflowApi, dag_id: str, logical_date: str, conf: dict[str, Any] | None = None
) -> str:
    """A manual run of a paused DAG, then unpause it; the id of the manual run.

    Unpausing also makes the scheduler create the latest scheduled run, and with
    max_active_runs=1 queued runs start one at a time in `run_after` order. `run_after` at the
    logical date (not "now") starts ours first; the scheduled one follows while the tests go on.
    """
    api.wait_for_dag(dag_id)
    run_id = api.trigger(dag_id, logical_date, conf, run_after=logical_date)
    api.unpause(dag_id)
    return run_id


@pytest.fixture(scope="module")
def weekly_run(stack: NativeStack, api: AirflowApi) -> dict[str, Any]:
    """The weekly retraining, triggered with params, run to its end."""
    run_id = trigger_then_unpause(api, WEEKLY, WEEKLY_DATE, {"training_window_days": TRAINING_DAYS})
    return api.wait_for_run(WEEKLY, run_id, RUN_TIMEOUT)


def test_weekly_retraining_succeeds_on_the_celery_workers(
    stack: NativeStack, api: AirflowApi, weekly_run: dict[str, Any]
) -> None:
    tis = api.task_instances(WEEKLY, weekly_run["dag_run_id"])
    states = {ti["task_id"]: ti["state"] for ti in tis}
    assert weekly_run["state"] == "success", states
    assert set(states.values()) == {"success"}, states
    hosts = {ti["task_id"]: ti["hostname"] for ti in tis}
    assert set(hosts.values()) <= worker_hostnames(stack), hosts


def test_the_trigger_params_reach_the_tasks(
    stack: NativeStack, api: AirflowApi, weekly_run: dict[str, Any]
) -> None:
    """The fetched window is the logical date's midnight minus conf days plus the holdout."""
    fetched = api.xcom(WEEKLY, weekly_run["dag_run_id"], "fetch")
    start = datetime.fromisoformat(fetched["window_start"])
    end = datetime.fromisoformat(fetched["window_end"])
    assert end.date().isoformat() == WEEKLY_DATE[:10]
    assert (end - start).days == TRAINING_DAYS + HOLDOUT_DAYS
    # The shared data root of compose's ct-data volume: what one worker wrote, all can read.
    assert fetched["uri"].startswith(str(stack.settings.data_root)), fetched["uri"]


def test_the_champion_is_in_mlflow(stack: NativeStack, weekly_run: dict[str, Any]) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(stack.settings.mlflow_url)
    champion = client.get_model_version_by_alias(MODEL, "champion")
    assert champion.tags["ct.decision"] == "promoted"
    ours = [
        version
        for version in client.search_model_versions(f"name = '{MODEL}'")
        if version.tags.get("ct.airflow_run_id") == weekly_run["dag_run_id"]
    ]
    assert len(ours) == 1, "the run registered exactly one candidate version"
    assert ours[0].tags["ct.decision"] in {"promoted", "rejected"}
    assert ours[0].tags["ct.trigger"] == "manual"
    # Artifacts went through the server (--serve-artifacts) into its destination folder.
    assert any((stack.settings.workdir / "mlartifacts").rglob("MLmodel"))


def test_batch_inference_scores_partitions_on_the_celery_workers(
    stack: NativeStack, api: AirflowApi, weekly_run: dict[str, Any]
) -> None:
    if BATCH not in api.dag_ids():
        pytest.skip(f"{BATCH} is not in this build's DAGs")
    run_id = trigger_then_unpause(api, BATCH, BATCH_DATE)
    run = api.wait_for_run(BATCH, run_id, RUN_TIMEOUT)
    tis = api.task_instances(BATCH, run_id)
    assert run["state"] == "success", {(t["task_id"], t["map_index"]): t["state"] for t in tis}
    mapped = [ti for ti in tis if ti["task_id"] == MAPPED_TASK and ti["map_index"] >= 0]
    assert mapped, f"no mapped {MAPPED_TASK} instances: {[t['task_id'] for t in tis]}"
    assert {ti["state"] for ti in mapped} == {"success"}
    hosts = {ti["map_index"]: ti["hostname"] for ti in mapped}
    assert set(hosts.values()) <= worker_hostnames(stack), hosts


def task_instances_of_every_run(api: AirflowApi) -> list[dict[str, Any]]:
    return [
        {key: ti[key] for key in ("dag_id", "dag_run_id", "task_id", "map_index", "state")}
        | {"hostname": ti["hostname"], "duration": ti["duration"]}
        for dag_id in sorted({WEEKLY, BATCH} & api.dag_ids())
        for run in api.runs(dag_id)
        for ti in api.task_instances(dag_id, run["dag_run_id"])
    ]


def test_both_workers_took_tasks(stack: NativeStack, api: AirflowApi) -> None:
    """Celery spreads the tasks: over this module's runs, each worker ran at least one."""
    tis = task_instances_of_every_run(api)
    (stack.settings.artifacts / "task-instances.json").write_text(json.dumps(tis, indent=1))
    assert {ti["hostname"] for ti in tis if ti["hostname"]} == worker_hostnames(stack)


def test_the_broker_keys_carry_the_runs_prefix(stack: NativeStack) -> None:
    """What teardown deletes: Celery's keys under this run's prefix in its Redis database."""
    assert stack.redis_keys(), f"no key under {stack.settings.redis_prefix!r}"
