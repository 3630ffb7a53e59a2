"""A person approves champion changes (`approval.required`), over the REST API, as a script would.

Runs of `approved_weekly_retraining`, one after another: the first candidate waits for
approval and is approved; the next, which the gate rejects, asks nobody; a forced candidate
still needs approval and is rejected. `approved_late` is asked too and never answered: the
scheduler's timeout rejects it. test_stack_browser approves one more from the UI.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from tests.mail import Inbox, smtp_connection, smtp_server
from tests.stack.airflow_api import AirflowApi
from tests.stack.native import NativeStack
from tests.stack.registry_view import champion, mlflow_client, version_of_run
from tests.stack.runs import (
    APPROVAL,
    APPROVAL_DATES,
    APPROVAL_LATE,
    APPROVER,
    APPROVERS_MAIL,
    STACK_SMTP_CONN,
    STALL_TIMEOUT,
    trigger_then_unpause,
    weekly,
)

pytestmark = pytest.mark.stack

DAG = weekly(APPROVAL)
APPROVE = "approve"


@pytest.fixture(scope="module")
def mlflow(stack: NativeStack) -> Iterator[Any]:
    with mlflow_client(stack) as client:
        yield client


def start(api: AirflowApi, dag_id: str, day: str, conf: dict[str, Any] | None = None) -> str:
    return trigger_then_unpause(api, dag_id, f"{day}T02:00:00Z", conf)


@pytest.fixture(scope="module")
def inbox(api: AirflowApi, stack: NativeStack) -> Iterator[Inbox]:
    """A real SMTP server, and the Airflow connection to it made as a user makes one (REST).

    Every mail it received is kept in the test artifacts (`mail-<n>.eml`) to read afterwards.
    """
    import json

    with smtp_server() as received, contextlib.ExitStack() as keep:
        keep.callback(received.save, stack.settings.artifacts)
        connection = json.loads(smtp_connection(received.port))
        body = {
            "connection_id": STACK_SMTP_CONN,
            **connection,
            "extra": json.dumps(connection["extra"]),
        }
        api.request("POST", "/api/v2/connections", json=body)
        yield received


@pytest.fixture(scope="module")
def late_run(api: AirflowApi, inbox: Inbox) -> str:
    """Started first: it waits out its 18 s while the other runs train."""
    return start(api, weekly(APPROVAL_LATE), APPROVAL_DATES[0])


@pytest.fixture(scope="module")
def approved_run(api: AirflowApi, late_run: str) -> dict[str, Any]:
    """The first candidate of `approved`: asked, then approved over REST with a comment."""
    run_id = start(api, DAG, APPROVAL_DATES[0])
    api.wait_for_task(DAG, run_id, APPROVE, {"awaiting_input"}, STALL_TIMEOUT)
    question = api.hitl_detail(DAG, run_id, APPROVE)
    answer = api.respond(DAG, run_id, APPROVE, "Approve", {"comment": "metrics look right"})
    run = api.wait_for_run(DAG, run_id, STALL_TIMEOUT)
    promotion = api.xcom(DAG, run_id, "promote")
    return {"run": run, "question": question, "answer": answer, "promotion": promotion}


def test_approval_waits_with_the_evidence_then_promotes(
    api: AirflowApi, mlflow: Any, approved_run: dict[str, Any]
) -> None:
    question, run = approved_run["question"], approved_run["run"]
    assert question["options"] == ["Approve", "Reject"]
    assert question["subject"].startswith(f"{APPROVAL}: promote version ")
    body = question["body"]
    for evidence in ("roc_auc", "log_loss", "Gate checks", "Model card", "MLflow run", "holdout"):
        assert evidence in body, f"{evidence!r} missing from the approval body:\n{body}"
    assert [u["id"] for u in question["assigned_users"]] == [APPROVER]
    assert approved_run["answer"]["responded_by"]["name"] == APPROVER
    assert run["state"] == "success"
    version = version_of_run(mlflow, APPROVAL, run["dag_run_id"])
    assert champion(mlflow, APPROVAL) == version.version
    assert version.tags["ct.decision"] == "promoted"
    assert version.tags["ct.approved_by"] == APPROVER
    assert version.tags["ct.approval"] == "approved"
    assert version.tags["ct.approval_comment"] == "metrics look right"
    assert f"approved by {APPROVER}: metrics look right" in version.tags["ct.decision_reason"]
    promotion = api.xcom(DAG, run["dag_run_id"], "promote")
    assert promotion["approval"]["by"] == APPROVER
    # the scheduler's listener wrote the outcome as the run's note
    assert run["note"].startswith(f"**PROMOTED** version {version.version}"), run["note"]


def test_the_approval_request_and_the_promotion_are_mailed(
    stack: NativeStack, inbox: Inbox, approved_run: dict[str, Any]
) -> None:
    run_id = approved_run["run"]["dag_run_id"]
    asked = inbox.one(f"[{APPROVAL}] approval requested: version ")
    assert asked["To"] == APPROVERS_MAIL
    body = inbox.body(f"[{APPROVAL}] approval requested: version ")
    required_actions = f"{stack.settings.api_url}/dags/{DAG}/runs/"
    assert required_actions in body and "/tasks/approve/required_actions" in body, body
    version = approved_run["promotion"]["model_version"]
    promoted = inbox.body(f"[{APPROVAL}] version {version} promoted to champion")
    assert quote(run_id, safe="") in promoted, promoted


def test_a_candidate_the_gate_rejects_asks_nobody(
    api: AirflowApi, mlflow: Any, approved_run: dict[str, Any]
) -> None:
    before = champion(mlflow, APPROVAL)
    run_id = start(api, DAG, APPROVAL_DATES[1])
    run = api.wait_for_run(DAG, run_id, STALL_TIMEOUT)
    assert run["state"] == "success"
    states = {ti["task_id"]: ti["state"] for ti in api.task_instances(DAG, run_id)}
    assert states[APPROVE] == "skipped", states
    assert states["promote"] == "success", states
    version = version_of_run(mlflow, APPROVAL, run_id)
    assert version.tags["ct.decision"] == "rejected"
    assert "ct.approval" not in version.tags
    # live evidence would promote it without asking: not promised where approval is required
    assert "live outcomes will judge it" not in version.tags["ct.decision_reason"]
    assert "ct.live_evidence" not in version.tags
    assert champion(mlflow, APPROVAL) == before


def test_a_forced_promotion_still_needs_approval_and_a_rejection_keeps_the_champion(
    api: AirflowApi, mlflow: Any, approved_run: dict[str, Any]
) -> None:
    before = champion(mlflow, APPROVAL)
    conf = {"force_promote": True, "reason": "the new features must ship"}
    run_id = start(api, DAG, APPROVAL_DATES[2], conf)
    api.wait_for_task(DAG, run_id, APPROVE, {"awaiting_input"}, STALL_TIMEOUT)
    assert "the new features must ship" in api.hitl_detail(DAG, run_id, APPROVE)["body"]
    api.respond(DAG, run_id, APPROVE, "Reject", {"comment": "not before the audit"})
    run = api.wait_for_run(DAG, run_id, STALL_TIMEOUT)
    assert run["state"] == "success"
    version = version_of_run(mlflow, APPROVAL, run_id)
    assert version.tags["ct.decision"] == "rejected"
    assert version.tags["ct.rejected_by"] == APPROVER
    assert version.tags["ct.approval"] == "rejected"
    assert version.tags["ct.decision_reason"].startswith(
        f"rejected by {APPROVER}: not before the audit"
    )
    assert champion(mlflow, APPROVAL) == before
    note = run["note"]
    assert note.startswith(f"**REJECTED** version {version.version} (champion stays"), note
    assert f"Reason: rejected by {APPROVER}: not before the audit" in note


def test_no_answer_in_time_is_a_rejection(
    api: AirflowApi, mlflow: Any, late_run: str, approved_run: dict[str, Any]
) -> None:
    dag_id = weekly(APPROVAL_LATE)
    run = api.wait_for_run(dag_id, late_run, STALL_TIMEOUT)
    assert run["state"] == "success"
    detail = api.hitl_detail(dag_id, late_run, APPROVE)
    assert detail["chosen_options"] == ["Reject"] and detail.get("responded_by_user") is None
    version = version_of_run(mlflow, APPROVAL_LATE, late_run)
    assert version.tags["ct.decision"] == "rejected"
    assert version.tags["ct.approval"] == "timed_out"
    assert version.tags["ct.decision_reason"].startswith("not approved in time")
    assert champion(mlflow, APPROVAL_LATE) is None
