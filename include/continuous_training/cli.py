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
from continuous_training.ledger import FROM_LAST_UPDATED, decision_rows

__all__ = ["decision_rows", "ledger_lines", "main", "print_decisions", "reason_lines"]

# A reason is written as clauses joined by "; ", followed by any "[... rollback ...]" notes.
_NOTES = re.compile(r" (?=\[(?:restored by|rolled back by) )")


def reason_lines(reason: str) -> list[str]:
    """A reason's clauses, then its rollback notes, one a line."""
    clauses, *notes = _NOTES.split(reason)
    return [*clauses.split("; "), *notes]


def print_decisions(pipeline: str, tracking_uri: str) -> None:
    model_name = find_pipeline(pipeline).model_name
    for line in ledger_lines(model_name, tracking_uri, decision_rows(tracking_uri, model_name)):
        print(line)


def ledger_lines(model_name: str, tracking_uri: str, rows: list[dict[str, str]]) -> list[str]:
    """One block per version: its decision, when, trigger and run, then its reason's clauses."""
    champion = next((r["version"][:-2] for r in rows if r["version"].endswith(" *")), None)
    count = f"{len(rows)} version{'s' if len(rows) != 1 else ''}"
    crowned = f"the champion (*) is version {champion}" if champion else "no champion"
    lines = [f"registered model {model_name} at {tracking_uri}: {count}, {crowned}"]
    for row in rows:
        replaced = row["replaced"]
        replaced = "" if replaced in ("-", "none") else f"  replaced version {replaced}"
        version, decision, trigger = row["version"], row["decision"], row["trigger"]
        lines.append(f"  version {version:<5} {decision:<9} trigger {trigger}{replaced}")
        lines.append(f"      {decided_at_line(row)}")
        lines.append(f"      Airflow run {row['airflow run']}")
        lines.extend(f"      {clause}" for clause in reason_lines(row["reason"]))
    return lines


def decided_at_line(row: dict[str, str]) -> str:
    """When the decision was made; for a version recorded before `ct.decided_at`, says so."""
    when = row["decided at"]
    if row["decision"] == "-":
        return f"no decision recorded; last updated {when}"
    if row["decided at from"] == FROM_LAST_UPDATED:
        return f"decided at {when} (no ct.decided_at: the version's last update in MLflow)"
    return f"decided at {when}"


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
