"""Airflow operators of the continuous-training steps; a public API for your own DAGs.

Each operator stores its arguments, builds the run context and calls its step in
`continuous_training.steps`; what the tasks hand each other is typed in
`continuous_training.contracts`. Importing this package loads only `airflow.sdk`, the config
models and the contracts, never pandas, sklearn or MLflow, so DAG files that use it parse fast.
"""

from continuous_training.operators.approval import ApproveChampionChange
from continuous_training.operators.base import PipelineOperator, resolve_tracking_uri
from continuous_training.operators.config_error import ReportConfigError
from continuous_training.operators.drift_retraining import DebounceDrift
from continuous_training.operators.inference import (
    CheckDrift,
    EmitDriftEvent,
    ListPartitions,
    PinChampion,
    PublishPredictions,
    ScorePartition,
)
from continuous_training.operators.links import MLflowRunLink
from continuous_training.operators.monitoring import (
    CheckDecay,
    EmitPerformanceEvent,
    JudgeLiveEvidence,
    MeasurePerformance,
)
from continuous_training.operators.retraining import (
    EvaluateAgainstChampion,
    FetchData,
    Promote,
    TrainCandidate,
    ValidateData,
    run_options,
)
from continuous_training.operators.rollback import RollbackChampion

__all__ = [
    "ApproveChampionChange",
    "CheckDecay",
    "CheckDrift",
    "DebounceDrift",
    "EmitDriftEvent",
    "EmitPerformanceEvent",
    "EvaluateAgainstChampion",
    "FetchData",
    "JudgeLiveEvidence",
    "ListPartitions",
    "MLflowRunLink",
    "MeasurePerformance",
    "PinChampion",
    "PipelineOperator",
    "Promote",
    "PublishPredictions",
    "ReportConfigError",
    "RollbackChampion",
    "ScorePartition",
    "TrainCandidate",
    "ValidateData",
    "resolve_tracking_uri",
    "run_options",
]
