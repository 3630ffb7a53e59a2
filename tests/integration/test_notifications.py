"""End to end: the notifications of real DAG runs, received by a real SMTP server (aiosmtpd)
and a local HTTP server standing in for Slack's incoming webhook.

One pipeline walks through a promotion, a rejection and a drift event (three runs, shared by
the tests through a module fixture); a pipeline whose source never answers fails after its
retries; a pipeline whose SMTP server is down still records its decision and stays green.
"""

from __future__ import annotations

import html
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from continuous_training.notifications import airflow_run_url
from continuous_training.sources import SyntheticSource, Window
from tests.integration.dag_runs import (
    champion,
    run_dag,
    task_errors,
    task_states,
    versions,
    write_pipeline,
    xcom_value,
)
from tests.integration.task_logs import captured
from tests.mail import Inbox, smtp_connection, smtp_server
from tests.servers import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def inbox() -> Iterator[Inbox]:
    with smtp_server() as received:
        yield received


NAME = "churn_notify"
WEEKLY = datetime(2026, 3, 1, 2, tzinfo=UTC)
AFTER_DRIFT = datetime(2026, 3, 15, 3, tzinfo=UTC)  # scores 2026-03-14
BASE_URL = "http://airflow.test:8080"
SMTP_CONN, DOWN_CONN, WEBHOOK_CONN = "ct_notify_smtp", "ct_notify_smtp_down", "ct_notify_webhook"
EMAIL = {"to": ["ml-team@example.com"], "conn_id": SMTP_CONN}
UNREACHABLE = f"{__name__}.UnreachableWarehouse"
# The path of the webhook's URL, which the connection holds as its password.
WEBHOOK_PATH = "/T000/B000/XXXX"


class UnreachableWarehouse(SyntheticSource):
    """A source whose server never answers: retried, then failed for good.

    The braces would be a Jinja expression if a notifier rendered the text as a template.
    """

    def fetch(self, window: Window) -> Any:
        raise ConnectionError("warehouse {{ eu-1 }} did not answer")


