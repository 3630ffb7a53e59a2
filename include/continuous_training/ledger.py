"""A pipeline's ledger: every decision in the registry, when it was made, and its summary.

The ledger is the model versions' tags (written by `registry`): `decision_rows` reads it for
`python -m continuous_training.cli decisions`; `log_summary` keeps one MLflow run per pipeline
(`<name>-ledger`, tag `ct.ledger=true`, in the pipeline's experiment) holding the table of
every decision and a plot of the champion's primary metric over time. The summary is
rewritten after each promotion, rollback and live-evidence promotion; it is a view of the
registry, so a failure to write it never undoes or fails a decision.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from continuous_training import registry
from continuous_training.config import PipelineConfig

log = logging.getLogger(__name__)

TAG_LEDGER = "ct.ledger"
TAG_PIPELINE = "ct.pipeline"
TABLE_PATH = "ledger/decisions.json"
PLOT_PATH = "ledger/champion_metric.png"
# Where a decision's time came from: its own tag, or (older versions) the registry's clock.
FROM_TAG = "ct.decided_at"
FROM_LAST_UPDATED = "last updated"
ROLLBACK = "rollback"


@dataclass(frozen=True)
class Decision:
    """One decision of the ledger: a retrain's (or live evidence's) verdict, or a rollback."""

    version: str
    decision: str
    decided_at: str  # ISO 8601 UTC, "" when unknown
    decided_at_source: str  # FROM_TAG or FROM_LAST_UPDATED
    trigger: str
    reason: str
    airflow_run_id: str
    replaced_version: str
    primary_metric: float | None  # the version's holdout value of gates.primary_metric
    served: bool  # it made the version champion (a promotion, not a dry run, or a rollback)


def decided_at(tags: dict[str, str], key: str, version: Any) -> tuple[str, str]:
    """(time, source): the tag `key`, else the version's last-updated time in MLflow."""
    if tags.get(key):
        return tags[key], FROM_TAG
    updated = getattr(version, "last_updated_timestamp", None)
    if not updated:
        return "", FROM_LAST_UPDATED
    moment = datetime.fromtimestamp(int(updated) / 1000, tz=UTC)
    return moment.isoformat(timespec="seconds"), FROM_LAST_UPDATED


def versions_of(client: Any, model_name: str) -> list[Any]:
    """Every version of the model, oldest first."""
    found = client.search_model_versions(f"name = '{model_name}'")
    return sorted(found, key=lambda v: int(v.version))


def decisions_of(version: Any, metric: float | None) -> list[Decision]:
    """The decisions recorded on one version: its own, then a rollback that restored it."""
    tags = dict(version.tags)
    number = str(version.version)
    found = []
    if registry.TAG_DECISION in tags:
        when, source = decided_at(tags, registry.TAG_DECIDED_AT, version)
        found.append(
            Decision(
                version=number,
                decision=tags[registry.TAG_DECISION],
                decided_at=when,
                decided_at_source=source,
                trigger=tags.get(registry.TAG_TRIGGER, "-"),
                reason=tags.get(registry.TAG_REASON, "-"),
                airflow_run_id=tags.get(registry.TAG_RUN_ID, "-"),
                replaced_version=tags.get(registry.TAG_REPLACED, "-"),
                primary_metric=metric,
                served=tags[registry.TAG_DECISION] == registry.PROMOTED
                and tags.get(registry.TAG_DRY_RUN) != "true",
            )
        )
    rollback = f"{registry.TAG_ROLLBACK}airflow_run_id"
    if rollback in tags:
        when, source = decided_at(tags, f"{registry.TAG_ROLLBACK}decided_at", version)
        found.append(
            Decision(
                version=number,
                decision=ROLLBACK,
                decided_at=when,
                decided_at_source=source,
                trigger=tags.get(f"{registry.TAG_ROLLBACK}trigger", "manual"),
                reason=tags.get(f"{registry.TAG_ROLLBACK}decision_reason", "-"),
                airflow_run_id=tags[rollback],
                replaced_version=tags.get(f"{registry.TAG_ROLLBACK}replaced_version", "-"),
                primary_metric=metric,
                served=True,
            )
        )
    return found


def holdout_metric(client: Any, version: Any, metric: str) -> float | None:
    """The version's primary metric on its own holdout (`eval_challenger_<metric>` of its run)."""
    if not getattr(version, "run_id", None):
        return None
    value = client.get_run(version.run_id).data.metrics.get(f"eval_challenger_{metric}")
    return None if value is None else float(value)


def all_decisions(client: Any, config: PipelineConfig) -> list[Decision]:
    """Every decision of the pipeline's model, in the order they were made."""
    metric = config.gates.primary_metric
    found = [
        decision
        for version in versions_of(client, config.model_name)
        for decision in decisions_of(version, holdout_metric(client, version, metric))
    ]
    return sorted(found, key=lambda d: (d.decided_at, int(d.version)))


