"""Evidently drift on bounded samples, the debounce of drift events, and rollback rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from continuous_training import drift, registry
from continuous_training.config import PipelineConfig
from continuous_training.inference import PREDICTION
from continuous_training.sources import SyntheticSource, Window
from tests.unit.fake_registry import FakeRegistryClient

ONSET = datetime(2026, 3, 1, tzinfo=UTC)


def frame(config: PipelineConfig, start: datetime, days: int) -> pd.DataFrame:
    data = SyntheticSource(config).fetch(Window(start, start + timedelta(days=days)))
    X = data[config.features.all]
    # a score that moves with the inputs, as a model's would
    return X.assign(**{PREDICTION: 1 / (1 + np.exp(-(X["monthly_charges"] - 75) / 30))})


@pytest.fixture
def config(churn_config: dict[str, Any]) -> PipelineConfig:
    from continuous_training.config import parse_pipeline

    return parse_pipeline(churn_config)


@pytest.fixture
def reference(config: PipelineConfig) -> pd.DataFrame:
    return frame(config, ONSET - timedelta(days=28), 21)


def test_a_pre_drift_day_does_not_breach(config: PipelineConfig, reference: pd.DataFrame) -> None:
    result, _ = drift.compare(config, reference, frame(config, ONSET - timedelta(days=3), 1))
    assert not result.breach, result
    assert set(result.columns) == set(config.features.all)
    assert result.reference_rows == len(reference) and result.current_rows == 300


def test_a_post_drift_day_breaches_and_names_the_columns(
    config: PipelineConfig, reference: pd.DataFrame
) -> None:
    result, snapshot = drift.compare(
        config, reference, frame(config, ONSET + timedelta(days=13), 1)
    )
    assert result.breach
    assert result.drifted_share >= config.drift.drifted_share_threshold
    assert {"monthly_charges", "support_calls"} <= set(result.drifted_columns)
    assert "tenure_months" not in result.drifted_columns  # unchanged by the onset
    assert result.prediction.drifted  # the score follows monthly_charges
    assert all(result.columns[c].drifted for c in result.drifted_columns)
    assert "<html" in snapshot.get_html_str(as_iframe=False).lower()


def test_thresholds_come_from_the_yaml(make_config: Any, reference: pd.DataFrame) -> None:
    strict = make_config(drift={"column_threshold": 1e-9, "drifted_share_threshold": 0.01})
    result, _ = drift.compare(strict, reference, frame(strict, ONSET - timedelta(days=3), 1))
    assert result.breach
    assert {d.threshold for d in result.columns.values()} == {1e-9}


def test_an_empty_side_is_named(config: PipelineConfig, reference: pd.DataFrame) -> None:
    with pytest.raises(drift.DriftInputError, match="scored sample is empty"):
        drift.compare(config, reference, reference.head(0))


def test_a_feature_null_throughout_the_scored_sample_is_named(
    config: PipelineConfig, reference: pd.DataFrame
) -> None:
    """Evidently's bare ValueError used to be retried; the column is named instead."""
    current = frame(config, ONSET - timedelta(days=3), 1).assign(usage_gb=np.nan, plan=None)
    with pytest.raises(drift.DriftInputError) as refused:
        drift.compare(config, reference, current)
    message = str(refused.value)
    assert "features ['usage_gb', 'plan'] are entirely null in the scored sample (300 rows)" in (
        message
    )


def test_event_extra_carries_what_debounce_needs() -> None:
    summary = {
        "episode": "churn/champion-v1",
        "champion_version": "1",
        "drifted_share": 0.5,
        "drifted_columns": ["monthly_charges"],
        "report_uri": "runs:/abc/drift/report.html",
        "window_end": "2026-03-15T00:00:00+00:00",
        "prediction": {"score": 0.2},
    }
    extra = drift.event_extra(summary)
    assert extra["episode"] == "churn/champion-v1"
    assert extra["window_end"] == "2026-03-15T00:00:00+00:00"
    assert extra["prediction_drift_score"] == 0.2


# --------------------------------------------------------------------------- debounce

EVENT = {"episode": "churn/champion-v1", "window_end": "2026-03-15T00:00:00+00:00"}


def trained(version: str, window_end: str, **extra: str) -> tuple[str, dict[str, str]]:
    return version, {
        registry.TAG_WINDOW_END: window_end,
        registry.TAG_DECISION: "rejected",
        registry.TAG_RUN_ID: f"run-{version}",
        **extra,
    }


def test_debounce_lets_a_new_episode_through() -> None:
    decision = drift.debounce(EVENT, [trained("1", "2026-03-01T00:00:00+00:00")], 24)
    assert decision.proceed


