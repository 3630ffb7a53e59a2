"""One thin operator per retraining step: fetch, validate, train, evaluate, promote.

Each one parses its arguments, calls the core in `continuous_training.*` and returns
small JSON (URIs, hashes, versions, metrics) for the next step. Heavy libraries are
imported inside `execute` so that DAG files parse fast.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from continuous_training.config import ConfigError
from continuous_training.operators.base import (
    PipelineOperator,
    fetch_start,
    require_pii_key,
    trigger_of,
)
from continuous_training.operators.links import MLflowRunLink


def run_options(context: Any) -> Any:
    """The trigger-form params as a checked RunOptions; bad combinations fail the task."""
    from continuous_training.promotion import RunOptions

    params = context.get("params") or {}
    return RunOptions(
        dry_run=_flag(params, "dry_run"),
        force_promote=_flag(params, "force_promote"),
        reason=str(params.get("reason") or ""),
    )


def _flag(params: dict[str, Any], name: str) -> bool:
    """A boolean param as given: `bool("no")` is True, so a string is refused, not guessed."""
    value = params.get(name, False)
    if not isinstance(value, bool):
        raise ConfigError(f"params.{name} must be true or false, got {value!r}")
    return value


def run_info(context: Any, trigger: str, end: datetime, drift_episode: str | None = None) -> Any:
    from continuous_training.training import RunInfo

    trigger = "manual" if run_options(context).force_promote else trigger_of(context, trigger)
    return RunInfo(
        airflow_run_id=context["run_id"],
        trigger=trigger,
        window_end=end,
        drift_episode=drift_episode or None,
    )


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


class FetchData(PipelineOperator):
    """Fetch the run's window from the pipeline's source into a parquet snapshot with sha256."""

    def execute(self, context: Any) -> dict[str, Any]:
        from continuous_training import sources, storage, training

        run_options(context)  # a bad trigger form fails before any work
        config = self.config(context)
        require_pii_key(config)
        training.check_model(config)  # a bad model.estimator fails now, not after the data
        end = self.window_end(context)
        window = sources.Window(fetch_start(config, end), end)
        conn_id = config.source.conn_id
        sql = config.source.kind == "sql"
        uri = connection_uri(conn_id, sqlalchemy=sql) if conn_id else None
        frame = sources.fetch_window(
            sources.make_source(config, connection_uri=uri), config, window
        )
        sources.require_rows(frame, config, window)
        snapshot = storage.write_parquet_atomic(
            frame, storage.snapshot_uri(config.name, context["run_id"])
        )
        self.log.info("fetched %s rows of %s into %s", snapshot["rows"], window, snapshot["uri"])
        return {
            **snapshot,
            "window_start": window.start.isoformat(),
            "window_end": window.end.isoformat(),
        }


class ValidateData(PipelineOperator):
    """Run the Great Expectations suite built from the config; keep the result as a report."""

    template_fields = (*PipelineOperator.template_fields, "snapshot")

    def __init__(self, *, snapshot: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.snapshot = snapshot

    def execute(self, context: Any) -> dict[str, Any]:
        from continuous_training import storage, validation

        config = self.config(context)
        snapshot = storage.require_in_data_root(self.snapshot["uri"], "snapshot")
        frame = storage.read_parquet(snapshot)
        report = validation.validate(frame, config, self.window_end(context))
        report_uri = storage.snapshot_uri(config.name, context["run_id"], "validation.json")
        storage.write_json_atomic(report.to_json(), report_uri)
        if not report.success:
            raise validation.DataValidationError(report, config.name, report_uri)
        self.log.info("validation passed; report at %s", report_uri)
        return {**self.snapshot, "validation_report": report_uri}


class TrainCandidate(PipelineOperator):
    """Split by time, train the configured sklearn Pipeline, log and register it as challenger."""

    template_fields = (*PipelineOperator.template_fields, "snapshot", "drift_episode", "trigger")
    operator_extra_links = (MLflowRunLink(),)

    def __init__(
        self,
        *,
        snapshot: Any,
        trigger: str = "schedule",
        drift_episode: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.snapshot = snapshot
        self.trigger = trigger
        self.drift_episode = drift_episode

    def execute(self, context: Any) -> dict[str, Any]:
        from continuous_training.training import train_candidate

        candidate = train_candidate(
            self.config(context),
            self.snapshot,
            run_info(context, self.trigger, self.window_end(context), self.drift_episode),
            self.tracking_uri(),
        )
        self.log.info(
            "registered %s version %s: %s",
            candidate["model_name"],
            candidate["model_version"],
            candidate["mlflow_run_url"],
        )
        return candidate


class EvaluateAgainstChampion(PipelineOperator):
    """Score challenger and champion on the same holdout and apply the gate from the YAML."""

    template_fields = (*PipelineOperator.template_fields, "candidate")
    operator_extra_links = (MLflowRunLink(),)

    def __init__(self, *, candidate: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.candidate = candidate

    def execute(self, context: Any) -> dict[str, Any]:
        from continuous_training.promotion import evaluate_candidate

        evaluated = evaluate_candidate(self.config(context), self.candidate, self.tracking_uri())
        self.log.info("gate %s", evaluated["gate_reason"])
        return evaluated


class Promote(PipelineOperator):
    """Move `champion` to the candidate if it won (compare-and-set); record the decision."""

    template_fields = (*PipelineOperator.template_fields, "evaluation", "trigger")

    def __init__(self, *, evaluation: Any, trigger: str = "schedule", **kwargs: Any):
        super().__init__(**kwargs)
        self.evaluation = evaluation
        self.trigger = trigger

    def execute(self, context: Any) -> dict[str, Any]:
        from continuous_training.promotion import promote_candidate

        # A re-evaluation (the champion moved) loads models too: changed files do not heal.
        outcome = promote_candidate(
            self.config(context),
            self.evaluation,
            run_options(context),
            run_info(context, self.trigger, self.window_end(context)),
            self.tracking_uri(),
        )
        self.log.info(
            "%s version %s (ct.trigger=%s): %s",
            outcome["decision"],
            outcome["model_version"],
            outcome.get("trigger"),
            outcome["reason"],
        )
        return outcome
