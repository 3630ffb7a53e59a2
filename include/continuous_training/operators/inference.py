"""Batch inference and drift monitoring operators.

pin_champion -> list_partitions -> score_partition.expand(...) -> publish_predictions
-> check_drift -> emit_drift_event. The champion's version is resolved once, in
`PinChampion`, and handed to every mapped task, so a promotion during the run cannot
mix two models in one output. `PinChampion` also names the run's output set (run id plus a
nonce): the mapped tasks write only there, and `PublishPredictions` switches the date's
manifest to it in one step (see `continuous_training.inference`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk.exceptions import AirflowSkipException

from continuous_training.operators.base import PipelineOperator, require_pii_key
from continuous_training.operators.links import MLflowRunLink
from continuous_training.operators.retraining import connection_uri
from continuous_training.registry import RegistryRefusedError

KIND_BATCH_INFERENCE = "batch_inference"
DEFAULT_MAX_MAP_LENGTH = 1024


def output_set(pinned: dict[str, Any], run_id: str) -> str:
    """The run's output set; a pin made before sets existed falls back to the run id."""
    from continuous_training.storage import safe_token

    return pinned.get("output_set") or safe_token(run_id)


def pinned_window(pinned: dict[str, Any]) -> Any:
    from continuous_training.sources import Window

    return Window(
        datetime.fromisoformat(pinned["window_start"]),
        datetime.fromisoformat(pinned["window_end"]),
    )


def max_map_length() -> int:
    """Airflow's `core.max_map_length`: the most mapped task instances one task may have."""
    try:
        from airflow.configuration import conf
    except ImportError:
        return DEFAULT_MAX_MAP_LENGTH
    return conf.getint("core", "max_map_length", fallback=DEFAULT_MAX_MAP_LENGTH)


class PinChampion(PipelineOperator):
    """Resolve `champion` (and a shadowing `challenger`) to versions, once for the whole run."""

    operator_extra_links = (MLflowRunLink(),)

    def execute(self, context: Any) -> dict[str, Any]:
        from continuous_training import inference, registry

        config = self.config(context)
        tracking_uri = self.tracking_uri()
        client = registry.make_client(tracking_uri)
        champion = registry.alias_version(client, config.model_name, registry.CHAMPION)
        if champion is None:
            raise RegistryRefusedError(
                f"model {config.model_name} has no champion yet: run "
                f"{config.name}_weekly_retraining first"
            )
        challenger = registry.alias_version(client, config.model_name, registry.CHALLENGER)
        shadow = challenger if config.inference.shadow and challenger != champion else None
        digests = self._verify(client, config.model_name, [champion, shadow])
        end = self.window_end(context)
        start = end - timedelta(days=config.inference.window_days)
        run_id = registry.find_or_create_run(
            client,
            config.experiment_name,
            run_name=f"{config.name}:batch:{context['run_id']}",
            tags={registry.TAG_KIND: KIND_BATCH_INFERENCE, registry.TAG_RUN_ID: context["run_id"]},
        )
        client.set_tag(run_id, "ct.champion_version", champion)
        self.log.info(
            "scoring %s to %s with %s version %s%s",
            start.isoformat(),
            end.isoformat(),
            config.model_name,
            champion,
            f", challenger version {shadow} in shadow" if shadow else "",
        )
        experiment_id = client.get_run(run_id).info.experiment_id
        return {
            "model_name": config.model_name,
            "champion_version": champion,
            "champion_sha256": digests[champion],
            "challenger_version": shadow,
            "window_start": start.isoformat(),
            "window_end": end.isoformat(),
            "mlflow_run_id": run_id,
            "mlflow_run_url": registry.run_url(tracking_uri, experiment_id, run_id),
            # A fresh set per pin: a cleared run never writes into what readers follow.
            "output_set": inference.new_set_id(context["run_id"]),
        }

    def _verify(self, client: Any, name: str, versions: list[str | None]) -> dict[str, str]:
        """Refuse a run whose models' files changed since registration, before any scoring."""
        from continuous_training import model_digest

        return {v: model_digest.verify(client, name, v) for v in versions if v is not None}


