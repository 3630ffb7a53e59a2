"""The `approve` task: the standard provider's ApprovalOperator, asking before `champion` moves.

It stands between `evaluate_vs_champion` and `promote` when the pipeline's YAML says
`approval.required`. It asks only when something would change (the gate passed, or the run
forces a promotion); otherwise it is skipped and says why. The question waits on the Required
Actions page of the Airflow UI and in the REST API (`.../hitlDetails`); `promote` reads the
answer and records who approved or rejected, and why. No answer within `timeout_hours` is
Airflow's default answer, Reject, recorded as "not approved in time".
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator, HITLOperator
from airflow.sdk import Param

from continuous_training.config import APPROVAL_COMMENT, ApprovalConfig
from continuous_training.operators.base import PipelineOperator


class ApproveChampionChange(PipelineOperator, ApprovalOperator):
    """Ask a person to approve the candidate that `evaluate_vs_champion` would promote."""

    template_fields = (*PipelineOperator.template_fields, "evaluation")
    ui_color = "#fdf3d8"

    def __init__(self, *, evaluation: Any, approval: ApprovalConfig, **kwargs: Any):
        # Airflow hands every operator the DAG's params; the approval form has its own field
        # (the run's params stay the run's: `promote` and this task read them from the run).
        kwargs.pop("params", None)
        super().__init__(
            # The real subject and body are written when the run has its evaluation.
            subject="Approve a champion change",
            defaults=[ApprovalOperator.REJECT],  # what a timeout answers
            response_timeout=timedelta(hours=approval.timeout_hours),
            assigned_users=[u.model_dump() for u in approval.assigned_users] or None,
            params={
                APPROVAL_COMMENT: Param(
                    None,
                    type=["null", "string"],
                    title="Comment",
                    description="Why you approve or reject; recorded with the decision.",
                )
            },
            **kwargs,
        )
        self.evaluation = evaluation

    def execute(self, context: Any) -> Any:
        from continuous_training.steps import retraining as steps

        config = self.config(context)
        request = steps.approval_request(config, self.run_context(context), self.evaluation)
        self.subject, self.body = request["subject"], request["body"]
        self._announce(config, context)
        return ApprovalOperator.execute(self, context)

    def _announce(self, config: Any, context: Any) -> None:
        """`approval_requested` to the pipeline's notifiers, with the Required Actions link."""
        from continuous_training.operators import notify

        try:
            approve_url = self.generate_link_to_ui_from_context(
                context=context, base_url=notify.airflow_base_url()
            )
        except ValueError:
            approve_url = notify.run_url(context)
        notify.notify_approval_requested(config, self.evaluation, approve_url, context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        # Not ApprovalOperator's: a rejection must reach `promote` (which records it), not
        # skip it. The base checks the answer against the options and the form.
        response = dict(HITLOperator.execute_complete(self, context=context, event=event))
        at = response.get("responded_at")
        response["responded_at"] = at.isoformat() if hasattr(at, "isoformat") else at
        response["timed_out"] = bool(event.get("timedout"))
        self.log.info(
            "answer: %s by %s%s",
            response.get("chosen_options"),
            (response.get("responded_by_user") or {}).get("name", "nobody"),
            " (the timeout's default)" if response["timed_out"] else "",
        )
        return response
