"""The first step of a drift retrain: act on a drift or performance event, or skip it."""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from continuous_training.operators.base import PipelineOperator


class DebounceDrift(PipelineOperator):
    """Let a drift or performance event through to the retraining chain, or skip it and say why.

    The event is the one that triggered the run (the newest, when both assets had events); a
    run started by hand takes the newest event of its inlets. The returned event carries
    `trigger`: `drift` or `performance`, after the asset it came from.
    """

    def execute(self, context: Any) -> dict[str, Any]:
        from continuous_training import drift, registry

        config = self.config(context)
        event = self._event(context)
        client = registry.make_client(self.tracking_uri())
        versions = registry.all_version_tags(client, config.model_name)
        decision = drift.debounce(event, versions, config.drift.cooldown_hours)
        if not decision.proceed:
            self.log.info("skipping the drift retrain: %s", decision.reason)
            raise AirflowSkipException(decision.reason)
        self.log.info("retraining: %s", decision.reason)
        return event

    def _event(self, context: Any) -> dict[str, Any]:
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
            raise AirflowFailException(
                f"no drift or performance event to act on for pipeline {self.pipeline!r}: this "
                "DAG runs on the drift asset (batch inference, when drift crosses its threshold) "
                "and the performance asset (performance monitoring, when realized performance "
                "decays)"
            )
        inlet, event = max(found, key=lambda pair: _when(pair[1]))
        trigger = "performance" if inlet.name.endswith(".performance") else "drift"
        return {**dict(event.extra), "trigger": trigger}


def _when(event: Any) -> Any:
    from datetime import UTC, datetime

    return getattr(event, "timestamp", None) or datetime.min.replace(tzinfo=UTC)
