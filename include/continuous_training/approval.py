"""A person's approval of a champion change: whether to ask, what to show, what the answer says.

No Airflow here. The `approve` task (`operators/approval.py`) is the standard provider's
`ApprovalOperator`: it asks on the Required Actions page and in the REST API, waits, and hands
the response to `promote`, which reads it with `answer_from_response`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from continuous_training.config import APPROVAL_COMMENT, PipelineConfig
from continuous_training.promotion import CARD_PATH, RunOptions

# The ApprovalOperator's two fixed options.
APPROVE = "Approve"
REJECT = "Reject"
COMMENT_PARAM = APPROVAL_COMMENT

TAG_APPROVAL = "ct.approval"  # approved | rejected | timed_out
TAG_APPROVED_BY = "ct.approved_by"
TAG_REJECTED_BY = "ct.rejected_by"
TAG_APPROVAL_COMMENT = "ct.approval_comment"


@dataclass(frozen=True)
class Answer:
    """What came back from the person (or from the clock)."""

    approved: bool
    by: str | None  # the user's name as the auth manager gave it; None when nobody answered
    comment: str = ""
    at: str | None = None  # ISO 8601
    timed_out: bool = False

    @property
    def state(self) -> str:
        if self.approved:
            return "approved"
        return "timed_out" if self.timed_out else "rejected"

    def tags(self) -> dict[str, str]:
        """The decision tags of the answer (`ct.approved_by` on an approval)."""
        tags = {TAG_APPROVAL: self.state}
        if self.by:
            tags[TAG_APPROVED_BY if self.approved else TAG_REJECTED_BY] = self.by
        if self.comment:
            tags[TAG_APPROVAL_COMMENT] = self.comment[:4900]  # MLflow caps tag values
        return tags

    def rejection_reason(self, timeout_hours: float) -> str:
        if self.timed_out:
            return f"not approved in time: no answer within {timeout_hours:g} h (approval)"
        if self.by is None:
            return "approval is required but no answer was recorded (the approve task has none)"
        why = f": {self.comment}" if self.comment else " (no reason given)"
        return f"rejected by {self.by}{why}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "state": self.state}


NO_ANSWER = Answer(approved=False, by=None)


def skip_reason(config: PipelineConfig, evaluation: Mapping[str, Any], options: RunOptions) -> str:
    """Why nobody needs to be asked; empty when a person must approve this change."""
    if not config.approval.required:
        return "approval.required is false"
    if options.dry_run:
        return "a dry run never promotes"
    if not evaluation["gate_passed"] and not options.force_promote:
        return f"the gate rejected the candidate ({evaluation['gate_reason']})"
    return ""


def answer_from_response(response: Mapping[str, Any]) -> Answer:
    """The approve task's result (the HITL response: option, form input, who, when)."""
    chosen = list(response.get("chosen_options") or [])
    params = response.get("params_input") or {}
    user = response.get("responded_by_user") or {}
    at = response.get("responded_at")
    return Answer(
        approved=chosen == [APPROVE],
        by=(user.get("name") or user.get("id")) if user else None,
        comment=str(params.get(COMMENT_PARAM) or "").strip(),
        at=at.isoformat() if isinstance(at, datetime) else (str(at) if at else None),
        timed_out=bool(response.get("timed_out")),
    )


def subject(config: PipelineConfig, evaluation: Mapping[str, Any]) -> str:
    champion = evaluation.get("champion_version")
    over = f"over version {champion}" if champion else "as the first champion"
    return f"{config.name}: promote version {evaluation['model_version']} {over}?"


def body(
    config: PipelineConfig,
    evaluation: Mapping[str, Any],
    record: Mapping[str, Any],
    options: RunOptions,
) -> str:
    """Markdown for the Required Actions page: the evidence a person needs to decide."""
    run_url = evaluation.get("mlflow_run_url") or ""
    parts = [
        _headline(config, evaluation),
        _metrics_table(config, record),
        _interval(config, record),
        _checks(record),
        _data(record),
    ]
    if options.force_promote:
        parts.append(f"**Forced by a manual trigger**: {options.reason.strip()}")
    if run_url:
        parts.append(f"[Model card]({run_url}/artifacts/{CARD_PATH}) · [MLflow run]({run_url})")
    champion = evaluation.get("champion_version")
    keeps = f"keeps version {champion}" if champion else "leaves the model without a champion"
    parts.append(
        f"**Approve** promotes it; **Reject** {keeps} (say why in *{COMMENT_PARAM}*). "
        f"No answer within {config.approval.timeout_hours:g} h rejects it."
    )
    return "\n\n".join(p for p in parts if p)


def _headline(config: PipelineConfig, evaluation: Mapping[str, Any]) -> str:
    champion = evaluation.get("champion_version")
    replaces = f"would replace version {champion}" if champion else "would be the first"
    return (
        f"**{config.name}** (`{config.model_name}`): version {evaluation['model_version']} "
        f"{replaces} as `champion`. Gate: {evaluation['gate_reason']}"
    )


def _metrics_table(config: PipelineConfig, record: Mapping[str, Any]) -> str:
    challenger = record.get("challenger") or {}
    champion = record.get("champion") or {}
    ours, theirs = challenger.get("metrics") or {}, champion.get("metrics") or {}
    if not ours:
        return ""
    primary = config.gates.primary_metric
    head = f"| metric | candidate (v{challenger.get('version')}) |"
    rule = "|---|---:|"
    if theirs:
        head += f" champion (v{champion.get('version')}) |"
        rule += "---:|"
    rows = [head, rule]
    for name in sorted(ours, key=lambda n: (n != primary, n)):
        label = f"**{name}** (primary)" if name == primary else name
        row = f"| {label} | {_num(ours[name])} |"
        if theirs:
            row += f" {_num(theirs.get(name))} |"
        rows.append(row)
    return "\n".join(rows)


def _interval(config: PipelineConfig, record: Mapping[str, Any]) -> str:
    boot = record.get("bootstrap")
    if not boot:
        return "No champion to compare with: the gate judged the candidate on its own."
    return (
        f"Improvement in {boot['metric']}: {boot['observed_diff']:+.4f}, "
        f"{boot['confidence']:.0%} interval [{boot['low']:+.4f}, {boot['high']:+.4f}] "
        f"({boot['resamples']} paired bootstrap resamples); the lower bound must clear "
        f"{config.gates.min_improvement:g}."
    )


def _checks(record: Mapping[str, Any]) -> str:
    checks = (record.get("gate") or {}).get("checks") or []
    lines = [f"- {'✅' if c['passed'] else '❌'} **{c['name']}**: {c['detail']}" for c in checks]
    return "Gate checks and guardrails:\n\n" + "\n".join(lines) if lines else ""


def _data(record: Mapping[str, Any]) -> str:
    train, holdout = record.get("train") or {}, record.get("holdout") or {}
    if not train and not holdout:
        return ""
    return (
        f"Data: trained on {_window(train)} ({train.get('rows', '?')} rows); "
        f"holdout {_window(holdout)} ({holdout.get('rows', '?')} rows)."
    )


def _window(part: Mapping[str, Any]) -> str:
    """`[start, end)` as dates: the interval a person reads, not timestamps."""
    window = part.get("window") or []
    if len(window) != 2:
        return "?"
    return " to ".join(str(end)[:10] for end in window)


def _num(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.4f}"
