"""The runs the stack tests start, shared by the modules of tests/stack."""

from __future__ import annotations

import time
from typing import Any

from tests.stack.airflow_api import AirflowApi
from tests.stack.native import NativeStack

WEEKLY = "churn_weekly_retraining"
BATCH = "churn_batch_inference"
WEEKLY_DATE = "2026-03-01T02:00:00Z"
BATCH_DATE = "2026-03-02T03:00:00Z"
# Not the YAML's 21 days: the window in the fetch task's XCom proves the conf reached the worker.
TRAINING_DAYS = 14
# A run fails its wait when none of its tasks changed state or attempt for this long.
STALL_TIMEOUT = 300


# Pipelines that need a person: approval required, nothing scheduled (runs are the tests').
APPROVAL = "approved"
APPROVAL_LATE = "approved_late"
APPROVER = "ct-operator"  # the stack's admin (Settings.create): the one assigned user
APPROVAL_DATES = ("2026-01-15", "2026-01-16", "2026-01-17", "2026-01-18")
# The Airflow connection of the test's SMTP server, made over REST by test_stack_approval.
STACK_SMTP_CONN = "ct_stack_smtp"
APPROVERS_MAIL = "approvers@example.com"


def approval_pipeline(timeout_hours: float) -> dict[str, Any]:
    return {
        "schedule": None,
        "inference": {"schedule": None},
        "windows": {"training_days": 14, "holdout_days": 7},
        "approval": {
            "required": True,
            "timeout_hours": timeout_hours,
            "assigned_users": [APPROVER],
        },
        "notify": {"email": {"to": [APPROVERS_MAIL], "conn_id": STACK_SMTP_CONN}},
    }


# Written beside the shipped churn.yaml into the stack's pipelines folder.
STACK_PIPELINES = {
    APPROVAL: approval_pipeline(timeout_hours=2),
    APPROVAL_LATE: approval_pipeline(timeout_hours=0.005),  # 18 s: the scheduler's sweep
}


def weekly(pipeline: str) -> str:
    return f"{pipeline}_weekly_retraining"


CATCHUP_WAIT = 20
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
    drop_catchup_runs(api, dag_id, wait=CATCHUP_WAIT)
    return run_id


def drop_catchup_runs(api: AirflowApi, dag_id: str, wait: float = 0) -> None:
    """Mark scheduled runs still queued as failed before they start, with a note saying why.

    Unpausing makes the scheduler create the run of the latest schedule tick (catchup=False
    still runs that one), and a tick passing during the tests adds another. That is Airflow
    doing its job, but a whole retraining or scoring more would share the two cores with the
    runs under test. Deleting them does not work: with no scheduled run left, the scheduler
    creates the latest one again as soon as ours ends. `wait`: how long to give the scheduler
    to create the catch-up run of a DAG with a schedule that was just unpaused.
    """
    deadline = time.monotonic() + wait
    while True:
        queued = [
            run
            for run in api.runs(dag_id)
            if run["run_type"] == "scheduled" and run["state"] == "queued"
        ]
        for run in queued:
            api.mark_run(dag_id, run["dag_run_id"], "failed", CATCHUP_NOTE)
        if queued or time.monotonic() > deadline or not has_schedule(api, dag_id):
            return
        time.sleep(1)


def has_schedule(api: AirflowApi, dag_id: str) -> bool:
    # Airflow stores the summary of `schedule=None` as the string "None".
    return api.dag(dag_id)["timetable_summary"] not in (None, "None")


def worker_hostnames(stack: NativeStack) -> set[str]:
    return {worker.hostname for worker in stack.workers()}
