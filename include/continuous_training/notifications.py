"""The messages people get when the pipeline decides something: plain text, short, linked.

Each builder takes plain values (a contract from `continuous_training.contracts`, names,
URLs) and returns a `Message`; `continuous_training.operators.notify` sends it through the
notifiers of the YAML's `notify` section. No Airflow here: the Airflow run's URL is built
from the `[api] base_url` that the caller reads.

A message names the pipeline, the model versions and the reason, and links to the Airflow
run and the MLflow run, so that the reader can act without searching for either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

__all__ = [
    "Message",
    "airflow_run_url",
    "approval_requested",
    "decay",
    "decision",
    "drift",
    "failure",
    "promotion",
    "rejection",
]

# A subject is read in a list of mails or a Slack preview: a long reason is cut there and
# given whole in the text.
SUBJECT_REASON_CHARS = 80
# A failure's error is a pointer to the log, not the log: its traceback stays in Airflow.
ERROR_CHARS = 1500
COLUMNS_LISTED = 10


@dataclass(frozen=True)
class Message:
    """One notification: which event it is (a `notify.events` name), a subject, the text."""

    event: str
    subject: str
    text: str


def airflow_run_url(base_url: str, dag_id: str, run_id: str) -> str:
    """The run's page in the Airflow 3 UI: `<base_url>/dags/<dag_id>/runs/<run_id>`.

    Run ids hold `+` and `:` (`manual__2026-03-01T02:00:00+00:00`); quoted, a mail client
    or Slack cannot cut the link short or turn `+` into a space.
    """
    return f"{base_url.rstrip('/')}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def decision(
    pipeline: str,
    outcome: Mapping[str, Any],
    evaluation: Mapping[str, Any],
    airflow_run_url: str,
) -> Message | None:
    """The message of a promote task's outcome (a `Promotion`); None for a dry run.

    A dry run changes nothing and was started by the person who would read the message:
    the decision it recorded is in the task's XCom and on the model version.
    """
    if outcome.get("dry_run"):
        return None
    build = promotion if outcome.get("promoted") else rejection
    return build(pipeline, outcome, evaluation, airflow_run_url)


def promotion(
    pipeline: str,
    outcome: Mapping[str, Any],
    evaluation: Mapping[str, Any],
    airflow_run_url: str,
) -> Message:
    """A candidate became the champion (`outcome` is the `Promotion` promote returned)."""
    version, replaced = outcome["model_version"], outcome.get("replaced_version")
    subject = f"[{pipeline}] version {version} promoted to champion" + (
        f", replacing version {replaced}" if replaced else ""
    )
    lines = [
        f"Pipeline {pipeline}: version {version} of model {evaluation['model_name']} "
        f"is now the champion ({_replaced(replaced)}).",
        f"Trigger: {outcome.get('trigger')}",
        f"Reason: {outcome['reason']}",
        *_metrics(outcome, evaluation),
        *_links(airflow_run_url, evaluation.get("mlflow_run_url")),
    ]
    return _message("promotion", subject, lines)


def rejection(
    pipeline: str,
    outcome: Mapping[str, Any],
    evaluation: Mapping[str, Any],
    airflow_run_url: str,
) -> Message:
    """A candidate was not promoted; the champion stays, and the reason says why."""
    version, reason = outcome["model_version"], str(outcome["reason"])
    # The gate's reason starts with its verdict, which the subject already says.
    short = _cut(reason.removeprefix("rejected: "), SUBJECT_REASON_CHARS)
    subject = f"[{pipeline}] version {version} rejected: {short}"
    kept = outcome.get("champion_version")
    lines = [
        f"Pipeline {pipeline}: version {version} of model {evaluation['model_name']} was "
        f"not promoted; "
        + (f"version {kept} stays the champion." if kept else "there is no champion."),
        f"Trigger: {outcome.get('trigger')}",
        f"Reason: {reason}",
        *_metrics(outcome, evaluation),
        *_links(airflow_run_url, evaluation.get("mlflow_run_url")),
    ]
    return _message("rejection", subject, lines)


def drift(pipeline: str, summary: Mapping[str, Any], airflow_run_url: str) -> Message:
    """Batch inference saw drift past the thresholds (`summary` is check_drift's DriftSummary)."""
    share = float(summary["drifted_share"])
    window = _window(summary.get("window_start"), summary.get("window_end"))
    subject = f"[{pipeline}] drift: {share:.0%} of features drifted in {window}"
    lines = [
        f"Pipeline {pipeline}: the inputs scored by champion version "
        f"{summary.get('champion_version')} drifted from its training data.",
        f"Window: {window}",
        f"Drifted share: {share:.2f} (threshold {float(summary['threshold']):.2f})",
        f"Drifted columns: {_columns(summary.get('drifted_columns') or [])}",
        f"Episode: {summary.get('episode')}; {pipeline}_drift_retraining runs on this event "
        f"unless the episode was already handled or is inside the cooldown.",
        f"Report: {summary.get('report_uri')}",
        *_links(airflow_run_url, summary.get("mlflow_run_url")),
    ]
    return _message("drift", subject, lines)


def decay(
    pipeline: str,
    event: Mapping[str, Any],
    reason: str,
    airflow_run_url: str,
    mlflow_run_url: str | None = None,
) -> Message:
    """The champion's realized metric decayed (`event` is the PerformanceEventExtra)."""
    metric, version = event["metric"], event["champion_version"]
    realized, expected = _number(event.get("realized")), _number(event.get("expected"))
    subject = (
        f"[{pipeline}] decay: {metric} of version {version} realized {realized} "
        f"vs expected {expected}"
    )
    window = event.get("window") or {}
    lines = [
        f"Pipeline {pipeline}: the realized {metric} of champion version {version} has "
        f"decayed past the tolerance.",
        f"Window: {_window(window.get('start'), window.get('end'))}",
        f"Realized {metric}: {realized} {_interval(event.get('interval'))} on "
        f"{event.get('labelled_rows')} labelled rows; expected {expected}",
        f"Reason: {reason}",
        f"Episode: {event.get('episode')}; {pipeline}_drift_retraining runs on this event "
        f"unless the episode was already handled or is inside the cooldown.",
        *_links(airflow_run_url, mlflow_run_url),
    ]
    return _message("decay", subject, lines)


def approval_requested(
    pipeline: str,
    evaluation: Mapping[str, Any],
    approve_url: str,
    airflow_run_url: str,
) -> Message:
    """A candidate waits for a person to approve it (`evaluation` is an `Evaluation`)."""
    version, champion = evaluation["model_version"], evaluation.get("champion_version")
    subject = f"[{pipeline}] approval requested: version {version} to replace " + (
        f"version {champion}" if champion else "no champion"
    )
    lines = [
        f"Pipeline {pipeline}: version {version} of model {evaluation['model_name']} "
        f"waits for approval to become the champion ({_replaced(champion)}).",
        f"Gate: {evaluation.get('gate_reason')}",
        *_metrics({}, evaluation),
        f"Approve or reject: {approve_url}",
        *_links(airflow_run_url, evaluation.get("mlflow_run_url")),
    ]
    return _message("approval_requested", subject, lines)


def failure(
    pipeline: str,
    dag_id: str,
    task_id: str,
    run_id: str,
    error: str,
    airflow_run_url: str,
    log_url: str | None = None,
) -> Message:
    """A task failed for good (after its last retry); its log has the traceback."""
    subject = f"[{pipeline}] task failed: {dag_id}.{task_id}"
    lines = [
        f"Pipeline {pipeline}: task {task_id} of {dag_id} failed (run {run_id}).",
        f"Error: {_cut(error.strip(), ERROR_CHARS)}",
        *_links(airflow_run_url, None),
        *([f"Task log: {log_url}"] if log_url else []),
    ]
    return _message("failure", subject, lines)


# --------------------------------------------------------------------------- pieces


def _links(airflow_run_url: str, mlflow_run_url: str | None) -> list[str]:
    return [f"Airflow run: {airflow_run_url}"] + (
        [f"MLflow run: {mlflow_run_url}"] if mlflow_run_url else []
    )


def _metrics(outcome: Mapping[str, Any], evaluation: Mapping[str, Any]) -> list[str]:
    """The primary metric of both models on the holdout, when these numbers are current.

    After a re-evaluation (the champion moved while deciding) the evaluation handed to
    promote is stale; the reason then carries the new verdict, so no stale numbers are shown.
    """
    if outcome.get("superseded_evaluations") or evaluation.get("challenger_metric") is None:
        return []
    metric = evaluation.get("primary_metric")
    challenger = _number(evaluation.get("challenger_metric"))
    champion = evaluation.get("champion_metric")
    against = f", champion {_number(champion)}" if champion is not None else ""
    return [f"{metric} on the holdout: candidate {challenger}{against}"]


def _replaced(version: Any) -> str:
    return f"replacing version {version}" if version else "no champion before"


def _window(start: Any, end: Any) -> str:
    """Dates only: windows are whole days."""
    if start and end:
        return f"{str(start)[:10]} to {str(end)[:10]}"
    return f"the window ending {str(end)[:10]}" if end else "the run's window"


def _columns(columns: Sequence[str]) -> str:
    shown = ", ".join(columns[:COLUMNS_LISTED])
    more = len(columns) - COLUMNS_LISTED
    return shown + (f" and {more} more" if more > 0 else "") if columns else "none"


def _interval(interval: Any) -> str:
    if not interval or any(bound is None for bound in interval):
        return ""
    low, high = interval
    return f"[{_number(low)}, {_number(high)}]"


def _number(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.4f}"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _message(event: str, subject: str, lines: Sequence[str]) -> Message:
    """A subject is one line (a newline in a mail header would end it); the text ends in one."""
    return Message(event, " ".join(subject.split()), "\n".join(lines) + "\n")
