"""What every continuous-training operator shares: the pipeline, MLflow, the run, the policy.

Operators stay thin: `__init__` stores keyword arguments; `execute` builds the run's
`RunContext` (plain values resolved from Airflow: ids, the data window, the trigger, MLflow's
URI, params) once, calls its step in `continuous_training.steps` and returns the step's
contract. The error policy (bad input fails at once, a step with nothing to do is skipped, the
rest is retried) is here and nowhere else.
"""

from __future__ import annotations

import functools
import gc
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from pydantic import ValidationError

from continuous_training.config import (
    ConfigError,
    PipelineConfig,
    WindowsConfig,
    find_pipeline,
    load_pipeline,
)
from continuous_training.contracts import RunContext
from continuous_training.errors import StepSkipped, is_bad_input
from continuous_training.steps.common import fetch_start
from continuous_training.task_output import route_library_output

__all__ = [
    "PipelineOperator",
    "connection_uri",
    "fetch_start",
    "interval_window_end",
    "load_config",
    "resolve_tracking_uri",
    "trigger_of",
]

MLFLOW_CONN_ID = "mlflow_default"
DEFAULT_TRACKING_URI = "http://127.0.0.1:5000"


def load_config(pipeline: str) -> PipelineConfig:
    """`pipeline` is a name looked up in CT_PIPELINES_DIR, or a path to a YAML file."""
    if pipeline.endswith((".yaml", ".yml")):
        return load_pipeline(pipeline)
    return find_pipeline(pipeline)


def resolve_tracking_uri(conn_id: str = MLFLOW_CONN_ID) -> str:
    """The Airflow connection `mlflow_default` wins over MLFLOW_TRACKING_URI when it exists."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI)
    if conn.login:
        # MLflow's client reads basic-auth credentials from these variables.
        os.environ["MLFLOW_TRACKING_USERNAME"] = conn.login
        os.environ["MLFLOW_TRACKING_PASSWORD"] = conn.password or ""
    if conn.host and "://" in conn.host:
        return conn.host.rstrip("/")
    scheme = conn.schema or (conn.conn_type if conn.conn_type in ("http", "https") else "http")
    port = f":{conn.port}" if conn.port else ""
    return f"{scheme}://{conn.host}{port}"


def interval_window_end(context: Any) -> datetime:
    """The end of the run's data window: midnight UTC starting the day of its interval end.

    Tasks never read the clock, so re-runs agree; windows are whole days, so two runs on
    the same day see the same data (and the newest, possibly still filling, day is left out).
    """
    end = context.get("data_interval_end") or context.get("logical_date")
    if end is None:
        end = context["dag_run"].run_after
    end = end.astimezone(UTC)
    return end.replace(hour=0, minute=0, second=0, microsecond=0)


def connection_uri(conn_id: str, *, sqlalchemy: bool) -> str:
    """The URI of an Airflow connection, as a SQLAlchemy URL (password included) for SQL."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    if not sqlalchemy:
        return conn.get_uri()
    url = getattr(conn.get_hook(), "sqlalchemy_url", None)
    if url is None:
        raise ConfigError(f"source.conn_id {conn_id!r}: its hook has no SQLAlchemy URL")
    return url.render_as_string(hide_password=False)


def fail_bad_input_at_once(execute: Callable[..., Any]) -> Callable[..., Any]:
    """The error policy of every task: bad input fails at once, the rest is retried.

    A `BadInputError` (bad data, bad config, a registry state that forbids the change)
    becomes an AirflowFailException with the same message: waiting five minutes does not fix
    a typo in a YAML or a truncated file, it only delays the message the user needs.
    A step that has nothing to do (`StepSkipped`) skips the task with its reason.
    Anything else (a server restarting, the network) is left to Airflow's retries.
    """
    if getattr(execute, "_ct_error_policy", False):
        return execute

    @functools.wraps(execute)
    def policed(self: Any, context: Any) -> Any:
        try:
            return execute(self, context)
        except AirflowFailException:
            raise
        except StepSkipped as exc:
            raise AirflowSkipException(str(exc)) from exc
        except Exception as exc:
            if is_bad_input(exc):
                raise AirflowFailException(str(exc)) from exc
            raise

    policed._ct_error_policy = True  # type: ignore[attr-defined]
    return policed


# Triggers of runs started by an asset event: the event says which.
ASSET_TRIGGERS = ("drift", "performance")


