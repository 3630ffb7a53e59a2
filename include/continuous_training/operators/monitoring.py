"""Performance monitoring operators: ground truth closes the loop.

measure_performance -> check_decay -> emit_performance_event, and
measure_performance -> judge_live_evidence. Each run reads the labels known at the end of
its data interval (never "now"), so a re-run of a date measures what the first run measured.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk.exceptions import AirflowSkipException

from continuous_training.operators.base import PipelineOperator
from continuous_training.operators.links import MLflowRunLink
from continuous_training.operators.retraining import connection_uri

KIND_MONITORING = "performance_monitoring"


def monitoring_run(client: Any, config: Any, airflow_run_id: str, tracking_uri: str) -> dict:
    """The MLflow run of this monitoring run (created once; a retry reuses it)."""
    from continuous_training import registry

    run_id = registry.find_or_create_run(
        client,
        config.experiment_name,
        run_name=f"{config.name}:monitoring:{airflow_run_id}",
        tags={registry.TAG_KIND: KIND_MONITORING, registry.TAG_RUN_ID: airflow_run_id},
    )
    experiment_id = client.get_run(run_id).info.experiment_id
    return {
        "mlflow_run_id": run_id,
        "mlflow_run_url": registry.run_url(tracking_uri, experiment_id, run_id),
    }


def verdict(decay: dict[str, Any]) -> str:
    """`decay`, `no decay`, or `no verdict` (too few labels, or nothing to compare with)."""
    if decay["decayed"]:
        return "decay"
    extra = decay["extra"]
    if extra.get("realized") is None or extra.get("expected") is None:
        return "no verdict"
    return "no decay"


def describe_event(extra: dict[str, Any]) -> str:
    """The performance event's evidence in one line, numbers rounded for a person."""
    low, high = extra["interval"]
    return (
        f"{extra['metric']} realized {extra['realized']:.4f} [{low:.4f}, {high:.4f}] vs "
        f"expected {extra['expected']:.4f} of version {extra['champion_version']} on "
        f"{extra['labelled_rows']:,} labelled rows, {extra['window']['start'][:10]} to "
        f"{extra['window']['end'][:10]}; episode {extra['episode']}"
    )


class MeasurePerformance(PipelineOperator):
    """Join the labels known so far with the published predictions; metrics per date."""

    operator_extra_links = (MLflowRunLink(),)

    def execute(self, context: Any) -> dict[str, Any]:
        from continuous_training import labels, monitoring, registry
        from continuous_training.sources import Window

        config = self.config(context)
        as_of = datetime.fromtimestamp(self.window_end(context).timestamp(), tz=UTC)
        window = Window(as_of - timedelta(days=config.monitoring.lookback_days), as_of)
        conn_id = config.labels_source.conn_id if config.labels_source else None
        uri = connection_uri(conn_id, sqlalchemy=True) if conn_id else None
        known = labels.fetch_labels(config, window, as_of, connection_uri=uri)
        self.log.info(
            "%s labels known by %s for the predictions of %s to %s",
            f"{len(known):,}",
            as_of.strftime("%Y-%m-%d %H:%M UTC"),
            window.start.date(),
            window.end.date(),
        )
        summary = monitoring.measure(config, as_of, known)
        tracking_uri = self.tracking_uri()
        client = registry.make_client(tracking_uri)
        run = monitoring_run(client, config, context["run_id"], tracking_uri)
        for line in monitoring.describe(summary):
            self.log.info("%s", line)
        return {**run, "as_of": as_of.isoformat(), "summary": summary}


class _AfterMeasure(PipelineOperator):
    """A step that reads what measure_performance returned (its as-of and MLflow run)."""

    template_fields = (*PipelineOperator.template_fields, "measured")
    operator_extra_links = (MLflowRunLink(),)

    def __init__(self, *, measured: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.measured = measured


class CheckDecay(_AfterMeasure):
    """Compare the champion's realized metric with its holdout metric at promotion."""

    def execute(self, context: Any) -> dict[str, Any]:
        from continuous_training import monitoring, registry

        config = self.config(context)
        client = registry.make_client(self.tracking_uri())
        as_of = datetime.fromisoformat(self.measured["as_of"])
        champion = registry.alias_version(client, config.model_name, registry.CHAMPION)
        if champion is None:
            raise AirflowSkipException(f"model {config.model_name} has no champion yet")
        expected = monitoring.expected_metric(client, config, champion)
        decay = monitoring.check_decay(config, as_of, champion, expected)
        run_id = self.measured["mlflow_run_id"]
        monitoring.log_to_mlflow(client, run_id, self.measured["summary"], decay)
        client.set_terminated(run_id)
        log = self.log.warning if decay["decayed"] else self.log.info
        log("%s: %s", verdict(decay), decay["reason"])
        return {
            **decay,
            "mlflow_run_id": run_id,
            "mlflow_run_url": self.measured["mlflow_run_url"],
        }


class EmitPerformanceEvent(PipelineOperator):
    """Emit the performance asset event on decay; skip (so emit nothing) otherwise."""

    template_fields = (*PipelineOperator.template_fields, "decay")

    def __init__(self, *, decay: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.decay = decay

    def execute(self, context: Any) -> dict[str, Any]:
        from continuous_training import monitoring

        if not self.decay.get("decayed"):
            raise AirflowSkipException(self.decay.get("reason") or "no decay")
        extra = monitoring.event_extra(self.config(context), self.decay)
        for outlet in self.outlets:
            context["outlet_events"][outlet].extra = extra
        self.log.info("performance event emitted: %s", describe_event(extra))
        self.log.info("performance event extra: %s", extra)
        return extra


class JudgeLiveEvidence(_AfterMeasure):
    """Promote a shadow challenger once its realized gain clears the gate (gates.live_evidence)."""

    def execute(self, context: Any) -> dict[str, Any]:
        from continuous_training import live_evidence

        config = self.config(context)
        if not config.gates.live_evidence.enabled:
            raise AirflowSkipException("gates.live_evidence is off: challengers are judged once")
        outcome = live_evidence.judge_and_promote(
            config,
            datetime.fromisoformat(self.measured["as_of"]),
            self.tracking_uri(),
            context["run_id"],
        )
        if outcome.get("skipped"):
            raise AirflowSkipException(outcome["skipped"])
        self.log.info("%s", outcome["reason"])
        return outcome
