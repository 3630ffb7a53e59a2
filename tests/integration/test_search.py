"""`model.search` end to end: the real weekly retraining DAG, a real MLflow server.

Each trial is a nested run of the candidate's run, the candidate run carries the best
params and score, the history plot and the summary, and the model card has its Search
section, for a classification and a regression pipeline. Few trials, small trees: fast.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.integration.dag_runs import run_dag, task_states, versions, write_pipeline, xcom_value

pytestmark = pytest.mark.integration

WEEK_1 = datetime(2026, 3, 1, 2, tzinfo=UTC)
TRIALS = 4
SPACE = {
    "max_depth": {"type": "int", "low": 1, "high": 8},
    "min_samples_leaf": {"type": "int", "low": 1, "high": 100, "log": True},
}


def _search(estimator: str) -> dict[str, Any]:
    return {
        "estimator": estimator,
        "params": {"max_depth": 1, "random_state": 0},
        "search": {"space": SPACE, "n_trials": TRIALS, "timeout_minutes": 10, "seed": 1},
    }


def _searched_run(client: Any, name: str, metric: str) -> tuple[Any, str]:
    """Run the pipeline's weekly retraining once; (its candidate version, its card)."""
    run = run_dag(f"{name}_weekly_retraining", WEEK_1)
    assert str(run.state) == "success", task_states(run)
    [version] = versions(client, name)
    parent = client.get_run(version.run_id)
    trials = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{version.run_id}'",
    )
    assert len(trials) == TRIALS
    numbers = sorted(int(t.data.tags["ct.search.trial"]) for t in trials)
    assert numbers == list(range(TRIALS))
    for trial in trials:
        assert trial.info.status == "FINISHED"
        assert set(trial.data.params) == set(SPACE)
        assert f"validation_{metric}" in trial.data.metrics
    # trial 0 is the YAML's params
    first = next(t for t in trials if t.data.tags["ct.search.trial"] == "0")
    assert first.data.params["max_depth"] == "1"
    best = parent.data.metrics[f"search_best_{metric}"]
    scores = [t.data.metrics[f"validation_{metric}"] for t in trials]
    assert best == (min(scores) if metric == "rmse" else max(scores))
    assert {f"search.best.{p}" for p in SPACE} <= set(parent.data.params)
    artifacts = {a.path for a in client.list_artifacts(version.run_id, "search")}
    assert {"search/optimization_history.png", "search/summary.json"} <= artifacts
    payload = xcom_value(run, "train_candidate")
    assert payload["search"]["trials"] == TRIALS
    assert payload["search"]["stopped_by"] == "n_trials"
    card = Path(client.download_artifacts(version.run_id, "evaluation/model_card.md")).read_text()
    return version, card


def test_search_trials_are_nested_runs_and_the_card_shows_them(client: Any) -> None:
    write_pipeline("churn_search", model=_search("sklearn.tree.DecisionTreeClassifier"))
    _, card = _searched_run(client, "churn_search", "roc_auc")
    section = card.split("## Search\n")[1].split("\n## ")[0]
    assert f"trials: {TRIALS} ({TRIALS} complete, 0 pruned, 0 failed); stopped by n_trials" in (
        section
    )
    assert "best validation roc_auc:" in section
    assert "search/optimization_history.png" in section


def test_a_regression_search_has_its_card_section(client: Any) -> None:
    write_pipeline(
        "churn_search_regression",
        task="regression",
        model=_search("sklearn.tree.DecisionTreeRegressor"),
        gates={"primary_metric": "rmse", "floor": 1.0, "min_improvement": 0.0, "guardrails": {},
               "live_evidence": False},
    )  # fmt: skip
    _, card = _searched_run(client, "churn_search_regression", "rmse")
    section = card.split("## Search\n")[1].split("\n## ")[0]
    assert "stopped by n_trials" in section
    assert "best validation rmse:" in section
