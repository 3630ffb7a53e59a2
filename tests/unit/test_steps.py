"""Steps without Airflow or servers: the run context, the skip policy, and the steps that
need neither MLflow nor a model, on real files under a data root of their own.

The steps that need MLflow are tested against a real server in
tests/integration/test_steps.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowSkipException

from continuous_training import contracts, storage
from continuous_training.contracts import RunContext
from continuous_training.errors import StepSkipped
from continuous_training.operators import (
    EmitDriftEvent,
    FetchData,
    PipelineOperator,
    PublishPredictions,
    TrainCandidate,
)
from continuous_training.steps import inference, monitoring, retraining
from tests.contract_check import assert_conforms

WINDOW_END = datetime(2026, 2, 1, tzinfo=UTC)


def make_ctx(**changes: Any) -> RunContext:
    values: dict[str, Any] = {
        "dag_id": "churn_weekly_retraining",
        "run_id": "scheduled__2026-02-01",
        "window_end": WINDOW_END,
        "trigger": "schedule",
        "tracking_uri": "http://127.0.0.1:1",  # nothing listens: these steps never call it
        "params": {},
    }
    return RunContext(**{**values, **changes})


@pytest.fixture
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CT_DATA_ROOT", str(tmp_path))
    return tmp_path


@pytest.fixture
def no_mlflow_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_MLFLOW_DEFAULT", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.test:5000")


# --------------------------------------------------------------------------- layering


def test_steps_and_contracts_import_neither_airflow_nor_heavy_libraries() -> None:
    """Steps run without Airflow; their modules import heavy libraries only when they run."""
    code = (
        "import sys, json\n"
        "import continuous_training.contracts\n"
        "from continuous_training.steps import inference, monitoring, retraining, rollback\n"
        "roots = {name.split('.')[0] for name in sys.modules}\n"
        "print(json.dumps(sorted(roots & {'airflow', 'pandas', 'numpy', 'sklearn', 'mlflow'})))"
    )
    # the package this session tests, wherever the interpreter would otherwise find one
    package_root = str(Path(contracts.__file__).resolve().parents[1])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")]),
    }
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert json.loads(out) == []


# --------------------------------------------------------------------------- run context


def airflow_context(**changes: Any) -> dict[str, Any]:
    """What Airflow hands `execute`, as far as the run context reads it."""
    context: dict[str, Any] = {
        "run_id": "manual__2026-03-08T02:00:00+00:00",
        "dag_run": SimpleNamespace(dag_id="churn_drift_retraining", run_type="manual"),
        "data_interval_end": datetime(2026, 3, 8, 2, tzinfo=UTC),
        "logical_date": datetime(2026, 3, 8, 2, tzinfo=UTC),
        "params": {"training_window_days": 14, "dry_run": True},
    }
    return {**context, **changes}


def test_the_run_context_is_built_from_the_airflow_context(no_mlflow_connection: None) -> None:
    ctx = FetchData(task_id="fetch", pipeline="churn").run_context(airflow_context())
    assert ctx == RunContext(
        dag_id="churn_drift_retraining",
        run_id="manual__2026-03-08T02:00:00+00:00",
        window_end=datetime(2026, 3, 8, tzinfo=UTC),  # midnight UTC of the interval's end
        trigger="manual",
        tracking_uri="http://mlflow.test:5000",
        params={"training_window_days": 14, "dry_run": True},
    )
    with pytest.raises(AttributeError):
        ctx.run_id = "changed"  # type: ignore[misc]


def test_the_run_context_takes_the_operators_trigger_and_window(
    no_mlflow_connection: None,
) -> None:
    """A drift retrain's tasks: trigger and window end come from the event (templated)."""
    operator = TrainCandidate(
        task_id="train_candidate",
        pipeline="churn",
        snapshot={},
        trigger="performance",
        data_window_end="2026-03-05T00:00:00+00:00",
    )
    ctx = operator.run_context(airflow_context(params={}))
    assert (ctx.trigger, ctx.window_end) == ("performance", datetime(2026, 3, 5, tzinfo=UTC))
    scheduled = airflow_context(dag_run=SimpleNamespace(dag_id="d", run_type="scheduled"))
    assert FetchData(task_id="fetch", pipeline="churn").run_context(scheduled).trigger == (
        "schedule"
    )


