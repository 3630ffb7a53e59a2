"""The compose topology, natively, driven as a user drives it: REST API with a login, MLflow."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
import requests

from tests.stack.airflow_api import AirflowApi
from tests.stack.native import NativeStack
from tests.stack.runs import (
    BATCH,
    TRAINING_DAYS,
    WEEKLY,
    WEEKLY_DATE,
    worker_hostnames,
)

pytestmark = pytest.mark.stack

MODEL = "churn"
HOLDOUT_DAYS = 7  # include/pipelines/churn.yaml


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


def test_the_champion_is_in_mlflow(
    stack: NativeStack, weekly_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    variables = stack.settings.variables  # MLflow's basic-auth app: the login of .env
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", variables["MLFLOW_ADMIN_USERNAME"])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", variables["MLFLOW_ADMIN_PASSWORD"])
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


def test_batch_inference_starts_once_there_is_a_champion(
    api: AirflowApi, batch_run_id: str
) -> None:
    """Started here, checked in test_stack_workers: it runs beside the browser test's run."""
    assert api.run(BATCH, batch_run_id)["state"] in {"queued", "running", "success"}
