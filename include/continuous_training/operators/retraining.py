"""One thin operator per retraining step: fetch, validate, train, evaluate, promote.

Each stores its arguments, builds the run context and calls its step in
`continuous_training.steps.retraining`, which returns the contract the next task reads
(`continuous_training.contracts`). Steps are imported inside `execute` so that DAG files
parse fast.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from continuous_training.contracts import (
    Candidate,
    Evaluation,
    Promotion,
    RunContext,
    Snapshot,
    ValidatedSnapshot,
)
from continuous_training.operators.base import PipelineOperator, connection_uri, trigger_of
from continuous_training.operators.links import MLflowRunLink

__all__ = [
    "EvaluateAgainstChampion",
    "FetchData",
    "Promote",
    "TrainCandidate",
    "ValidateData",
    "connection_uri",
    "run_info",
    "run_options",
]


def run_options(context: Any) -> Any:
    """The trigger-form params as a checked RunOptions; bad combinations fail the task."""
    from continuous_training.steps import retraining as steps

    return steps.run_options(context.get("params") or {})


def run_info(context: Any, trigger: str, end: datetime, drift_episode: str | None = None) -> Any:
    """The RunInfo that `train_candidate` and `promote` record, for a caller with an Airflow
    context but no operator; the operators build a `RunContext` and the step does this."""
    from continuous_training.steps import retraining as steps

    ctx = RunContext(
        dag_id="",
        run_id=context["run_id"],
        window_end=end,
        trigger=trigger_of(context, trigger),
        tracking_uri="",
        params=context.get("params") or {},
    )
    return steps.run_info(ctx, drift_episode)


class FetchData(PipelineOperator):
    """Fetch the run's window from the pipeline's source into a parquet snapshot with sha256."""

    def execute(self, context: Any) -> Snapshot:
        from continuous_training.steps import retraining as steps

        ctx = self.run_context(context)
        config = self.config(context)
        uri = self.source_uri(config.source, sqlalchemy=config.source.kind == "sql")
        return steps.fetch(config, ctx, uri)


class ValidateData(PipelineOperator):
    """Run the Great Expectations suite built from the config; keep the result as a report."""

    template_fields = (*PipelineOperator.template_fields, "snapshot")

    def __init__(self, *, snapshot: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.snapshot = snapshot

    def execute(self, context: Any) -> ValidatedSnapshot:
        from continuous_training.steps import retraining as steps

        ctx = self.run_context(context)
        return steps.validate(self.config(context), ctx, self.snapshot)


class TrainCandidate(PipelineOperator):
    """Split by time, train the configured sklearn Pipeline, log and register it as challenger."""

    template_fields = (*PipelineOperator.template_fields, "snapshot", "drift_episode", "trigger")
    operator_extra_links = (MLflowRunLink(),)

    def __init__(
        self,
        *,
        snapshot: Any,
        trigger: str = "schedule",
        drift_episode: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.snapshot = snapshot
        self.trigger = trigger
        self.drift_episode = drift_episode

    def execute(self, context: Any) -> Candidate:
        from continuous_training.steps import retraining as steps

        ctx = self.run_context(context)
        return steps.train_candidate(self.config(context), ctx, self.snapshot, self.drift_episode)


class EvaluateAgainstChampion(PipelineOperator):
    """Score challenger and champion on the same holdout and apply the gate from the YAML."""

    template_fields = (*PipelineOperator.template_fields, "candidate")
    operator_extra_links = (MLflowRunLink(),)

    def __init__(self, *, candidate: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.candidate = candidate

    def execute(self, context: Any) -> Evaluation:
        from continuous_training.steps import retraining as steps

        ctx = self.run_context(context)
        return steps.evaluate(self.config(context), ctx, self.candidate)


class Promote(PipelineOperator):
    """Move `champion` to the candidate if it won (compare-and-set); record the decision."""

    template_fields = (*PipelineOperator.template_fields, "evaluation", "trigger")

    def __init__(
        self,
        *,
        evaluation: Any,
        trigger: str = "schedule",
        approval_task_id: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.evaluation = evaluation
        self.trigger = trigger
        # the task whose answer a change needs (`approval.required`), or None
        self.approval_task_id = approval_task_id

    def execute(self, context: Any) -> Promotion:
        from continuous_training.operators.notify import notify_decision
        from continuous_training.steps import retraining as steps

        ctx = self.run_context(context)
        response = None
        if self.approval_task_id:
            # None when the approval task was skipped (nothing to approve) or never answered
            response = context["ti"].xcom_pull(task_ids=self.approval_task_id)
        config = self.config(context)
        outcome = steps.promote(config, ctx, self.evaluation, response)
        self.write_note(context, steps.run_note(config, ctx, self.evaluation, outcome))
        # After the decision is recorded: a notifier that fails only logs a warning.
        notify_decision(config, outcome, self.evaluation, context)
        return outcome