def test_a_forced_promotion_is_recorded_as_manual() -> None:
    forced = make_ctx(params={"force_promote": True, "reason": "hotfix"})
    assert retraining.run_info(forced).trigger == "manual"
    assert retraining.run_info(make_ctx(), "churn/champion-v3").registration_tags() == {
        "ct.airflow_run_id": "scheduled__2026-02-01",
        "ct.trigger": "schedule",
        "ct.window_end": WINDOW_END.isoformat(),
        "ct.drift_episode": "churn/champion-v3",
    }


# --------------------------------------------------------------------------- operators


class Skipping(PipelineOperator):
    def execute(self, context: Any) -> Any:
        raise StepSkipped("nothing to do: no drift")


def test_a_step_with_nothing_to_do_skips_its_task() -> None:
    with pytest.raises(AirflowSkipException, match="nothing to do: no drift"):
        Skipping(task_id="t", pipeline="churn").execute({})


def test_an_operator_sends_its_steps_event_to_every_outlet() -> None:
    assets = [Asset(name="ct.churn.predictions"), Asset(name="ct.churn.copy")]
    operator = PublishPredictions(
        task_id="publish_predictions", pipeline="churn", pinned={}, parts=[], outlets=assets
    )
    events = {asset: SimpleNamespace(extra=None) for asset in assets}
    operator.emit({"outlet_events": events}, {"rows": 3})
    assert [event.extra for event in events.values()] == [{"rows": 3}, {"rows": 3}]


def test_operators_store_their_arguments_and_nothing_else() -> None:
    """Templated fields are the constructor's arguments, as given (rendered at run time)."""
    operator = EmitDriftEvent(task_id="emit_drift_event", pipeline="churn", summary="{{ x }}")
    assert operator.template_fields == ("pipeline", "data_window_end", "summary")
    assert (operator.pipeline, operator.summary, operator.data_window_end) == (
        "churn",
        "{{ x }}",
        None,
    )


# --------------------------------------------------------------------------- retraining


def test_fetch_and_validate_write_the_snapshot_and_its_report(data_root: Path, make_config) -> None:
    config = make_config()
    ctx = make_ctx()
    snapshot = retraining.fetch(config, ctx)
    assert_conforms(snapshot, contracts.Snapshot)
    assert snapshot["uri"].startswith(str(data_root))
    assert snapshot["sha256"] == storage.sha256_of(snapshot["uri"])
    days = config.windows.training_days + config.windows.holdout_days
    assert snapshot["window_start"] == (WINDOW_END - timedelta(days=days)).isoformat()
    assert snapshot["window_end"] == WINDOW_END.isoformat()
    assert retraining.fetch(config, ctx)["sha256"] == snapshot["sha256"]  # a re-run agrees

    validated = retraining.validate(config, ctx, snapshot)
    assert_conforms(validated, contracts.ValidatedSnapshot)
    assert storage.read_json(validated["validation_report"])["success"] is True


def test_fetch_refuses_a_bad_trigger_form_before_any_work(data_root: Path, make_config) -> None:
    ctx = make_ctx(params={"force_promote": True, "reason": ""})
    with pytest.raises(ValueError, match=r"params\.reason"):
        retraining.fetch(make_config(), ctx)
    assert not any(data_root.iterdir())


# --------------------------------------------------------------------------- inference


def pinned(**changes: Any) -> contracts.PinnedChampion:
    value: contracts.PinnedChampion = {
        "model_name": "churn",
        "champion_version": "3",
        "champion_sha256": "0" * 64,
        "challenger_version": None,
        "window_start": (WINDOW_END - timedelta(days=1)).isoformat(),
        "window_end": WINDOW_END.isoformat(),
        "mlflow_run_id": "r1",
        "mlflow_run_url": "http://mlflow.test/#/experiments/1/runs/r1",
        "output_set": "scheduled__2026-02-01-abc",
    }
    return {**value, **changes}  # type: ignore[typeddict-item]


def test_list_partitions_splits_the_pinned_window(make_config) -> None:
    partitions = inference.list_partitions(make_config(), make_ctx(), pinned(), 1024)
    assert len(partitions) == 4  # inference.partition_hours: 6
    for partition in partitions:
        assert_conforms(partition, contracts.PartitionSpec)
    assert partitions[0]["start"] == pinned()["window_start"]
    assert partitions[-1]["end"] == pinned()["window_end"]


