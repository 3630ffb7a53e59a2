"""What the tasks of a pipeline hand each other through XCom, and what a step needs of its run.

Every payload a task returns and another task (or a user, through XCom or an asset event)
reads is a TypedDict here: plain JSON at run time, keys checked by a type checker and by the
tests (`tests/unit/test_contracts.py`). The README's "Contracts" section lists the asset event
payloads; this module is their specification.

`RunContext` is the little of Airflow a step needs, as plain values: the operator builds it
once from the task's context, so a step runs (and is tested) without Airflow.

Typing only: DAG files import this module through the operators. No `from __future__ import
annotations` here: on Python 3.11 it hides `Required`/`NotRequired` from the TypedDicts.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NotRequired, Required, TypedDict


@dataclass(frozen=True)
class RunContext:
    """The run a step works for: ids, its data window's end, its trigger, MLflow, params."""

    dag_id: str
    run_id: str
    window_end: datetime  # midnight UTC; a task reads this window, never the clock
    trigger: str  # schedule | drift | performance | manual (as far as Airflow can tell)
    tracking_uri: str
    params: Mapping[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- retraining


class Snapshot(TypedDict):
    """fetch -> validate: the run's window as one parquet file with its sha256."""

    uri: str
    sha256: str
    bytes: int
    rows: int
    window_start: str
    window_end: str


class ValidatedSnapshot(Snapshot):
    """validate -> train_candidate: the snapshot, and where its Great Expectations result is."""

    validation_report: str


class DataPart(TypedDict):
    """The train or holdout part of a candidate's split, as written beside the snapshot."""

    uri: str
    sha256: str
    bytes: int
    rows: int
    window: list[str | None]  # [start, end] ISO; start None when the snapshot had none


class RegisteredCandidate(TypedDict):
    """A candidate version and the MLflow run that logged it (linked from the task)."""

    model_name: str
    model_version: str
    mlflow_run_id: str
    experiment_id: str
    mlflow_run_url: str
    tracking_uri: str


class Candidate(RegisteredCandidate):
    """train_candidate -> evaluate_vs_champion: the registered version and its split."""

    train: DataPart
    holdout: DataPart
    search: NotRequired[dict[str, Any]]  # with model.search: the model card's Search section


class Evaluation(RegisteredCandidate):
    """evaluate_vs_champion -> promote: the gate's verdict on the candidate vs the champion."""

    train_sha256: str
    holdout_sha256: str
    champion_version: str | None
    gate_passed: bool
    gate_reason: str
    primary_metric: str
    challenger_metric: float
    champion_metric: float | None
    wants_live_evidence: bool
    minimum_detectable_improvement: float | None


class ApprovalRequest(TypedDict):
    """evaluate_vs_champion -> approve: what the person is shown (Markdown body)."""

    subject: str
    body: str


class Promotion(TypedDict):
    """promote -> the user (XCom, a task of their own): the recorded decision."""

    decision: str  # promoted | rejected
    reason: str
    trigger: str
    airflow_run_id: str
    promoted: bool
    replaced_version: str | None
    dry_run: bool
    superseded_evaluations: list[dict[str, Any]]
    approval: dict[str, Any] | None  # the person's answer, when approval is required
    model_version: str
    champion_version: str | None  # after the decision


class TriggeringEvent(TypedDict, total=False):
    """debounce_drift -> the retraining chain's templates: the event acted on, plus its kind.

    The rest of the event's extra (a `DriftEventExtra` or a `PerformanceEventExtra`) is
    carried along unchanged.
    """

    trigger: Required[str]  # drift | performance
    episode: Required[str]
    window_end: Required[str]


class Rollback(TypedDict):
    """rollback -> the user: which version serves now and which it replaced."""

    model_name: str
    champion: str
    replaced_version: str


# --------------------------------------------------------------------------- batch inference


class PinnedChampion(TypedDict):
    """pin_champion -> every later task: the versions and output set of the whole run."""

    model_name: str
    champion_version: str
    champion_sha256: str
    challenger_version: str | None  # scored in shadow when inference.shadow is on
    window_start: str
    window_end: str
    mlflow_run_id: str
    mlflow_run_url: str
    output_set: str


class PartitionSpec(TypedDict):
    """list_partitions -> score_partition (one mapped task each): a file or a time range."""

    key: str
    start: str
    end: str
    path: str | None
    format: str | None


class ShadowPartStats(TypedDict):
    """A shadowing challenger against the champion on one partition's rows."""

    version: str
    rows: int
    disagreements: int
    abs_diff_sum: float
    champion_hist: list[int]
    challenger_hist: list[int]


class ScoredPart(TypedDict):
    """score_partition -> publish_predictions: one part of the run's output set."""

    uri: str
    rows: int
    input_rows: int
    sha256: str
    model_version: str
    sample_uri: str
    sample_rows: int
    shadow: ShadowPartStats | None
    shadow_uri: str | None
    key: str


class ShadowSummary(TypedDict):
    """The shadow statistics of all parts; logged to the batch run in MLflow."""

    challenger_version: str
    rows: int
    disagreement_rate: float
    mean_abs_score_diff: float
    champion_hist: list[int]
    challenger_hist: list[int]
    bins: int


class PredictionsEventExtra(TypedDict):
    """The `ct.<name>.predictions` asset event: what was published, and where."""

    model_name: str
    model_version: str | None
    rows: int
    uri: str  # the published set's folder: read its part-*.parquet
    manifest: str  # the date's pointer to its current set
    window_end: str


class Published(PredictionsEventExtra):
    """publish_predictions -> check_drift: the event's payload, the parts and the shadow."""

    parts: list[ScoredPart]
    shadow: ShadowSummary | None


class ColumnDriftJson(TypedDict):
    score: float
    method: str
    threshold: float
    drifted: bool


class DriftSummary(TypedDict, total=False):
    """check_drift -> emit_drift_event: Evidently's verdict, or why there was none.

    A window with no scored row has only `breach` (False) and `skipped`.
    """

    breach: Required[bool]
    skipped: str
    drifted_share: float
    drifted_columns: list[str]
    columns: dict[str, ColumnDriftJson]
    prediction: ColumnDriftJson
    threshold: float
    current_rows: int
    reference_rows: int
    pipeline: str
    episode: str
    champion_version: str
    window_start: str
    window_end: str
    report_uri: str
    mlflow_run_id: str
    mlflow_run_url: str  # the batch run that holds the report
    metric_keys: dict[str, str]


class DriftEventExtra(TypedDict):
    """emit_drift_event -> the `ct.<name>.drift` asset event (and debounce_drift)."""

    episode: str
    champion_version: str
    drifted_share: float
    drifted_columns: list[str]
    report_uri: str
    window_end: str
    prediction_drift_score: float


# --------------------------------------------------------------------------- monitoring


class Measured(TypedDict):
    """measure_performance -> check_decay, judge_live_evidence: the as-of and the MLflow run."""

    mlflow_run_id: str
    mlflow_run_url: str
    as_of: str
    summary: dict[str, Any]  # monitoring.measure's summary: per-date records, labels seen


class TimeWindow(TypedDict):
    start: str
    end: str


class DecayEvidence(TypedDict):
    """The champion's realized metric over the trailing window against its expected one."""

    metric: str
    expected: float | None
    realized: float | None
    interval: list[float | None]
    window: TimeWindow
    champion_version: str
    labelled_rows: int
    predictions: int
    dates: int


class DecayCheck(TypedDict):
    """check_decay -> emit_performance_event: the verdict and its evidence."""

    decayed: bool
    reason: str
    extra: DecayEvidence
    mlflow_run_id: str
    mlflow_run_url: str


class PerformanceEventExtra(DecayEvidence):
    """emit_performance_event -> the `ct.<name>.performance` asset event (and debounce_drift)."""

    episode: str  # <model>/champion-v<N>/performance
    window_end: str


class LiveEvidenceOutcome(TypedDict):
    """judge_live_evidence -> the user: the shadow challenger's live verdict."""

    champion_version: str | None
    challenger_version: str
    evidence: dict[str, Any]  # the sequential test's record, with its daily observations
    promoted: bool
    reason: str
