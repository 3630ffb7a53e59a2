"""`python -m continuous_training.cli decisions churn`: the registry's ledger, a block a version.

`record-digest <model> <version>`: tag a version registered before model digests existed
(`ct.model_sha256`) with the digest of its files as stored now, after checking them by hand.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

from continuous_training import model_digest, registry
from continuous_training.config import find_pipeline

# A reason is written as clauses joined by "; ", followed by any "[... rollback ...]" notes.
_NOTES = re.compile(r" (?=\[(?:restored by|rolled back by) )")


def reason_lines(reason: str) -> list[str]:
    """A reason's clauses, then its rollback notes, one a line."""
    clauses, *notes = _NOTES.split(reason)
    return [*clauses.split("; "), *notes]


def decision_rows(tracking_uri: str, model_name: str) -> list[dict[str, str]]:
    client = registry.make_client(tracking_uri)
    champion = registry.alias_version(client, model_name, registry.CHAMPION)
    rows = []
    for version in sorted(
        client.search_model_versions(f"name = '{model_name}'"), key=lambda v: int(v.version)
    ):
        tags = version.tags
        rows.append(
            {
                "version": str(version.version)
                + (" *" if str(version.version) == champion else ""),
                "decision": tags.get(registry.TAG_DECISION, "-"),
                "trigger": tags.get(registry.TAG_TRIGGER, "-"),
                "replaced": tags.get(registry.TAG_REPLACED, "-"),
                "airflow run": tags.get(registry.TAG_RUN_ID, "-"),
                "reason": _reason(tags),
            }
        )
    return rows


def _reason(tags: dict[str, str]) -> str:
    """The decision's reason, followed by any rollback that restored or demoted the version."""
    parts = [tags.get(registry.TAG_REASON, "-")]
    restored_by = tags.get(f"{registry.TAG_ROLLBACK}airflow_run_id")
    if restored_by:
        why = tags.get(f"{registry.TAG_ROLLBACK}decision_reason", "")
        parts.append(f"[restored by rollback {restored_by}: {why}]")
    if registry.TAG_DEMOTED_BY in tags:
        why = tags.get(registry.TAG_DEMOTED_REASON, "")
        parts.append(f"[rolled back by {tags[registry.TAG_DEMOTED_BY]}: {why}]")
    return " ".join(parts)


def print_decisions(pipeline: str, tracking_uri: str) -> None:
    """One block per version: its decision, trigger and run, then each clause of its reason."""
    model_name = find_pipeline(pipeline).model_name
    rows = decision_rows(tracking_uri, model_name)
    champion = next((r["version"][:-2] for r in rows if r["version"].endswith(" *")), None)
    count = f"{len(rows)} version{'s' if len(rows) != 1 else ''}"
    crowned = f"the champion (*) is version {champion}" if champion else "no champion"
    print(f"registered model {model_name} at {tracking_uri}: {count}, {crowned}")
    for row in rows:
        replaced = row["replaced"]
        replaced = "" if replaced in ("-", "none") else f"  replaced version {replaced}"
        version, decision, trigger = row["version"], row["decision"], row["trigger"]
        print(f"  version {version:<5} {decision:<9} trigger {trigger}{replaced}")
        print(f"      Airflow run {row['airflow run']}")
        for clause in reason_lines(row["reason"]):
            print(f"      {clause}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="continuous_training.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    decisions = sub.add_parser("decisions", help="list model versions and their decisions")
    decisions.add_argument("pipeline")
    default_uri = os.environ.get("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    record = sub.add_parser(
        "record-digest",
        help="tag a version registered before model digests with the digest of its files now",
    )
    record.add_argument("model")
    record.add_argument("version")
    for command in (decisions, record):
        command.add_argument("--tracking-uri", default=default_uri)
    args = parser.parse_args(argv)
    if args.command == "decisions":
        print_decisions(args.pipeline, args.tracking_uri)
    if args.command == "record-digest":
        client = registry.make_client(args.tracking_uri)
        digest = model_digest.record(client, args.model, args.version)
        print(f"model {args.model} version {args.version}: {model_digest.TAG_MODEL_SHA}={digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
