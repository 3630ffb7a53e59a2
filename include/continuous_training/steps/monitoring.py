"""The steps of performance monitoring: ground truth closes the loop.

measure_performance -> check_decay -> emit_performance_event, and
measure_performance -> judge_live_evidence. Each run reads the labels known at the end of
its data window (never "now"), so a re-run of a date measures what the first run measured.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from continuous_training import labels, ledger, live_evidence, monitoring, registry
from continuous_training.config import PipelineConfig
from continuous_training.contracts import (
    DecayCheck,
    LiveEvidenceOutcome,
    Measured,
    PerformanceEventExtra,
    RunContext,
)
from continuous_training.errors import StepSkipped
from continuous_training.sources import Window
from continuous_training.steps.common import run_outcome, tracked_run

log = logging.getLogger(__name__)

KIND_MONITORING = "performance_monitoring"


def measure_performance(
    config: PipelineConfig, ctx: RunContext, connection_uri: str | None = None
) -> Measured:
    """Join the labels known so far with the published predictions; metrics per date.

    `connection_uri` is the SQLAlchemy URL of `labels.source.conn_id`'s connection.
    """
    as_of = datetime.fromtimestamp(ctx.window_end.timestamp(), tz=UTC)
    window = Window(as_of - timedelta(days=config.monitoring.lookback_days), as_of)
    known = labels.fetch_labels(config, window, as_of, connection_uri=connection_uri)
    log.info(
        "%s labels known by %s for the predictions of %s to %s",
        f"{len(known):,}",
        as_of.strftime("%Y-%m-%d %H:%M UTC"),
        window.start.date(),
        window.end.date(),
    )
    summary = monitoring.measure(config, as_of, known)
    client = registry.make_client(ctx.tracking_uri)
    run_id, run_url = tracked_run(client, config, ctx, KIND_MONITORING, "monitoring")
    for line in monitoring.describe(summary):
        log.info("%s", line)
    return {
        "mlflow_run_id": run_id,
        "mlflow_run_url": run_url,
        "as_of": as_of.isoformat(),
        "summary": summary,
    }


def verdict(decay: DecayCheck) -> str:
    """`decay`, `no decay`, or `no verdict` (too few labels, or nothing to compare with)."""
    if decay["decayed"]:
        return "decay"
    extra = decay["extra"]
    if extra.get("realized") is None or extra.get("expected") is None:
        return "no verdict"
    return "no decay"


def check_decay(config: PipelineConfig, ctx: RunContext, measured: Measured) -> DecayCheck:
    """The champion's realized metric against its holdout metric at promotion; logged to MLflow.

    Closes the monitoring run in MLflow. Skipped while the model has no champion.
    """
    client = registry.make_client(ctx.tracking_uri)
    run_id = measured["mlflow_run_id"]
    with run_outcome(client, run_id, last=True):
        decay = _decay_of(config, client, measured)
        monitoring.log_to_mlflow(client, run_id, measured["summary"], decay)
    checked = cast(
        DecayCheck,
        {**decay, "mlflow_run_id": run_id, "mlflow_run_url": measured["mlflow_run_url"]},
    )
    (log.warning if decay["decayed"] else log.info)("%s: %s", verdict(checked), decay["reason"])
    return checked


def _decay_of(config: PipelineConfig, client: Any, measured: Measured) -> Any:
    champion = registry.alias_version(client, config.model_name, registry.CHAMPION)
    if champion is None:
        raise StepSkipped(f"model {config.model_name} has no champion yet")
    expected = monitoring.expected_metric(client, config, champion)
    return monitoring.check_decay(
        config, datetime.fromisoformat(measured["as_of"]), champion, expected
    )


def describe_event(extra: PerformanceEventExtra) -> str:
    """The performance event's evidence in one line, numbers rounded for a person."""
    low, high = extra["interval"]
    return (
        f"{extra['metric']} realized {extra['realized']:.4f} [{low:.4f}, {high:.4f}] vs "
        f"expected {extra['expected']:.4f} of version {extra['champion_version']} on "
        f"{extra['labelled_rows']:,} labelled rows, {extra['window']['start'][:10]} to "
        f"{extra['window']['end'][:10]}; episode {extra['episode']}"
    )


def emit_performance_event(
    config: PipelineConfig, ctx: RunContext, decay: DecayCheck
) -> PerformanceEventExtra:
    """The performance asset event's extra on decay; skipped (so nothing emitted) otherwise."""
    if not decay.get("decayed"):
        raise StepSkipped(decay.get("reason") or "no decay")
    extra = cast(PerformanceEventExtra, monitoring.event_extra(config, dict(decay)))
    log.info("performance event emitted: %s", describe_event(extra))
    log.info("performance event extra: %s", extra)
    return extra


def judge_live_evidence(
    config: PipelineConfig, ctx: RunContext, measured: Measured
) -> LiveEvidenceOutcome:
    """Promote a shadow challenger once its realized gain clears the gate (gates.live_evidence)."""
    if not config.gates.live_evidence.enabled:
        raise StepSkipped("gates.live_evidence is off: challengers are judged once")
    outcome = live_evidence.judge_and_promote(
        config, datetime.fromisoformat(measured["as_of"]), ctx.tracking_uri, ctx.run_id
    )
    if outcome.get("skipped"):
        raise StepSkipped(outcome["skipped"])
    log.info("%s", outcome["reason"])
    if outcome.get("promoted"):
        ledger.log_summary(config, ctx.tracking_uri)  # a failure is a warning only
    return cast(LiveEvidenceOutcome, outcome)
