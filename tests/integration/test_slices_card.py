"""End to end: a pipeline with gates.slices writes the Slices, Fairness and Explanations
sections and the permutation importance plot, from the real weekly retraining DAG."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.integration.dag_runs import run_dag, task_states, versions, write_pipeline

pytestmark = pytest.mark.integration

WEEK_1 = datetime(2026, 3, 1, 2, tzinfo=UTC)
AFTER_DRIFT = datetime(2026, 3, 15, 2, tzinfo=UTC)


def test_slices_fairness_and_explanations_reach_the_card(client) -> None:
    write_pipeline(
        "churn_slices",
        gates={
            "slices": {
                "columns": ["region", "plan"],
                "min_rows": 200,
                "tolerance": 0.02,
                "sensitive": ["region"],
            },
            "explanations": {"n_repeats": 3},
        },
    )
    for when in (WEEK_1, AFTER_DRIFT):
        run = run_dag("churn_slices_weekly_retraining", when)
        assert str(run.state) == "success", task_states(run)
    first, second = versions(client, "churn_slices")

    card = Path(client.download_artifacts(second.run_id, "evaluation/model_card.md")).read_text()
    print(card)  # the sections, for whoever reads the test's output
    for section in ("## Slices\n", "## Fairness\n", "## Explanations\n"):
        assert section in card
    for group in ("| region | north |", "| region | south |", "| plan | basic |"):
        assert group in card
    assert "| judged | pass: CI" in card or "| judged | **FAIL**" in card
    assert "- sensitive columns: `region`" in card
    assert "- challenger: largest gap between groups" in card
    assert "- champion: largest gap between groups" in card
    assert "Changed most between champion and challenger:" in card
    assert "`slices`:" in card  # a check of the decision

    record = json.loads(
        Path(
            client.download_artifacts(second.run_id, "evaluation/decision_record.json")
        ).read_text()
    )
    judged = [r for r in record["slices"]["results"] if r["judged"]]
    assert {r["column"] for r in judged} == {"region", "plan"}
    assert all(r["rows"] >= 200 for r in judged)
    assert "slices" in {c["name"] for c in record["gate"]["checks"]}
    assert record["explanations"]["champion"] is not None
    features = {f["feature"] for f in record["explanations"]["challenger"]}
    assert features == {
        "tenure_months",
        "monthly_charges",
        "support_calls",
        "usage_gb",
        "plan",
        "region",
        "payment_method",
    }
    for version in (first, second):
        artifacts = {a.path for a in client.list_artifacts(version.run_id, "evaluation")}
        assert "evaluation/permutation_importance.png" in artifacts
    first_card = Path(
        client.download_artifacts(first.run_id, "evaluation/model_card.md")
    ).read_text()
    assert "no champion: reported, not judged" in first_card
