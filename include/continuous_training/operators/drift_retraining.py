"""The first step of a drift retrain: act on a drift event, or skip it and say why."""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from continuous_training.operators.base import PipelineOperator


class DebounceDrift(PipelineOperator):
    """Let a drift event through to the retraining chain, or skip it and say why.

    The event is the one that triggered the run; a run started by hand takes the
    latest event of the drift asset (its inlet).
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
        for inlet in self.inlets:
            events = list(triggering.get(inlet, []) if triggering else [])
            if events:
                return dict(events[-1].extra)
        for inlet in self.inlets:
            latest = list(context["inlet_events"][inlet].ascending(False).limit(1))
            if latest:
                return dict(latest[0].extra)
        raise AirflowFailException(
            f"no drift event to act on for pipeline {self.pipeline!r}: this DAG runs on the "
            "drift asset, emitted by batch inference when drift crosses its threshold"
        )
