"""The first step of a drift retrain: act on a drift or performance event, or skip it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from continuous_training.contracts import TriggeringEvent
from continuous_training.errors import BadInputError
from continuous_training.operators.base import PipelineOperator


class DebounceDrift(PipelineOperator):
    """Let a drift or performance event through to the retraining chain, or skip it and say why.

    The event is the one that triggered the run (the newest, when both assets had events); a
    run started by hand takes the newest event of its inlets. The returned event carries
    `trigger`: `drift` or `performance`, after the asset it came from.
    """

    def execute(self, context: Any) -> TriggeringEvent:
        from continuous_training import run_notes
        from continuous_training.errors import StepSkipped
        from continuous_training.steps import retraining as steps

        ctx = self.run_context(context)
        try:
            return steps.debounce(self.config(context), ctx, self._event(context))
        except StepSkipped as skipped:
            self.write_note(context, run_notes.skipped(str(skipped)))
            raise

    def _event(self, context: Any) -> TriggeringEvent:
        """The newest event of the inlets that this run is about, with its kind as `trigger`."""
        triggering = context.get("triggering_asset_events") or {}
        found = [
            (inlet, event) for inlet in self.inlets for event in triggering.get(inlet, []) or []
        ]
        if not found:
            for inlet in self.inlets:
                found += [
                    (inlet, e) for e in context["inlet_events"][inlet].ascending(False).limit(1)
                ]
        if not found:
            raise BadInputError(
                f"no drift or performance event to act on for pipeline {self.pipeline!r}: this "
                "DAG runs on the drift asset (batch inference, when drift crosses its threshold) "
                "and the performance asset (performance monitoring, when realized performance "
                "decays)"
            )
        inlet, event = max(found, key=lambda pair: _when(pair[1]))
        trigger = "performance" if inlet.name.endswith(".performance") else "drift"
        return {**dict(event.extra), "trigger": trigger}  # type: ignore[typeddict-item]


def _when(event: Any) -> datetime:
    return getattr(event, "timestamp", None) or datetime.min.replace(tzinfo=UTC)
