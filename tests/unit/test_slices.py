"""Per-slice guardrails, the fairness figures and permutation importance: real numbers.

Synthetic arrays with a known structure (a slice where the challenger is much worse, a
tiny slice, a one-class slice, nulls) go through the real bootstrap, fairlearn's MetricFrame
and sklearn's permutation_importance; models in the explanation tests are real fitted
sklearn pipelines.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from continuous_training.config import ConfigError, GatesConfig, PipelineConfig, parse_pipeline
from continuous_training.explanations import explain
from continuous_training.gate import build_gate_context, evaluate_gate
from continuous_training.model_card import render_model_card
from continuous_training.slices import MISSING, compute_slices
from tests.unit.holdouts import fitted_pipeline

REPO = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def _holdout(n: int = 6000, seed: int = 0) -> dict[str, Any]:
    """Labels, a champion, a challenger better overall but far worse on region=south."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    region = rng.choice(["north", "south", "east", "tiny"], n, p=[0.45, 0.2, 0.33, 0.02])
    region = region.astype(object)
    signal = np.where(y == 1, 1.0, -1.0)
    champion = _sigmoid(0.9 * signal + rng.normal(0, 1, n))
    challenger = _sigmoid(1.6 * signal + rng.normal(0, 1, n))
    south = region == "south"
    challenger[south] = _sigmoid(0.5 * signal[south] + rng.normal(0, 1, south.sum()))
    return {"y": y, "new": challenger, "old": champion, "frame": pd.DataFrame({"region": region})}


def _gates(**slices: Any) -> GatesConfig:
    return GatesConfig(
        primary_metric="roc_auc",
        floor=0.6,
        min_improvement=0.0,
        slices={"columns": ["region"], "min_rows": 200, "tolerance": 0.02, **slices},
    )


def _context(gates: GatesConfig, h: dict[str, Any], *, champion: bool = True):
    old = h["old"] if champion else None
    return build_gate_context(
        gates, "classification", h["y"], h["new"], old, slice_frame=h["frame"]
    )


def _result(ctx: Any, group: str, column: str = "region") -> Any:
    return next(r for r in ctx.slices.results if r.column == column and r.group == group)


# --------------------------------------------------------------------------- the gate


def test_better_overall_but_worse_on_a_large_slice_is_rejected_naming_it() -> None:
    h = _holdout()
    ctx = _context(_gates(), h)
    decision = evaluate_gate(ctx)
    checks = {c.name: c for c in decision.checks}
    assert checks["improvement"].passed, checks["improvement"].detail  # better overall
    assert not checks["slices"].passed
    assert not decision.passed
    south = _result(ctx, "south")
    assert south.judged and south.passed is False and south.rows > 1000
    assert south.high < -0.02
    assert "region=south" in decision.reason
    assert f"{south.diff:+.4f}" in decision.reason
    assert f"[{south.low:+.4f}, {south.high:+.4f}]" in decision.reason
    # the other large slices are judged and pass; only south is named
    for group in ("north", "east"):
        assert _result(ctx, group).judged and _result(ctx, group).passed
        assert f"region={group}" not in decision.reason


def test_a_candidate_rejected_on_a_slice_is_not_kept_for_live_evidence() -> None:
    from continuous_training.live_evidence import wants_evidence

    ctx = _context(_gates(), _holdout())
    decision = evaluate_gate(ctx).to_dict()
    # even were the overall interval inconclusive, a slice loss rules out the shadow route
    assert not wants_evidence(decision, {"high": 1.0}, ctx.gates)


def test_a_small_slice_is_reported_not_judged() -> None:
    h = _holdout()
    tiny = (h["frame"]["region"] == "tiny").to_numpy()
    h["new"] = h["old"].copy()  # the same model everywhere...
    h["new"][tiny] = 1.0 - h["old"][tiny]  # ...except a disaster on the tiny slice
    ctx = _context(_gates(), h)
    result = _result(ctx, "tiny")
    assert result.rows < 200
    assert not result.judged and result.passed is None
    assert "reported, not judged" in result.note and "min_rows=200" in result.note
    assert result.challenger < 0.5 < result.champion  # reported, with both metrics
    check = next(c for c in evaluate_gate(ctx).checks if c.name == "slices")
    assert check.passed, check.detail
    assert "3 slice(s) with >= 200 rows judged, 1 reported only" in check.detail


