"""The steps of a retrain: fetch -> validate -> train_candidate -> evaluate -> promote.

A drift retrain runs `debounce` first. Each step is `(config, run context, inputs) ->
contract` over the core (`sources`, `validation`, `training`, `retraining`, `registry`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, cast

from continuous_training import (
    approval,
    drift,
    promotion,
    registry,
    run_notes,
    sources,
    storage,
    training,
    validation,
)
from continuous_training.config import ConfigError, PipelineConfig
from continuous_training.contracts import (
    ApprovalRequest,
    Candidate,
    Evaluation,
    Promotion,
    RunContext,
    Snapshot,
    TriggeringEvent,
    ValidatedSnapshot,
)
from continuous_training.errors import StepSkipped
from continuous_training.ledger import log_summary
from continuous_training.steps.common import fetch_start, require_pii_key

log = logging.getLogger(__name__)


def run_options(params: Mapping[str, Any]) -> promotion.RunOptions:
    """The trigger-form params as a checked RunOptions; bad combinations are bad input."""
    return promotion.RunOptions(
        dry_run=_flag(params, "dry_run"),
        force_promote=_flag(params, "force_promote"),
        reason=str(params.get("reason") or ""),
    )


def _flag(params: Mapping[str, Any], name: str) -> bool:
    """A boolean param as given: `bool("no")` is True, so a string is refused, not guessed."""
    value = params.get(name, False)
    if not isinstance(value, bool):
        raise ConfigError(f"params.{name} must be true or false, got {value!r}")
    return value


def run_info(ctx: RunContext, drift_episode: str | None = None) -> training.RunInfo:
    """Who asks for the candidate; a forced promotion is a person's decision: `manual`."""
    trigger = "manual" if run_options(ctx.params).force_promote else ctx.trigger
    return training.RunInfo(
        airflow_run_id=ctx.run_id,
        trigger=trigger,
        window_end=ctx.window_end,
        drift_episode=drift_episode or None,
    )


def fetch(config: PipelineConfig, ctx: RunContext, connection_uri: str | None = None) -> Snapshot:
    """The run's window from the pipeline's source, as a parquet snapshot with its sha256.

    `connection_uri` is the URI of `source.conn_id`'s connection (a SQLAlchemy URL for sql).
    """
    run_options(ctx.params)  # a bad trigger form fails before any work
    require_pii_key(config)
    training.check_model(config)  # a bad model.estimator fails now, not after the data
    window = sources.Window(fetch_start(config, ctx.window_end), ctx.window_end)
    source = sources.make_source(config, connection_uri=connection_uri)
    frame = sources.fetch_window(source, config, window)
    sources.require_rows(frame, config, window)
    written = storage.write_parquet_atomic(frame, storage.snapshot_uri(config.name, ctx.run_id))
    log.info("fetched %s rows of %s into %s", written["rows"], window, written["uri"])
    return cast(
        Snapshot,
        {
            **written,
            "window_start": window.start.isoformat(),
            "window_end": window.end.isoformat(),
        },
    )


def validate(config: PipelineConfig, ctx: RunContext, snapshot: Snapshot) -> ValidatedSnapshot:
    """The Great Expectations suite of the config on the snapshot; its result kept as a report."""
    frame = storage.read_parquet(storage.require_in_data_root(snapshot["uri"], "snapshot"))
    report = validation.validate(frame, config, ctx.window_end)
    report_uri = storage.snapshot_uri(config.name, ctx.run_id, "validation.json")
    storage.write_json_atomic(report.to_json(), report_uri)
    if not report.success:
        raise validation.DataValidationError(report, config.name, report_uri)
    log.info("validation passed; report at %s", report_uri)
    return cast(ValidatedSnapshot, {**snapshot, "validation_report": report_uri})


