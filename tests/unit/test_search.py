"""`model.search`: the YAML's shape, the space against the estimator, and the search itself.

The search runs for real (Optuna, sklearn) on a synthetic task where depth matters: the
label is an interaction (XOR) of two features, which a depth-1 tree cannot see at all.
MLflow is not needed here (`log_trials=False`); the nested runs are checked in
tests/integration/test_search.py against a real server.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from continuous_training import search
from continuous_training.config import ConfigError, PipelineConfig, parse_pipeline
from continuous_training.metrics import compute_metrics
from continuous_training.training import TrainingError, build_model, check_model, predict_scores

MakeConfig = Callable[..., PipelineConfig]
START = datetime(2026, 1, 1)
TREE = "sklearn.tree.DecisionTreeClassifier"
DEPTH_SPACE = {"max_depth": {"type": "int", "low": 1, "high": 8}}


def xor_frame(days: int = 28, rows_per_day: int = 150, seed: int = 0) -> pd.DataFrame:
    """Churn-shaped rows whose label is an interaction a shallow tree cannot learn."""
    rng = np.random.default_rng(seed)
    n = days * rows_per_day
    tenure = rng.uniform(0, 120, n)
    charges = rng.uniform(0, 200, n)
    signal = (tenure > 60) ^ (charges > 100)
    churned = np.where(rng.random(n) < 0.9, signal, ~signal).astype(int)
    return pd.DataFrame(
        {
            "event_time": [START + timedelta(days=i / rows_per_day) for i in range(n)],
            "customer_id": [f"c{i}" for i in range(n)],
            "tenure_months": tenure,
            "monthly_charges": charges,
            "support_calls": rng.integers(0, 10, n),
            "usage_gb": rng.gamma(2, 10, n),
            "plan": rng.choice(["basic", "standard", "premium"], n).astype(object),
            "region": rng.choice(["north", "south"], n).astype(object),
            "payment_method": rng.choice(["card", "paypal"], n).astype(object),
            "churned": churned,
        }
    )


def with_model(make_config: MakeConfig, model: dict[str, Any], **overrides: Any) -> PipelineConfig:
    """churn.yaml with `model` and `overrides` replaced outright (make_config would merge)."""
    churn = make_config(windows={"training_days": 21, "holdout_days": 7})
    data = churn.model_dump(exclude={"source_file", "model"}, exclude_none=True)
    return parse_pipeline({**data, **overrides, "model": model})


def tree_pipeline(make_config: MakeConfig, **search_overrides: Any) -> PipelineConfig:
    """A depth-1 tree in the YAML (the bad default), with a search over its depth."""
    return with_model(
        make_config,
        {
            "estimator": TREE,
            "params": {"max_depth": 1, "random_state": 0},
            "search": {"space": DEPTH_SPACE, "n_trials": 8, "validation_days": 7,
                       **search_overrides},
        },
    )  # fmt: skip


def _parts(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, datetime]:
    holdout_start = START + timedelta(days=21)
    times = frame["event_time"]
    return frame[times < holdout_start], frame[times >= holdout_start], holdout_start


# --------------------------------------------------------------------------- config


def _error(churn_config: dict[str, Any], search: Any, **top: Any) -> str:
    churn_config["model"]["search"] = search
    churn_config.update(top)
    with pytest.raises(ConfigError) as caught:
        parse_pipeline(churn_config, "churn.yaml")
    return str(caught.value)


@pytest.mark.parametrize(
    ("search", "key", "words"),
    [
        ({"space": {"max_depth": {"type": "int", "low": 8, "high": 2}}},
         "model.search.space.max_depth", "less than high"),
        ({"space": {"max_depth": {"type": "int", "low": 2.5, "high": 8}}},
         "model.search.space.max_depth", "whole"),
        ({"space": {"max_depth": {"type": "int", "low": True, "high": 8}}},
         "model.search.space.max_depth.low", "number"),
        ({"space": {"max_depth": {"type": "int", "low": "2", "high": 8}}},
         "model.search.space.max_depth.low", "number"),
        ({"space": {"lr": {"type": "float", "low": 0, "high": 1, "log": True}}},
         "model.search.space.lr", "low > 0"),
        ({"space": {"lr": {"type": "float", "low": 0.1, "high": float("inf")}}},
         "model.search.space.lr.high", "finite"),
        ({"space": {"lr": {"type": "float", "low": 0.1}}}, "model.search.space.lr", "high"),
        ({"space": {"loss": {"type": "categorical"}}}, "model.search.space.loss", "choices"),
        ({"space": {"loss": {"type": "categorical", "choices": []}}},
         "model.search.space.loss", "choices"),
        ({"space": {"loss": {"type": "categorical", "choices": ["a", "a"]}}},
         "model.search.space.loss", "twice"),
        ({"space": {"loss": {"type": "categorical", "choices": [[1]]}}},
         "model.search.space.loss", "not a string"),
        ({"space": {"loss": {"type": "categorical", "choices": [1], "low": 0}}},
         "model.search.space.loss", "not low/high"),
        ({"space": {"lr": {"type": "float", "low": 0, "high": 1, "choices": [1]}}},
         "model.search.space.lr", "categorical"),
        ({"space": {"lr": {"type": "uniform", "low": 0, "high": 1}}},
         "model.search.space.lr.type", "'int'"),
        ({"space": {"lr": {"type": "float", "low": 0, "high": 1, "step": 1}}},
         "model.search.space.lr.step", "Extra"),
        ({"space": {}}, "model.search.space", "empty"),
        ({"space": {"a b": {"type": "int", "low": 1, "high": 2}}}, "model.search.space", "'a b'"),
        ({"n_trials": 5}, "model.search.space", "required"),
        ({"space": DEPTH_SPACE, "n_trials": 0}, "model.search.n_trials", "greater than 0"),
        ({"space": DEPTH_SPACE, "n_trials": True}, "model.search.n_trials", "integer"),
        ({"space": DEPTH_SPACE, "timeout_minutes": 0}, "model.search.timeout_minutes", "greater"),
        ({"space": DEPTH_SPACE, "timeout_minutes": "5"}, "model.search.timeout_minutes", "number"),
        ({"space": DEPTH_SPACE, "sampler": "grid"}, "model.search.sampler", "'tpe'"),
        ({"space": DEPTH_SPACE, "pruner": "hyperband"}, "model.search.pruner", "'median'"),
        ({"space": DEPTH_SPACE, "seed": "a"}, "model.search.seed", "integer"),
        ({"space": DEPTH_SPACE, "validation_days": 21}, "model.search.validation_days",
         "windows.training_days"),
        ("yes", "model.search", "dictionary"),
    ],
)  # fmt: skip
def test_a_bad_search_fails_when_the_yaml_loads_naming_the_key(
    churn_config: dict[str, Any], search: Any, key: str, words: str
) -> None:
    message = _error(churn_config, search)
    assert key in message
    assert words in message


def test_a_good_search_loads_with_its_defaults(make_config: MakeConfig) -> None:
    config = tree_pipeline(make_config).model.search
    assert config is not None
    assert (config.sampler, config.pruner, config.seed) == ("tpe", "none", 0)
    assert config.n_trials == 8
    assert config.timeout_minutes > 0 and config.margin_minutes > 0
    assert make_config().model.search is None  # the shipped churn pipeline does not search


@pytest.mark.parametrize(
    ("space", "pruner", "key", "words"),
    [
        ({"max_dept": {"type": "int", "low": 1, "high": 8}}, "none",
         "model.search.space.max_dept", "no parameter 'max_dept'"),
        ({"max_depth": {"type": "int", "low": 0, "high": 8}}, "none",
         "model.search.space.max_depth", "max_depth=0"),
        ({"criterion": {"type": "categorical", "choices": ["gini", "bogus"]}}, "none",
         "model.search.space.criterion", "'bogus'"),
        (DEPTH_SPACE, "median", "model.search.pruner", "warm_start"),
    ],
)  # fmt: skip
def test_the_space_is_checked_against_the_estimator_by_the_first_task(
    make_config: MakeConfig, space: dict, pruner: str, key: str, words: str
) -> None:
    pipeline = tree_pipeline(make_config, space=space, pruner=pruner)
    with pytest.raises(TrainingError) as caught:
        check_model(pipeline)
    assert key in str(caught.value)
    assert words in str(caught.value)


def test_a_space_the_estimator_takes_passes_the_check(make_config: MakeConfig) -> None:
    check_model(tree_pipeline(make_config))
    hist = with_model(
        make_config,
        {
            "estimator": "sklearn.ensemble.HistGradientBoostingClassifier",
            "params": {"max_iter": 20},
            "search": {"space": {"learning_rate": {"type": "float", "low": 0.01, "high": 0.5,
                                                    "log": True}}, "pruner": "median"},
        },
    )  # fmt: skip
    check_model(hist)


# --------------------------------------------------------------------------- search


def test_the_search_beats_the_yaml_defaults_and_stops_at_n_trials(
    make_config: MakeConfig,
) -> None:
    pipeline = tree_pipeline(make_config)
    train, holdout, holdout_start = _parts(xor_frame())
    result = search.run_search(pipeline, train, holdout_start, log_trials=False)

    assert result.stopped_by == "n_trials"
    assert result.trials == 8 and result.complete == 8
    assert result.history[0]["params"] == {"max_depth": 1}  # trial 0: the YAML's params
    assert result.defaults_score is not None
    assert result.best_score > result.defaults_score + 0.2
    assert result.best_params["max_depth"] > 1
    assert result.metric == "roc_auc" and result.direction == "maximize"
    # only training rows: the validation part is the newest 7 of the 21 training days
    assert result.fit_rows + result.validation_rows == len(train)
    assert result.validation_start == (holdout_start - timedelta(days=7)).isoformat()

    # on the holdout, which the search never saw, the refit beats the YAML's defaults
    defaults = build_model(pipeline).fit(train[pipeline.features.all], train["churned"])
    searched = search.refit(pipeline, result, train, "memory")
    y, X = holdout["churned"].to_numpy(), holdout[pipeline.features.all]
    auc = {
        name: compute_metrics("classification", y, predict_scores(model, X, "classification"))
        for name, model in (("defaults", defaults), ("searched", searched))
    }
    assert auc["searched"]["roc_auc"] > auc["defaults"]["roc_auc"] + 0.2


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_the_same_seed_gives_the_same_search(make_config: MakeConfig, sampler: str) -> None:
    space = {
        "max_depth": {"type": "int", "low": 1, "high": 12},
        "min_samples_leaf": {"type": "int", "low": 1, "high": 200, "log": True},
        "criterion": {"type": "categorical", "choices": ["gini", "entropy"]},
    }
    train, _, holdout_start = _parts(xor_frame())

    def run(seed: int) -> list[dict[str, Any]]:
        pipeline = tree_pipeline(make_config, space=space, sampler=sampler, seed=seed)
        result = search.run_search(pipeline, train, holdout_start, log_trials=False)
        return [{**h, "value": round(h["value"], 12)} for h in result.history]

    first = run(3)
    assert run(3) == first
    assert run(4) != first


def test_the_search_stops_at_the_timeout(make_config: MakeConfig) -> None:
    # n_trials far beyond what a fraction of a second holds: the timeout ends the search
    pipeline = tree_pipeline(make_config, n_trials=100_000, timeout_minutes=0.01)
    train, _, holdout_start = _parts(xor_frame(rows_per_day=50))
    result = search.run_search(pipeline, train, holdout_start, log_trials=False)
    assert result.stopped_by == "timeout"
    assert 1 <= result.trials < 100_000


def test_median_pruning_stops_bad_trials_of_an_iterative_estimator(
    make_config: MakeConfig,
) -> None:
    pipeline = with_model(
        make_config,
        {
            "estimator": "sklearn.ensemble.GradientBoostingClassifier",
            "params": {"n_estimators": 20, "random_state": 0},
            "search": {"space": {"learning_rate": {"type": "float", "low": 1e-4, "high": 0.5,
                                                    "log": True},
                                 "max_depth": {"type": "int", "low": 1, "high": 4}},
                       "n_trials": 16, "pruner": "median", "sampler": "random",
                       "validation_days": 7},
        },
    )  # fmt: skip
    train, _, holdout_start = _parts(xor_frame(rows_per_day=60))
    result = search.run_search(pipeline, train, holdout_start, log_trials=False)
    assert result.trials == 16
    assert result.pruned >= 1
    assert result.complete + result.pruned == 16
    assert all(len(h["params"]) == 2 for h in result.history)


def test_a_regression_search_minimises_rmse(make_config: MakeConfig) -> None:
    pipeline = with_model(
        make_config,
        {
            "estimator": "sklearn.tree.DecisionTreeRegressor",
            "params": {"max_depth": 1},
            "search": {"space": DEPTH_SPACE, "n_trials": 6, "validation_days": 7},
        },
        task="regression",
        gates={"primary_metric": "rmse", "floor": 10.0},
        labels=None,
        expectations={"columns": {"churned": {"not_null": True}}},
    )  # fmt: skip
    train, _, holdout_start = _parts(xor_frame())
    result = search.run_search(pipeline, train, holdout_start, log_trials=False)
    assert result.direction == "minimize"
    assert result.defaults_score is not None
    assert result.best_score < result.defaults_score - 0.05


def test_a_validation_part_with_one_class_fails_naming_validation_days(
    make_config: MakeConfig,
) -> None:
    pipeline = tree_pipeline(make_config)
    train, _, holdout_start = _parts(xor_frame())
    late = train["event_time"] >= holdout_start - timedelta(days=7)
    train = train.assign(churned=np.where(late, 1, train["churned"]))
    with pytest.raises(TrainingError, match=r"model\.search\.validation_days=7.*single class"):
        search.run_search(pipeline, train, holdout_start, log_trials=False)


def test_trials_the_estimator_refuses_fail_alone(make_config: MakeConfig) -> None:
    # max_features 'bogus' passes no check (the space is not probed here) and fails in fit
    pipeline = tree_pipeline(
        make_config,
        space={"max_depth": {"type": "int", "low": 2, "high": 6},
               "max_features": {"type": "categorical", "choices": [1.0, 1000]}},
        sampler="random", n_trials=6,
    )  # fmt: skip
    train, _, holdout_start = _parts(xor_frame())
    result = search.run_search(pipeline, train, holdout_start, log_trials=False)
    assert result.complete >= 1
    assert result.trials == 6
    assert result.best_params["max_features"] == 1.0


def test_the_history_plot_is_a_png(make_config: MakeConfig, tmp_path: Any) -> None:
    pipeline = tree_pipeline(make_config, n_trials=3)
    train, _, holdout_start = _parts(xor_frame(rows_per_day=40))
    result = search.run_search(pipeline, train, holdout_start, log_trials=False)
    path = tmp_path / "history.png"
    search.plot_history(result, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = result.summary()
    assert "history" not in summary and summary["plot"] == search.HISTORY_PLOT


# --------------------------------------------------------------------------- card


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_the_card_shows_the_search(make_config: MakeConfig, task: str) -> None:
    from continuous_training.gate import build_gate_context, evaluate_gate
    from continuous_training.model_card import render_model_card

    overrides: dict[str, Any] = {}
    estimator = TREE
    if task == "regression":
        overrides = {"task": "regression", "gates": {"primary_metric": "rmse", "floor": 10.0}}
        estimator = "sklearn.tree.DecisionTreeRegressor"
    model = {"estimator": estimator, "params": {"max_depth": 1},
             "search": {"space": DEPTH_SPACE, "n_trials": 4, "validation_days": 7}}  # fmt: skip
    pipeline = with_model(make_config, model, **overrides)
    train, holdout, holdout_start = _parts(xor_frame(rows_per_day=60))
    result = search.run_search(pipeline, train, holdout_start, log_trials=False)
    fitted = search.refit(pipeline, result, train, "memory")
    y = holdout["churned"].to_numpy()
    scores = predict_scores(fitted, holdout[pipeline.features.all], task)
    ctx = build_gate_context(pipeline.gates, task, y, scores, None)

    def card(searched: dict[str, Any] | None) -> str:
        return render_model_card(
            pipeline=pipeline,
            model_name="churn",
            challenger_version="3",
            champion_version=None,
            data={"train_rows": len(train), "holdout_rows": len(holdout)},
            challenger_metrics=ctx.challenger_metrics,
            champion_metrics=None,
            decision=evaluate_gate(ctx),
            bootstrap=None,
            search=searched,
        )

    text = card(result.summary())
    section = text.split("## Search\n")[1].split("\n## ")[0]
    metric = pipeline.gates.primary_metric
    assert "trials: 4 (4 complete, 0 pruned, 0 failed); stopped by n_trials" in section
    assert f"max_depth={result.best_params['max_depth']!r}" in section
    assert f"best validation {metric}: {result.best_score:.4f}" in section
    assert f"trial 0: {result.defaults_score:.4f}" in section
    assert search.HISTORY_PLOT in section
    assert "## Search" not in card(None)  # no search, no section
