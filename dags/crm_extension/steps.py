"""`export_customers`: the work of your own fetch task, as a step with no Airflow in it.

A step is `(config, run context, inputs) -> contract`: it reads the run's window from the
`RunContext` and returns the `Snapshot` the shipped `validate` step reads, so it can be
called (and tested) without a DAG, like the shipped steps in `continuous_training.steps`.
"""

from __future__ import annotations

import logging
from typing import cast

from continuous_training import sources, storage
from continuous_training.config import PipelineConfig
from continuous_training.contracts import RunContext, Snapshot
from continuous_training.steps.common import fetch_start
from continuous_training.steps.retraining import run_options

log = logging.getLogger(__name__)


# --8<-- [start:step]
def export_customers(config: PipelineConfig, ctx: RunContext, db_path: str | None) -> Snapshot:
    """The run's data window from the CRM's SQLite database, as the shipped fetch writes it."""
    from crm_extension.sources import CrmSource

    run_options(ctx.params)  # a bad trigger form fails before any work, as in the shipped fetch
    window = sources.Window(fetch_start(config, ctx.window_end), ctx.window_end)
    source = CrmSource(config, db_path=db_path or None)
    frame = sources.fetch_window(source, config, window)
    written = storage.write_parquet_atomic(frame, storage.snapshot_uri(config.name, ctx.run_id))
    log.info(
        "exported %s rows of %s from %s into %s",
        written["rows"],
        window,
        source.database_path(),
        written["uri"],
    )
    return cast(
        Snapshot,
        {
            **written,
            "window_start": window.start.isoformat(),
            "window_end": window.end.isoformat(),
        },
    )


# --8<-- [end:step]
