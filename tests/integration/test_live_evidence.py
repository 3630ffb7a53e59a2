"""Live evidence end to end: a shadow challenger judged day by day on realized outcomes.

A real MLflow server holds two real sklearn models: v1 the champion, v2 the challenger that
its holdout rejected for want of evidence (`ct.live_evidence=pending`, with the decision
record and model card retraining writes). Monitoring's per-date files are written as
`monitoring.measure` writes them (joined.parquet, then metrics.json with the `as_of` the
date was measured with), for simulated days whose labels arrive over `labels.delay_days`;
champion and challenger scores come from a correlated binormal model with known AUCs. The
daily look (`judge_and_promote`, as the monitoring DAG's `judge_live_evidence` calls it)
then advances one day at a time.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from continuous_training import live_evidence, registry
from continuous_training.config import find_pipeline
from continuous_training.model_card import with_final_section
from continuous_training.promotion import CARD_PATH, RECORD_PATH
from tests.environment import SESSION_DIR
from tests.integration.dag_runs import (
    champion,
    run_dag,
    task_states,
    versions,
    write_pipeline,
    xcom_value,
)

pytestmark = pytest.mark.integration

FIRST_DATE = datetime(2026, 1, 1, tzinfo=UTC)  # the first prediction date simulated
DELAY_DAYS = 2  # labels.delay_days: every label of a date is in 2 days after its end
ROWS_PER_DAY = 300
BASE_AUC = 0.80
MIN_DAYS = 14
HOLDOUT_REASON = (
    "roc_auc improvement +0.0040, 95% CI [-0.0030, 0.0110] does not clear min_improvement "
    "0.005; kept in shadow as the challenger: live outcomes will judge it (gates.live_evidence)"
)


# --------------------------------------------------------------------------- registry


def _register(client: Any, name: str, seed: int) -> str:
    """A real sklearn model of its own synthetic data, logged and registered in MLflow."""
    import mlflow
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from continuous_training.training import pip_requirements

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] + rng.normal(size=200) > 0).astype(int)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    mlflow.set_tracking_uri(client.tracking_uri)
    mlflow.set_experiment(f"{name}-live-evidence")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model, name="model", pip_requirements=pip_requirements(), serialization_format="pickle"
        )
    version = str(mlflow.register_model(info.model_uri, name).version)
    registry.wait_until_ready(client, name, version)
    return version


def champion_and_pending_challenger(
    client: Any, name: str, *, pending: bool = True, **overrides: Any
) -> None:
    """v1 champion; v2 challenger rejected by its holdout, as `promote_candidate` leaves it."""
    import mlflow

    write_pipeline(
        name,
        labels={"delay_days": DELAY_DAYS},
        gates={"live_evidence": {"enabled": True, "min_days": MIN_DAYS, "min_rows_per_day": 100}},
        **overrides,
    )
    assert _register(client, name, seed=1) == "1"
    assert _register(client, name, seed=2) == "2"
    promoted = registry.Decision(registry.PROMOTED, "first model", "schedule", "scheduled__1", True)
    registry.apply_decision(client, name, "1", promoted, expected_champion=None)
    reason = HOLDOUT_REASON if pending else "log_loss guardrail: worse than the champion by 0.03"
    rejected = registry.Decision(registry.REJECTED, reason, "schedule", "scheduled__2", False)
    registry.apply_decision(client, name, "2", rejected, expected_champion="1")
    client.set_registered_model_alias(name, registry.CHALLENGER, "2")
    if pending:
        registry.set_version_tags(
            client, name, "2", {live_evidence.TAG_LIVE: live_evidence.PENDING}
        )
    final = {
        "decision": "rejected",
        "reason": reason,
        "trigger": "schedule",
        "airflow_run_id": "scheduled__2",
        "promoted": False,
        "replaced_version": None,
        "dry_run": False,
        "superseded_evaluations": [],
    }
    record = {
        "pipeline": name,
        "model_name": name,
        "challenger": {"version": "2", "metrics": {"roc_auc": 0.804}},
        "champion": {"version": "1", "metrics": {"roc_auc": 0.800}},
        "bootstrap": {"metric": "roc_auc", "observed_diff": 0.004, "low": -0.003, "high": 0.011},
        "final": final,
    }
    card = f"# Model card: {name} version 2\n\n## Decision\n\nrejected by the gate\n"
    with mlflow.start_run(run_id=_run_id(client, name, "2")):
        mlflow.log_dict(record, RECORD_PATH)
        mlflow.log_text(with_final_section(card, final), CARD_PATH)
    assert champion(client, name) == "1"


def _run_id(client: Any, name: str, version: str) -> str:
    return client.get_model_version(name, version).run_id


def _record(client: Any, name: str, version: str) -> dict[str, Any]:
    import mlflow

    return mlflow.artifacts.load_dict(f"runs:/{_run_id(client, name, version)}/{RECORD_PATH}")


def _card(client: Any, name: str, version: str) -> str:
    import mlflow

    return mlflow.artifacts.load_text(f"runs:/{_run_id(client, name, version)}/{CARD_PATH}")


# --------------------------------------------------------------------------- simulated days


def _folder(name: str, date: datetime | str) -> Path:
    label = date if isinstance(date, str) else date.date().isoformat()
    return SESSION_DIR / "data" / name / "monitoring" / f"dt={label}"


def _day(date: datetime, gain: float, seed: int) -> pd.DataFrame:
    """One date's scored rows: labels, both models' binormal scores, each label's arrival.

    Within a class each model's score is N(0, 1), shifted by mu = sqrt(2) Phi^-1(AUC) for the
    positives (so AUC is exact); the challenger's noise is 0.94 times the champion's plus an
    independent part (sequential.daily_auc_differences' model: ~0.012 daily sd at 300 rows).
    """
    from continuous_training.sequential import DEMO_POSITIVE_RATE, DEMO_SCORE_CORRELATION

    rng = np.random.default_rng([seed, date.toordinal()])
    mu0 = math.sqrt(2) * stats.norm.ppf(BASE_AUC)
    mu1 = math.sqrt(2) * stats.norm.ppf(BASE_AUC + gain)
    rho = DEMO_SCORE_CORRELATION
    y = (rng.random(ROWS_PER_DAY) < DEMO_POSITIVE_RATE).astype(int)
    noise = rng.standard_normal(ROWS_PER_DAY)
    champion_score = noise + mu0 * y
    challenger_score = rho * noise + math.sqrt(1 - rho**2) * rng.standard_normal(ROWS_PER_DAY)
    challenger_score += mu1 * y
    p0 = 1 / (1 + np.exp(-(champion_score - 1.5)))
    p1 = 1 / (1 + np.exp(-(challenger_score - 1.5)))
    known_after = DELAY_DAYS * rng.uniform(0.5, 1.0, ROWS_PER_DAY)  # days after the date's end
    return pd.DataFrame(
        {
            "customer_id": [f"{date.date()}-{i}" for i in range(ROWS_PER_DAY)],
            "label": y,
            "prediction": (p0 > 0.5).astype(int),
            "probability": p0,
            "model_version": "1",
            "challenger_prediction": (p1 > 0.5).astype(int),
            "challenger_probability": p1,
            "challenger_version": "2",
            "_known_after_days": known_after,
        }
    )


def measure(name: str, date: datetime, as_of: datetime, gain: float, seed: int) -> int:
    """Write a date's files as monitoring at `as_of` would: the rows whose labels are known."""
    end = date + timedelta(days=1)
    rows = _day(date, gain, seed)
    known = rows[end + pd.to_timedelta(rows["_known_after_days"], unit="D") <= as_of]
    folder = _folder(name, date)
    folder.mkdir(parents=True, exist_ok=True)
    known.drop(columns="_known_after_days").to_parquet(folder / "joined.parquet", index=False)
    metrics = {
        "date": date.date().isoformat(),
        "window_start": date.isoformat(),
        "window_end": end.isoformat(),
        "as_of": as_of.isoformat(),
        "labelled_rows": len(known),
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return len(known)


def daily_looks(
    name: str, days: int, gain: float, seed: int, stop_when_promoted: bool = True
) -> list[tuple[datetime, dict[str, Any]]]:
    """Day k: monitoring at 05:00 measures the dates whose labels are still coming in, then
    the live evidence is judged, as the monitoring DAG does every day."""
    pipeline = find_pipeline(name)
    uri = _tracking_uri()
    looks = []
    for k in range(1, days + 1):
        as_of = FIRST_DATE + timedelta(days=k, hours=5)
        for back in range(DELAY_DAYS + 2):  # dates measured again until their labels are in
            date = FIRST_DATE + timedelta(days=k - 1 - back)
            if date >= FIRST_DATE:
                measure(name, date, as_of, gain, seed)
        outcome = live_evidence.judge_and_promote(pipeline, as_of, uri, f"scheduled__{k}")
        looks.append((as_of, outcome))
        if stop_when_promoted and outcome.get("promoted"):
            break
    return looks


def settled_days(name: str, days: int, gain: float, seed: int) -> datetime:
    """`days` dates measured after all their labels came in; returns the first as_of after."""
    as_of = FIRST_DATE + timedelta(days=days + DELAY_DAYS, hours=5)
    for k in range(days):
        measure(name, FIRST_DATE + timedelta(days=k), as_of, gain, seed)
    return as_of


def _tracking_uri() -> str:
    import os

    return os.environ["MLFLOW_TRACKING_URI"]


def _complete(date: str, as_of: datetime) -> bool:
    start = datetime.fromisoformat(date).replace(tzinfo=UTC)
    return start + timedelta(days=1 + DELAY_DAYS) <= as_of


# --------------------------------------------------------------------------- tests


def test_better_challenger_is_promoted_on_live_evidence(client) -> None:
    name = "churn_live_better"
    champion_and_pending_challenger(client, name)

    looks = daily_looks(name, days=40, gain=0.03, seed=11)
    *before, (as_of, promoted) = looks
    assert promoted["promoted"] is True, promoted["reason"]
    evidence = promoted["evidence"]

    # never before min_days complete dates, and never on a date whose labels are still coming
    for day_as_of, outcome in before:
        assert outcome["promoted"] is False
        assert "stays in shadow" in outcome["reason"]
        assert outcome["evidence"]["days"] < MIN_DAYS or not outcome["evidence"]["cleared"]
        assert all(_complete(o["date"], day_as_of) for o in outcome["evidence"]["observations"])
    assert evidence["days"] >= MIN_DAYS
    assert {outcome["evidence"]["days"] for _, outcome in before} >= set(range(MIN_DAYS))
    dates = [o["date"] for o in evidence["observations"]]
    assert all(_complete(d, as_of) for d in dates)
    complete = sum(_complete(p.name.removeprefix("dt="), as_of) for p in _folders(name))
    assert len(dates) == complete == evidence["days"]
    # the newest dates have labelled rows already, but are not complete: left out
    newest = (as_of - timedelta(days=2, hours=5)).date().isoformat()
    assert len(pd.read_parquet(_folder(name, newest) / "joined.parquet")) > 0
    assert newest not in dates
    assert all(o["rows"] == ROWS_PER_DAY for o in evidence["observations"])
    assert evidence["cleared"] is True and evidence["low"] > 0.005
    assert 0.01 < evidence["mean"] < 0.05

    assert champion(client, name) == "2"
    tags = versions(client, name)[1].tags
    assert tags["ct.decision"] == "promoted"
    assert tags["ct.trigger"] == "live_evidence"
    assert tags["ct.replaced_version"] == "1"
    assert tags["ct.live_evidence"] == "promoted"
    assert tags["ct.airflow_run_id"] == f"scheduled__{len(looks)}"
    assert tags["ct.decision_reason"].startswith("live evidence: mean daily improvement")
    record = _record(client, name, "2")
    assert record["live_evidence"]["cleared"] is True
    assert record["live_evidence"]["observations"] == evidence["observations"]
    assert record["live_evidence"]["champion_version"] == "1"
    assert record["final"]["decision"] == "promoted"
    assert record["final"]["trigger"] == "live_evidence"
    assert record["final"]["replaced_version"] == "1"
    assert record["final"]["earlier"]["decision"] == "rejected"  # the holdout's, kept
    card = _card(client, name, "2")
    assert card.count("## Live evidence") == 1 and card.count("## Final decision") == 1
    assert card.index("## Live evidence") < card.index("## Final decision")
    assert "- decision: **promoted**" in card
    assert "- trigger: live_evidence" in card
    assert "- replaced champion version: 1" in card
    assert f"| {dates[0]} | {ROWS_PER_DAY} |" in card
    assert "At its holdout this version was **rejected**" in card
    assert client.get_run(_run_id(client, name, "2")).data.tags["ct.decision"] == "promoted"

    # the next day: the challenger is the champion, nothing left to judge
    pipeline = find_pipeline(name)
    later = live_evidence.judge_and_promote(
        pipeline, as_of + timedelta(days=1), _tracking_uri(), "scheduled__next"
    )
    assert "no challenger" in later["skipped"]
    assert champion(client, name) == "2"


def _folders(name: str) -> list[Path]:
    return sorted((SESSION_DIR / "data" / name / "monitoring").glob("dt=*"))


def test_no_better_challenger_stays_in_shadow(client) -> None:
    name = "churn_live_equal"
    champion_and_pending_challenger(client, name)

    looks = daily_looks(name, days=120, gain=0.0, seed=12)
    assert len(looks) == 120
    assert not any(outcome["promoted"] for _, outcome in looks)
    _, last = looks[-1]
    assert last["evidence"]["days"] == 120 - DELAY_DAYS
    assert last["reason"].startswith("challenger version 2 stays in shadow: mean daily")
    assert "95% confidence sequence [" in last["reason"]
    assert "does not clear min_improvement 0.005" in last["reason"]
    # the sequence covers the true difference (0) and stays below min_improvement
    assert last["evidence"]["low"] < 0.0 < last["evidence"]["high"]
    assert all(
        outcome["evidence"]["low"] is None or outcome["evidence"]["low"] <= 0.005
        for _, outcome in looks
    )
    assert champion(client, name) == "1"
    tags = versions(client, name)[1].tags
    assert tags["ct.decision"] == "rejected" and tags["ct.live_evidence"] == "pending"
    assert "live_evidence" not in _record(client, name, "2")


def test_challenger_rejected_for_another_reason_is_not_judged(client) -> None:
    name = "churn_live_other"
    champion_and_pending_challenger(client, name, pending=False)
    as_of = settled_days(name, 30, gain=0.05, seed=13)  # evidence that would clear

    outcome = live_evidence.judge_and_promote(
        find_pipeline(name), as_of, _tracking_uri(), "scheduled__other"
    )
    assert outcome["skipped"] == (
        "challenger version 2 was not rejected for want of evidence "
        "(only such a challenger is judged on live outcomes)"
    )
    assert champion(client, name) == "1"
    assert versions(client, name)[1].tags["ct.decision"] == "rejected"


def test_with_approval_required_cleared_evidence_promotes_nothing(client) -> None:
    """Only a retraining run asks a person; live evidence never moves the champion alone."""
    name = "churn_live_approval"
    champion_and_pending_challenger(client, name, approval={"required": True})
    as_of = settled_days(name, 30, gain=0.03, seed=14)  # v1 vs v2: this would clear

    outcome = live_evidence.judge_and_promote(
        find_pipeline(name), as_of, _tracking_uri(), "scheduled__approval"
    )
    assert outcome["promoted"] is False
    assert outcome["evidence"]["cleared"] is True
    assert "approval.required" in outcome["reason"]
    assert champion(client, name) == "1"
    assert versions(client, name)[1].tags["ct.live_evidence"] == "pending"


def test_champion_moved_before_the_look_promotes_nothing(client) -> None:
    name = "churn_live_moved"
    champion_and_pending_challenger(client, name)
    as_of = settled_days(name, 30, gain=0.03, seed=14)  # v1 vs v2: this would clear
    assert _register(client, name, seed=3) == "3"
    rollback = registry.Decision(registry.PROMOTED, "hotfix", "manual", "manual__3", True, "1")
    registry.apply_decision(client, name, "3", rollback, expected_champion="1")

    outcome = live_evidence.judge_and_promote(
        find_pipeline(name), as_of, _tracking_uri(), "scheduled__moved"
    )
    # the evidence is of the pair that served (v1, v2); v3 and v2 have none yet
    assert outcome["promoted"] is False
    assert outcome["champion_version"] == "3"
    assert outcome["evidence"]["days"] == 0
    assert "stays in shadow" in outcome["reason"]
    assert champion(client, name) == "3"
    tags = versions(client, name)[1].tags
    assert tags["ct.decision"] == "rejected" and tags["ct.live_evidence"] == "pending"


def test_champion_moved_during_the_look_promotes_nothing(client, monkeypatch) -> None:
    """Another promotion lands between reading the aliases and switching: compare-and-set."""
    name = "churn_live_race"
    champion_and_pending_challenger(client, name)
    as_of = settled_days(name, 30, gain=0.03, seed=15)
    assert _register(client, name, seed=3) == "3"
    observations = live_evidence.observations

    def observed_while_another_run_promotes(*args: Any) -> list[dict[str, Any]]:
        found = observations(*args)  # the real evidence of (v1, v2), which clears
        other = registry.Decision(registry.PROMOTED, "other run", "drift", "drift__3", True, "1")
        registry.apply_decision(client, name, "3", other, expected_champion="1")
        return found

    monkeypatch.setattr(live_evidence, "observations", observed_while_another_run_promotes)
    outcome = live_evidence.judge_and_promote(
        find_pipeline(name), as_of, _tracking_uri(), "scheduled__race"
    )
    assert outcome["promoted"] is False
    assert outcome["evidence"]["cleared"] is True
    assert outcome["reason"].startswith(
        f"not promoted: champion of {name} moved from version 1 to 3"
    )
    assert champion(client, name) == "3"
    tags = versions(client, name)[1].tags
    assert tags["ct.decision"] == "rejected" and tags["ct.live_evidence"] == "pending"
    assert _record(client, name, "2")["final"]["decision"] == "rejected"


def test_promotion_whose_record_was_not_written_is_finished(client) -> None:
    """The task died after the alias switch, before the record: the retry writes it."""
    name = "churn_live_retry"
    champion_and_pending_challenger(client, name)
    as_of = settled_days(name, 30, gain=0.03, seed=16)
    pipeline = find_pipeline(name)
    # what the first attempt did before it died: the decision and the switch, no record
    evidence = live_evidence._judge(pipeline, as_of, "1", "2")[0]
    assert evidence.cleared
    switched = registry.Decision(
        registry.PROMOTED,
        f"live evidence: {evidence.reason}",
        "live_evidence",
        "sched__r",
        True,
        "1",
    )
    registry.apply_decision(client, name, "2", switched, expected_champion="1")

    outcome = live_evidence.judge_and_promote(pipeline, as_of, _tracking_uri(), "sched__r")
    assert outcome["promoted"] is True, outcome
    assert champion(client, name) == "2"
    assert versions(client, name)[1].tags["ct.live_evidence"] == "promoted"
    record = _record(client, name, "2")
    assert record["live_evidence"]["cleared"] is True
    assert record["final"]["airflow_run_id"] == "sched__r"
    assert record["final"]["earlier"]["decision"] == "rejected"
    assert "## Live evidence" in _card(client, name, "2")
    # a further retry has nothing left to do
    again = live_evidence.judge_and_promote(pipeline, as_of, _tracking_uri(), "sched__r")
    assert "no challenger" in again["skipped"]


def test_retrain_that_the_holdout_cannot_decide_is_left_pending(client) -> None:
    """The real path: two weekly retrains of the same week, the second on a longer window.

    v1 trains on 14 days, v2 on 21: v2 is a little better, but its holdout's interval of the
    gain straddles min_improvement, so the gate rejects it and `promote_candidate` leaves it
    the challenger, pending live evidence.
    """
    name = "churn_live_dag"
    write_pipeline(name)
    week = datetime(2026, 2, 15, 2, tzinfo=UTC)
    first = run_dag(f"{name}_weekly_retraining", week, {"training_window_days": 14})
    assert str(first.state) == "success", task_states(first)
    second = run_dag(
        f"{name}_weekly_retraining", week.replace(hour=5), {"training_window_days": 21}
    )
    assert str(second.state) == "success", task_states(second)

    assert champion(client, name) == "1"
    assert registry.alias_version(client, name, registry.CHALLENGER) == "2"
    evaluated = xcom_value(second, "evaluate_vs_champion")
    assert evaluated["gate_passed"] is False and evaluated["wants_live_evidence"] is True
    tags = versions(client, name)[1].tags
    assert tags["ct.decision"] == "rejected"
    assert tags["ct.live_evidence"] == "pending"
    assert "does not clear min_improvement 0.005" in tags["ct.decision_reason"]
    assert tags["ct.decision_reason"].endswith(
        "kept in shadow as the challenger: live outcomes will judge it (gates.live_evidence)"
    )
    record = _record(client, name, "2")
    low, high = record["bootstrap"]["low"], record["bootstrap"]["high"]
    assert low <= 0.005 < high  # straddles: the holdout could not decide
    assert [c["name"] for c in record["gate"]["checks"] if not c["passed"]] == ["improvement"]
    assert record["final"]["decision"] == "rejected"
    assert "live outcomes will judge it" in _card(client, name, "2")
