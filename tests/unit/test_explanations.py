"""Permutation importance of the challenger and the champion, and its plot."""

from __future__ import annotations

from pathlib import Path

import pytest

from continuous_training.config import ExplanationsConfig
from continuous_training.explanations import explain, plot_importance
from tests.unit.holdouts import fitted_pipeline

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("task", "metric"), [("classification", "roc_auc"), ("regression", "rmse")]
)
def test_permutation_importance_picks_the_informative_feature(task: str, metric: str) -> None:
    new, X, y = fitted_pipeline(task, 2.0)
    old, _, _ = fitted_pipeline(task, 0.5, seed=1)
    found = explain(
        ExplanationsConfig(n_repeats=3, max_rows=1000),
        metric=metric,
        task=task,
        X=X,
        y=y,
        challenger_model=new,
        champion_model=old,
    )
    assert found.rows == 1000  # bounded sample
    assert found.challenger[0].feature == "x_signal"
    assert found.challenger[0].mean > 0.05
    noise = next(f for f in found.challenger if f.feature == "x_noise")
    assert abs(noise.mean) < found.challenger[0].mean / 10
    assert {c.feature for c in found.changes} == {"x_signal", "x_noise", "region"}
    assert abs(found.changes[0].change) >= abs(found.changes[-1].change)


def test_permutation_importance_is_deterministic_for_a_seed() -> None:
    model, X, y = fitted_pipeline("classification", 2.0)
    kwargs = {"metric": "roc_auc", "task": "classification", "X": X, "y": y}
    config = ExplanationsConfig(n_repeats=2, max_rows=500, seed=3)
    a = explain(config, challenger_model=model, champion_model=None, **kwargs)
    b = explain(config, challenger_model=model, champion_model=None, **kwargs)
    assert a == b and a.champion is None and a.changes == []


def test_importance_plot_writes_a_png(tmp_path: Path) -> None:
    new, X, y = fitted_pipeline("classification", 2.0)
    old, _, _ = fitted_pipeline("classification", 0.5, seed=1)
    found = explain(
        ExplanationsConfig(n_repeats=2, max_rows=500),
        metric="roc_auc",
        task="classification",
        X=X,
        y=y,
        challenger_model=new,
        champion_model=old,
    )
    path = tmp_path / "evaluation" / "permutation_importance.png"
    plot_importance(found, path)
    assert path.read_bytes()[:8] == PNG_MAGIC
