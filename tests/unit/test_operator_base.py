"""The operator base and the retraining operators' run helpers: trigger form, window,
trigger, run info, tracking URI. Real Airflow enums; no task runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from continuous_training.config import ConfigError, PipelineConfig
from continuous_training.errors import BadInputError
from continuous_training.operators import base
from continuous_training.operators.retraining import run_info, run_options
from continuous_training.promotion import RunOptions
from continuous_training.training import RunInfo
from tests.unit.decisions import WINDOW_END

# --------------------------------------------------------------------------- trigger form


def test_bad_trigger_form_is_bad_input() -> None:
    context = {"params": {"force_promote": True, "reason": ""}}
    with pytest.raises(BadInputError, match=r"params\.reason"):
        run_options(context)
    assert run_options({"params": {"dry_run": True}}) == RunOptions(dry_run=True)
    assert run_options({}) == RunOptions()


@pytest.mark.parametrize("value", ["yes", "false", 1, None])
def test_a_flag_that_is_not_a_boolean_is_refused(value: Any) -> None:
    with pytest.raises(BadInputError, match=r"params\.dry_run must be true or false"):
        run_options({"params": {"dry_run": value}})


def _operator_config(params: dict[str, Any]) -> PipelineConfig:
    operator = base.PipelineOperator(task_id="fetch", pipeline="churn")
    return operator.config({"params": params})


def test_training_window_days_from_the_trigger_form_is_applied() -> None:
    assert _operator_config({}).windows.training_days == 21
    assert _operator_config({"training_window_days": 14}).windows.training_days == 14


@pytest.mark.parametrize("days", [0, -3, "many", 2.5])
def test_a_bad_training_window_days_names_the_param(days: Any) -> None:
    with pytest.raises(ConfigError, match=r"^params\.training_window_days: "):
        _operator_config({"training_window_days": days})


# --------------------------------------------------------------------------- window_end


@pytest.mark.parametrize(
    ("interval_end", "expected"),
    [
        (datetime(2026, 3, 8, 2, 0, tzinfo=UTC), datetime(2026, 3, 8, tzinfo=UTC)),
        (datetime(2026, 3, 8, 0, 0, tzinfo=UTC), datetime(2026, 3, 8, tzinfo=UTC)),
        (datetime(2026, 3, 8, 23, 59, 59, 999, tzinfo=UTC), datetime(2026, 3, 8, tzinfo=UTC)),
        # 01:30 at UTC+5 is 20:30 UTC the day before
        (
            datetime(2026, 3, 8, 1, 30, tzinfo=timezone(timedelta(hours=5))),
            datetime(2026, 3, 7, tzinfo=UTC),
        ),
    ],
)
def test_window_end_floors_to_midnight_utc(interval_end: datetime, expected: datetime) -> None:
    got = base.interval_window_end({"data_interval_end": interval_end, "logical_date": None})
    assert got == expected
    assert got.utcoffset() == timedelta(0)


def test_window_end_prefers_data_interval_end() -> None:
    context = {
        "data_interval_end": datetime(2026, 3, 8, 2, tzinfo=UTC),
        "logical_date": datetime(2026, 3, 1, 2, tzinfo=UTC),
        "dag_run": SimpleNamespace(run_after=datetime(2026, 3, 20, tzinfo=UTC)),
    }
    assert base.interval_window_end(context) == datetime(2026, 3, 8, tzinfo=UTC)


def test_window_end_falls_back_to_logical_date() -> None:
    context = {"data_interval_end": None, "logical_date": datetime(2026, 3, 1, 5, tzinfo=UTC)}
    assert base.interval_window_end(context) == datetime(2026, 3, 1, tzinfo=UTC)


def test_window_end_falls_back_to_run_after() -> None:
    """An Airflow 3 manual run may have no logical date and no data interval."""
    context = {
        "data_interval_end": None,
        "logical_date": None,
        "dag_run": SimpleNamespace(run_after=datetime(2026, 3, 9, 17, 45, tzinfo=UTC)),
    }
    assert base.interval_window_end(context) == datetime(2026, 3, 9, tzinfo=UTC)
    assert base.interval_window_end({"dag_run": context["dag_run"]}) == datetime(
        2026, 3, 9, tzinfo=UTC
    )


def test_fetch_start_covers_training_and_holdout(make_config) -> None:
    assert base.fetch_start(make_config(), WINDOW_END) == WINDOW_END - timedelta(days=28)


# --------------------------------------------------------------------------- trigger_of


def _run_types(name: str) -> list[Any]:
    """The same run type as a str, as the core enum and as the Task SDK's enum."""
    from airflow.sdk.api.datamodels._generated import DagRunType as SdkDagRunType
    from airflow.utils.types import DagRunType

    return [name.lower(), DagRunType[name], SdkDagRunType[name]]


