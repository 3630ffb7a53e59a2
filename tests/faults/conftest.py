"""One native stack (docker-compose.yaml's topology) on a PostgreSQL server of its own.

The fault tests kill workers and restart the database, so they get a stack of their own:
restarting the machine's PostgreSQL would cut every other user of it. The pipelines have no
schedule (the tests trigger every run) and retry after 5 s instead of 5 minutes, the
scheduler fails a silent task after 20 s instead of 5 minutes, and training and scoring get
enough rows to be caught in the middle.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from tests.faults.private_postgres import PrivatePostgres
from tests.stack.airflow_api import AirflowApi
from tests.stack.compose import ROOT
from tests.stack.native import NativeStack, Settings
from tests.stack.runs import trigger_then_unpause
from tests.stack.sessions import add_log_tails, api_of, started

ARTIFACTS = ROOT / "test-artifacts" / "faults"
RETRIES = {"count": 2, "delay_seconds": 5}
HEARTBEAT_TIMEOUT = 20
# Waits for a file or a task: at most this long; waits for a run: this long without progress.
RUN_TIMEOUT = 600
SCORED_ROWS_PER_DAY = 100_000
WEEKLY = "churn_weekly_retraining"
BEFORE_DRIFT = "2026-03-01T02:00:00Z"
# No schedules: every run here is triggered by the test. A scheduled DAG that is unpaused
# gets a catch-up run of its latest tick, created once the DAG's one active run ends, so it
# would run after the test's own run and could promote behind the test's back.
PIPELINES: dict[str, dict[str, Any]] = {
    "churn": {
        "schedule": None,
        "retries": RETRIES,
        "source": {"rows_per_day": 2000},  # a fit of a few seconds: long enough to be killed in
        "inference": {
            "schedule": None,
            # a hundred batches a day: a part is still being written when the worker dies
            "source": {"rows_per_day": SCORED_ROWS_PER_DAY},
            "batch_size": SCORED_ROWS_PER_DAY // 100,
        },
    },
    # a second pipeline beside the first: other data, its own registered model and folders
    "churn_b": {"schedule": None, "retries": RETRIES, "source": {"seed": 99}},
}

_RUNNING: list[NativeStack] = []


@pytest.fixture(scope="package")
def postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="package")
def stack(postgres: PrivatePostgres) -> Iterator[NativeStack]:
    settings = Settings.create(
        artifacts=ARTIFACTS,
        postgres_port=postgres.port,
        heartbeat_timeout=HEARTBEAT_TIMEOUT,
        pipelines=PIPELINES,
    )
    with started(settings, _RUNNING) as running:
        yield running


@pytest.fixture(scope="package")
def api(stack: NativeStack) -> Iterator[AirflowApi]:
    with contextlib.closing(api_of(stack)) as client:
        yield client


@pytest.fixture(scope="package")
def mlflow(stack: NativeStack) -> Iterator[Any]:
    from mlflow import MlflowClient

    variables = stack.settings.variables
    with pytest.MonkeyPatch.context() as patch:  # MLflow's basic-auth app: the login of .env
        patch.setenv("MLFLOW_TRACKING_USERNAME", variables["MLFLOW_ADMIN_USERNAME"])
        patch.setenv("MLFLOW_TRACKING_PASSWORD", variables["MLFLOW_ADMIN_PASSWORD"])
        yield MlflowClient(stack.settings.mlflow_url)


@pytest.fixture(scope="package")
def champion_v1(api: AirflowApi, mlflow: Any) -> dict[str, Any]:
    """The weekly retraining before the drift, undisturbed: version 1 of churn."""
    run_id = trigger_then_unpause(api, WEEKLY, BEFORE_DRIFT)
    run = api.wait_for_run(WEEKLY, run_id, RUN_TIMEOUT)
    assert run["state"] == "success", api.task_instances(WEEKLY, run_id)
    version = mlflow.get_model_version_by_alias("churn", "champion")
    assert version.version in (1, "1")
    return {"run_id": run_id, "version": version}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome = yield
    add_log_tails(item, outcome.get_result(), _RUNNING)
