"""Unit tests of the paired bootstrap, the one-model interval and the power statement."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from continuous_training.bootstrap import (
    BootstrapResult,
    bootstrap_interval,
    minimum_detectable_improvement,
    paired_bootstrap,
    power_statement,
)
from continuous_training.metrics import EvaluationError, metric_value
from tests.unit.holdouts import bootstrap_result as _boot
from tests.unit.holdouts import classification as _classification
from tests.unit.holdouts import demo_holdout as _demo_holdout
from tests.unit.holdouts import gates as _gates
from tests.unit.holdouts import regression as _regression


def test_bootstrap_identical_predictions_is_exactly_zero() -> None:
    y, strong, _ = _classification()
    result = paired_bootstrap("roc_auc", y, strong, strong.copy(), resamples=200, seed=0)
    assert result.observed_diff == 0.0
    assert (result.low, result.high) == (0.0, 0.0)
    assert result.resamples == 200


def test_bootstrap_better_challenger_is_positive() -> None:
    y, strong, weak = _classification()
    result = paired_bootstrap("roc_auc", y, strong, weak, resamples=300, seed=0)
    assert result.observed_diff > 0
    assert 0 < result.low < result.observed_diff < result.high


def test_bootstrap_worse_challenger_is_negative() -> None:
    y, strong, weak = _classification()
    result = paired_bootstrap("roc_auc", y, weak, strong, resamples=300, seed=0)
    assert result.low < result.high < 0


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    y, strong, weak = _classification()
    first = paired_bootstrap("average_precision", y, strong, weak, resamples=200, seed=5)
    again = paired_bootstrap("average_precision", y, strong, weak, resamples=200, seed=5)
    other = paired_bootstrap("average_precision", y, strong, weak, resamples=200, seed=6)
    assert first == again
    assert (first.low, first.high) != (other.low, other.high)


def test_bootstrap_lower_is_better_sign_convention() -> None:
    y, strong, weak = _classification()
    result = paired_bootstrap("log_loss", y, strong, weak, resamples=300, seed=0)
    raw = metric_value("log_loss", y, strong) - metric_value("log_loss", y, weak)
    assert raw < 0  # the better model has the LOWER log loss...
    assert result.observed_diff == pytest.approx(-raw)  # ...and the diff says "better" as > 0
    assert result.low > 0


def test_bootstrap_regression_metric() -> None:
    y, good, bad = _regression()
    result = paired_bootstrap("rmse", y, good, bad, resamples=200, seed=0)
    assert result.low > 0.5  # rmse 1 vs 2: the challenger is about 1 better


def test_bootstrap_redraws_one_class_resamples() -> None:
    # 3 positives in 40 rows: ~5% of resamples have none and must be redrawn, not counted
    rng = np.random.default_rng(0)
    y = np.zeros(40, dtype=int)
    y[:3] = 1
    a, b = rng.random(40), rng.random(40)
    result = paired_bootstrap("roc_auc", y, a, b, resamples=500, seed=0)
    assert result.resamples == 500
    assert np.isfinite([result.low, result.high]).all()


def test_bootstrap_keeps_its_standard_error_and_reads_old_records() -> None:
    y, new, old = _demo_holdout(2100)
    boot = paired_bootstrap("roc_auc", y, new, old)
    assert boot.std_error is not None
    # percentile interval of a near-normal statistic: half-width ~ 1.96 SE
    assert boot.std_error == pytest.approx((boot.high - boot.low) / (2 * 1.96), rel=0.15)
    assert BootstrapResult.from_dict(boot.to_dict()) == boot
    old_record = {k: v for k, v in boot.to_dict().items() if k != "std_error"}
    assert BootstrapResult.from_dict(old_record).std_error is None
    with pytest.raises(KeyError):
        BootstrapResult.from_dict({k: v for k, v in old_record.items() if k != "low"})


def test_minimum_detectable_improvement_matches_the_shipped_gate() -> None:
    from scipy import stats

    gates = _gates()  # min_improvement 0.005, 95% confidence, as churn.yaml
    # the demo's ~2,100-row holdout: SE ~0.0045, so a +0.01 candidate is promoted ~20% of runs
    boot = BootstrapResult("roc_auc", 0.01, 0.0012, 0.0188, 0.95, 1000, std_error=0.0045)
    value = minimum_detectable_improvement(boot, gates)
    assert value == pytest.approx(0.005 + (1.959964 + 0.841621) * 0.0045, abs=1e-6)
    assert value == pytest.approx(0.018, abs=0.0005)
    assert stats.norm.cdf((0.01 - 0.005) / 0.0045 - 1.959964) == pytest.approx(0.20, abs=0.02)
    # 20,000 rows: the SE shrinks by sqrt(2100 / 20000) and +0.01 becomes detectable (~90%)
    big = BootstrapResult(
        "roc_auc", 0.01, 0.007, 0.013, 0.95, 1000, std_error=0.0045 * np.sqrt(2100 / 20000)
    )
    assert minimum_detectable_improvement(big, gates) < 0.01
    assert stats.norm.cdf((0.01 - 0.005) / big.std_error - 1.959964) > 0.85
    # more power asks for a larger improvement; nothing to say without a bootstrap
    assert minimum_detectable_improvement(boot, gates, power=0.9) > value
    assert minimum_detectable_improvement(None, gates) is None
    with pytest.raises(EvaluationError, match="power"):
        minimum_detectable_improvement(boot, gates, power=1.0)


def test_a_demo_sized_holdout_is_too_small_for_a_001_gain() -> None:
    # real bootstrap on a simulated 2,100-row holdout of two correlated models: the SE the
    # shipped gate sees, and the warning it must give
    y, new, old = _demo_holdout(2100, seed=1)
    boot = paired_bootstrap("roc_auc", y, new, old)
    assert 0.0035 < boot.std_error < 0.0055
    statement = power_statement(boot, _gates(), has_champion=True)
    assert statement.warning
    assert 0.015 < statement.minimum_detectable_improvement < 0.021
    assert statement.text.startswith(
        f"Power: with this holdout, an improvement of "
        f"{statement.minimum_detectable_improvement:.4f} in roc_auc is promoted with 80% "
        "power at 95% confidence"
    )
    assert (
        "WARNING: that is more than twice min_improvement (0.005): a real gain of 0.01 is "
        "likely to be rejected; a larger holdout (windows.holdout_days) narrows it."
    ) in statement.text


def test_power_statement_without_warning_champion_or_bootstrap() -> None:
    small = BootstrapResult("roc_auc", 0.01, 0.007, 0.013, 0.95, 1000, std_error=0.0015)
    quiet = power_statement(small, _gates(), has_champion=True)
    assert not quiet.warning and "WARNING" not in quiet.text
    assert quiet.minimum_detectable_improvement == pytest.approx(0.005 + 2.8016 * 0.0015, 1e-3)
    # min_improvement 0: no "twice the threshold" yardstick, so the figure without a warning
    assert not power_statement(
        BootstrapResult("roc_auc", 0.01, -0.01, 0.03, 0.95, 1000, std_error=0.01),
        _gates(min_improvement=0.0),
        has_champion=True,
    ).warning
    first = power_statement(None, _gates(), has_champion=False)
    assert first.minimum_detectable_improvement is None and not first.warning
    assert "no champion (first model): there is no paired difference" in first.text
    thin = power_statement(None, _gates(), has_champion=True)
    assert "not computed" in thin.text and "too few rows of a class" in thin.text
    old = power_statement(_boot(0.0, 0.02), _gates(), has_champion=True)
    assert "keeps no standard error" in old.text
    assert json.loads(json.dumps(first.to_dict())) == first.to_dict()


def test_bootstrap_interval_of_one_metric_is_deterministic_and_brackets_it() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500)
    p = np.clip(y * 0.3 + rng.random(500) * 0.7, 0, 1)
    first = bootstrap_interval("roc_auc", y, p, resamples=300, seed=5)
    again = bootstrap_interval("roc_auc", y, p, resamples=300, seed=5)
    assert first == again and first.resamples == 300
    assert first.value == pytest.approx(skm.roc_auc_score(y, p))
    assert first.low < first.value < first.high
    loss = bootstrap_interval("log_loss", y, p, resamples=300, seed=5)
    assert loss.low < skm.log_loss(y, p) < loss.high
