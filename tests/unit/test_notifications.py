"""The notification messages (no Airflow), and what the sender does without a server.

Sending to real SMTP and webhook servers from real DAG runs is in
tests/integration/test_notifications.py.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pytest

from continuous_training import notifications
from continuous_training.config import NotifyConfig, PipelineConfig, find_pipeline
from continuous_training.notifications import Message
from continuous_training.operators import notify

AIRFLOW_URL = "http://airflow.test:8080/dags/churn_weekly_retraining/runs/manual__1"
MLFLOW_URL = "http://mlflow.test:5000/#/experiments/1/runs/abc"


def evaluation(**changes: Any) -> dict[str, Any]:
    values = {
        "model_name": "churn",
        "model_version": "3",
        "champion_version": "1",
        "primary_metric": "roc_auc",
        "challenger_metric": 0.81234,
        "champion_metric": 0.80012,
        "gate_reason": "passed: improvement 0.0122 [0.006, 0.018] clears 0.005",
        "gate_passed": True,
        "mlflow_run_url": MLFLOW_URL,
    }
    return {**values, **changes}


def outcome(promoted: bool, **changes: Any) -> dict[str, Any]:
    values = {
        "decision": "promoted" if promoted else "rejected",
        "reason": "passed: improvement 0.0122" if promoted else "improvement {0.001} < 0.005",
        "trigger": "schedule",
        "airflow_run_id": "manual__1",
        "promoted": promoted,
        "replaced_version": "1" if promoted else None,
        "dry_run": False,
        "superseded_evaluations": [],
        "model_version": "3",
        "champion_version": "3" if promoted else "1",
    }
    return {**values, **changes}


def test_airflow_run_url_is_airflow_3s_route_with_quoted_ids() -> None:
    url = notifications.airflow_run_url(
        "https://airflow.example.com/",
        "churn_weekly_retraining",
        "manual__2026-03-01T02:00:00+00:00",
    )
    assert url == (
        "https://airflow.example.com/dags/churn_weekly_retraining/runs/"
        "manual__2026-03-01T02%3A00%3A00%2B00%3A00"
    )


def test_promotion_names_pipeline_versions_reason_metrics_and_links() -> None:
    message = notifications.decision("churn", outcome(True), evaluation(), AIRFLOW_URL)
    assert message is not None and message.event == "promotion"
    assert message.subject == "[churn] version 3 promoted to champion, replacing version 1"
    assert "version 3 of model churn is now the champion (replacing version 1)" in message.text
    assert "Reason: passed: improvement 0.0122" in message.text
    assert "roc_auc on the holdout: candidate 0.8123, champion 0.8001" in message.text
    assert f"Airflow run: {AIRFLOW_URL}\n" in message.text
    assert f"MLflow run: {MLFLOW_URL}\n" in message.text


def test_first_promotion_says_there_was_no_champion() -> None:
    first = outcome(True, replaced_version=None)
    message = notifications.promotion(
        "churn", first, evaluation(champion_version=None, champion_metric=None), AIRFLOW_URL
    )
    assert message.subject == "[churn] version 3 promoted to champion"
    assert "(no champion before)" in message.text
    assert "roc_auc on the holdout: candidate 0.8123\n" in message.text


def test_rejection_keeps_the_champion_and_gives_the_reason() -> None:
    message = notifications.decision("churn", outcome(False), evaluation(), AIRFLOW_URL)
    assert message is not None and message.event == "rejection"
    assert message.subject == "[churn] version 3 rejected: improvement {0.001} < 0.005"
    assert "version 1 stays the champion" in message.text
    assert "Reason: improvement {0.001} < 0.005" in message.text
    gate_said = outcome(False, reason="rejected: roc_auc improvement +0.0000 does not clear 0.005")
    again = notifications.rejection("churn", gate_said, evaluation(), AIRFLOW_URL)
    assert (
        again.subject
        == "[churn] version 3 rejected: roc_auc improvement +0.0000 does not clear 0.005"
    )
    assert "Reason: rejected: roc_auc improvement" in again.text


def test_a_long_reason_is_cut_in_the_subject_and_whole_in_the_text() -> None:
    reason = "re-evaluated against version 4, which replaced version 1 while deciding:\n" + (
        "x" * 200
    )
    moved = outcome(False, reason=reason, superseded_evaluations=[{"champion_version": "1"}])
    message = notifications.rejection("churn", moved, evaluation(), AIRFLOW_URL)
    assert "\n" not in message.subject
    assert len(message.subject) < 120 and message.subject.endswith("…")
    assert reason in message.text
    # the evaluation handed to promote is stale after a re-evaluation: no numbers from it
    assert "on the holdout" not in message.text


def test_a_dry_run_sends_nothing() -> None:
    assert notifications.decision("churn", outcome(False, dry_run=True), evaluation(), "u") is None


def test_drift_gives_share_columns_window_and_links() -> None:
    summary = {
        "drifted_share": 0.4,
        "threshold": 0.3,
        "drifted_columns": [f"c{i}" for i in range(12)],
        "window_start": "2026-03-14T00:00:00+00:00",
        "window_end": "2026-03-15T00:00:00+00:00",
        "champion_version": "1",
        "episode": "churn/champion-v1",
        "report_uri": "runs:/abc/drift/report.html",
        "mlflow_run_url": MLFLOW_URL,
    }
    message = notifications.drift("churn", summary, AIRFLOW_URL)
    assert message.event == "drift"
    assert message.subject == "[churn] drift: 40% of features drifted in 2026-03-14 to 2026-03-15"
    assert "Drifted share: 0.40 (threshold 0.30)" in message.text
    assert "c0, c1, c2, c3, c4, c5, c6, c7, c8, c9 and 2 more" in message.text
    assert "champion version 1" in message.text
    assert f"MLflow run: {MLFLOW_URL}" in message.text


def test_decay_gives_realized_against_expected() -> None:
    event = {
        "metric": "roc_auc",
        "expected": 0.8,
        "realized": 0.7,
        "interval": [0.68, 0.72],
        "window": {"start": "2026-03-01T00:00:00+00:00", "end": "2026-03-15T00:00:00+00:00"},
        "champion_version": "2",
        "labelled_rows": 1200,
        "episode": "churn/champion-v2/performance",
    }
    message = notifications.decay("churn", event, "upper bound below 0.79", AIRFLOW_URL, MLFLOW_URL)
    assert (
        message.subject == "[churn] decay: roc_auc of version 2 realized 0.7000 vs expected 0.8000"
    )
    assert "Realized roc_auc: 0.7000 [0.6800, 0.7200] on 1200 labelled rows" in message.text
    assert "Window: 2026-03-01 to 2026-03-15" in message.text
    assert "Reason: upper bound below 0.79" in message.text


def test_approval_request_links_the_required_action() -> None:
    approve = "http://airflow.test:8080/required_actions"
    message = notifications.approval_requested("churn", evaluation(), approve, AIRFLOW_URL)
    assert message.event == "approval_requested"
    assert message.subject == "[churn] approval requested: version 3 to replace version 1"
    assert f"Approve or reject: {approve}" in message.text
    assert "Gate: passed: improvement 0.0122" in message.text
    assert f"MLflow run: {MLFLOW_URL}" in message.text


def test_failure_names_the_task_and_the_error() -> None:
    message = notifications.failure(
        "churn", "churn_weekly_retraining", "fetch", "manual__1", "OSError: gone\n" * 500, "u"
    )
    assert message.subject == "[churn] task failed: churn_weekly_retraining.fetch"
    assert "Error: OSError: gone" in message.text
    assert len(message.text) < 2000  # the log has the rest


# --------------------------------------------------------------------------- sending


def with_notify(**notify_section: Any) -> PipelineConfig:
    config = find_pipeline("churn")
    return PipelineConfig.model_validate({**config.model_dump(), "notify": notify_section})


def test_email_body_is_escaped_html_with_live_links() -> None:
    body = notify.email_html("Reason: 0.1 < 0.2 & {x}\nMLflow run: http://m/#/runs/1\n")
    assert "0.1 &lt; 0.2 &amp; {x}" in body
    assert '<a href="http://m/#/runs/1">http://m/#/runs/1</a>' in body


def test_slack_text_escapes_its_control_characters() -> None:
    text = notify.slack_text(Message("drift", "[a] <b>", "x & y\n"))
    assert text == "*[a] &lt;b&gt;*\nx &amp; y\n"


def test_nothing_is_sent_without_a_notifier_or_for_an_event_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    message = Message("drift", "s", "t")
    with caplog.at_level(logging.INFO, logger=notify.__name__):
        assert notify.send(find_pipeline("churn"), message, {}) == []
        only_failures = with_notify(email={"to": ["a@example.com"]}, events=["failure"])
        assert notify.send(only_failures, message, {}) == []
    assert caplog.records == []


def test_a_notifier_that_fails_is_a_warning(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_NO_SUCH_SMTP", raising=False)
    config = with_notify(email={"to": ["a@example.com"], "conn_id": "no_such_smtp"})
    with caplog.at_level(logging.WARNING, logger=notify.__name__):
        assert notify.send(config, Message("drift", "the subject", "t"), {}) == []
    [record] = caplog.records
    assert record.levelname == "WARNING"
    assert "notify.email: could not send the drift notification 'the subject'" in record.message


def test_tasks_get_the_failure_callback_only_with_a_notifier() -> None:
    from continuous_training.dag_factory import default_args

    assert "on_failure_callback" not in default_args(find_pipeline("churn"))
    callback = default_args(with_notify(email={"to": ["a@example.com"]}))["on_failure_callback"]
    assert isinstance(callback, notify.NotifyFailure) and callback.pipeline == "churn"


def test_the_factory_loads_no_notifier_provider() -> None:
    """The failure callback is in every task's default_args: DAG files must parse fast.

    (Airflow's providers manager reads every provider's `get_provider_info` by itself.)
    """
    code = (
        "import json, sys\n"
        "import continuous_training.dag_factory\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(("
        "'airflow.providers.smtp.', 'airflow.providers.slack.', 'slack_sdk'))"
        " and not m.endswith('.get_provider_info'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_an_approval_request_that_cannot_be_built_is_a_warning_not_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The approve task asks whatever its notifiers do: a broken message never stops it."""
    from continuous_training.operators.notify import notify_approval_requested

    config = find_pipeline("churn").model_copy(
        update={"notify": NotifyConfig(email={"to": ["a@example.com"]})}
    )
    with caplog.at_level("WARNING"):
        context = {"run_id": "r", "dag_run": SimpleNamespace(dag_id="churn_weekly_retraining")}
        notify_approval_requested(config, {}, "http://ui/approve", context)
    assert "could not notify the approval request: KeyError" in caplog.text
