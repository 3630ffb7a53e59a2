"""What several steps share: the fetch window, the PII key check, the MLflow run of a DAG run.

Light on purpose (the config and the registry's stdlib-only top level): the operators' base
module re-exports `fetch_start` at parse time.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from continuous_training import registry
from continuous_training.config import PipelineConfig
from continuous_training.contracts import RunContext
from continuous_training.errors import StepSkipped

log = logging.getLogger(__name__)


def fetch_start(config: PipelineConfig, end: datetime) -> datetime:
    """The start of a retrain's data: its training days, then its holdout days, before `end`."""
    return end - timedelta(days=config.windows.training_days + config.windows.holdout_days)


def require_pii_key(config: PipelineConfig) -> None:
    """A pipeline that hashes PII fails at once without its key: no retry brings the key."""
    from continuous_training import pii

    pii.rules_for(config)


def tracked_run(
    client: Any, config: PipelineConfig, ctx: RunContext, kind: str, label: str
) -> tuple[str, str]:
    """The MLflow run (id, URL) of the DAG run `ctx`, created once: a retry reuses it."""
    run_id = registry.find_or_create_run(
        client,
        config.experiment_name,
        run_name=f"{config.name}:{label}:{ctx.run_id}",
        tags={registry.TAG_KIND: kind, registry.TAG_RUN_ID: ctx.run_id},
    )
    experiment_id = client.get_run(run_id).info.experiment_id
    return run_id, registry.run_url(ctx.tracking_uri, experiment_id, run_id)


@contextlib.contextmanager
def run_outcome(client: Any, run_id: str, *, last: bool) -> Iterator[None]:
    """Mark the MLflow run of a DAG run FAILED when the block fails; FINISHED after the `last`.

    The run is opened by one task and written by later ones, so no `with mlflow.start_run()`
    can end it: the task that writes it last does. A failed attempt marks it FAILED; a retry
    that gets through the last step marks it FINISHED again. A skipped step is not a failure.
    """
    try:
        yield
    except StepSkipped:
        if last:
            _terminate(client, run_id, "FINISHED")
        raise
    except BaseException:
        _terminate(client, run_id, "FAILED")
        raise
    if last:  # a server that cannot take this fails the task: its retry ends the run
        client.set_terminated(run_id, "FINISHED")


def _terminate(client: Any, run_id: str, status: str) -> None:
    try:
        client.set_terminated(run_id, status)
    except Exception as exc:  # never hide the step's own outcome behind MLflow's
        log.warning("could not mark MLflow run %s %s: %s", run_id, status, exc)