def trigger_of(context: Any, default: str) -> str:
    """`schedule` for cron runs, `drift`/`performance` for asset events, `manual` for a person."""
    if default in ASSET_TRIGGERS:
        return default
    run_type = getattr(context.get("dag_run"), "run_type", None)
    if str(getattr(run_type, "value", run_type)).lower() == "manual":
        return "manual"
    return default


class PipelineOperator(BaseOperator):
    """Base class: holds the pipeline name (or YAML path) and the MLflow connection id."""

    template_fields: tuple[str, ...] = ("pipeline", "data_window_end")
    ui_color = "#e8f4ea"
    # What a run of this task is, unless Airflow says otherwise (see `trigger_of`); a
    # retraining operator takes it as an argument (templated in a drift retrain).
    trigger: str = "schedule"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Every subclass's execute, the shipped ones and a user's own, gets the one policy.
        super().__init_subclass__(**kwargs)
        if "execute" in cls.__dict__:
            cls.execute = fail_bad_input_at_once(cls.__dict__["execute"])

    def __init__(
        self,
        *,
        pipeline: str,
        mlflow_conn_id: str = MLFLOW_CONN_ID,
        data_window_end: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.pipeline = pipeline
        self.mlflow_conn_id = mlflow_conn_id
        self.data_window_end = data_window_end

    def pre_execute(self, context: Any) -> None:
        # A task process holds about a million long-lived objects (the parsed DAGs, the
        # execution API); freezing them spares every collection during training a walk
        # over them (bench/: ~9 s of GC per 1M-row retrain).
        gc.freeze()
        # What libraries print to stderr would show as ERROR lines in a successful task's log.
        route_library_output()
        super().pre_execute(context)

    def window_end(self, context: Any) -> datetime:
        """`data_window_end` when given (e.g. the drifted window's end), else the run's."""
        if self.data_window_end:
            return datetime.fromisoformat(str(self.data_window_end)).astimezone(UTC)
        return interval_window_end(context)

    def config(self, context: Any) -> PipelineConfig:
        """The pipeline config, with the trigger form's training window applied."""
        config = load_config(self.pipeline)
        days = (context.get("params") or {}).get("training_window_days")
        if days is None:
            return config
        return config.model_copy(update={"windows": _with_training_days(config, days)})

    def tracking_uri(self) -> str:
        return resolve_tracking_uri(self.mlflow_conn_id)

    def run_context(self, context: Mapping[str, Any]) -> RunContext:
        """What a step needs of this task's run, as plain values: built once per execute."""
        dag_run = context.get("dag_run")
        return RunContext(
            dag_id=getattr(dag_run, "dag_id", None) or self.dag_id,
            run_id=context["run_id"],
            window_end=self.window_end(context),
            trigger=trigger_of(context, self.trigger),
            tracking_uri=self.tracking_uri(),
            params=dict(context.get("params") or {}),
        )

    def source_uri(self, source: Any, *, sqlalchemy: bool = True) -> str | None:
        """The URI of the connection a source config names (`conn_id`), or None without one."""
        conn_id = getattr(source, "conn_id", None)
        return connection_uri(conn_id, sqlalchemy=sqlalchemy) if conn_id else None

    def write_note(self, context: Mapping[str, Any], text: str) -> None:
        """The run's outcome for its note: written onto the run when it ends (a listener).

        Tasks cannot write a run's note themselves (Airflow 3's task API has no call for it);
        the listener in `operators/run_notes.py` copies the newest of these when the run ends.
        """
        from continuous_training.run_notes import NOTE_KEY

        context["ti"].xcom_push(key=NOTE_KEY, value=text)

    def emit(self, context: Mapping[str, Any], extra: Mapping[str, Any]) -> None:
        """Every outlet's asset event carries `extra`; Airflow sends them if the task succeeds."""
        for outlet in self.outlets:
            context["outlet_events"][outlet].extra = dict(extra)


def _with_training_days(config: PipelineConfig, days: Any) -> WindowsConfig:
    """`windows` with the trigger form's days, validated like the YAML's own value.

    Airflow validates the form against the DAG's params when a run is created; this
    catches what reaches a task another way (e.g. `airflow tasks test -t`).
    """
    try:
        return WindowsConfig.model_validate({**config.windows.model_dump(), "training_days": days})
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"]
        raise ConfigError(f"params.training_window_days: {days!r}: {reason}") from None