class ListPartitions(PipelineOperator):
    """The window's partitions, as the list that `score_partition` is mapped over."""

    template_fields = (*PipelineOperator.template_fields, "pinned")

    def __init__(self, *, pinned: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.pinned = pinned

    def execute(self, context: Any) -> list[dict[str, Any]]:
        from continuous_training.inference import list_partitions

        config = self.config(context)
        partitions = list_partitions(config, pinned_window(self.pinned), max_map_length())
        self.log.info("%d partitions: %s", len(partitions), [p.key for p in partitions])
        return [p.to_json() for p in partitions]


class ScorePartition(PipelineOperator):
    """Score one partition with the pinned champion, streaming it in record batches."""

    template_fields = (*PipelineOperator.template_fields, "pinned", "partition")

    def __init__(self, *, pinned: Any, partition: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.pinned = pinned
        self.partition = partition

    def execute(self, context: Any) -> dict[str, Any]:
        from continuous_training import inference

        config = self.config(context)
        require_pii_key(config)
        champion, shadow = self._models()  # verified before anything is read or written
        partition = inference.Partition.from_json(self.partition)
        window = pinned_window(self.pinned)
        out_set = output_set(self.pinned, context["run_id"])
        inference.require_unpublished(config.name, window, out_set)
        conn_id = config.scoring_source.conn_id
        uri = connection_uri(conn_id, sqlalchemy=True) if conn_id else None
        job = inference.ScoringJob(
            pipeline=config,
            input_uri=inference.materialize_input(config, partition, context["run_id"], uri),
            output_uri=inference.prediction_uri(config.name, window, partition.key, out_set),
            sample_uri=inference.sample_uri(config.name, window, partition.key, out_set),
            shadow_uri=inference.shadow_uri(config.name, window, partition.key, out_set),
            window=window,
            model_version=self.pinned["champion_version"],
            airflow_run_id=context["run_id"],
            sample_seed=inference.sample_seed(config.name, window, partition.key),
            raw_input=partition.path is not None,
            input_format=partition.format or "parquet",
        )
        result = inference.score_partition(
            job, champion, shadow, progress=self._log_progress(partition.key)
        )
        self.log.info("partition %s: %d rows -> %s", partition.key, result["rows"], result["uri"])
        return {**result, "key": partition.key}

    def _models(self) -> tuple[Any, tuple[str, Any] | None]:
        """The pinned champion (and shadow), each loaded from a copy that matched its digest."""
        from continuous_training import model_digest, registry

        client = registry.make_client(self.tracking_uri())
        name = self.pinned["model_name"]
        champion = model_digest.load_verified(client, name, self.pinned["champion_version"])
        shadow = self.pinned.get("challenger_version")
        if not shadow:
            return champion, None
        return champion, (shadow, model_digest.load_verified(client, name, shadow))

    def _log_progress(self, key: str) -> Any:
        def report(done: int, total: int) -> None:
            if not total:  # a CSV file: its length is unknown until it is read
                self.log.info("partition %s: %d rows read", key, done)
                return
            share = done / total
            self.log.info(
                "partition %s: %d of %d rows read (%.0f%%)", key, done, total, share * 100
            )

        return report


class PublishPredictions(PipelineOperator):
    """Switch the window's manifest to this run's set, log shadow statistics, emit the asset."""

    template_fields = (*PipelineOperator.template_fields, "pinned", "parts")

    def __init__(self, *, pinned: Any, parts: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.pinned = pinned
        self.parts = parts

    def execute(self, context: Any) -> dict[str, Any]:
        from continuous_training import inference, registry

        config = self.config(context)
        parts = list(self.parts)
        manifest = inference.publish(
            config,
            pinned_window(self.pinned),
            parts,
            context["run_id"],
            output_set(self.pinned, context["run_id"]),
        )
        client = registry.make_client(self.tracking_uri())
        run_id = self.pinned["mlflow_run_id"]
        client.log_metric(run_id, "rows_scored", manifest["rows"])
        shadow = inference.merge_shadow(parts)
        if shadow:
            client.log_dict(run_id, shadow, "shadow/distributions.json")
            client.log_metric(run_id, "shadow.disagreement_rate", shadow["disagreement_rate"])
            client.log_metric(run_id, "shadow.mean_abs_score_diff", shadow["mean_abs_score_diff"])
            self.log.info(
                "shadow challenger version %s disagrees on %.2f%% of %d rows",
                shadow["challenger_version"],
                shadow["disagreement_rate"] * 100,
                shadow["rows"],
            )
        extra = {
            "model_name": manifest["model_name"],
            "model_version": manifest["model_version"],
            "rows": manifest["rows"],
            "uri": manifest["uri"],  # the published set's folder: read its part-*.parquet
            "manifest": manifest["manifest"],  # the date's pointer to its current set
            "window_end": manifest["window_end"],
        }
        for outlet in self.outlets:
            context["outlet_events"][outlet].extra = extra
        self.log.info("published %s rows at %s", f"{manifest['rows']:,}", manifest["uri"])
        return {**extra, "parts": manifest["parts"], "shadow": shadow}


class CheckDrift(PipelineOperator):
    """Evidently drift of the scored sample against the champion's training reference."""

    template_fields = (*PipelineOperator.template_fields, "pinned", "published")

    def __init__(self, *, pinned: Any, published: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.pinned = pinned
        self.published = published

    def execute(self, context: Any) -> dict[str, Any]:
        from continuous_training import drift

        config = self.config(context)
        summary = drift.check_scored_window(
            config,
            pinned_window(self.pinned),
            self.published["parts"],
            self.pinned["champion_version"],
            self.tracking_uri(),
            self.pinned["mlflow_run_id"],
            folder=self.published.get("uri"),
        )
        if "skipped" in summary:
            self.log.info("drift check skipped: %s", summary["skipped"])
        else:
            self.log.info(
                "drifted share %.2f (threshold %.2f), drifted columns %s, prediction drift %.3f",
                summary["drifted_share"],
                summary["threshold"],
                summary["drifted_columns"],
                summary["prediction"]["score"],
            )
        return summary


class EmitDriftEvent(PipelineOperator):
    """Emit the drift asset event on a breach; skip (so emit nothing) otherwise."""

    template_fields = (*PipelineOperator.template_fields, "summary")

    def __init__(self, *, summary: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.summary = summary

    def execute(self, context: Any) -> dict[str, Any]:
        from continuous_training import drift

        if not self.summary.get("breach"):
            raise AirflowSkipException(
                self.summary.get("skipped")
                or f"no drift: drifted share {self.summary['drifted_share']:.2f} is below "
                f"{self.summary['threshold']:.2f}"
            )
        extra = drift.event_extra(self.summary)
        for outlet in self.outlets:
            context["outlet_events"][outlet].extra = extra
        self.log.info(
            "drift event emitted: drifted share %.2f (threshold %.2f) in %s; episode %s",
            extra["drifted_share"],
            self.summary["threshold"],
            extra["drifted_columns"],
            extra["episode"],
        )
        self.log.info("drift event extra: %s", extra)
        return extra