def _ctx(run_type: Any) -> dict[str, Any]:
    return {"dag_run": SimpleNamespace(run_type=run_type)}


@pytest.mark.parametrize("run_type", _run_types("MANUAL"), ids=["str", "core", "sdk"])
def test_manual_run_is_manual(run_type: Any) -> None:
    assert base.trigger_of(_ctx(run_type), "schedule") == "manual"


@pytest.mark.parametrize("run_type", _run_types("SCHEDULED"), ids=["str", "core", "sdk"])
def test_scheduled_run_is_schedule(run_type: Any) -> None:
    assert base.trigger_of(_ctx(run_type), "schedule") == "schedule"


@pytest.mark.parametrize(
    "run_type",
    [*_run_types("MANUAL"), *_run_types("ASSET_TRIGGERED")],
    ids=[f"{kind}-{source}" for kind in ("manual", "asset") for source in ("str", "core", "sdk")],
)
def test_drift_stays_drift(run_type: Any) -> None:
    assert base.trigger_of(_ctx(run_type), "drift") == "drift"


def test_trigger_of_without_run_type() -> None:
    assert base.trigger_of({"dag_run": SimpleNamespace()}, "schedule") == "schedule"


def test_run_info_force_promote_is_manual() -> None:
    context = {
        "params": {"force_promote": True, "reason": "hotfix"},
        "run_id": "scheduled__x",
        "dag_run": SimpleNamespace(run_type="scheduled"),
        "data_interval_end": datetime(2026, 3, 8, 2, tzinfo=UTC),
    }
    info = run_info(context, "schedule", base.interval_window_end(context))
    assert info == RunInfo("scheduled__x", "manual", WINDOW_END)
    context["params"] = {}
    assert run_info(context, "schedule", WINDOW_END).trigger == "schedule"


def test_run_info_records_the_drift_episode() -> None:
    context = {"params": {}, "run_id": "asset__x", "dag_run": SimpleNamespace(run_type="x")}
    info = run_info(context, "drift", WINDOW_END, "churn/champion-v3")
    assert info.registration_tags()["ct.drift_episode"] == "churn/champion-v3"
    assert info.registration_tags()["ct.trigger"] == "drift"
    assert info.registration_tags()["ct.window_end"] == WINDOW_END.isoformat()
    assert "ct.drift_episode" not in run_info(context, "drift", WINDOW_END).registration_tags()


# --------------------------------------------------------------------------- tracking URI


@pytest.fixture
def no_mlflow_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("AIRFLOW_CONN_MLFLOW_DEFAULT", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return monkeypatch


def test_tracking_uri_default(no_mlflow_env: pytest.MonkeyPatch) -> None:
    assert base.resolve_tracking_uri() == base.DEFAULT_TRACKING_URI


def test_tracking_uri_from_env(no_mlflow_env: pytest.MonkeyPatch) -> None:
    no_mlflow_env.setenv("MLFLOW_TRACKING_URI", "http://tracking.internal:5000")
    assert base.resolve_tracking_uri() == "http://tracking.internal:5000"


@pytest.mark.parametrize(
    ("conn", "expected"),
    [
        ("http://mlflow.example:5001", "http://mlflow.example:5001"),
        (
            '{"conn_type": "http", "host": "mlflow.example", "port": 5001}',
            "http://mlflow.example:5001",
        ),
        (
            '{"conn_type": "http", "host": "mlflow.example", "schema": "https"}',
            "https://mlflow.example",
        ),
        ('{"conn_type": "http", "host": "https://mlflow.example/"}', "https://mlflow.example"),
    ],
    ids=["uri", "json", "json-https-schema", "json-url-host"],
)
def test_airflow_connection_overrides_env(
    no_mlflow_env: pytest.MonkeyPatch, conn: str, expected: str
) -> None:
    """BaseHook.get_connection reads AIRFLOW_CONN_* outside a task: no supervisor needed."""
    no_mlflow_env.setenv("MLFLOW_TRACKING_URI", "http://tracking.internal:5000")
    no_mlflow_env.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", conn)
    assert base.resolve_tracking_uri() == expected


def test_other_connection_id(no_mlflow_env: pytest.MonkeyPatch) -> None:
    no_mlflow_env.setenv("AIRFLOW_CONN_MLFLOW_EU", "http://eu.example:5000")
    assert base.resolve_tracking_uri("mlflow_eu") == "http://eu.example:5000"
    assert base.resolve_tracking_uri() == base.DEFAULT_TRACKING_URI


def test_https_connection_uri_keeps_https(no_mlflow_env: pytest.MonkeyPatch) -> None:
    no_mlflow_env.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", "https://mlflow.example:443")
    assert base.resolve_tracking_uri() == "https://mlflow.example:443"
