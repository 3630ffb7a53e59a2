"""The step of a rollback: `champion` back to an earlier champion, by hand, with a reason."""

from __future__ import annotations

import logging
from typing import cast

from continuous_training import ledger, registry
from continuous_training.config import PipelineConfig
from continuous_training.contracts import Rollback, RunContext

log = logging.getLogger(__name__)


def rollback(config: PipelineConfig, ctx: RunContext) -> Rollback:
    """Move `champion` to `params.to_version` (default: the version it replaced); needs a reason.

    Only a version that served before may be restored; the record is written on both versions.
    """
    to_version = ctx.params.get("to_version")
    client = registry.make_client(ctx.tracking_uri)
    outcome = registry.rollback(
        client,
        config.model_name,
        None if to_version in (None, "") else str(to_version),
        str(ctx.params.get("reason") or ""),
        ctx.run_id,
    )
    log.info(
        "champion of %s rolled back from version %s to %s",
        config.model_name,
        outcome["replaced_version"],
        outcome["champion"],
    )
    ledger.log_summary(config, ctx.tracking_uri)  # a failure is a warning, never the rollback's
    return cast(Rollback, outcome)
