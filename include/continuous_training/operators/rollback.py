"""Rollback: move `champion` back to an earlier champion, by hand, with a reason."""

from __future__ import annotations

from typing import Any

from continuous_training.operators.base import PipelineOperator


class RollbackChampion(PipelineOperator):
    """Move `champion` back to a version that served before; `params.reason` is required."""

    def execute(self, context: Any) -> dict[str, Any]:
        from continuous_training import registry

        config = self.config(context)
        params = context.get("params") or {}
        to_version = params.get("to_version")
        client = registry.make_client(self.tracking_uri())
        outcome = registry.rollback(
            client,
            config.model_name,
            None if to_version in (None, "") else str(to_version),
            str(params.get("reason") or ""),
            context["run_id"],
        )
        self.log.info(
            "champion of %s rolled back from version %s to %s",
            config.model_name,
            outcome["replaced_version"],
            outcome["champion"],
        )
        return outcome