def champion_over_time(decisions: list[Decision]) -> list[Decision]:
    """The decisions that made a version champion, in time order, each with a metric."""
    return [d for d in decisions if d.served and d.decided_at and d.primary_metric is not None]


# --------------------------------------------------------------------------- the CLI's rows


def decision_rows(tracking_uri: str, model_name: str) -> list[dict[str, str]]:
    """One row per version, oldest first, for the CLI: its decision, when, and why."""
    client = registry.make_client(tracking_uri)
    champion = registry.alias_version(client, model_name, registry.CHAMPION)
    return [row_of(version, champion) for version in versions_of(client, model_name)]


def row_of(version: Any, champion: str | None) -> dict[str, str]:
    """A version's row; `version` is MLflow's ModelVersion (version, tags, last update)."""
    tags = dict(version.tags)
    when, source = decided_at(tags, registry.TAG_DECIDED_AT, version)
    return {
        "version": str(version.version) + (" *" if str(version.version) == champion else ""),
        "decision": tags.get(registry.TAG_DECISION, "-"),
        "decided at": when or "-",
        "decided at from": source,
        "trigger": tags.get(registry.TAG_TRIGGER, "-"),
        "replaced": tags.get(registry.TAG_REPLACED, "-"),
        "airflow run": tags.get(registry.TAG_RUN_ID, "-"),
        "reason": reason_with_rollbacks(tags),
    }


def reason_with_rollbacks(tags: dict[str, str]) -> str:
    """The decision's reason, followed by any rollback that restored or demoted the version."""
    parts = [tags.get(registry.TAG_REASON, "-")]
    restored_by = tags.get(f"{registry.TAG_ROLLBACK}airflow_run_id")
    if restored_by:
        why = tags.get(f"{registry.TAG_ROLLBACK}decision_reason", "")
        at = _at(tags.get(f"{registry.TAG_ROLLBACK}decided_at"))
        parts.append(f"[restored by rollback {restored_by}{at}: {why}]")
    if registry.TAG_DEMOTED_BY in tags:
        why = tags.get(registry.TAG_DEMOTED_REASON, "")
        at = _at(tags.get(registry.TAG_DEMOTED_AT))
        parts.append(f"[rolled back by {tags[registry.TAG_DEMOTED_BY]}{at}: {why}]")
    return " ".join(parts)


def _at(when: str | None) -> str:
    return f" at {when}" if when else ""


# --------------------------------------------------------------------------- MLflow summary


def log_summary(config: PipelineConfig, tracking_uri: str) -> str | None:
    """Rewrite the pipeline's ledger run; its id, or None (with a warning) if that failed.

    Called after a decision was applied: the decision stands whatever happens here.
    """
    try:
        return write_summary(registry.make_client(tracking_uri), config)
    except Exception as exc:  # a view of the registry: never fails the decision it follows
        log.warning("the ledger summary of %s was not written to MLflow: %s", config.name, exc)
        return None


def write_summary(client: Any, config: PipelineConfig) -> str:
    """The table of every decision and the plot of the champion's metric, in the ledger run."""
    from continuous_training.plots import plot_champion_metric

    decisions = all_decisions(client, config)
    run_id = ledger_run(client, config)
    client.log_dict(run_id, table(decisions), TABLE_PATH)
    with tempfile.TemporaryDirectory() as tmp:
        plot = Path(tmp) / Path(PLOT_PATH).name
        plot_champion_metric(
            [
                (datetime.fromisoformat(d.decided_at), d.primary_metric, d.version)
                for d in champion_over_time(decisions)
                if d.primary_metric is not None
            ],
            config.gates.primary_metric,
            f"{config.model_name}: the champion's holdout {config.gates.primary_metric}",
            plot,
        )
        client.log_artifact(run_id, str(plot), artifact_path=str(Path(PLOT_PATH).parent))
    client.set_terminated(run_id, "FINISHED")
    log.info("ledger of %s: %d decisions in MLflow run %s", config.name, len(decisions), run_id)
    return run_id


def table(decisions: list[Decision]) -> dict[str, Any]:
    """The decisions as a table in pandas' "split" layout (columns, then rows), JSON-ready."""
    columns = list(Decision.__dataclass_fields__)
    return {
        "columns": columns,
        "data": [[asdict(d)[column] for column in columns] for d in decisions],
    }


def ledger_run(client: Any, config: PipelineConfig) -> str:
    """The pipeline's ledger run, created the first time; the oldest if a race made two."""
    experiment = client.get_experiment_by_name(config.experiment_name)
    experiment_id = (
        experiment.experiment_id if experiment else client.create_experiment(config.experiment_name)
    )
    query = f"tags.`{TAG_LEDGER}` = 'true' and tags.`{TAG_PIPELINE}` = '{config.name}'"
    found = client.search_runs(
        [experiment_id], filter_string=query, order_by=["attributes.start_time ASC"]
    )
    if found:
        return found[0].info.run_id
    tags = {TAG_LEDGER: "true", TAG_PIPELINE: config.name}
    return client.create_run(experiment_id, tags=tags, run_name=f"{config.name}-ledger").info.run_id
