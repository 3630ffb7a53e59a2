"""PostgreSQL (Airflow's metadata database and MLflow's backend) restarted while a DAG runs.

Every connection is cut. The run either completes, or fails cleanly and completes when its
failed tasks are cleared, as a user would do from the grid view; either way the registry ends
with one version for the run and an unchanged champion.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.faults.conftest import RUN_TIMEOUT, WEEKLY
from tests.faults.private_postgres import PrivatePostgres
from tests.faults.waiting import running, until
from tests.stack.airflow_api import AirflowApi
from tests.stack.native import NativeStack

pytestmark = pytest.mark.stack

SAME_WINDOW_AS_V1 = "2026-03-01T06:00:00Z"


def clear_failed(api: AirflowApi, dag_id: str, run_id: str) -> None:
    """The grid view's "Clear" on the failed tasks of one run."""
    body = {"dry_run": False, "dag_run_id": run_id, "only_failed": True, "reset_dag_runs": True}
    api.request("POST", f"/api/v2/dags/{dag_id}/clearTaskInstances", json=body)


def test_postgres_restarted_while_training(
    stack: NativeStack,
    api: AirflowApi,
    mlflow: Any,
    postgres: PrivatePostgres,
    champion_v1: dict[str, Any],
) -> None:
    run_id = api.trigger(WEEKLY, SAME_WINDOW_AS_V1)
    until("train_candidate running", lambda: running(api, WEEKLY, run_id, "train_candidate"), 300)
    restarts_before = len(stack.restarts)
    postgres.restart()

    run = until(
        "the run to end",
        lambda: _finished(api, run_id),
        RUN_TIMEOUT,
        every=3,
    )
    outcome = run["state"]
    if outcome == "failed":
        clear_failed(api, WEEKLY, run_id)
        run = api.wait_for_run(WEEKLY, run_id, RUN_TIMEOUT)
    assert run["state"] == "success", (outcome, api.task_instances(WEEKLY, run_id))
    record = stack.settings.artifacts / "postgres-restart-outcome.txt"
    record.write_text(
        f"first outcome: {outcome}; services restarted: {stack.restarts[restarts_before:]}\n"
    )
    versions = mlflow.search_model_versions(
        f"name = 'churn' and tags.`ct.airflow_run_id` = '{run_id}'"
    )
    assert len(versions) == 1
    assert mlflow.get_model_version_by_alias("churn", "champion").version == (
        champion_v1["version"].version
    )


def _finished(api: AirflowApi, run_id: str) -> dict[str, Any] | None:
    try:
        run = api.run(WEEKLY, run_id)
    except Exception:  # the API server may answer 500 while its database restarts
        return None
    return run if run["state"] in ("success", "failed") else None
