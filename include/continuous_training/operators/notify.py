"""Send `continuous_training.notifications` messages through Airflow's notifiers.

E-mail goes through the smtp provider's `SmtpNotifier`, Slack through the slack provider's
`SlackNotifier` (API token, a channel) or `SlackWebhookNotifier` (incoming webhook); each
reads its server and secret from the Airflow connection the YAML's `notify` section names.

A notification is news about a decision already recorded: a notifier that fails (server
down, bad connection, provider missing) is a warning in the task's log, never a failed or
retried task. The providers are imported only when something is sent, so that DAG files
(which import `NotifyFailure` through the factory) parse fast.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from continuous_training import notifications
from continuous_training.config import (
    EmailNotifyConfig,
    NotifyConfig,
    PipelineConfig,
    SlackNotifyConfig,
)
from continuous_training.notifications import Message
from continuous_training.operators.base import load_config

__all__ = [
    "NotifyFailure",
    "airflow_base_url",
    "notify_approval_requested",
    "notify_decay",
    "notify_decision",
    "notify_drift",
    "run_url",
    "send",
]

log = logging.getLogger(__name__)

# What Airflow itself links to when `[api] base_url` is unset (the task runner's log_url).
DEFAULT_BASE_URL = "http://localhost:8080"
_URL = re.compile(r"https?://[^\s<>\"]+")


def airflow_base_url() -> str:
    """Airflow's `[api] base_url` (AIRFLOW__API__BASE_URL): where people open the UI."""
    from airflow.sdk.configuration import conf

    return conf.get("api", "base_url", fallback=None) or DEFAULT_BASE_URL


def run_url(context: Mapping[str, Any]) -> str:
    """The Airflow UI page of the context's DAG run."""
    dag_run = context.get("dag_run")
    dag_id = getattr(dag_run, "dag_id", None) or context["ti"].dag_id
    return notifications.airflow_run_url(airflow_base_url(), dag_id, context["run_id"])


def send(config: PipelineConfig, message: Message, context: Mapping[str, Any]) -> list[str]:
    """Send `message` through every configured notifier; the names of those that sent it.

    Nothing is sent for an event left out of `notify.events`. A notifier that fails is
    logged as a warning and skipped: this never raises.
    """
    notify = config.notify
    if not notify.any or message.event not in notify.events:
        log.debug("no notifier for %s: %s", message.event, message.subject)
        return []
    sent = []
    for name, build in _channels(notify):
        try:
            # notify(), not __call__: the call would render our text as a Jinja template,
            # and a reason with braces in it would break it or be changed.
            build(message).notify(context)
        except Exception as exc:
            log.warning(
                "notify.%s: could not send the %s notification %r: %s: %s",
                name,
                message.event,
                message.subject,
                type(exc).__name__,
                exc,
            )
            continue
        log.info("notify.%s: sent %r", name, message.subject)
        sent.append(name)
    return sent


def _channels(notify: NotifyConfig) -> list[tuple[str, Callable[[Message], Any]]]:
    channels: list[tuple[str, Callable[[Message], Any]]] = []
    if notify.email is not None:
        email = notify.email
        channels.append(("email", lambda message: _email(email, message)))
    if notify.slack is not None:
        slack = notify.slack
        channels.append(("slack", lambda message: _slack(slack, message)))
    return channels


def _email(email: EmailNotifyConfig, message: Message) -> Any:
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    return SmtpNotifier(
        to=email.to,
        from_email=email.from_email,
        subject=message.subject,
        html_content=email_html(message.text),
        smtp_conn_id=email.conn_id,
    )


def email_html(text: str) -> str:
    """The smtp hook sends HTML only: the plain text, escaped, its lines kept, links live."""
    escaped = _URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', html.escape(text))
    return f'<pre style="font-family: inherit; white-space: pre-wrap">{escaped}</pre>'


def _slack(slack: SlackNotifyConfig, message: Message) -> Any:
    text = slack_text(message)
    if slack.webhook_conn_id:
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

        return SlackWebhookNotifier(slack_webhook_conn_id=slack.webhook_conn_id, text=text)
    from airflow.providers.slack.notifications.slack import SlackNotifier

    return SlackNotifier(slack_conn_id=slack.conn_id, channel=slack.channel, text=text)


def slack_text(message: Message) -> str:
    """Subject in bold, then the text; `&`, `<`, `>` escaped as Slack's mrkdwn requires."""

    def escape(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    return f"*{escape(message.subject)}*\n{escape(message.text)}"


# --------------------------------------------------------------------------- call sites


def _never_raises(
    what: str, build: Callable[[], Message | None], config: Any, context: Any
) -> None:
    """Build and send one message; whatever goes wrong is a warning, never the task's failure."""
    try:
        message = build()
        if message is not None:
            send(config, message, context)
    except Exception as exc:
        log.warning("could not notify the %s: %s: %s", what, type(exc).__name__, exc)


def notify_decision(
    config: PipelineConfig,
    outcome: Mapping[str, Any],
    evaluation: Mapping[str, Any],
    context: Mapping[str, Any],
) -> None:
    """After promote recorded its decision: promotion or rejection (a dry run sends nothing)."""
    _never_raises(
        "decision",
        lambda: notifications.decision(config.name, outcome, evaluation, run_url(context)),
        config,
        context,
    )


def notify_approval_requested(
    config: PipelineConfig,
    evaluation: Mapping[str, Any],
    approve_url: str,
    context: Mapping[str, Any],
) -> None:
    """Before the approve task waits: what waits, and where to answer it."""
    _never_raises(
        "approval request",
        lambda: notifications.approval_requested(
            config.name, evaluation, approve_url, run_url(context)
        ),
        config,
        context,
    )


def notify_drift(
    config: PipelineConfig, summary: Mapping[str, Any], context: Mapping[str, Any]
) -> None:
    """After the drift event's extra is set: the drift check's summary."""
    _never_raises(
        "drift",
        lambda: notifications.drift(config.name, summary, run_url(context)),
        config,
        context,
    )


def notify_decay(
    config: PipelineConfig,
    decay: Mapping[str, Any],
    event: Mapping[str, Any],
    context: Mapping[str, Any],
) -> None:
    """After the performance event's extra is set: its evidence and check_decay's reason."""
    _never_raises(
        "decay",
        lambda: notifications.decay(
            config.name,
            event,
            str(decay.get("reason") or ""),
            run_url(context),
            decay.get("mlflow_run_url"),
        ),
        config,
        context,
    )


class NotifyFailure:
    """`on_failure_callback` of a pipeline's tasks: the `failure` message.

    Airflow calls it once per task instance, after its last retry (a retry calls
    `on_retry_callback`), so one failed task makes one message. It holds the pipeline's
    name only and reads the YAML when called, like the operators do.
    """

    def __init__(self, pipeline: str):
        self.pipeline = pipeline

    def __repr__(self) -> str:
        return f"NotifyFailure({self.pipeline!r})"

    def __call__(self, context: Mapping[str, Any]) -> None:
        try:
            config = load_config(self.pipeline)
        except Exception as exc:
            log.warning("could not notify the failure: pipeline %s: %s", self.pipeline, exc)
            return
        _never_raises("failure", lambda: _failure(config, context), config, context)


def _failure(config: PipelineConfig, context: Mapping[str, Any]) -> Message:
    ti = context["ti"]
    error = context.get("exception")
    return notifications.failure(
        config.name,
        ti.dag_id,
        ti.task_id,
        context["run_id"],
        f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error),
        run_url(context),
        log_url=getattr(ti, "log_url", None),
    )
