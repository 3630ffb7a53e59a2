"""A person's approval: when it is asked, what it shows, and what each answer decides."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from continuous_training import approval, registry
from continuous_training.approval import Answer, answer_from_response, skip_reason
from continuous_training.config import ConfigError, PipelineConfig, find_pipeline, parse_pipeline
from continuous_training.promotion import RunOptions, decide
from tests.unit.decisions import evaluated, run

TIMEOUT = 48.0


def pipeline(required: bool = True, **approval_section: Any) -> PipelineConfig:
    data = find_pipeline("churn").model_dump(exclude={"source_file"}, exclude_none=True)
    data["approval"] = {"required": required, "timeout_hours": TIMEOUT, **approval_section}
    return parse_pipeline(data)


# --------------------------------------------------------------------------- the YAML


def test_assigned_users_take_a_name_or_an_id_and_a_name() -> None:
    config = pipeline(assigned_users=["alice", {"id": "7", "name": "Bob"}])
    assert [u.model_dump() for u in config.approval.assigned_users] == [
        {"id": "alice", "name": "alice"},
        {"id": "7", "name": "Bob"},
    ]


@pytest.mark.parametrize(
    ("section", "key"),
    [({"timeout_hours": 0}, "timeout_hours"), ({"assigned_users": [""]}, "assigned_users")],
)
def test_a_bad_approval_section_names_its_key(section: dict[str, Any], key: str) -> None:
    with pytest.raises((ConfigError, ValueError), match=key):
        pipeline(**section)


# --------------------------------------------------------------------------- when to ask


def test_a_winner_needs_approval_when_required() -> None:
    assert skip_reason(pipeline(), evaluated(True), RunOptions()) == ""


@pytest.mark.parametrize(
    ("required", "passed", "options", "why"),
    [
        (False, True, RunOptions(), "approval.required is false"),
        (True, False, RunOptions(), "the gate rejected"),
        (True, True, RunOptions(dry_run=True), "dry run"),
    ],
)
def test_nobody_is_asked_when_nothing_would_change(
    required: bool, passed: bool, options: RunOptions, why: str
) -> None:
    assert why in skip_reason(pipeline(required), evaluated(passed), options)


def test_a_forced_candidate_that_failed_the_gate_still_needs_approval() -> None:
    forced = RunOptions(force_promote=True, reason="hotfix")
    assert skip_reason(pipeline(), evaluated(False), forced) == ""


# --------------------------------------------------------------------------- the answer


def response(option: str, user: str | None = "alice", comment: Any = None, **extra: Any) -> dict:
    return {
        "chosen_options": [option],
        "params_input": {"comment": comment},
        "responded_by_user": {"id": user, "name": user} if user else None,
        "responded_at": datetime(2026, 3, 9, 8, 30, tzinfo=UTC),
        **extra,
    }


def test_an_approval_is_read_with_who_and_when() -> None:
    answer = answer_from_response(response("Approve", comment=" fine "))
    assert answer == Answer(
        approved=True, by="alice", comment="fine", at="2026-03-09T08:30:00+00:00"
    )
    assert answer.tags() == {
        approval.TAG_APPROVAL: "approved",
        approval.TAG_APPROVED_BY: "alice",
        approval.TAG_APPROVAL_COMMENT: "fine",
    }


def test_the_timeouts_default_answer_is_not_approved_in_time() -> None:
    answer = answer_from_response(response("Reject", user=None, timed_out=True))
    assert (answer.approved, answer.timed_out, answer.by) == (False, True, None)
    assert answer.tags() == {approval.TAG_APPROVAL: "timed_out"}
    assert answer.rejection_reason(TIMEOUT).startswith(
        "not approved in time: no answer within 48 h"
    )


# --------------------------------------------------------------------------- the decision


def test_an_approved_winner_is_promoted_with_the_approver_in_its_tags() -> None:
    answer = answer_from_response(response("Approve", comment="looks right"))
    decision = decide(evaluated(True), RunOptions(), run(), answer, TIMEOUT)
    assert decision.promote and decision.decision == registry.PROMOTED
    assert decision.replaced_version == "3"
    assert decision.reason.endswith("; approved by alice: looks right")
    assert decision.tags()[approval.TAG_APPROVED_BY] == "alice"


def test_a_rejected_winner_is_recorded_rejected_with_who_and_why() -> None:
    answer = answer_from_response(response("Reject", user="bob", comment="wait for the audit"))
    decision = decide(evaluated(True), RunOptions(), run(), answer, TIMEOUT)
    assert not decision.promote and decision.decision == registry.REJECTED
    assert decision.reason.startswith("rejected by bob: wait for the audit (gate: passed")
    tags = decision.tags()
    assert tags[approval.TAG_REJECTED_BY] == "bob"
    assert registry.TAG_REPLACED not in tags


def test_a_forced_promotion_without_an_answer_is_not_promoted() -> None:
    forced = RunOptions(force_promote=True, reason="hotfix")
    decision = decide(evaluated(False), forced, run(), approval.NO_ANSWER, TIMEOUT)
    assert not decision.promote
    assert "no answer was recorded" in decision.reason


def test_an_answer_never_promotes_what_the_gate_rejected() -> None:
    answer = answer_from_response(response("Approve"))
    decision = decide(evaluated(False), RunOptions(), run(), answer, TIMEOUT)
    assert not decision.promote


# --------------------------------------------------------------------------- what is shown


def record() -> dict[str, Any]:
    return {
        "challenger": {"version": "4", "metrics": {"roc_auc": 0.83, "log_loss": 0.41}},
        "champion": {"version": "3", "metrics": {"roc_auc": 0.80, "log_loss": 0.43}},
        "bootstrap": {
            "metric": "roc_auc",
            "observed_diff": 0.03,
            "low": 0.012,
            "high": 0.047,
            "confidence": 0.95,
            "resamples": 1000,
        },
        "gate": {
            "checks": [
                {"name": "floor", "passed": True, "detail": "roc_auc 0.83 >= 0.65"},
                {"name": "guardrail log_loss", "passed": True, "detail": "0.41 <= 0.45"},
            ]
        },
        "train": {
            "window": ["2026-02-08T00:00:00+00:00", "2026-03-01T00:00:00+00:00"],
            "rows": 6300,
        },
        "holdout": {
            "window": ["2026-03-01T00:00:00+00:00", "2026-03-08T00:00:00+00:00"],
            "rows": 2100,
        },
    }


def test_the_body_shows_both_models_the_interval_the_guardrails_and_the_links() -> None:
    url = "http://mlflow:5000/#/experiments/1/runs/abc"
    body = approval.body(
        pipeline(), {**evaluated(True), "mlflow_run_url": url}, record(), RunOptions()
    )
    assert "| **roc_auc** (primary) | 0.8300 | 0.8000 |" in body
    assert "| log_loss | 0.4100 | 0.4300 |" in body
    assert "95% interval [+0.0120, +0.0470]" in body
    assert "✅ **guardrail log_loss**: 0.41 <= 0.45" in body
    assert "holdout 2026-03-01 to 2026-03-08 (2100 rows)" in body
    assert f"[Model card]({url}/artifacts/evaluation/model_card.md)" in body
    assert f"[MLflow run]({url})" in body
    assert "keeps version 3" in body and "within 48 h" in body


def test_the_subject_names_both_versions() -> None:
    assert (
        approval.subject(pipeline(), evaluated(True)) == "churn: promote version 4 over version 3?"
    )
    first = approval.subject(pipeline(), evaluated(True, champion=None))
    assert first == "churn: promote version 4 as the first champion?"


def test_an_answer_without_a_form_or_a_name_is_read_all_the_same() -> None:
    """What a script's PATCH may send: no params_input; an auth manager's user with an id only."""
    bare = {"chosen_options": ["Reject"], "responded_by_user": {"id": "42"}, "responded_at": None}
    answer = answer_from_response(bare)
    assert (answer.approved, answer.by, answer.comment, answer.at) == (False, "42", "", None)
    assert answer.rejection_reason(TIMEOUT) == "rejected by 42 (no reason given)"


def test_a_long_multiline_comment_fits_mlflows_tag_limit() -> None:
    comment = "line one\n" + "x" * 6000
    answer = answer_from_response(response("Approve", comment=comment))
    assert len(answer.tags()[approval.TAG_APPROVAL_COMMENT]) == 4900
    decision = decide(evaluated(True), RunOptions(), run(), answer, TIMEOUT)
    assert len(decision.tags()[registry.TAG_REASON]) <= 4900
