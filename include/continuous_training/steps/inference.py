"""The steps of batch inference and its drift check.

pin_champion -> list_partitions -> score_partition (one per partition) -> publish_predictions
-> check_drift -> emit_drift_event. The champion's version is resolved once, by
`pin_champion`, and handed to every later step, so a promotion during the run cannot mix two
models in one output. `pin_champion` also names the run's output set (run id plus a nonce):
partitions are scored only into it, and `publish_predictions` switches the date's manifest to
it in one step (see `continuous_training.inference`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, cast

from continuous_training import drift, inference, model_digest, registry, storage
from continuous_training.config import PipelineConfig
from continuous_training.contracts import (
    DriftEventExtra,
    DriftSummary,
    PartitionSpec,
    PinnedChampion,
    PredictionsEventExtra,
    Published,
    RunContext,
    ScoredPart,
)
from continuous_training.errors import StepSkipped
from continuous_training.sources import Window
from continuous_training.steps.common import require_pii_key, run_outcome, tracked_run

log = logging.getLogger(__name__)

KIND_BATCH_INFERENCE = "batch_inference"
TAG_CHAMPION_VERSION = "ct.champion_version"  # on the batch run in MLflow


def pinned_window(pinned: PinnedChampion) -> Window:
    return Window(
        datetime.fromisoformat(pinned["window_start"]),
        datetime.fromisoformat(pinned["window_end"]),
    )


def output_set(pinned: PinnedChampion, run_id: str) -> str:
    """The run's output set; a pin made before sets existed falls back to the run id."""
    return pinned.get("output_set") or storage.safe_token(run_id)


# --------------------------------------------------------------------------- pin_champion


def pin_champion(config: PipelineConfig, ctx: RunContext) -> PinnedChampion:
    """Resolve `champion` (and a shadowing `challenger`) to versions, once for the whole run.

    The models' files are checked against their digests before anything is scored; the run's
    MLflow run (`<name>:batch:<run id>`) is opened, tagged with the champion's version; it
    stays open for publishing and the drift check, which ends it.
    """
    client = registry.make_client(ctx.tracking_uri)
    champion = registry.alias_version(client, config.model_name, registry.CHAMPION)
    if champion is None:
        raise registry.RegistryRefusedError(
            f"model {config.model_name} has no champion yet: run "
            f"{config.name}_weekly_retraining first"
        )
    shadow = _shadow_version(client, config, champion)
    digests = {
        version: model_digest.verify(client, config.model_name, version)
        for version in (champion, shadow)
        if version is not None
    }
    start = ctx.window_end - timedelta(days=config.inference.window_days)
    run_id, run_url = tracked_run(client, config, ctx, KIND_BATCH_INFERENCE, "batch")
    client.set_tag(run_id, TAG_CHAMPION_VERSION, champion)
    log.info(
        "scoring %s to %s with %s version %s%s",
        start.isoformat(),
        ctx.window_end.isoformat(),
        config.model_name,
        champion,
        f", challenger version {shadow} in shadow" if shadow else "",
    )
    return {
        "model_name": config.model_name,
        "champion_version": champion,
        "champion_sha256": digests[champion],
        "challenger_version": shadow,
        "window_start": start.isoformat(),
        "window_end": ctx.window_end.isoformat(),
        "mlflow_run_id": run_id,
        "mlflow_run_url": run_url,
        # A fresh set per pin: a cleared run never writes into what readers follow.
        "output_set": inference.new_set_id(ctx.run_id),
    }


def _shadow_version(client: Any, config: PipelineConfig, champion: str) -> str | None:
    """The challenger to score in shadow: with `inference.shadow`, when it is not the champion."""
    challenger = registry.alias_version(client, config.model_name, registry.CHALLENGER)
    return challenger if config.inference.shadow and challenger != champion else None


# --------------------------------------------------------------------------- partitions


def list_partitions(
    config: PipelineConfig, ctx: RunContext, pinned: PinnedChampion, max_map_length: int
) -> list[PartitionSpec]:
    """The window's partitions, refused when there are more than `max_map_length`."""
    partitions = inference.list_partitions(config, pinned_window(pinned), max_map_length)
    log.info("%d partitions: %s", len(partitions), [p.key for p in partitions])
    return [cast(PartitionSpec, p.to_json()) for p in partitions]


def score_partition(
    config: PipelineConfig,
    ctx: RunContext,
    pinned: PinnedChampion,
    partition: PartitionSpec,
    connection_uri: str | None = None,
) -> ScoredPart:
    """Score one partition with the pinned champion (and shadow), streaming record batches.

    `connection_uri` is the SQLAlchemy URL of `inference.source.conn_id`'s connection. A failed
    partition marks the batch run in MLflow FAILED (a retry that gets through ends it FINISHED).
    """
    client = registry.make_client(ctx.tracking_uri)
    with run_outcome(client, pinned["mlflow_run_id"], last=False):
        return _score_partition(config, ctx, client, pinned, partition, connection_uri)