class _WebhookHandler(BaseHTTPRequestHandler):
    """Slack's incoming webhook: 200 `ok` for every JSON body, which is kept."""

    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append({"path": self.path, **json.loads(body)})  # type: ignore[attr-defined]
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def webhook() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _WebhookHandler)
    server.received = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def connections(inbox: Inbox, webhook: ThreadingHTTPServer) -> Iterator[None]:
    """The Airflow connections as AIRFLOW_CONN_* variables, and the UI's base URL."""
    slack = {
        "conn_type": "slackwebhook",
        "host": f"http://127.0.0.1:{webhook.server_address[1]}",
        "password": WEBHOOK_PATH.removeprefix("/"),
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(f"AIRFLOW_CONN_{SMTP_CONN.upper()}", smtp_connection(inbox.port))
        patch.setenv(f"AIRFLOW_CONN_{DOWN_CONN.upper()}", smtp_connection(free_port()))
        patch.setenv(f"AIRFLOW_CONN_{WEBHOOK_CONN.upper()}", json.dumps(slack))
        patch.setenv("AIRFLOW__API__BASE_URL", BASE_URL)
        yield


@dataclass
class Loop:
    promoted: Any
    rejected: Any
    drifted: Any


@pytest.fixture(scope="module")
def loop(mlflow_server: str, airflow_db: None, connections: None) -> Loop:
    """v1 promoted, v2 rejected (the same data again), then drift in a batch inference."""
    notify = {"email": EMAIL, "slack": {"webhook_conn_id": WEBHOOK_CONN}}
    write_pipeline(NAME, notify=notify)
    runs = [
        run_dag(f"{NAME}_weekly_retraining", WEEKLY),
        run_dag(f"{NAME}_weekly_retraining", WEEKLY.replace(hour=5)),
        run_dag(f"{NAME}_batch_inference", AFTER_DRIFT),
    ]
    for run in runs:
        assert str(run.state) == "success", task_states(run)
    return Loop(*runs)


def run_link(run: Any) -> str:
    return airflow_run_url(BASE_URL, run.dag_id, run.run_id)


def mlflow_link(run: Any, task_id: str) -> str:
    return xcom_value(run, task_id)["mlflow_run_url"]


def test_promotion_and_rejection_are_mailed_with_their_links(
    loop: Loop, inbox: Inbox, client: Any
) -> None:
    promoted = inbox.one(f"[{NAME}] version 1 promoted to champion")
    assert promoted["To"] == "ml-team@example.com"
    assert promoted["From"] == "airflow@example.com"
    body = inbox.body(f"[{NAME}] version 1 promoted")
    assert "version 1 of model churn_notify is now the champion (no champion before)" in body
    assert f'<a href="{run_link(loop.promoted)}">' in body
    assert "%2B00%3A00" in run_link(loop.promoted)  # the run id's `+` and `:`, quoted
    assert f'<a href="{mlflow_link(loop.promoted, "evaluate_vs_champion")}">' in body

    [rejected] = [s for s in inbox.subjects() if s.startswith(f"[{NAME}] version 2 rejected: ")]
    reason = versions(client, NAME)[1].tags["ct.decision_reason"]
    assert html.escape(reason) in inbox.body(rejected)
    assert "version 1 stays the champion" in inbox.body(rejected)
    assert run_link(loop.rejected) in inbox.body(rejected)
    assert mlflow_link(loop.rejected, "evaluate_vs_champion") in inbox.body(rejected)


def test_drift_is_mailed_with_its_share_columns_and_window(loop: Loop, inbox: Inbox) -> None:
    summary = xcom_value(loop.drifted, "check_drift")
    subject = f"[{NAME}] drift: {summary['drifted_share']:.0%} of features drifted in "
    assert inbox.one(subject)["Subject"].endswith("2026-03-14 to 2026-03-15")
    body = inbox.body(subject)
    assert f"Drifted share: {summary['drifted_share']:.2f}" in body
    assert ", ".join(summary["drifted_columns"][:3]) in body
    assert run_link(loop.drifted) in body
    assert mlflow_link(loop.drifted, "pin_champion") in body
    assert len(inbox.messages) == 3  # promotion, rejection, drift: one mail each


def test_slack_webhook_receives_the_promotion(loop: Loop, webhook: ThreadingHTTPServer) -> None:
    received = webhook.received  # type: ignore[attr-defined]
    assert [r["path"] for r in received] == [WEBHOOK_PATH] * 3
    promotion = received[0]["text"]
    assert promotion.startswith(f"*[{NAME}] version 1 promoted to champion*\n")
    assert f"Airflow run: {run_link(loop.promoted)}" in promotion


def test_a_failed_task_is_mailed_once_after_its_retries(
    mlflow_server: str, airflow_db: None, connections: None, inbox: Inbox
) -> None:
    name = "churn_notify_failure"
    write_pipeline(
        name,
        source={"kind": UNREACHABLE},
        retries={"count": 1},
        notify={"email": EMAIL, "events": ["failure"]},
    )
    before = len(inbox.messages)
    run = run_dag(f"{name}_weekly_retraining", WEEKLY)
    assert task_states(run)["fetch"] == "failed"
    assert len(task_errors(run)["fetch"]) == 2  # the attempt and its retry
    [mail] = inbox.messages[before:]
    assert mail["Subject"] == f"[{name}] task failed: {name}_weekly_retraining.fetch"
    body = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Error: ConnectionError: warehouse {{ eu-1 }} did not answer" in body
    assert run_link(run) in body
    assert f"/dags/{name}_weekly_retraining/runs/" in body.split("Task log: ")[1]


def test_without_notify_nothing_is_sent(
    mlflow_server: str, airflow_db: None, connections: None, inbox: Inbox
) -> None:
    name = "churn_notify_quiet"
    write_pipeline(name, source={"kind": UNREACHABLE}, retries={"count": 0})
    before = len(inbox.messages)
    with captured() as logs:
        run = run_dag(f"{name}_weekly_retraining", WEEKLY)
    assert task_states(run)["fetch"] == "failed"
    assert inbox.messages[before:] == []
    assert "continuous_training.operators.notify" not in logs.text()


def test_an_unreachable_smtp_server_leaves_the_decision_and_a_warning(
    client: Any, connections: None, inbox: Inbox
) -> None:
    name = "churn_notify_down"
    write_pipeline(name, notify={"email": {**EMAIL, "conn_id": DOWN_CONN}})
    before = len(inbox.messages)
    with captured() as logs:
        run = run_dag(f"{name}_weekly_retraining", WEEKLY)
    assert str(run.state) == "success", task_states(run)
    assert task_errors(run) == {}  # no attempt of promote failed
    [v1] = versions(client, name)
    assert v1.tags["ct.decision"] == "promoted"
    assert champion(client, name) == "1"
    promote_log = logs.task("promote")
    assert '"level": "WARNING"' in promote_log
    assert "notify.email: could not send the promotion notification" in promote_log
    assert "ConnectionRefusedError" in promote_log
    assert inbox.messages[before:] == []
