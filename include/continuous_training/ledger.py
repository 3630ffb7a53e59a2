"""A pipeline's ledger: every decision in the registry, and when it was made.

The ledger is the model versions' tags (written by `registry`): `decision_rows` reads it for
`python -m continuous_training.cli decisions`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from continuous_training import registry

# Where a decision's time came from: its own tag, or (older versions) the registry's clock.
FROM_TAG = "ct.decided_at"
FROM_LAST_UPDATED = "last updated"


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
