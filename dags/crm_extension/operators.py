"""`ExportCustomersFromCrm`: a fetch task of your own that the shipped steps accept.

It subclasses `PipelineOperator` (the pipeline name or YAML path, the trigger form's training
window, the run context, the error policy) and calls its step, `steps.export_customers`, which
returns the same `Snapshot` as the shipped `FetchData`, so `ValidateData`, `TrainCandidate`,
`EvaluateAgainstChampion` and `Promote` take its output unchanged.
"""

from __future__ import annotations

from typing import Any

from continuous_training.contracts import Snapshot
from continuous_training.operators import PipelineOperator


# --8<-- [start:operator]
class ExportCustomersFromCrm(PipelineOperator):
    """Export the run's data window from the CRM's SQLite database into a snapshot.

    :param pipeline: pipeline name or path to its YAML (templated).
    :param db_path: the CRM's SQLite file (templated); if None, `source.options.db_path`
        from the YAML, else the `CRM_DB_PATH` environment variable of the worker.

    Returns the snapshot's `uri`, `sha256`, `rows`, `bytes`, `window_start`, `window_end`.
    """

    template_fields = (*PipelineOperator.template_fields, "db_path")
    ui_color = "#fdf0d5"

    def __init__(self, *, db_path: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.db_path = db_path

    def execute(self, context: Any) -> Snapshot:
        from crm_extension.steps import export_customers

        ctx = self.run_context(context)
        return export_customers(self.config(context), ctx, self.db_path)


# --8<-- [end:operator]
