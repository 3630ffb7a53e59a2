"""The live-evidence confidence sequence: its decisions, its coverage and its error rate.

Simulations use fixed seeds and few runs; the Monte-Carlo slack each bound allows is stated
beside it. `bench/live_evidence_simulation.py` runs the same simulations with 2,000 runs.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from continuous_training.sequential import (
    LiveEvidenceError,
    confidence_sequence,
    daily_auc_differences,
    first_clearing_day,
    judge,
    simulate_live_promotion,
)

CONFIDENCE = 0.95
GATE = {"min_improvement": 0.005, "confidence": CONFIDENCE, "min_days": 14}


def _days(mean: float, sd: float, count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(mean, sd, count)


# --------------------------------------------------------------------------- judge


def test_fewer_than_min_days_never_clears() -> None:
    # an enormous, perfectly steady improvement: still not judged before min_days
    for days in range(14):
        evidence = judge([0.3 + 0.001 * i for i in range(days)], **GATE)
        assert not evidence.cleared and evidence.days == days
        assert "fewer than min_days=14" in evidence.reason
    assert judge([0.3 + 0.001 * i for i in range(14)], **GATE).cleared


def test_obvious_improvement_clears_and_none_does_not() -> None:
    better = judge(_days(0.05, 0.012, 30), **GATE)
    assert better.cleared and better.low > 0.005 and "clears min_improvement" in better.reason
    same = judge(_days(0.0, 0.012, 300), **GATE)
    assert not same.cleared and "does not clear" in same.reason
    assert same.low < 0.0 < same.high


def test_interval_contains_the_true_mean() -> None:
    for seed in range(20):
        x = _days(0.01, 0.012, 60, seed)
        low, high = confidence_sequence(x, CONFIDENCE)
        assert low < 0.01 < high, seed
        assert low < x.mean() < high


def test_cs_is_wider_than_the_fixed_sample_t_interval() -> None:
    # the price of looking every day: at the same t, wider than the one-look t-interval
    for t in (14, 30, 90, 365):
        x = _days(0.01, 0.012, t, t)
        low, high = confidence_sequence(x, CONFIDENCE)
        fixed = stats.t.interval(CONFIDENCE, t - 1, loc=x.mean(), scale=stats.sem(x))
        assert low < fixed[0] and high > fixed[1], t
        assert (high - low) / (fixed[1] - fixed[0]) < 3.0, t  # but not absurdly so


def test_too_few_observations_give_an_unbounded_interval() -> None:
    assert confidence_sequence([], CONFIDENCE) == (-math.inf, math.inf)
    assert confidence_sequence([0.02], CONFIDENCE) == (-math.inf, math.inf)
    # with t* = 60 days the boundary is finite from 9 observations on
    assert confidence_sequence(_days(0.01, 0.012, 8), CONFIDENCE) == (-math.inf, math.inf)
    assert all(map(math.isfinite, confidence_sequence(_days(0.01, 0.012, 9), CONFIDENCE)))
    evidence = judge([0.01], **GATE)
    data = evidence.to_dict()
    assert data["low"] is None and data["high"] is None and data["days"] == 1
    json.dumps(data, allow_nan=False)  # JSON-able as the record needs it


def test_to_dict_round_trips_through_json() -> None:
    data = judge(_days(0.02, 0.012, 40), **GATE).to_dict()
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert set(data) == {
        "days",
        "mean",
        "low",
        "high",
        "confidence",
        "min_improvement",
        "min_days",
        "cleared",
        "reason",
    }


def test_bad_input_is_refused() -> None:
    with pytest.raises(LiveEvidenceError, match="NaN or infinite"):
        judge([0.01, float("nan")], **GATE)
    with pytest.raises(LiveEvidenceError, match="confidence"):
        confidence_sequence([0.01, 0.02], 1.5)
    with pytest.raises(LiveEvidenceError, match="min_days"):
        judge([0.01], min_improvement=0.0, confidence=CONFIDENCE, min_days=0)


def test_exact_coverage_on_normal_days_over_a_long_horizon() -> None:
    # the construction is exact for i.i.d. normal days: over 500 daily looks the CS ever
    # misses the mean above in at most alpha/2 of runs (4,000 runs: 0.025 + 3 se = 0.032)
    x = np.random.default_rng(7).normal(0.0, 1.0, (4000, 500))
    first = first_clearing_day(x, min_improvement=0.0, confidence=CONFIDENCE, min_days=2)
    assert (first > 0).mean() <= 0.032


# --------------------------------------------------------------------------- simulation


def test_vectorised_decision_is_judge_called_every_day() -> None:
    rng = np.random.default_rng(3)
    diffs = rng.normal(0.009, 0.012, (40, 60))
    diffs[5, 10] = np.nan  # a day with no observation
    first = first_clearing_day(diffs, **GATE)
    for run in range(diffs.shape[0]):
        expected = 0
        for day in range(1, diffs.shape[1] + 1):
            seen = diffs[run, :day]
            if judge(seen[~np.isnan(seen)], **GATE).cleared:
                expected = day
                break
        assert first[run] == expected, run
    assert 0 < (first > 0).mean() < 1  # the check compared both outcomes


def test_simulated_daily_auc_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    diffs = daily_auc_differences(rng, 2, 3, 300, 0.80, 0.81, 0.2, 0.94)
    # replay the same draws by hand and score them with sklearn
    rng = np.random.default_rng(0)
    shape = (2, 3, 300)
    y = rng.random(shape) < 0.2
    noise = rng.standard_normal(shape)
    mu0, mu1 = (math.sqrt(2) * stats.norm.ppf(a) for a in (0.80, 0.81))
    old = noise + mu0 * y
    new = 0.94 * noise + math.sqrt(1 - 0.94**2) * rng.standard_normal(shape) + mu1 * y
    for r in range(2):
        for d in range(3):
            expected = roc_auc_score(y[r, d], new[r, d]) - roc_auc_score(y[r, d], old[r, d])
            assert diffs[r, d] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("true_improvement", [0.005, 0.0])
def test_no_better_challenger_is_rarely_promoted_under_daily_looks(
    true_improvement: float,
) -> None:
    # nominal: at most (1 - 0.95) / 2 = 0.025 over all 180 daily looks; 300 runs have a
    # Monte-Carlo se of 0.009 at that rate, so the bound allows 0.025 + 3 se = 0.052
    result = simulate_live_promotion(true_improvement, 300, 180, 300, seed=11)
    assert result["false_promotion_rate"] is not None
    assert result["false_promotion_rate"] <= 0.052
    # the simulated days vary as the shipped gate's holdout implies (sd ~0.012 a day)
    assert 0.010 < result["daily_sd"] < 0.014


def test_truly_better_challenger_is_promoted_within_the_horizon() -> None:
    result = simulate_live_promotion(0.03, 300, 180, 200, seed=12, checkpoints=(60,))
    assert result["false_promotion_rate"] is None
    assert result["promotion_rate"] >= 0.95
    assert result["median_days_to_promotion"] is not None
    assert 14 <= result["median_days_to_promotion"] <= 30
    assert result["promotion_rate_by_day"][60] >= 0.9
