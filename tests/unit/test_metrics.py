"""Unit tests of the metric table and each metric's two forms: sklearn's and the weighted one."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn import metrics as skm

from continuous_training.bootstrap import _resample_weights, paired_bootstrap
from continuous_training.config import GatesConfig
from continuous_training.metrics import (
    METRICS,
    EvaluationError,
    compute_metrics,
    metric_direction,
    metric_names,
    metric_value,
    weighted_metric,
)
from tests.unit.holdouts import classification as _classification
from tests.unit.holdouts import regression as _regression


def test_metric_directions() -> None:
    for metric in ("roc_auc", "average_precision", "accuracy", "f1", "r2"):
        assert metric_direction(metric) == 1
    for metric in ("log_loss", "brier", "rmse", "mae"):
        assert metric_direction(metric) == -1
    with pytest.raises(EvaluationError, match="unknown metric 'auc'"):
        metric_direction("auc")


def test_compute_metrics_classification_matches_sklearn() -> None:
    y, strong, _ = _classification()
    metrics = compute_metrics("classification", y, strong)
    assert set(metrics) == {"roc_auc", "average_precision", "log_loss", "brier", "accuracy", "f1"}
    assert metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(y, strong))
    assert metrics["f1"] == pytest.approx(skm.f1_score(y, strong > 0.5))
    assert metric_value("log_loss", y, strong) == pytest.approx(metrics["log_loss"])


def test_compute_metrics_regression() -> None:
    y, good, _ = _regression()
    metrics = compute_metrics("regression", y, good)
    assert set(metrics) == {"rmse", "mae", "r2"}
    assert metrics["rmse"] == pytest.approx(1.0, abs=0.05)
    assert metrics["r2"] > 0.85


def test_single_class_holdout_is_a_clear_error() -> None:
    y = np.ones(50, dtype=int)
    with pytest.raises(
        EvaluationError, match=r"holdout has a single class \(1\): ROC AUC is undefined"
    ):
        compute_metrics("classification", y, np.linspace(0, 1, 50))
    with pytest.raises(EvaluationError, match="single class"):
        paired_bootstrap("roc_auc", y, np.full(50, 0.6), np.full(50, 0.4), resamples=100, seed=0)


def test_bad_inputs_name_the_problem() -> None:
    with pytest.raises(EvaluationError, match="3 labels but 2 predictions"):
        compute_metrics("classification", [0, 1, 0], [0.1, 0.9])
    with pytest.raises(EvaluationError, match=r"probabilities in \[0, 1\]"):
        compute_metrics("classification", [0, 1], [-2.0, 3.0])
    with pytest.raises(EvaluationError, match="labels must be 0/1"):
        compute_metrics("classification", [0, 2], [0.1, 0.9])


@pytest.mark.parametrize(
    "metric",
    ["roc_auc", "average_precision", "log_loss", "brier", "accuracy", "f1", "rmse", "mae", "r2"],
)
def test_vectorised_bootstrap_metrics_equal_sklearn_with_weights(metric: str) -> None:
    # the bootstrap's fast path must be the same metric sklearn computes
    rng = np.random.default_rng(7)
    if metric in ("rmse", "mae", "r2"):
        y, pred, _ = _regression(500, seed=3)
        reference = {
            "rmse": skm.root_mean_squared_error,
            "mae": skm.mean_absolute_error,
            "r2": skm.r2_score,
        }[metric]
    else:
        y, pred, _ = _classification(500, seed=3)
        y = y.astype(float)
        pred = pred.round(2)  # ties exercise the threshold grouping
        reference = {
            "roc_auc": skm.roc_auc_score,
            "average_precision": skm.average_precision_score,
            "log_loss": lambda t, p, sample_weight: skm.log_loss(
                t, p, sample_weight=sample_weight, labels=[0, 1]
            ),
            "brier": skm.brier_score_loss,
            "accuracy": lambda t, p, sample_weight: skm.accuracy_score(
                t, p > 0.5, sample_weight=sample_weight
            ),
            "f1": lambda t, p, sample_weight: skm.f1_score(t, p > 0.5, sample_weight=sample_weight),
        }[metric]
    weights = _resample_weights(rng, y.size, 4)
    ours = weighted_metric(metric, y, pred, weights)
    theirs = [reference(y, pred, sample_weight=w) for w in weights]
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_the_config_knows_exactly_the_metrics_of_the_table() -> None:
    assert metric_names("classification") + metric_names("regression") == list(METRICS)
    for name in METRICS:
        assert GatesConfig(primary_metric=name, floor=0.5).primary_metric == name
    known = re.escape(f"unknown metric 'auc': use one of {sorted(METRICS)}")
    with pytest.raises(ValueError, match=known):
        GatesConfig(primary_metric="auc", floor=0.5)
    with pytest.raises(EvaluationError, match="unknown task 'ranking'"):
        metric_names("ranking")
