"""The runs the stack tests start, shared by the modules of tests/stack."""

from __future__ import annotations

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


def worker_hostnames(stack: NativeStack) -> set[str]:
    return {worker.hostname for worker in stack.workers()}