def test_identical_models_pass_every_slice() -> None:
    h = _holdout()
    h["new"] = h["old"]
    ctx = _context(_gates(tolerance=0.0), h)
    assert all(r.passed for r in ctx.slices.judged)
    assert all(r.diff == 0.0 and r.high == 0.0 for r in ctx.slices.judged)


def test_a_one_class_slice_is_reported_with_the_reason() -> None:
    h = _holdout()
    h["frame"]["plan"] = np.where(h["y"] == 1, "premium", "basic")  # plan decides the label
    ctx = _context(_gates(columns=["region", "plan"]), h)
    for group in ("premium", "basic"):
        result = _result(ctx, group, "plan")
        assert result.rows >= 200 and not result.judged
        assert "one class only" in result.note and "roc_auc not judged" in result.note
        assert result.challenger is None  # undefined, not a number
    assert _result(ctx, "south").judged  # other columns are still judged


def test_a_slice_with_few_rows_of_a_class_is_not_judged() -> None:
    h = _holdout()
    rare = np.zeros(h["y"].size, dtype=object)
    rare[:] = "a"
    positives = np.flatnonzero(h["y"] == 1)
    negatives = np.flatnonzero(h["y"] == 0)
    rare[np.r_[positives[:5], negatives[:400]]] = "b"  # 5 positives, 400 negatives
    h["frame"]["segment"] = rare
    ctx = _context(_gates(columns=["segment"]), h)
    result = _result(ctx, "b", "segment")
    assert not result.judged and "min_holdout_per_class=30" in result.note


def test_null_values_are_a_group_of_their_own() -> None:
    h = _holdout()
    region = h["frame"]["region"].copy()
    region.iloc[:300] = None
    region.iloc[300:320] = np.nan
    h["frame"]["region"] = region
    ctx = _context(_gates(), h)
    missing = _result(ctx, MISSING)
    assert missing.rows == 320
    assert missing.judged  # 320 rows >= min_rows


def test_no_champion_reports_slices_and_does_not_judge_them() -> None:
    ctx = _context(_gates(), _holdout(), champion=False)
    assert ctx.slices.judged == []
    assert all(r.note.startswith("no champion") for r in ctx.slices.results)
    decision = evaluate_gate(ctx)
    assert "slices" not in {c.name for c in decision.checks}
    assert decision.passed


def test_high_cardinality_is_capped_at_max_groups() -> None:
    h = _holdout(n=3000)
    h["frame"]["customer_id"] = [f"c{i}" for i in range(3000)]  # one group per row
    gates = _gates(columns=["customer_id"], max_groups=20)
    ctx = _context(gates, h)
    assert len(ctx.slices.results) == 20
    assert ctx.slices.omitted == {"customer_id": {"groups": 2980, "rows": 2980}}
    assert not ctx.slices.judged  # every id is far below min_rows


def test_bonferroni_widens_each_interval_with_the_number_of_judged_slices() -> None:
    ctx = _context(_gates(), _holdout())
    assert len(ctx.slices.judged) == 3
    assert ctx.slices.confidence == pytest.approx(1 - 0.05 / 3)


def test_regression_slices_on_rmse() -> None:
    rng = np.random.default_rng(1)
    n = 3000
    y = rng.normal(10, 3, n)
    group = rng.choice(["a", "b"], n).astype(object)
    old = y + rng.normal(0, 1.0, n)
    new = y + rng.normal(0, 0.5, n)
    new[group == "b"] = y[group == "b"] + rng.normal(0, 3.0, (group == "b").sum())
    gates = GatesConfig(
        primary_metric="rmse",
        floor=5.0,
        slices={"columns": ["g"], "min_rows": 200, "tolerance": 0.1},
    )
    ctx = build_gate_context(
        gates, "regression", y, new, old, slice_frame=pd.DataFrame({"g": group})
    )
    assert _result(ctx, "a", "g").passed
    assert _result(ctx, "b", "g").passed is False
    assert "g=b" in evaluate_gate(ctx).reason


