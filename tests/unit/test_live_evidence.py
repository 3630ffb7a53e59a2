"""Which rejected candidates wait for live evidence, and which dates give it an observation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from continuous_training import live_evidence
from continuous_training.config import parse_pipeline
from continuous_training.live_evidence import date_bounds, observations, wants_evidence

GATES = SimpleNamespace(min_improvement=0.005)


def _gate(*failed: str) -> dict[str, Any]:
    names = ["floor", "classes", "champion", "improvement", "guardrail:log_loss", "latency"]
    return {"checks": [{"name": n, "passed": n not in failed, "detail": ""} for n in names]}


def _boot(low: float, high: float) -> dict[str, Any]:
    return {"metric": "roc_auc", "observed_diff": (low + high) / 2, "low": low, "high": high}


# --------------------------------------------------------------------------- wants_evidence


def test_straddling_improvement_alone_wants_evidence() -> None:
    assert wants_evidence(_gate("improvement"), _boot(-0.002, 0.012), GATES)


def test_interval_wholly_at_or_below_min_improvement_does_not() -> None:
    # the holdout did decide: even the best case is no gain worth having
    assert not wants_evidence(_gate("improvement"), _boot(-0.02, 0.004), GATES)
    assert not wants_evidence(_gate("improvement"), _boot(-0.02, 0.005), GATES)  # a tie


def test_any_other_failed_check_does_not() -> None:
    boot = _boot(-0.002, 0.012)
    assert not wants_evidence(_gate("improvement", "guardrail:log_loss"), boot, GATES)
    assert not wants_evidence(_gate("floor"), boot, GATES)
    assert not wants_evidence(_gate("latency", "improvement"), boot, GATES)


def test_a_passed_gate_or_no_bootstrap_does_not() -> None:
    assert not wants_evidence(_gate(), _boot(0.006, 0.02), GATES)
    assert not wants_evidence(_gate("improvement"), None, GATES)


# --------------------------------------------------------------------------- date_bounds


def test_one_day_folder() -> None:
    assert date_bounds("dt=2026-03-14") == (
        datetime(2026, 3, 14, tzinfo=UTC),
        datetime(2026, 3, 15, tzinfo=UTC),
    )


def test_multi_day_folder_as_a_uri_with_a_trailing_slash() -> None:
    start, end = date_bounds("s3://bucket/ct/churn/monitoring/dt=2026-03-08_2026-03-15/")
    assert (start, end) == (datetime(2026, 3, 8, tzinfo=UTC), datetime(2026, 3, 15, tzinfo=UTC))


def test_bad_folder_name_raises() -> None:
    with pytest.raises(ValueError):
        date_bounds("dt=yesterday")


# --------------------------------------------------------------------------- observations


def _write_date(
    root: Path,
    name: str,
    label: str,
    frame: pd.DataFrame,
    window: tuple[datetime, datetime],
    measured: datetime | None,
) -> None:
    folder = root / name / "monitoring" / f"dt={label}"
    folder.mkdir(parents=True)
    frame.to_parquet(folder / "joined.parquet", index=False)
    if measured is not None:
        record = {
            "window_start": window[0].isoformat(),
            "window_end": window[1].isoformat(),
            "as_of": measured.isoformat(),
        }
        (folder / "metrics.json").write_text(json.dumps(record))


def _regression_rows(n: int, champion_noise: float, challenger_noise: float, seed: int):
    rng = np.random.default_rng(seed)
    y = rng.normal(50, 10, n)
    return pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "label": y,
            "prediction": y + rng.normal(0, champion_noise, n),
            "model_version": "1",
            "challenger_prediction": y + rng.normal(0, challenger_noise, n),
            "challenger_version": "2",
        }
    )


@pytest.fixture
def regression(churn_config, tmp_path, monkeypatch):
    """A regression pipeline (rmse: lower is better) with its data root in tmp_path."""
    monkeypatch.setenv("CT_DATA_ROOT", str(tmp_path))
    churn_config |= {"name": "spend", "task": "regression", "labels": {"delay_days": 3}}
    churn_config["model"] = {"estimator": "sklearn.linear_model.Ridge", "params": {}}
    churn_config["expectations"]["columns"].pop("churned")
    churn_config["gates"] = {
        "primary_metric": "rmse",
        "floor": 100.0,
        "min_improvement": 0.1,
        "live_evidence": {"enabled": True, "min_days": 2, "min_rows_per_day": 50},
    }
    return parse_pipeline(churn_config)


def test_regression_uses_predictions_and_lower_rmse_is_better(regression, tmp_path) -> None:
    day = datetime(2026, 3, 1, tzinfo=UTC)
    measured = datetime(2026, 3, 20, tzinfo=UTC)
    for i in range(3):
        start = day + timedelta(days=i)
        frame = _regression_rows(200, champion_noise=6.0, challenger_noise=3.0, seed=i)
        _write_date(
            tmp_path,
            "spend",
            start.date().isoformat(),
            frame,
            (start, start + timedelta(days=1)),
            measured,
        )
    found = observations(regression, measured, "1", "2")
    assert [o["date"] for o in found] == ["2026-03-01", "2026-03-02", "2026-03-03"]
    assert all(o["rows"] == 200 for o in found)
    # the challenger's errors are smaller: a positive difference, about 3 in rmse
    assert all(2.0 < o["diff"] < 4.0 for o in found), found


def test_multi_day_window_is_one_observation_complete_after_its_end(regression, tmp_path) -> None:
    start, end = datetime(2026, 3, 8, tzinfo=UTC), datetime(2026, 3, 15, tzinfo=UTC)
    frame = _regression_rows(500, champion_noise=5.0, challenger_noise=5.0, seed=1)
    _write_date(
        tmp_path, "spend", "2026-03-08_2026-03-15", frame, (start, end), end + timedelta(days=5)
    )
    # complete 3 days after the window's END (2026-03-18), not after its first day
    assert observations(regression, datetime(2026, 3, 17, 23, tzinfo=UTC), "1", "2") == []
    [found] = observations(regression, datetime(2026, 3, 18, tzinfo=UTC), "1", "2")
    assert found["date"] == "2026-03-08" and found["rows"] == 500


def test_window_bounds_come_from_the_measurement_not_the_folder_name(regression, tmp_path) -> None:
    # a window from 06:00 to 06:00 next day is labelled by its dates alone
    start = datetime(2026, 3, 8, 6, tzinfo=UTC)
    end = start + timedelta(days=1)
    frame = _regression_rows(200, 5.0, 5.0, seed=2)
    _write_date(
        tmp_path, "spend", "2026-03-08_2026-03-09", frame, (start, end), end + timedelta(days=4)
    )
    # the folder says it ends 2026-03-09 00:00: complete at 03-12 00:00; it ends at 06:00
    assert observations(regression, datetime(2026, 3, 12, 3, tzinfo=UTC), "1", "2") == []
    assert len(observations(regression, datetime(2026, 3, 12, 6, tzinfo=UTC), "1", "2")) == 1


def test_date_measured_before_its_labels_were_in_gives_no_observation(regression, tmp_path) -> None:
    """Left the monitoring lookback, or monitoring stopped, before all its labels came in."""
    start = datetime(2026, 3, 1, tzinfo=UTC)
    window = (start, start + timedelta(days=1))
    early = _regression_rows(200, 5.0, 4.0, seed=3)
    _write_date(tmp_path, "spend", "2026-03-01", early, window, start + timedelta(days=2))
    late = datetime(2026, 6, 1, tzinfo=UTC)  # long after the date was complete
    assert observations(regression, late, "1", "2") == []
    # measured again once complete: it counts
    (tmp_path / "spend" / "monitoring" / "dt=2026-03-01" / "metrics.json").write_text(
        json.dumps(
            {
                **{"window_start": window[0].isoformat(), "window_end": window[1].isoformat()},
                "as_of": (start + timedelta(days=4)).isoformat(),
            }
        )
    )
    assert len(observations(regression, late, "1", "2")) == 1


def test_dates_without_a_record_or_the_pair_or_enough_rows_are_left_out(
    regression, tmp_path
) -> None:
    measured = datetime(2026, 4, 1, tzinfo=UTC)
    day = datetime(2026, 3, 1, tzinfo=UTC)
    frames = {
        "2026-03-01": (_regression_rows(200, 5.0, 4.0, 4), measured),  # counts
        "2026-03-02": (_regression_rows(200, 5.0, 4.0, 5), None),  # no metrics.json
        "2026-03-03": (_regression_rows(40, 5.0, 4.0, 6), measured),  # < min_rows_per_day
        "2026-03-04": (_regression_rows(200, 5.0, 4.0, 7).assign(model_version="3"), measured),
        "2026-03-05": (
            _regression_rows(200, 5.0, 4.0, 8).drop(
                columns=["challenger_prediction", "challenger_version"]
            ),
            measured,
        ),
    }
    for i, (label, (frame, when)) in enumerate(frames.items()):
        start = day + timedelta(days=i)
        _write_date(tmp_path, "spend", label, frame, (start, start + timedelta(days=1)), when)
    assert [o["date"] for o in observations(regression, measured, "1", "2")] == ["2026-03-01"]


def test_no_monitoring_folder_no_observations(regression) -> None:
    assert observations(regression, datetime(2026, 4, 1, tzinfo=UTC), "1", "2") == []


def test_card_keeps_the_evaluation_then_evidence_then_final_decision() -> None:
    from continuous_training.model_card import with_final_section

    rejected = {
        "decision": "rejected",
        "reason": "interval straddles",
        "trigger": "schedule",
        "airflow_run_id": "r1",
        "promoted": False,
        "replaced_version": None,
        "dry_run": False,
    }
    card = with_final_section("# Model card\n\nevaluation body\n", rejected)
    evidence = {
        "days": 14,
        "as_of": "2026-03-20T05:00:00+00:00",
        "metric": "roc_auc",
        "mean": 0.03,
        "confidence": 0.95,
        "low": 0.02,
        "high": 0.04,
        "min_improvement": 0.005,
        "observations": [{"date": "2026-03-01", "rows": 300, "diff": 0.031}],
    }
    promoted = {**rejected, "decision": "promoted", "reason": "live evidence", "promoted": True}
    promoted |= {"trigger": "live_evidence", "replaced_version": "1"}
    body = card.split("## Final decision")[0]
    once = with_final_section(live_evidence._with_evidence(body, evidence, rejected), promoted)
    # a retry rewrites the same card from what the first attempt left
    again = with_final_section(
        live_evidence._with_evidence(once.split("## Final decision")[0], evidence, rejected),
        promoted,
    )
    assert again == once
    assert once.index("evaluation body") < once.index("## Live evidence")
    assert once.index("## Live evidence") < once.index("## Final decision")
    assert once.count("## Final decision") == 1
    assert "At its holdout this version was **rejected**: interval straddles" in once
    assert "- decision: **promoted**" in once and "| 2026-03-01 | 300 | +0.0310 |" in once