def test_debounce_skips_a_handled_episode() -> None:
    handled = trained("2", "2026-03-10T00:00:00+00:00", **{"ct.drift_episode": EVENT["episode"]})
    decision = drift.debounce(EVENT, [handled], 24)
    assert not decision.proceed
    assert "already handled by version 2" in decision.reason


@pytest.mark.parametrize(
    ("trained_to", "proceeds"),
    [
        ("2026-03-14T00:00:00+00:00", False),  # exactly 24 h before
        ("2026-03-14T12:00:00+00:00", False),
        ("2026-03-13T23:00:00+00:00", True),
        ("2026-03-16T00:00:00+00:00", True),  # trained on later data: not this drift's retrain
    ],
)
def test_debounce_cooldown_is_measured_in_data_time(trained_to: str, proceeds: bool) -> None:
    decision = drift.debounce(EVENT, [trained("3", trained_to)], 24)
    assert decision.proceed is proceeds, decision.reason
    if not proceeds:
        assert "24h cooldown" in decision.reason


def test_debounce_ignores_a_retrain_that_never_decided() -> None:
    unfinished = trained("3", "2026-03-14T12:00:00+00:00")
    del unfinished[1][registry.TAG_DECISION]
    assert drift.debounce(EVENT, [unfinished], 24).proceed


# --------------------------------------------------------------------------- rollback rules


def history() -> FakeRegistryClient:
    return FakeRegistryClient(
        "3",
        tags={
            "1": {"ct.decision": "promoted", "ct.replaced_version": "none"},
            "2": {"ct.decision": "rejected"},
            "3": {"ct.decision": "promoted", "ct.replaced_version": "1"},
            "4": {"ct.decision": "promoted", "ct.dry_run": "true"},
        },
    )


def test_rollback_defaults_to_the_replaced_version_and_records_both_sides() -> None:
    reg = history()
    outcome = registry.rollback(reg, "churn", None, "bad release", "manual__r")
    assert outcome == {"model_name": "churn", "champion": "1", "replaced_version": "3"}
    assert reg.aliases[registry.CHAMPION] == "1"
    assert reg.tags["1"]["ct.rollback.decision_reason"] == "bad release"
    assert reg.tags["1"]["ct.rollback.trigger"] == "manual"
    assert reg.tags["3"]["ct.rollback.demoted_by_run"] == "manual__r"
    # a retry of the same run is done already; it must not roll forward again
    assert registry.rollback(reg, "churn", None, "bad release", "manual__r")["champion"] == "1"
    assert reg.aliases[registry.CHAMPION] == "1"


@pytest.mark.parametrize(
    ("to_version", "message"),
    [
        ("2", "never was champion"),
        ("4", "never was champion"),  # a dry run's version was never served
        ("3", "already the champion"),
        ("9", "has no version 9"),
    ],
)
def test_rollback_refuses(to_version: str, message: str) -> None:
    reg = history()
    with pytest.raises(registry.RegistryError, match=message):
        registry.rollback(reg, "churn", to_version, "why not", "manual__r")
    assert reg.aliases[registry.CHAMPION] == "3"


def test_rollback_needs_a_reason() -> None:
    with pytest.raises(registry.RegistryError, match="needs a reason"):
        registry.rollback(history(), "churn", "1", "  ", "manual__r")


# --------------------------------------------------------------------------- metric keys


@pytest.mark.parametrize(
    "column",
    ["usage_gb", "usage gb", "Monatliche Gebühr (€)", "a/b", "a//b/", "x:y", "€€", "é" * 300],
)
def test_every_column_name_gets_a_metric_key_mlflow_accepts(column: str) -> None:
    from mlflow.utils.validation import _validate_metric_name

    key = drift.metric_key(column)
    _validate_metric_name(key)  # raises MlflowException on a key MLflow would refuse
    assert key.startswith("drift.score.") and len(key) <= 250
    assert key.isascii()


def test_metric_keys_stay_readable_and_unique() -> None:
    assert drift.metric_key("usage_gb") == "drift.score.usage_gb"
    assert drift.metric_key("usage gb") == "drift.score.usage gb"
    assert drift.metric_key("Monatliche Gebühr (€)").startswith("drift.score.Monatliche Gebuhr _-")
    # two names that spell the same in ASCII keep apart
    keys = drift.metric_keys(["Gebühr", "Gebuhr", "Geb?hr", "Geb_hr"])
    assert len(set(keys.values())) == 4 and keys["Gebuhr"] == "drift.score.Gebuhr"