def test_fairness_gap_between_large_groups_names_worst_and_best() -> None:
    ctx = _context(_gates(), _holdout())
    [fair] = ctx.slices.fairness
    assert fair.column == "region"
    assert fair.compared == ["north", "east", "south"]  # tiny (< min_rows) is not compared
    assert fair.challenger_worst == "south"
    values = {g: fair.groups[g]["challenger"] for g in fair.compared}
    assert fair.challenger_gap == pytest.approx(max(values.values()) - min(values.values()))
    assert fair.champion_gap is not None and fair.champion_gap < fair.challenger_gap


def test_sensitive_columns_may_differ_from_the_guarded_ones() -> None:
    h = _holdout()
    h["frame"]["gender"] = np.random.default_rng(2).choice(["f", "m"], h["y"].size)
    ctx = _context(_gates(sensitive=["gender"]), h)
    assert [f.column for f in ctx.slices.fairness] == ["gender"]
    assert {r.column for r in ctx.slices.results} == {"region"}


def test_a_missing_slice_column_is_an_error() -> None:
    from continuous_training.metrics import EvaluationError

    h = _holdout()
    with pytest.raises(EvaluationError, match="no column"):
        compute_slices(
            _gates(columns=["plan"]), "classification", h["y"], h["new"], h["old"], h["frame"]
        )


# --------------------------------------------------------------------------- config


@pytest.fixture
def churn_data() -> dict[str, Any]:
    return yaml.safe_load((REPO / "include" / "pipelines" / "churn.yaml").read_text())


