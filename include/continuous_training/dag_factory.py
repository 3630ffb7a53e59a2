"""Builds the DAGs of one pipeline config. DAG files call this and nothing else.

Only `airflow.sdk`, the config models and the thin operators are imported here, so
that parsing the dags/ folder stays close to the cost of importing `airflow.sdk`.
"""

from __future__ import annotations

import re
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Asset, Param

from continuous_training.config import (
    MAX_WINDOW_DAYS,
    ConfigError,
    PipelineConfig,
    load_pipeline,
    pipeline_files,
)
from continuous_training.operators import (
    ApproveChampionChange,
    CheckDecay,
    CheckDrift,
    DebounceDrift,
    EmitDriftEvent,
    EmitPerformanceEvent,
    EvaluateAgainstChampion,
    FetchData,
    JudgeLiveEvidence,
    ListPartitions,
    MeasurePerformance,
    PinChampion,
    Promote,
    PublishPredictions,
    ReportConfigError,
    RollbackChampion,
    ScorePartition,
    TrainCandidate,
    ValidateData,
)
from continuous_training.operators.notify import NotifyFailure

TAG = "continuous-training"
# The epoch: a pipeline's history is usually older than the product, and a run (or a
# backfill) whose logical date preceded the start date would create no task and "succeed".
# A start date is still needed: without one, unpausing a DAG waits for the next cron tick
# instead of running the latest. catchup=False keeps the scheduler from creating past runs.
START_DATE = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TRAINING_WINDOW_DAYS = MAX_WINDOW_DAYS
# Between evaluate_vs_champion and promote when the YAML says `approval.required`.
APPROVE_TASK = "approve"


def default_args(config: PipelineConfig) -> dict[str, Any]:
    args: dict[str, Any] = {
        "owner": config.owner,
        "retries": config.retries.count,
        "retry_delay": timedelta(seconds=config.retries.delay_seconds),
        "retry_exponential_backoff": config.retries.exponential_backoff,
    }
    if config.notify.any:
        # Called after a task's last retry only: one message per failed task, not per attempt.
        args["on_failure_callback"] = NotifyFailure(config.name)
    return args


