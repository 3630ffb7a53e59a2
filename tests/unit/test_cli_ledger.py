"""The decisions ledger and the demo's story lines, as a user reads them."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from types import ModuleType, SimpleNamespace

from continuous_training import ledger, registry
from continuous_training.cli import ledger_lines, reason_lines

ROOT = Path(__file__).resolve().parents[2]


def _demo_story() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_story", ROOT / "scripts" / "demo_story.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_reason_reads_one_clause_a_line_with_rollback_notes_whole() -> None:
    reason = (
        "passed: roc_auc 0.8002 >= floor 0.65; latency 7.0 ms/1k <= budget 500"
        " [restored by rollback manual__1: v2 misbehaves; see the CRM]"
    )
    assert reason_lines(reason) == [
        "passed: roc_auc 0.8002 >= floor 0.65",
        "latency 7.0 ms/1k <= budget 500",
        "[restored by rollback manual__1: v2 misbehaves; see the CRM]",
    ]


# 2026-03-02T10:00:00Z in MLflow's milliseconds: the registry's last update of a version
LAST_UPDATED_MS = 1_772_445_600_000


def _version(number: int, **tags: str) -> SimpleNamespace:
    """What the ledger reads of MLflow's ModelVersion."""
    return SimpleNamespace(version=number, tags=tags, last_updated_timestamp=LAST_UPDATED_MS)


def test_the_ledger_shows_when_each_decision_was_made() -> None:
    decided = {
        registry.TAG_DECISION: "promoted",
        registry.TAG_DECIDED_AT: "2026-03-08T02:04:05+00:00",
        registry.TAG_TRIGGER: "schedule",
        registry.TAG_REPLACED: "1",
        registry.TAG_RUN_ID: "scheduled__2026-03-08",
        registry.TAG_REASON: "passed: roc_auc 0.81 >= floor 0.65",
        registry.TAG_DEMOTED_BY: "manual__rb",
        registry.TAG_DEMOTED_REASON: "bad",
        registry.TAG_DEMOTED_AT: "2026-03-09T08:00:00+00:00",
    }
    # version 1 was recorded before ct.decided_at; version 3 has no decision yet
    older = {registry.TAG_DECISION: "promoted", registry.TAG_REASON: "first model"}
    rows = [
        ledger.row_of(_version(1, **older), champion="1"),
        ledger.row_of(_version(2, **decided), champion="1"),
        ledger.row_of(_version(3), champion="1"),
    ]
    lines = ledger_lines("churn", "http://mlflow", rows)
    assert (
        lines[0]
        == "registered model churn at http://mlflow: 3 versions, the champion (*) is version 1"
    )
    assert lines[2] == (
        "      decided at 2026-03-02T10:00:00+00:00 (no ct.decided_at: the version's last "
        "update in MLflow)"
    )
    block = lines[lines.index("  version 2     promoted  trigger schedule  replaced version 1") :]
    assert block[1:5] == [
        "      decided at 2026-03-08T02:04:05+00:00",
        "      Airflow run scheduled__2026-03-08",
        "      passed: roc_auc 0.81 >= floor 0.65",
        "      [rolled back by manual__rb at 2026-03-09T08:00:00+00:00: bad]",
    ]
    assert "      no decision recorded; last updated 2026-03-02T10:00:00+00:00" in lines


def test_a_rollback_is_a_decision_of_its_own_in_time_order() -> None:
    restored = _version(
        1,
        **{
            registry.TAG_DECISION: "promoted",
            registry.TAG_DECIDED_AT: "2026-03-01T02:00:00+00:00",
            f"{registry.TAG_ROLLBACK}airflow_run_id": "manual__rb",
            f"{registry.TAG_ROLLBACK}decision_reason": "v2 misbehaves",
            f"{registry.TAG_ROLLBACK}decided_at": "2026-03-09T08:00:00+00:00",
            f"{registry.TAG_ROLLBACK}replaced_version": "2",
        },
    )
    demoted = _version(
        2,
        **{
            registry.TAG_DECISION: "promoted",
            registry.TAG_DECIDED_AT: "2026-03-08T02:00:00+00:00",
            registry.TAG_DRY_RUN: "true",
        },
    )
    found = sorted(
        [*ledger.decisions_of(restored, 0.8), *ledger.decisions_of(demoted, 0.9)],
        key=lambda d: d.decided_at,
    )
    assert [(d.version, d.decision, d.served) for d in found] == [
        ("1", "promoted", True),
        ("2", "promoted", False),  # a dry run served nothing
        ("1", ledger.ROLLBACK, True),
    ]
    assert found[2].reason == "v2 misbehaves" and found[2].replaced_version == "2"
    assert [d.version for d in ledger.champion_over_time(found)] == ["1", "1"]


def test_a_summary_that_cannot_be_written_is_a_warning_not_a_failure(make_config, caplog) -> None:
    """After a decision: the ledger run is a view, an MLflow outage must not fail the task."""
    unreachable = "http://127.0.0.1:9"  # discard port: nothing listens
    with caplog.at_level(logging.WARNING, logger="continuous_training.ledger"):
        assert ledger.log_summary(make_config(), unreachable) is None
    [record] = caplog.records
    assert "ledger summary of churn was not written" in record.getMessage()
    assert unreachable in record.getMessage()


def test_story_lines_have_no_lists_no_long_floats_and_shares_as_percentages() -> None:
    tidy = _demo_story().tidy
    line = (
        "] drift event emitted: drifted share 0.86 (threshold 0.30) in ['tenure_months', 'region']"
        "; roc_auc improvement +0.1044, 95% CI [0.0860, 0.1230] on 2026-03-15T00:00:00+00:00"
        " by manual__2026-12-02T05:44:19.580475+00:00 [airflow.task] loc=x.py:1"
    )
    assert tidy(line) == (
        "drift event emitted: drifted share 86% (threshold 30%) in tenure_months, region"
        "; roc_auc improvement +0.104, 95% CI [0.086, 0.123] on 2026-03-15"
        " by manual__2026-12-02T05:44:19.580475+00:00"
    )


def test_story_prints_each_match_once_in_log_order() -> None:
    story = _demo_story().story
    log = ["a published 300 rows", "b scoring x", "c published 300 rows"]
    assert list(story(log, r"published \d+ rows|scoring \w+")) == [
        "published 300 rows",
        "scoring x",
    ]