def _score_partition(
    config: PipelineConfig,
    ctx: RunContext,
    client: Any,
    pinned: PinnedChampion,
    partition: PartitionSpec,
    connection_uri: str | None,
) -> ScoredPart:
    require_pii_key(config)
    champion, shadow = _pinned_models(client, pinned)  # verified before anything is read
    part = inference.Partition.from_json(dict(partition))
    window = pinned_window(pinned)
    out_set = output_set(pinned, ctx.run_id)
    inference.require_unpublished(config.name, window, out_set)
    job = inference.ScoringJob(
        pipeline=config,
        input_uri=inference.materialize_input(config, part, ctx.run_id, connection_uri),
        output_uri=inference.prediction_uri(config.name, window, part.key, out_set),
        sample_uri=inference.sample_uri(config.name, window, part.key, out_set),
        shadow_uri=inference.shadow_uri(config.name, window, part.key, out_set),
        window=window,
        model_version=pinned["champion_version"],
        airflow_run_id=ctx.run_id,
        sample_seed=inference.sample_seed(config.name, window, part.key),
        raw_input=part.path is not None,
        input_format=part.format or "parquet",
    )
    result = inference.score_partition(job, champion, shadow, progress=_progress(part.key))
    log.info("partition %s: %d rows -> %s", part.key, result["rows"], result["uri"])
    return cast(ScoredPart, {**result, "key": part.key})


def _pinned_models(client: Any, pinned: PinnedChampion) -> tuple[Any, tuple[str, Any] | None]:
    """The pinned champion (and shadow), each loaded from a copy that matched its digest."""
    name = pinned["model_name"]
    champion = model_digest.load_verified(client, name, pinned["champion_version"])
    shadow = pinned.get("challenger_version")
    if not shadow:
        return champion, None
    return champion, (shadow, model_digest.load_verified(client, name, shadow))


def _progress(key: str) -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        if not total:  # a CSV file: its length is unknown until it is read
            log.info("partition %s: %d rows read", key, done)
            return
        log.info("partition %s: %d of %d rows read (%.0f%%)", key, done, total, done / total * 100)

    return report


# --------------------------------------------------------------------------- publishing


def publish_predictions(
    config: PipelineConfig, ctx: RunContext, pinned: PinnedChampion, parts: list[ScoredPart]
) -> Published:
    """Switch the window's manifest to this run's set; log rows and shadow statistics to MLflow.

    The `ct.<name>.predictions` asset event carries `predictions_event(<the result>)`.
    """
    scored = [dict(part) for part in parts]
    client = registry.make_client(ctx.tracking_uri)
    with run_outcome(client, pinned["mlflow_run_id"], last=False):
        manifest = inference.publish(
            config, pinned_window(pinned), scored, ctx.run_id, output_set(pinned, ctx.run_id)
        )
        shadow = inference.merge_shadow(scored)
        _log_batch_run(client, pinned["mlflow_run_id"], manifest["rows"], shadow)
    log.info("published %s rows at %s", f"{manifest['rows']:,}", manifest["uri"])
    return cast(
        Published, {**predictions_event(manifest), "parts": manifest["parts"], "shadow": shadow}
    )


def predictions_event(published: Mapping[str, Any]) -> PredictionsEventExtra:
    """The predictions asset event's extra (of a manifest or a `Published`): what, and where."""
    keys = PredictionsEventExtra.__annotations__
    return cast(PredictionsEventExtra, {key: published[key] for key in keys})


def _log_batch_run(client: Any, run_id: str, rows: int, shadow: Mapping[str, Any] | None) -> None:
    """Rows scored and, with a shadow, how often and how far the challenger disagreed."""
    client.log_metric(run_id, "rows_scored", rows)
    if not shadow:
        return
    client.log_dict(run_id, dict(shadow), "shadow/distributions.json")
    client.log_metric(run_id, "shadow.disagreement_rate", shadow["disagreement_rate"])
    client.log_metric(run_id, "shadow.mean_abs_score_diff", shadow["mean_abs_score_diff"])
    log.info(
        "shadow challenger version %s disagrees on %.2f%% of %d rows",
        shadow["challenger_version"],
        shadow["disagreement_rate"] * 100,
        shadow["rows"],
    )


# --------------------------------------------------------------------------- drift


def check_drift(
    config: PipelineConfig, ctx: RunContext, pinned: PinnedChampion, published: Published
) -> DriftSummary:
    """Evidently drift of the scored sample against the champion's training reference.

    The last step that writes the batch run in MLflow: it ends the run.
    """
    client = registry.make_client(ctx.tracking_uri)
    with run_outcome(client, pinned["mlflow_run_id"], last=True):
        summary = drift.check_scored_window(
            config,
            pinned_window(pinned),
            [dict(part) for part in published["parts"]],
            pinned["champion_version"],
            ctx.tracking_uri,
            pinned["mlflow_run_id"],
            folder=published.get("uri"),
        )
    # The batch run that holds the report: the drift notification links to it.
    summary["mlflow_run_url"] = pinned["mlflow_run_url"]
    if "skipped" in summary:
        log.info("drift check skipped: %s", summary["skipped"])
    else:
        log.info(
            "drifted share %.2f (threshold %.2f), drifted columns %s, prediction drift %.3f",
            summary["drifted_share"],
            summary["threshold"],
            summary["drifted_columns"],
            summary["prediction"]["score"],
        )
    return cast(DriftSummary, summary)


def emit_drift_event(
    config: PipelineConfig, ctx: RunContext, summary: DriftSummary
) -> DriftEventExtra:
    """The drift asset event's extra on a breach; skipped (so nothing emitted) otherwise."""
    if not summary.get("breach"):
        raise StepSkipped(
            summary.get("skipped")
            or f"no drift: drifted share {summary['drifted_share']:.2f} is below "
            f"{summary['threshold']:.2f}"
        )
    extra = drift.event_extra(dict(summary))
    log.info(
        "drift event emitted: drifted share %.2f (threshold %.2f) in %s; episode %s",
        extra["drifted_share"],
        summary["threshold"],
        extra["drifted_columns"],
        extra["episode"],
    )
    log.info("drift event extra: %s", extra)
    return cast(DriftEventExtra, extra)
