"""`ExportCustomersFromCrm`: a fetch step of your own that the shipped steps accept.

It subclasses `PipelineOperator` (the pipeline name or YAML path, the trigger form's training
window) and returns the same JSON as the shipped `FetchData`, so `ValidateData`,
`TrainCandidate`, `EvaluateAgainstChampion` and `Promote` take its output unchanged.
"""

from __future__ import annotations

from typing import Any

from continuous_training.operators import PipelineOperator
from continuous_training.operators.base import fetch_start, window_end


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

    def execute(self, context: Any) -> dict[str, Any]:
        from continuous_training import sources, storage
        from continuous_training.operators import run_options
        from crm_extension.sources import CrmSource

        run_options(context)  # a bad trigger form fails before any work, as in FetchData
        config = self.config(context)
        end = window_end(context)
        window = sources.Window(fetch_start(config, end), end)
        source = CrmSource(config, db_path=self.db_path or None)
        frame = sources.fetch_window(source, config, window)
        snapshot = storage.write_parquet_atomic(
            frame, storage.snapshot_uri(config.name, context["run_id"])
        )
        self.log.info(
            "exported %s rows of %s from %s into %s",
            snapshot["rows"],
            window,
            source.database_path(),
            snapshot["uri"],
        )
        return {
            **snapshot,
            "window_start": window.start.isoformat(),
            "window_end": window.end.isoformat(),
        }


# --8<-- [end:operator]
