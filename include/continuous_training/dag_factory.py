"""Builds the DAGs of one pipeline config. DAG files call this and nothing else.

Only `airflow.sdk`, the config models and the thin operators are imported here, so
that parsing the dags/ folder stays close to the cost of importing `airflow.sdk`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Param

from continuous_training.config import PipelineConfig
from continuous_training.operators import (
    EvaluateAgainstChampion,
    FetchData,
    Promote,
    TrainCandidate,
    ValidateData,
)

TAG = "continuous-training"
START_DATE = datetime(2026, 1, 1)
MAX_TRAINING_WINDOW_DAYS = 3650


def default_args(config: PipelineConfig) -> dict[str, Any]:
    return {
        "owner": config.owner,
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
    }


def retraining_params(config: PipelineConfig) -> dict[str, Param]:
    """The trigger form of a retraining DAG."""
    return {
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Train and evaluate, record the decision, never move the champion.",
        ),
        "force_promote": Param(
            False,
            type="boolean",
            title="Force promote",
            description="Promote the candidate whatever the gate says. Needs a reason.",
        ),
        # null, not "": the trigger form treats an empty string as a missing required field.
        "reason": Param(
            None,
            type=["null", "string"],
            title="Reason",
            description="Why this run was triggered by hand; required with force_promote.",
        ),
        "training_window_days": Param(
            config.windows.training_days,
            type="integer",
            minimum=1,
            maximum=MAX_TRAINING_WINDOW_DAYS,
            title="Training window (days)",
            description="Days of data before the holdout to train on.",
        ),
    }


def _retraining_doc(config: PipelineConfig, how: str) -> str:
    gates = config.gates
    return f"""
### {config.name}: {how}

{config.description}

**fetch** the last {config.windows.training_days}+{config.windows.holdout_days} days from the
`{config.source.kind}` source → **validate** with Great Expectations → **train** a candidate
(`{config.model.estimator}`) → **evaluate** it against the `champion` on the newest
{config.windows.holdout_days} days → **promote** only if it wins.

Gate: `{gates.primary_metric}` ≥ {gates.floor}; the {gates.bootstrap.confidence:.0%} bootstrap
interval of the improvement over the champion must clear {gates.min_improvement}.
Registered model: `{config.model_name}`. Every decision is a tag on the model version (`ct.*`).

Trigger form: `dry_run` never promotes; `force_promote` needs a `reason`.
"""


def add_retraining_chain(config: PipelineConfig, trigger: str) -> Promote:
    """fetch -> validate -> train_candidate -> evaluate_vs_champion -> promote, in this DAG."""
    name = config.name
    fetch = FetchData(task_id="fetch", pipeline=name)
    validate = ValidateData(task_id="validate", pipeline=name, snapshot=fetch.output)
    train = TrainCandidate(
        task_id="train_candidate", pipeline=name, snapshot=validate.output, trigger=trigger
    )
    evaluate = EvaluateAgainstChampion(
        task_id="evaluate_vs_champion", pipeline=name, candidate=train.output
    )
    return Promote(task_id="promote", pipeline=name, evaluation=evaluate.output, trigger=trigger)


def build_weekly_retraining(config: PipelineConfig) -> DAG:
    with DAG(
        dag_id=f"{config.name}_weekly_retraining",
        description=f"Weekly retraining of {config.model_name} with a gated promotion",
        schedule=config.schedule,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=default_args(config),
        params=retraining_params(config),
        tags=[TAG, config.name, "retraining"],
        doc_md=_retraining_doc(config, "weekly retraining"),
    ) as dag:
        add_retraining_chain(config, trigger="schedule")
    return dag


def build_dags(config: PipelineConfig) -> dict[str, DAG]:
    """Every DAG of one pipeline, keyed by dag_id."""
    dags = [build_weekly_retraining(config)]
    return {dag.dag_id: dag for dag in dags}