def drift_summary(breach: bool) -> contracts.DriftSummary:
    column = {"score": 0.01, "method": "K-S p_value", "threshold": 0.05, "drifted": True}
    return {
        "breach": breach,
        "drifted_share": 0.5 if breach else 0.1,
        "drifted_columns": ["usage_gb"],
        "columns": {"usage_gb": column},  # type: ignore[dict-item]
        "prediction": column,  # type: ignore[typeddict-item]
        "threshold": 0.3,
        "current_rows": 1200,
        "reference_rows": 5000,
        "pipeline": "churn",
        "episode": "churn/champion-v3",
        "champion_version": "3",
        "window_start": pinned()["window_start"],
        "window_end": pinned()["window_end"],
        "report_uri": "runs:/r1/drift/report.html",
        "mlflow_run_id": "r1",
        "metric_keys": {"usage_gb": "drift.usage_gb"},
    }


def test_emit_drift_event_on_a_breach_only(make_config) -> None:
    config, ctx = make_config(), make_ctx()
    extra = inference.emit_drift_event(config, ctx, drift_summary(breach=True))
    assert_conforms(extra, contracts.DriftEventExtra)
    assert (extra["episode"], extra["prediction_drift_score"]) == ("churn/champion-v3", 0.01)
    with pytest.raises(StepSkipped, match=r"no drift: drifted share 0\.10 is below 0\.30"):
        inference.emit_drift_event(config, ctx, drift_summary(breach=False))
    skipped: contracts.DriftSummary = {"breach": False, "skipped": "no rows were scored"}
    assert_conforms(skipped, contracts.DriftSummary)
    with pytest.raises(StepSkipped, match="no rows were scored"):
        inference.emit_drift_event(config, ctx, skipped)


def test_the_predictions_event_is_the_published_sets_summary() -> None:
    published: dict[str, Any] = {
        "model_name": "churn",
        "model_version": "3",
        "rows": 1200,
        "uri": "/d/churn/predictions/dt=2026-01-31/set=x",
        "manifest": "/d/churn/predictions/dt=2026-01-31/_manifest.json",
        "window_end": WINDOW_END.isoformat(),
        "parts": [],
        "shadow": None,
    }
    assert_conforms(published, contracts.Published)
    event = inference.predictions_event(published)
    assert list(event) == ["model_name", "model_version", "rows", "uri", "manifest", "window_end"]
    assert_conforms(event, contracts.PredictionsEventExtra)


# --------------------------------------------------------------------------- monitoring


def decay_check(decayed: bool) -> contracts.DecayCheck:
    return {
        "decayed": decayed,
        "reason": "realized roc_auc 0.6000 ..." if decayed else "interval not below",
        "extra": {
            "metric": "roc_auc",
            "expected": 0.8,
            "realized": 0.6,
            "interval": [0.55, 0.65],
            "window": {"start": "2026-01-18T00:00:00+00:00", "end": WINDOW_END.isoformat()},
            "champion_version": "3",
            "labelled_rows": 2000,
            "predictions": 4000,
            "dates": 14,
        },
        "mlflow_run_id": "r2",
        "mlflow_run_url": "http://mlflow.test/#/experiments/1/runs/r2",
    }


def test_emit_performance_event_on_decay_only(make_config) -> None:
    config, ctx = make_config(), make_ctx()
    assert_conforms(decay_check(True), contracts.DecayCheck)
    extra = monitoring.emit_performance_event(config, ctx, decay_check(True))
    assert_conforms(extra, contracts.PerformanceEventExtra)
    assert extra["episode"] == "churn/champion-v3/performance"
    assert extra["window_end"] == WINDOW_END.isoformat()
    assert "roc_auc realized 0.6000 [0.5500, 0.6500] vs expected 0.8000" in (
        monitoring.describe_event(extra)
    )
    with pytest.raises(StepSkipped, match="interval not below"):
        monitoring.emit_performance_event(config, ctx, decay_check(False))


def test_judging_live_evidence_is_skipped_when_the_gate_is_off(make_config) -> None:
    config = make_config(gates={"live_evidence": {"enabled": False}})
    measured: contracts.Measured = {
        "mlflow_run_id": "r2",
        "mlflow_run_url": "u",
        "as_of": WINDOW_END.isoformat(),
        "summary": {},
    }
    with pytest.raises(StepSkipped, match=r"gates\.live_evidence is off"):
        monitoring.judge_live_evidence(config, make_ctx(), measured)