def train_candidate(
    config: PipelineConfig,
    ctx: RunContext,
    snapshot: ValidatedSnapshot,
    drift_episode: str | None = None,
) -> Candidate:
    """Split by time, fit the configured Pipeline, log and register it as `challenger`."""
    candidate = training.train_candidate(
        config, dict(snapshot), run_info(ctx, drift_episode), ctx.tracking_uri
    )
    log.info(
        "registered %s version %s: %s",
        candidate["model_name"],
        candidate["model_version"],
        candidate["mlflow_run_url"],
    )
    return cast(Candidate, candidate)


def evaluate(config: PipelineConfig, ctx: RunContext, candidate: Candidate) -> Evaluation:
    """Challenger and champion on the same holdout; the gate of the YAML decides."""
    evaluated = promotion.evaluate_candidate(config, dict(candidate), ctx.tracking_uri)
    log.info("gate %s", evaluated["gate_reason"])
    return cast(Evaluation, evaluated)


def approval_request(
    config: PipelineConfig, ctx: RunContext, evaluation: Evaluation
) -> ApprovalRequest:
    """What a person is asked to approve: skipped when nothing would change (`approval`)."""
    options = run_options(ctx.params)
    skip = approval.skip_reason(config, evaluation, options)
    if skip:
        raise StepSkipped(f"no approval needed: {skip}")
    registry.make_client(ctx.tracking_uri)  # checks the server and login; sets the URI
    record = _decision_record(evaluation["mlflow_run_id"])
    log.info("asking for approval of version %s", evaluation["model_version"])
    return {
        "subject": approval.subject(config, evaluation),
        "body": approval.body(config, evaluation, record, options),
    }


def _decision_record(run_id: str) -> dict[str, Any]:
    import mlflow

    return dict(mlflow.artifacts.load_dict(f"runs:/{run_id}/{promotion.RECORD_PATH}"))


def promote(
    config: PipelineConfig,
    ctx: RunContext,
    evaluation: Evaluation,
    approval_response: Mapping[str, Any] | None = None,
) -> Promotion:
    """Move `champion` to the candidate if it won (compare-and-set); record the decision.

    With `approval.required`, a change needs the approve task's answer (`approval_response`):
    a rejection, a timeout or no answer at all records the candidate as rejected.
    """
    options = run_options(ctx.params)
    answer = None
    if not approval.skip_reason(config, evaluation, options):
        answer = (
            approval.answer_from_response(approval_response)
            if approval_response
            else approval.NO_ANSWER
        )
    # A re-evaluation (the champion moved) loads models too: changed files do not heal.
    outcome = promotion.promote_candidate(
        config, dict(evaluation), options, run_info(ctx), ctx.tracking_uri, answer
    )
    log.info(
        "%s version %s (ct.trigger=%s): %s",
        outcome["decision"],
        outcome["model_version"],
        outcome.get("trigger"),
        outcome["reason"],
    )
    log_summary(config, ctx.tracking_uri)  # a failure is a warning, never the decision's
    return cast(Promotion, outcome)


def run_note(
    config: PipelineConfig, ctx: RunContext, evaluation: Evaluation, outcome: Promotion
) -> str:
    """The retraining run's note: decision, versions, primary metric, data window, reason."""
    window = f"{fetch_start(config, ctx.window_end):%Y-%m-%d} to {ctx.window_end:%Y-%m-%d}"
    return run_notes.retraining(outcome, evaluation, window)


def debounce(config: PipelineConfig, ctx: RunContext, event: TriggeringEvent) -> TriggeringEvent:
    """Let a drift or performance event through to the retrain, or skip it and say why.

    Skipped when its episode was already handled, or a retrain trained on data ending within
    `drift.cooldown_hours` before the event's window (`drift.debounce`).
    """
    client = registry.make_client(ctx.tracking_uri)
    versions = registry.all_version_tags(client, config.model_name)
    decision = drift.debounce(dict(event), versions, config.drift.cooldown_hours)
    if not decision.proceed:
        log.info("skipping the drift retrain: %s", decision.reason)
        raise StepSkipped(decision.reason)
    log.info("retraining: %s", decision.reason)
    return event
