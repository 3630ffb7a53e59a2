"""The runs the stack tests start, shared by the modules of tests/stack."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from tests.stack.airflow_api import AirflowApi
from tests.stack.native import NativeStack

WEEKLY = "churn_weekly_retraining"
BATCH = "churn_batch_inference"
WEEKLY_DATE = "2026-03-01T02:00:00Z"
BATCH_DATE = "2026-03-02T03:00:00Z"
# Not the YAML's 21 days: the window in the fetch task's XCom proves the conf reached the worker.
TRAINING_DAYS = 14
RUN_TIMEOUT = 300


CATCHUP_TIMEOUT = 60
CATCHUP_NOTE = "Not run: the stack test's catch-up run of unpausing (tests/stack/runs.py)."


def trigger_then_unpause(
    api: AirflowApi, dag_id: str, logical_date: str, conf: dict[str, Any] | None = None
) -> str:
    """A manual run of a paused DAG, then unpause it; the id of the manual run.

    `run_after` at the logical date (not "now"): queued runs of a DAG with max_active_runs=1
    start one at a time in `run_after` order, so ours goes before the catch-up run below.
    """
    api.wait_for_dag(dag_id)
    run_id = api.trigger(dag_id, logical_date, conf, run_after=logical_date)
    api.unpause(dag_id)
    drop_catchup_run(api, dag_id)
    return run_id


def drop_catchup_run(api: AirflowApi, dag_id: str) -> None:
    """Mark the catch-up run that unpausing creates as failed before it starts, with a note.

    It is Airflow doing its job (catchup=False still runs the latest schedule tick), but its work,
    a whole retraining or scoring, would only share the two cores with the runs under test.
    Deleting it does not work: with no scheduled run left, the scheduler creates it again as soon
    as our run ends. Once the scheduler has moved the DAG's next run into the future, whatever it
    created for the past is queued behind ours (see `trigger_then_unpause`).
    """
    deadline = time.monotonic() + CATCHUP_TIMEOUT
    while True:
        next_run = api.dag(dag_id)["next_dagrun_run_after"]
        if next_run is None or datetime.fromisoformat(next_run) > datetime.now(UTC):
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"the scheduler did not plan {dag_id} after unpausing it")
        time.sleep(1)
    for run in api.runs(dag_id):
        if run["run_type"] == "scheduled" and run["state"] == "queued":
            api.mark_run(dag_id, run["dag_run_id"], "failed", CATCHUP_NOTE)


def worker_hostnames(stack: NativeStack) -> set[str]:
    return {worker.hostname for worker in stack.workers()}
