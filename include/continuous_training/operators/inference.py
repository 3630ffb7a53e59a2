"""Batch inference and drift monitoring operators, over `continuous_training.steps.inference`.

pin_champion -> list_partitions -> score_partition.expand(...) -> publish_predictions
-> check_drift -> emit_drift_event. Every task but the first reads `pin_champion`'s
`PinnedChampion`: one champion version and one output set for the whole run.
"""

from __future__ import annotations

from typing import Any

from continuous_training.contracts import (
    DriftEventExtra,
    DriftSummary,
    PartitionSpec,
    PinnedChampion,
    Published,
    ScoredPart,
)
from continuous_training.operators.base import PipelineOperator
from continuous_training.operators.links import MLflowRunLink

DEFAULT_MAX_MAP_LENGTH = 1024


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

    def execute(self, context: Any) -> PinnedChampion:
        from continuous_training.steps import inference as steps

        ctx = self.run_context(context)
        return steps.pin_champion(self.config(context), ctx)


class _AfterPin(PipelineOperator):
    """A step that reads what pin_champion returned."""

    template_fields = (*PipelineOperator.template_fields, "pinned")

    def __init__(self, *, pinned: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.pinned = pinned


class ListPartitions(_AfterPin):
    """The window's partitions, as the list that `score_partition` is mapped over."""

    def execute(self, context: Any) -> list[PartitionSpec]:
        from continuous_training.steps import inference as steps

        ctx = self.run_context(context)
        return steps.list_partitions(self.config(context), ctx, self.pinned, max_map_length())


class ScorePartition(_AfterPin):
    """Score one partition with the pinned champion, streaming it in record batches."""

    template_fields = (*_AfterPin.template_fields, "partition")

    def __init__(self, *, partition: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.partition = partition

    def execute(self, context: Any) -> ScoredPart:
        from continuous_training.steps import inference as steps

        ctx = self.run_context(context)
        config = self.config(context)
        uri = self.source_uri(config.scoring_source)
        return steps.score_partition(config, ctx, self.pinned, self.partition, uri)


class PublishPredictions(_AfterPin):
    """Switch the window's manifest to this run's set, log shadow statistics, emit the asset."""

    template_fields = (*_AfterPin.template_fields, "parts")

    def __init__(self, *, parts: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.parts = parts

    def execute(self, context: Any) -> Published:
        from continuous_training.steps import inference as steps

        ctx = self.run_context(context)
        published = steps.publish_predictions(
            self.config(context), ctx, self.pinned, list(self.parts)
        )
        self.emit(context, steps.predictions_event(published))
        return published


class CheckDrift(_AfterPin):
    """Evidently drift of the scored sample against the champion's training reference."""

    template_fields = (*_AfterPin.template_fields, "published")

    def __init__(self, *, published: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.published = published

    def execute(self, context: Any) -> DriftSummary:
        from continuous_training import run_notes
        from continuous_training.steps import inference as steps

        ctx = self.run_context(context)
        summary = steps.check_drift(self.config(context), ctx, self.pinned, self.published)
        self.write_note(context, run_notes.inference(self.pinned, self.published, summary))
        return summary


class EmitDriftEvent(PipelineOperator):
    """Emit the drift asset event on a breach; skip (so emit nothing) otherwise."""

    template_fields = (*PipelineOperator.template_fields, "summary")

    def __init__(self, *, summary: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.summary = summary

    def execute(self, context: Any) -> DriftEventExtra:
        from continuous_training.operators.notify import notify_drift
        from continuous_training.steps import inference as steps

        ctx = self.run_context(context)
        config = self.config(context)
        extra = steps.emit_drift_event(config, ctx, self.summary)
        self.emit(context, extra)
        notify_drift(config, self.summary, context)
        return extra
