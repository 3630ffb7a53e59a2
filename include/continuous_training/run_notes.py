"""The outcome of a run in a few lines: what the Airflow run's note says.

A retraining run's note names the decision, the versions, the data window and the reason; a
batch inference run's, the model, the rows, the dates and the drift share. Tasks hand their
note to Airflow under `NOTE_KEY` (`PipelineOperator.write_note`); when the run ends, the
listener in `operators/run_notes.py` writes it onto the run, where the Runs list and the run's
page show it. No Airflow here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

NOTE_KEY = "ct_run_note"
# Airflow's note column holds up to 1,000 characters.
MAX_NOTE = 1000
# How our notes begin, so that a re-run replaces ours and keeps a person's.
MARKS = ("**PROMOTED**", "**REJECTED**", "**DRY RUN**", "**SKIPPED**", "**SCORED**")
MARKS += ("**ROLLED BACK**", "**FAILED**")
# Between a person's note and ours.
SEPARATOR = "\n\n---\n\n"


def clip(text: str) -> str:
    return text if len(text) <= MAX_NOTE else text[: MAX_NOTE - 1] + "…"


def retraining(promotion: Mapping[str, Any], evaluation: Mapping[str, Any], window: str) -> str:
    """**PROMOTED** version 5 (replaces 4) / **REJECTED** version 5 (champion stays 4)."""
    version = promotion["model_version"]
    champion = promotion.get("champion_version")
    if promotion.get("promoted"):
        replaced = promotion.get("replaced_version")
        head = f"**PROMOTED** version {version}" + (
            f" (replaces version {replaced})" if replaced else " (the first champion)"
        )
    else:
        kind = "DRY RUN" if promotion.get("dry_run") else "REJECTED"
        stays = f"champion stays version {champion}" if champion else "no champion yet"
        head = f"**{kind}** version {version} ({stays})"
    metric = _metric_line(evaluation)
    data = f"Data {window}; trigger {promotion.get('trigger', '?')}"
    lines = [head, f"{metric}. {data}" if metric else data, f"Reason: {promotion['reason']}"]
    return clip("\n\n".join(line for line in lines if line))


def _metric_line(evaluation: Mapping[str, Any]) -> str:
    name = evaluation.get("primary_metric")
    ours = evaluation.get("challenger_metric")
    if not name or ours is None:
        return ""
    theirs = evaluation.get("champion_metric")
    versus = f" vs champion {theirs:.4f}" if theirs is not None else ""
    return f"{name} {ours:.4f}{versus} on the same holdout"


def skipped(reason: str) -> str:
    return clip(f"**SKIPPED**: {reason}")


def inference(
    pinned: Mapping[str, Any], published: Mapping[str, Any], summary: Mapping[str, Any]
) -> str:
    """Scored rows by which version, over which interval, and what drift saw."""
    rows = published.get("rows")
    scored = f"**SCORED** {rows:,} rows" if isinstance(rows, int) else "**SCORED**"
    window = f"{str(pinned.get('window_start'))[:16]} to {str(pinned.get('window_end'))[:16]}"
    head = f"{scored} with version {pinned.get('champion_version', '?')}, {window}"
    return clip(f"{head}\n\n{_drift_line(summary)}")


def _drift_line(summary: Mapping[str, Any]) -> str:
    share = summary.get("drifted_share")
    if share is None:
        return f"Drift: not measured ({summary.get('skipped', 'no verdict')})"
    threshold = summary.get("threshold")
    versus = f" (threshold {threshold:.0%})" if threshold is not None else ""
    verdict = "a drift event follows" if summary.get("breach") else "no drift event"
    line = f"Drift: {share:.0%} of the features drifted{versus}: {verdict}"
    columns = list(summary.get("drifted_columns") or [])
    if columns:
        line += "; " + ", ".join(map(str, columns[:8])) + (" …" if len(columns) > 8 else "")
    return line


def rollback(outcome: Mapping[str, Any], reason: str) -> str:
    return clip(
        f"**ROLLED BACK** champion to version {outcome['champion']} "
        f"(from version {outcome['replaced_version']})\n\nReason: {reason}"
    )


def failed(task_ids: list[str]) -> str:
    tasks = ", ".join(sorted(task_ids)) or "a task"
    return clip(f"**FAILED** at {tasks}: its log says why")
