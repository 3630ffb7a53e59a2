"""Rollback: move `champion` back to an earlier champion, by hand, with a reason."""

from __future__ import annotations

from typing import Any

from continuous_training.contracts import Rollback
from continuous_training.operators.base import PipelineOperator


class RollbackChampion(PipelineOperator):
    """Move `champion` back to a version that served before; `params.reason` is required."""

    def execute(self, context: Any) -> Rollback:
        from continuous_training import run_notes
        from continuous_training.steps import rollback as steps

        ctx = self.run_context(context)
        outcome = steps.rollback(self.config(context), ctx)
        self.write_note(context, run_notes.rollback(outcome, str(ctx.params.get("reason") or "")))
        return outcome
