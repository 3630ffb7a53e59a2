"""The decisions ledger and the demo's story lines, as a user reads them."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from continuous_training.cli import reason_lines

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