def one_run_at_a_time(config: PipelineConfig) -> dict[str, Any]:
    """What every DAG of a pipeline shares: the epoch start, no catch-up, one run at a time."""
    return {
        "start_date": START_DATE,
        "catchup": False,
        "max_active_runs": 1,
        "default_args": default_args(config),
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
{_search_doc(config)}"""


def _search_doc(config: PipelineConfig) -> str:
    search = config.model.search
    if search is None:
        return ""
    return f"""
Search (`model.search`): up to {search.n_trials} Optuna trials ({search.sampler} sampler,
seed {search.seed}, pruner {search.pruner}) over {", ".join(f"`{p}`" for p in search.space)},
each fitted on the training part less its newest {search.validation_days} days and scored on
those days; the best params are refitted on the whole training part. The search stops after
{search.timeout_minutes:g} minutes at most; `train_candidate` has an execution timeout of
{search.timeout_minutes:g} + {search.margin_minutes:g} minutes (the margin covers the refit,
logging, registration and a last trial that began before the search's timeout).
"""


def predictions_asset(config: PipelineConfig) -> Asset:
    """Updated by every batch inference; its event extra says which model and how many rows."""
    return Asset(name=f"ct.{config.name}.predictions", group=TAG)


def drift_asset(config: PipelineConfig) -> Asset:
    """Updated only when batch inference sees drift past the thresholds of the YAML."""
    return Asset(name=f"ct.{config.name}.drift", group=TAG)


def performance_asset(config: PipelineConfig) -> Asset:
    """Updated when the champion's realized performance has decayed past the YAML's tolerance."""
    return Asset(name=f"ct.{config.name}.performance", group=TAG)


def labels_asset(config: PipelineConfig) -> Asset:
    """Updated by whatever loads outcomes; schedules monitoring when it has no cron schedule."""
    return Asset(name=f"ct.{config.name}.labels", group=TAG)


def train_timeout(config: PipelineConfig) -> timedelta | None:
    """The training task's execution timeout: the search's budget plus its margin.

    With `model.search`, Optuna stops starting trials after `timeout_minutes`; the margin
    (`margin_minutes`) covers reading the data, the refit of the best params on the whole
    training part, logging, registration, and a last trial that began before the timeout.
    Without a search there is no timeout of our own (Airflow's default applies).
    """
    search = config.model.search
    if search is None:
        return None
    return timedelta(minutes=search.timeout_minutes + search.margin_minutes)


def add_retraining_chain(
    config: PipelineConfig,
    trigger: str,
    data_window_end: str | None = None,
    drift_episode: str | None = None,
) -> Promote:
    """fetch -> validate -> train_candidate -> evaluate_vs_champion -> [approve] -> promote.

    `data_window_end` (templated) replaces the run's own window end, e.g. with the end of
    the window in which drift was seen.
    """
    common = {"pipeline": config.name, "data_window_end": data_window_end}
    fetch = FetchData(task_id="fetch", **common)
    validate = ValidateData(task_id="validate", snapshot=fetch.output, **common)
    train = TrainCandidate(
        task_id="train_candidate",
        snapshot=validate.output,
        trigger=trigger,
        drift_episode=drift_episode,
        execution_timeout=train_timeout(config),
        **common,
    )
    evaluate = EvaluateAgainstChampion(
        task_id="evaluate_vs_champion", candidate=train.output, **common
    )
    if not config.approval.required:
        return Promote(task_id="promote", evaluation=evaluate.output, trigger=trigger, **common)
    approve = ApproveChampionChange(
        task_id=APPROVE_TASK, evaluation=evaluate.output, approval=config.approval, **common
    )
    promote = Promote(
        task_id="promote",
        evaluation=evaluate.output,
        trigger=trigger,
        approval_task_id=APPROVE_TASK,
        # `approve` is skipped when nothing would change, and promote still records that;
        # when the whole chain was skipped (a debounced drift event) so is promote.
        trigger_rule="none_failed_min_one_success",
        **common,
    )
    approve >> promote
    return promote


def build_weekly_retraining(config: PipelineConfig) -> DAG:
    with DAG(
        dag_id=f"{config.name}_weekly_retraining",
        description=f"Weekly retraining of {config.model_name} with a gated promotion",
        schedule=config.schedule,
        **one_run_at_a_time(config),
        params=retraining_params(config),
        tags=[TAG, config.name, "retraining"],
        doc_md=_retraining_doc(config, "weekly retraining"),
    ) as dag:
        add_retraining_chain(config, trigger="schedule")
    return dag


def retraining_assets(config: PipelineConfig) -> list[Asset]:
    """What starts a drift retrain: input drift, and decay when the pipeline has labels."""
    assets = [drift_asset(config)]
    return [*assets, performance_asset(config)] if config.labels else assets


def build_drift_retraining(config: PipelineConfig) -> DAG:
    assets = retraining_assets(config)
    schedule: Any = assets if len(assets) == 1 else assets[0] | assets[1]
    with DAG(
        dag_id=f"{config.name}_drift_retraining",
        description=f"Retrains {config.model_name} when batch inference sees drift"
        + (" or monitoring sees realized performance decay" if config.labels else ""),
        schedule=schedule,
        **one_run_at_a_time(config),
        params=retraining_params(config),
        tags=[TAG, config.name, "retraining", "drift"],
        doc_md=_retraining_doc(config, "drift-triggered retraining")
        + f"""
Runs when {" or ".join(f"`{a.name}`" for a in assets)} gets an event. **debounce_drift**
skips the run (and says why in its log) when the event's episode was already handled, or
when a retrain trained on data ending within {config.drift.cooldown_hours:g} h before the
event's window. Otherwise the chain trains on the window that ends where the event was seen
and records `ct.trigger` `drift` or `performance`.
""",
    ) as dag:
        debounce = DebounceDrift(task_id="debounce_drift", pipeline=config.name, inlets=assets)
        pulled = "ti.xcom_pull(task_ids='debounce_drift')"
        add_retraining_chain(
            config,
            trigger="{{ " + pulled + ".get('trigger', 'drift') }}",
            data_window_end="{{ " + pulled + "['window_end'] }}",
            drift_episode="{{ " + pulled + "['episode'] }}",
        )
        debounce >> dag.get_task("fetch")
    return dag


def build_batch_inference(config: PipelineConfig) -> DAG:
    inference = config.inference
    with DAG(
        dag_id=f"{config.name}_batch_inference",
        description=f"Scores new data with the {config.model_name} champion; watches for drift",
        schedule=inference.schedule,
        **one_run_at_a_time(config),
        tags=[TAG, config.name, "inference"],
        doc_md=_inference_doc(config),
    ) as dag:
        name = config.name
        pin = PinChampion(task_id="pin_champion", pipeline=name)
        partitions = ListPartitions(task_id="list_partitions", pipeline=name, pinned=pin.output)
        scored = ScorePartition.partial(
            task_id="score_partition",
            pipeline=name,
            pinned=pin.output,
            max_active_tis_per_dag=inference.max_active_partitions,
            **({"pool": inference.pool} if inference.pool else {}),
        ).expand(partition=partitions.output)
        published = PublishPredictions(
            task_id="publish_predictions",
            pipeline=name,
            pinned=pin.output,
            parts=scored.output,
            outlets=[predictions_asset(config)],
        )
        checked = CheckDrift(
            task_id="check_drift", pipeline=name, pinned=pin.output, published=published.output
        )
        EmitDriftEvent(
            task_id="emit_drift_event",
            pipeline=name,
            summary=checked.output,
            outlets=[drift_asset(config)],
        )
    return dag


def _inference_doc(config: PipelineConfig) -> str:
    inference = config.inference
    return f"""
### {config.name}: batch inference

**pin_champion** resolves the `champion` alias of `{config.model_name}` to one version →
**list_partitions** splits the last {inference.window_days} day(s) of the
`{config.scoring_source.kind}` source → **score_partition** (one mapped task per
partition, at most {inference.max_active_partitions} at once, {inference.batch_size} rows
per batch) → **publish_predictions** (manifest, asset `{predictions_asset(config).name}`)
→ **check_drift** (Evidently, {config.drift.sample_size} sampled rows against the
champion's training sample) → **emit_drift_event** on `{drift_asset(config).name}` when
at least {config.drift.drifted_share_threshold:.0%} of the features drifted.

Predictions: `$CT_DATA_ROOT/{config.name}/predictions/dt=<date>/_manifest.json` points at
the date's current set, `set=<run>/part-*.parquet`: read the manifest and follow its `uri`.
A re-run writes a new set and switches the manifest in one step, so readers see the old set or
the new one, never a mix; a failed re-run leaves the published set untouched.
"""


def build_performance_monitoring(config: PipelineConfig) -> DAG:
    """Realized performance from arriving labels; decay starts a retrain (pipelines with labels)."""
    monitoring = config.monitoring
    schedule: Any = monitoring.schedule if monitoring.schedule else [labels_asset(config)]
    with DAG(
        dag_id=f"{config.name}_performance_monitoring",
        description=f"Realized performance of {config.model_name} from arriving labels",
        schedule=schedule,
        **one_run_at_a_time(config),
        tags=[TAG, config.name, "monitoring"],
        doc_md=_monitoring_doc(config),
    ) as dag:
        name = config.name
        measured = MeasurePerformance(task_id="measure_performance", pipeline=name)
        decay = CheckDecay(task_id="check_decay", pipeline=name, measured=measured.output)
        EmitPerformanceEvent(
            task_id="emit_performance_event",
            pipeline=name,
            decay=decay.output,
            outlets=[performance_asset(config)],
        )
        JudgeLiveEvidence(task_id="judge_live_evidence", pipeline=name, measured=measured.output)
    return dag


def _monitoring_doc(config: PipelineConfig) -> str:
    monitoring, gates = config.monitoring, config.gates
    labels = config.labels
    delay = labels.delay_days if labels else 0
    live = (
        f"on: promoted after at least {gates.live_evidence.min_days} complete days"
        if gates.live_evidence.enabled
        else "off (`gates.live_evidence`)"
    )
    return f"""
### {config.name}: performance monitoring

**measure_performance** reads the labels known at the end of the run's data interval (outcomes
arrive up to {delay:g} days after the prediction) for the predictions of the last
{monitoring.lookback_days} days, joins them with the published predictions by id and date,
and writes per prediction date and model version the realized `{gates.primary_metric}` with
its interval and the label coverage to `$CT_DATA_ROOT/{config.name}/monitoring/dt=<date>/`.
→ **check_decay** compares the champion's realized `{gates.primary_metric}` over the trailing
{monitoring.window_days} days with its holdout value at promotion: decay when the upper bound
of the realized interval is below expected - {monitoring.tolerance:g}, with at least
{monitoring.min_labelled_rows} labelled rows → **emit_performance_event** on
`{performance_asset(config).name}`, which starts `{config.name}_drift_retraining`
(`ct.trigger=performance`).

**judge_live_evidence**: a challenger rejected for want of holdout evidence, still scored in
shadow, is promoted once an always-valid confidence sequence of its daily realized gain clears
`min_improvement` ({gates.min_improvement:g}). Live evidence is {live}.
"""


def rollback_params() -> dict[str, Param]:
    return {
        "to_version": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            title="Version to restore",
            description="Empty: the version that the current champion replaced.",
        ),
        "reason": Param(
            type="string",
            minLength=1,
            title="Reason",
            description="Why the champion is rolled back; recorded on both versions.",
        ),
    }


def build_rollback(config: PipelineConfig) -> DAG:
    with DAG(
        dag_id=f"{config.name}_rollback",
        description=f"Moves the {config.model_name} champion back to an earlier champion",
        schedule=None,
        **one_run_at_a_time(config),
        params=rollback_params(),
        tags=[TAG, config.name, "rollback"],
        doc_md=f"""
### {config.name}: rollback

Trigger by hand with a `reason`. Moves `champion` of `{config.model_name}` to `to_version`
(default: the version the current champion replaced), only if that version served as
champion before. The record is written as `ct.rollback.*` tags on both versions.
""",
    ) as dag:
        RollbackChampion(task_id="rollback", pipeline=config.name)
    return dag


def build_dags(config: PipelineConfig) -> dict[str, DAG]:
    """Every DAG of one pipeline, keyed by dag_id."""
    dags = [
        build_weekly_retraining(config),
        build_drift_retraining(config),
        build_batch_inference(config),
        build_rollback(config),
    ]
    if config.labels is not None:
        dags.append(build_performance_monitoring(config))
    return {dag.dag_id: dag for dag in dags}


class PipelineConfigWarning(UserWarning):
    """A pipeline YAML is invalid; its DAGs are replaced by one that reports why."""


def build_all_dags(directory: str | Path | None = None) -> dict[str, DAG]:
    """The DAGs of every pipeline YAML; a broken YAML costs only its own pipeline.

    For a file that does not load, a `<name>_invalid_config` DAG takes the place of the
    pipeline's DAGs: its description and docs carry the error (file and key), and its one
    task fails with it when triggered. A warning with the same text goes to the DAG
    processor's log (Airflow records it as a DAG import warning).
    """
    dags: dict[str, DAG] = {}
    for path in pipeline_files(directory):
        try:
            config = load_pipeline(path)
        except ConfigError as exc:
            warnings.warn(str(exc), PipelineConfigWarning, stacklevel=2)
            dag = build_invalid_config(path, str(exc))
            dags[dag.dag_id] = dag
            continue
        dags.update(build_dags(config))
    return dags


def build_invalid_config(path: Path, error: str) -> DAG:
    """Stands in for the DAGs of a pipeline whose YAML does not load, and says why."""
    stem = re.sub(r"[^A-Za-z0-9_]", "_", path.stem)
    first_line = error.splitlines()[0]
    with DAG(
        dag_id=f"{stem}_invalid_config",
        description=f"INVALID pipeline config: {first_line}"[:200],
        schedule=None,
        start_date=START_DATE,
        catchup=False,
        tags=[TAG, stem, "invalid-config"],
        doc_md=f"### {path.name} does not load\n\nFix the file; its DAGs come back at the next "
        f"parse.\n\n```\n{error}\n```\n",
    ) as dag:
        ReportConfigError(task_id="report_config_error", pipeline=str(path))
    return dag
