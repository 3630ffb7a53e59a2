"""Performance monitoring operators, over `continuous_training.steps.monitoring`.

measure_performance -> check_decay -> emit_performance_event, and
measure_performance -> judge_live_evidence.
"""

from __future__ import annotations

from typing import Any

from continuous_training.contracts import (
    DecayCheck,
    LiveEvidenceOutcome,
    Measured,
    PerformanceEventExtra,
)
from continuous_training.operators.base import PipelineOperator
from continuous_training.operators.links import MLflowRunLink


class MeasurePerformance(PipelineOperator):
    """Join the labels known so far with the published predictions; metrics per date."""

    operator_extra_links = (MLflowRunLink(),)

    def execute(self, context: Any) -> Measured:
        from continuous_training.steps import monitoring as steps

        ctx = self.run_context(context)
        config = self.config(context)
        return steps.measure_performance(config, ctx, self.source_uri(config.labels_source))


class _AfterMeasure(PipelineOperator):
    """A step that reads what measure_performance returned (its as-of and MLflow run)."""

    template_fields = (*PipelineOperator.template_fields, "measured")
    operator_extra_links = (MLflowRunLink(),)

    def __init__(self, *, measured: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.measured = measured


class CheckDecay(_AfterMeasure):
    """Compare the champion's realized metric with its holdout metric at promotion."""

    def execute(self, context: Any) -> DecayCheck:
        from continuous_training.steps import monitoring as steps

        ctx = self.run_context(context)
        return steps.check_decay(self.config(context), ctx, self.measured)


class EmitPerformanceEvent(PipelineOperator):
    """Emit the performance asset event on decay; skip (so emit nothing) otherwise."""

    template_fields = (*PipelineOperator.template_fields, "decay")

    def __init__(self, *, decay: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.decay = decay

    def execute(self, context: Any) -> PerformanceEventExtra:
        from continuous_training.operators.notify import notify_decay
        from continuous_training.steps import monitoring as steps

        ctx = self.run_context(context)
        config = self.config(context)
        extra = steps.emit_performance_event(config, ctx, self.decay)
        self.emit(context, extra)
        notify_decay(config, self.decay, extra, context)
        return extra


class JudgeLiveEvidence(_AfterMeasure):
    """Promote a shadow challenger once its realized gain clears the gate (gates.live_evidence)."""

    def execute(self, context: Any) -> LiveEvidenceOutcome:
        from continuous_training.steps import monitoring as steps

        ctx = self.run_context(context)
        return steps.judge_live_evidence(self.config(context), ctx, self.measured)