def _with_slices(data: dict[str, Any], **slices: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    data["gates"]["slices"] = slices
    return data


def _config_error(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_pipeline(data, "/p/churn.yaml")
    return str(info.value)


def test_slices_config_loads_with_defaults(churn_data: dict[str, Any]) -> None:
    config = parse_pipeline(_with_slices(churn_data, columns=["region", "plan"]))
    slices = config.gates.slices
    assert slices.min_rows == 200 and slices.max_groups == 50
    assert config.gates.slice_metric == "roc_auc"
    assert slices.sensitive_columns == ["region", "plan"]
    assert parse_pipeline(_with_slices(churn_data, columns=["customer_id"])).gates.slices


@pytest.mark.parametrize(
    ("slices", "needles"),
    [
        ({"columns": ["tenure_months"]}, ["gates.slices.columns", "numeric feature", "bin it"]),
        ({"columns": ["nope"]}, ["gates.slices.columns", "'nope'", "not a column"]),
        ({"columns": ["churned"]}, ["gates.slices.columns", "is the target"]),
        ({"columns": ["event_time"]}, ["gates.slices.columns", "time column"]),
        ({"columns": ["region"], "sensitive": ["usage_gb"]}, ["gates.slices.sensitive"]),
        ({"columns": ["region", "region"]}, ["gates.slices.columns", "listed twice"]),
        ({"columns": []}, ["gates.slices.columns"]),
        ({"columns": ["region"], "min_rows": 5}, ["gates.slices.min_rows"]),
        ({"columns": ["region"], "tolerance": -0.1}, ["gates.slices.tolerance"]),
        ({"columns": ["region"], "tolerance": 1.0}, ["gates.slices.tolerance", "never fail"]),
        ({"columns": ["region"], "metric": "rmse"}, ["gates.slices.metric", "classification"]),
        ({"columns": ["region"], "metric": "auc"}, ["gates.slices.metric", "unknown metric"]),
        ({"columns": ["region"], "max_groups": 0}, ["gates.slices.max_groups"]),
        ({"columns": ["region"], "colums": ["x"]}, ["gates.slices.colums"]),
    ],
)
def test_bad_slices_config_names_the_key(
    churn_data: dict[str, Any], slices: dict[str, Any], needles: list[str]
) -> None:
    message = _config_error(_with_slices(churn_data, **slices))
    assert "/p/churn.yaml" in message
    for needle in needles:
        assert needle in message, f"{needle!r} not in:\n{message}"


def test_bad_explanations_config_names_the_key(churn_data: dict[str, Any]) -> None:
    data = copy.deepcopy(churn_data)
    data["gates"]["explanations"] = {"n_repeats": 0}
    assert "gates.explanations.n_repeats" in _config_error(data)


# --------------------------------------------------------------------------- the card


def _pipeline(churn_data: dict[str, Any], task: str) -> PipelineConfig:
    data = _with_slices(churn_data, columns=["region"], min_rows=200, tolerance=0.02)
    if task == "regression":
        data["task"] = "regression"
        data["model"] = {"estimator": "sklearn.linear_model.LinearRegression"}
        data["gates"] = {
            "primary_metric": "rmse",
            "floor": 5.0,
            "slices": data["gates"]["slices"],
        }
        data["labels"] = None
    return parse_pipeline(data)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_the_card_has_slices_fairness_and_explanations(
    churn_data: dict[str, Any], task: str
) -> None:
    from continuous_training.config import ExplanationsConfig

    pipeline = _pipeline(churn_data, task)
    new, X, y = fitted_pipeline(task, 2.0)
    old, _, _ = fitted_pipeline(task, 1.0, seed=1)
    p_new = new.predict_proba(X)[:, 1] if task == "classification" else new.predict(X)
    p_old = old.predict_proba(X)[:, 1] if task == "classification" else old.predict(X)
    X = X.copy()
    X.loc[X.index[:40], "region"] = "rare"
    ctx = build_gate_context(pipeline.gates, task, y, p_new, p_old, slice_frame=X[["region"]])
    found = explain(
        ExplanationsConfig(n_repeats=2, max_rows=1000),
        metric=pipeline.gates.primary_metric,
        task=task,
        X=X,
        y=y,
        challenger_model=new,
        champion_model=old,
    )
    card = render_model_card(
        pipeline=pipeline,
        model_name="churn",
        challenger_version="2",
        champion_version="1",
        data={"holdout_rows": len(y)},
        challenger_metrics=ctx.challenger_metrics,
        champion_metrics=ctx.champion_metrics,
        decision=evaluate_gate(ctx),
        bootstrap=ctx.bootstrap,
        slices=ctx.slices,
        explanations=found,
    )
    metric = pipeline.gates.primary_metric
    for section in ("Slices", "Fairness", "Explanations", "Thresholds", "Decision"):
        assert f"## {section}\n" in card
    assert card.index("## Slices") < card.index("## Fairness") < card.index("## Explanations")
    assert "| Column | Group | Rows | Champion | Challenger | Difference [CI] | Judged |" in card
    assert "| region | north |" in card and "| judged | pass: CI" in card
    assert (
        "| region | rare | 40 |" in card and "| reported | 40 rows < gates.slices.min_rows" in card
    )
    assert "- sensitive columns: `region`" in card
    assert "- challenger: largest gap between groups" in card
    assert "- champion: largest gap between groups" in card
    assert f"the drop in `{metric}` when one feature is shuffled" in card
    assert "| x_signal |" in card and "Changed most between champion and challenger:" in card
    assert "- slices `region`: on every group with at least 200 rows" in card
    assert "`slices`:" in card  # the check is listed under the decision


def test_the_card_says_why_explanations_are_missing(churn_data: dict[str, Any]) -> None:
    pipeline = _pipeline(churn_data, "classification")
    h = _holdout()
    ctx = _context(pipeline.gates, h, champion=False)
    card = render_model_card(
        pipeline=pipeline,
        model_name="churn",
        challenger_version="1",
        champion_version=None,
        data={},
        challenger_metrics=ctx.challenger_metrics,
        champion_metrics=None,
        decision=evaluate_gate(ctx),
        bootstrap=None,
        slices=ctx.slices,
        explanations="holdout has a single class",
    )
    assert "## Explanations\nNot computed: holdout has a single class" in card
    assert "| no champion: reported, not judged |" in card
    assert "- champion: none (first model)" in card
