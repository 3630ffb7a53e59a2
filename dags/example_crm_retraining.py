"""Example: your own retraining DAG, composed from the shipped operators plus steps of yours.

`export_customers` is an operator of your own (`crm_extension.operators`), reading a SQLite
CRM; validate, train, evaluate and promote are the shipped operators; `notify` is a task of
your own after the decision. The config is `crm_extension/churn_crm.yaml`, whose gate adds a
check of your own (`crm_extension.checks.holdout_large_enough`).

Like every DAG file, this imports only `airflow.sdk`, the config, the factory helpers, the
operators and light modules of your own: it parses without pandas, sklearn or MLflow.
"""

from __future__ import annotations

from typing import Any

# --8<-- [start:imports]
from airflow.sdk import DAG, get_current_context, task

from continuous_training.config import load_pipeline
from continuous_training.dag_factory import START_DATE, TAG, default_args, retraining_params
from continuous_training.operators import (
    EvaluateAgainstChampion,
    Promote,
    TrainCandidate,
    ValidateData,
)
from crm_extension import PIPELINE_YAML
from crm_extension.operators import ExportCustomersFromCrm

CONFIG = load_pipeline(PIPELINE_YAML)
# --8<-- [end:imports]

DOC = f"""
### Example: {CONFIG.name} retraining from the CRM

**An example to copy**, not a production DAG: it shows how to build your own DAG from the
continuous-training operators. Triggered by hand only (`schedule=None`).

**export_customers** (your operator: the run's window from the CRM's SQLite file, found at
`source.options.db_path` or the worker's `CRM_DB_PATH`) → **validate** → **train_candidate** →
**evaluate_vs_champion** → **promote** (shipped operators) → **notify** (your task: a one-line
summary of the decision, written next to the run's snapshot).

Config: `dags/crm_extension/churn_crm.yaml`; its gate adds the check
`crm_extension.checks.holdout_large_enough`. Registered model: `{CONFIG.model_name}`.
Trigger form: as the weekly retraining DAGs (`dry_run`, `force_promote` with a `reason`).
"""


# --8<-- [start:dag]
@task
def notify(outcome: dict[str, Any]) -> dict[str, str]:
    """A step of your own after the decision: here a one-line summary in the data root.

    In your deployment this could post to a chat channel or write back to the CRM.
    """
    from continuous_training import storage

    run_id = get_current_context()["run_id"]
    line = (
        f"{CONFIG.model_name} version {outcome['model_version']} {outcome['decision']} "
        f"(champion now: {outcome['champion_version'] or 'none'}): {outcome['reason']}"
    )
    uri = storage.snapshot_uri(CONFIG.name, run_id, "decision.txt")
    storage.write_bytes_atomic((line + "\n").encode("utf-8"), uri)
    print(line)
    return {"summary": line, "uri": uri}


with DAG(
    dag_id="example_crm_retraining",
    description="Example: the shipped retraining steps around a CRM export and a notify step",
    schedule=None,  # an example: triggered by hand
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(CONFIG),  # owner and retries from the YAML
    params=retraining_params(CONFIG),  # the trigger form: dry_run, force_promote, reason, ...
    tags=[TAG, CONFIG.name, "example"],
    doc_md=DOC,
) as dag:
    export = ExportCustomersFromCrm(task_id="export_customers", pipeline=PIPELINE_YAML)
    validate = ValidateData(task_id="validate", pipeline=PIPELINE_YAML, snapshot=export.output)
    train = TrainCandidate(
        task_id="train_candidate", pipeline=PIPELINE_YAML, snapshot=validate.output
    )
    evaluate = EvaluateAgainstChampion(
        task_id="evaluate_vs_champion", pipeline=PIPELINE_YAML, candidate=train.output
    )
    promote = Promote(task_id="promote", pipeline=PIPELINE_YAML, evaluation=evaluate.output)
    notify(promote.output)
# --8<-- [end:dag]
