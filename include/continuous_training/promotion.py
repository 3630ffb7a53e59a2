"""The evaluate and promote steps of a retrain, as plain functions over MLflow.

`metrics`, `bootstrap` and `gate` hold the statistics and the decision rule; this module
loads both models, runs them on the one holdout the candidate was trained beside, writes
the evidence (decision record, model card, plots) to MLflow and turns the gate into a
recorded decision.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from continuous_training import model_card, model_digest, registry, storage
from continuous_training.config import ConfigError, PipelineConfig
from continuous_training.errors import BadInputError
from continuous_training.training import RunInfo, predict_scores

if TYPE_CHECKING:
    import pandas as pd

    from continuous_training.approval import Answer

log = logging.getLogger(__name__)

LATENCY_SAMPLE_ROWS = 5_000
# A candidate whose champion moved under it is judged again against the new one, this many
# times at most (each time another run promoted in between).
MAX_REEVALUATIONS = 3
RECORD_PATH = "evaluation/decision_record.json"
CARD_PATH = "evaluation/model_card.md"


class EvaluationInputError(BadInputError):
    """The holdout handed to evaluation is not the one the candidate was trained beside."""


@dataclass(frozen=True)
class RunOptions:
    """Trigger-form params of a retraining run, checked before any work starts."""

    dry_run: bool = False
    force_promote: bool = False
    reason: str = ""

    def __post_init__(self) -> None:
        if self.force_promote and not self.reason.strip():
            raise ConfigError(
                "params.force_promote is true but params.reason is empty: "
                "say why the gate is being overridden"
            )
        if self.force_promote and self.dry_run:
            raise ConfigError("params.force_promote and params.dry_run cannot both be true")


def _load_holdout(candidate: dict[str, Any]) -> pd.DataFrame:
    holdout = candidate["holdout"]
    storage.require_in_data_root(holdout["uri"], "holdout")
    actual = storage.sha256_of(holdout["uri"])
    if actual != holdout["sha256"]:
        raise EvaluationInputError(
            f"holdout {holdout['uri']} changed since training: "
            f"sha256 {actual} != {holdout['sha256']}"
        )
    return storage.read_parquet(holdout["uri"])


def _baseline_version(client: Any, pipeline: PipelineConfig, candidate_version: str) -> str | None:
    """The champion to beat; after a promotion re-run, the one the candidate replaced."""
    champion = registry.alias_version(client, pipeline.model_name, registry.CHAMPION)
    if champion != candidate_version:
        return champion
    replaced = registry.version_tags(client, pipeline.model_name, candidate_version).get(
        registry.TAG_REPLACED
    )
    return None if replaced in (None, "none") else replaced


def _score(
    client: Any, model_name: str, version: str, X: pd.DataFrame, task: str
) -> tuple[Any, Any]:
    model = model_digest.load_verified(client, model_name, version)
    return model, predict_scores(model, X, task)


@dataclass(frozen=True)
class _Scored:
    """Both models' holdout scores and the gate's view of them."""

    y: Any
    challenger: Any
    champion: Any | None
    champion_version: str | None
    context: Any  # gate.GateContext
    X: Any = None  # the holdout's feature columns
    challenger_model: Any = None
    champion_model: Any = None


def _score_both(
    client: Any, pipeline: PipelineConfig, version: str, holdout: pd.DataFrame
) -> _Scored:
    from continuous_training.gate import build_gate_context, measure_latency_ms_per_1k

    X, y = holdout[pipeline.features.all], holdout[pipeline.target].to_numpy()
    model, challenger = _score(client, pipeline.model_name, version, X, pipeline.task)
    latency = measure_latency_ms_per_1k(
        lambda frame: predict_scores(model, frame, pipeline.task), X.head(LATENCY_SAMPLE_ROWS)
    )
    champion_version = _baseline_version(client, pipeline, version)
    champion = champion_model = None
    if champion_version is not None:
        champion_model, champion = _score(
            client, pipeline.model_name, champion_version, X, pipeline.task
        )
    slices = pipeline.gates.slices
    started = time.perf_counter()
    context = build_gate_context(
        pipeline.gates,
        pipeline.task,
        y,
        challenger,
        champion,
        challenger_latency_ms_per_1k=latency,
        challenger_data_end=_data_end(client, pipeline, version),
        champion_data_end=_data_end(client, pipeline, champion_version),
        slice_frame=None
        if slices is None
        else holdout[list(dict.fromkeys([*slices.columns, *slices.sensitive_columns]))],
    )
    log.info("metrics, bootstrap and slices in %.1fs", time.perf_counter() - started)
    return _Scored(y, challenger, champion, champion_version, context, X, model, champion_model)


def _explain(pipeline: PipelineConfig, scored: _Scored) -> Any:
    """Permutation importance of both models, or why it could not be computed; None: off."""
    from continuous_training import explanations
    from continuous_training.metrics import EvaluationError

    config = pipeline.gates.explanations
    if not config.enabled:
        return None
    started = time.perf_counter()
    try:
        found = explanations.explain(
            config,
            metric=pipeline.gates.primary_metric,
            task=pipeline.task,
            X=scored.X,
            y=scored.y,
            challenger_model=scored.challenger_model,
            champion_model=scored.champion_model,
        )
    except EvaluationError as exc:
        # evidence for the card only: a sample it cannot be computed on never decides
        log.warning("permutation importance not computed: %s", exc)
        return str(exc)
    log.info(
        "permutation importance on %d rows x %d repeats in %.1fs",
        found.rows,
        found.n_repeats,
        time.perf_counter() - started,
    )
    return found


def _data_end(client: Any, pipeline: PipelineConfig, version: str | None) -> str | None:
    """Where a version's training data ends (`ct.window_end`), if it recorded it."""
    if version is None:
        return None
    return registry.version_tags(client, pipeline.model_name, version).get(registry.TAG_WINDOW_END)


def evaluate_candidate(
    pipeline: PipelineConfig, candidate: dict[str, Any], tracking_uri: str
) -> dict[str, Any]:
    """Score challenger and champion on the same holdout, apply the gate, log the evidence."""
    from continuous_training import live_evidence
    from continuous_training.bootstrap import power_statement
    from continuous_training.gate import evaluate_gate
    from continuous_training.metrics import EvaluationError
    from continuous_training.model_card import render_model_card

    client = registry.make_client(tracking_uri)
    holdout = _load_holdout(candidate)
    version = candidate["model_version"]
    try:
        scored = _score_both(client, pipeline, version, holdout)
    except EvaluationError as exc:
        raise EvaluationError(
            f"holdout {candidate['holdout']['uri']} (target {pipeline.target!r}, features "
            f"{pipeline.features.all}): {exc}"
        ) from exc
    ctx = scored.context
    gate = evaluate_gate(ctx)
    explained = _explain(pipeline, scored)
    for check in gate.checks:
        if check.detail.startswith("WARNING"):
            log.warning("%s: %s", check.name, check.detail)
    # say out loud what this holdout could have detected, so a rejection of a small real
    # gain reads as "too little data", not as "no better"
    power = power_statement(
        ctx.bootstrap, pipeline.gates, has_champion=scored.champion_version is not None
    )
    (log.warning if power.warning else log.info)("%s", power.text)
    holdout_sha = candidate["holdout"]["sha256"]  # verified against the file by _load_holdout
    record = {
        "pipeline": pipeline.name,
        "model_name": pipeline.model_name,
        "holdout": {
            **candidate["holdout"],
            "rows": len(holdout),
            "class_counts": ctx.holdout_class_counts,
        },
        "train": candidate["train"],
        "challenger": {
            "version": version,
            "holdout_sha256": holdout_sha,
            "metrics": ctx.challenger_metrics,
            "latency_ms_per_1k": ctx.challenger_latency_ms_per_1k,
        },
        "champion": None
        if scored.champion_version is None
        else {
            "version": scored.champion_version,
            "holdout_sha256": holdout_sha,
            "metrics": ctx.champion_metrics,
        },
        "bootstrap": None if ctx.bootstrap is None else ctx.bootstrap.to_dict(),
        "minimum_detectable_improvement": power.minimum_detectable_improvement,
        "power": power.to_dict(),
        "gate": gate.to_dict(),
        "slices": None if ctx.slices is None else ctx.slices.to_dict(),
        "explanations": explained
        if explained is None or isinstance(explained, str)
        else explained.to_dict(),
        "final": None,
    }
    card = render_model_card(
        pipeline=pipeline,
        model_name=pipeline.model_name,
        challenger_version=version,
        champion_version=scored.champion_version,
        data=_card_data(candidate["train"], record["holdout"]),
        challenger_metrics=ctx.challenger_metrics,
        champion_metrics=ctx.champion_metrics,
        decision=gate,
        bootstrap=ctx.bootstrap,
        slices=ctx.slices,
        explanations=explained,
        search=candidate.get("search"),
    )
    _log_evidence(pipeline, candidate, record, card, scored, explained)
    registry.set_version_tags(
        client,
        pipeline.model_name,
        version,
        {registry.TAG_HOLDOUT_SHA: candidate["holdout"]["sha256"]},
    )
    primary = pipeline.gates.primary_metric
    return {
        **{k: candidate[k] for k in ("model_name", "model_version", "mlflow_run_id")},
        **{k: candidate[k] for k in ("experiment_id", "mlflow_run_url", "tracking_uri")},
        "train_sha256": candidate["train"]["sha256"],
        "holdout_sha256": candidate["holdout"]["sha256"],
        "champion_version": scored.champion_version,
        "gate_passed": gate.passed,
        "gate_reason": gate.reason,
        "primary_metric": primary,
        "challenger_metric": ctx.challenger_metrics[primary],
        "champion_metric": (ctx.champion_metrics or {}).get(primary),
        # Live evidence promotes without asking anyone: never where a person must approve.
        "wants_live_evidence": pipeline.gates.live_evidence.enabled
        and not pipeline.approval.required
        and live_evidence.wants_evidence(record["gate"], record["bootstrap"], pipeline.gates),
        "minimum_detectable_improvement": power.minimum_detectable_improvement,
    }


def _card_data(train: dict[str, Any], holdout: dict[str, Any]) -> dict[str, Any]:
    """The model card's data table: window, rows and sha256 of each part."""
    return {
        f"{name}_{key}": part.get(key)
        for name, part in (("train", train), ("holdout", holdout))
        for key in ("window", "rows", "sha256")
    }


def _log_evidence(
    pipeline: PipelineConfig,
    candidate: dict[str, Any],
    record: dict[str, Any],
    card: str,
    scored: _Scored,
    explained: Any = None,
) -> None:
    import mlflow

    from continuous_training import explanations
    from continuous_training.plots import plot_comparison

    with mlflow.start_run(run_id=candidate["mlflow_run_id"]), tempfile.TemporaryDirectory() as tmp:
        mlflow.log_dict(record, RECORD_PATH)
        mlflow.log_text(card, CARD_PATH)
        plot = Path(tmp) / "comparison.png"
        plot_comparison(pipeline.task, scored.y, scored.challenger, scored.champion, plot)
        mlflow.log_artifact(str(plot), artifact_path="evaluation")
        if isinstance(explained, explanations.Explanations):
            importance = Path(tmp) / Path(explanations.PLOT_PATH).name
            explanations.plot_importance(explained, importance)
            mlflow.log_artifact(str(importance), artifact_path="evaluation")
        metrics = {f"eval_challenger_{k}": v for k, v in record["challenger"]["metrics"].items()}
        if record["champion"]:
            metrics |= {f"eval_champion_{k}": v for k, v in record["champion"]["metrics"].items()}
        mlflow.log_metrics(metrics)


def decide(
    evaluated: dict[str, Any],
    options: RunOptions,
    run: RunInfo,
    approval: Answer | None = None,
    timeout_hours: float = 0.0,
) -> registry.Decision:
    """Turn the gate, the run's params and a person's answer into the decision to record.

    `approval` is the answer of the `approve` task when the pipeline requires one (None when
    nobody had to be asked); only an approval lets a winning or forced candidate through.
    """
    decision = _decide_without_approval(evaluated, options, run)
    if approval is None or not decision.promote:
        return decision
    if not approval.approved:
        return dataclasses.replace(
            decision,
            decision=registry.REJECTED,
            reason=f"{approval.rejection_reason(timeout_hours)} (gate: {evaluated['gate_reason']})",
            promote=False,
            replaced_version=None,
            extra_tags=approval.tags(),
        )
    return dataclasses.replace(
        decision,
        reason=f"{decision.reason}; approved by {approval.by}"
        + (f": {approval.comment}" if approval.comment else ""),
        extra_tags=approval.tags(),
    )


def _decide_without_approval(
    evaluated: dict[str, Any], options: RunOptions, run: RunInfo
) -> registry.Decision:
    gate_reason = evaluated["gate_reason"]
    if evaluated.get("superseded"):
        stale = evaluated["superseded"][-1]["champion_version"]
        gate_reason = (
            f"re-evaluated against version {evaluated['champion_version']}, which replaced "
            f"version {stale} while this run was deciding: {gate_reason}"
        )
    common = {"trigger": run.trigger, "airflow_run_id": run.airflow_run_id}
    if options.force_promote:
        return registry.Decision(
            decision=registry.PROMOTED,
            reason=f"forced by a manual trigger: {options.reason.strip()} (gate: {gate_reason})",
            promote=True,
            replaced_version=evaluated["champion_version"],
            **{**common, "trigger": "manual"},
        )
    if options.dry_run:
        return registry.Decision(
            decision=registry.REJECTED,
            reason=f"dry run, never promoted (gate: {gate_reason})",
            promote=False,
            dry_run=True,
            **common,
        )
    if evaluated["gate_passed"]:
        return registry.Decision(
            decision=registry.PROMOTED,
            reason=gate_reason,
            promote=True,
            replaced_version=evaluated["champion_version"],
            **common,
        )
    if evaluated.get("wants_live_evidence"):
        gate_reason += (
            "; kept in shadow as the challenger: live outcomes will judge it (gates.live_evidence)"
        )
    return registry.Decision(
        decision=registry.REJECTED, reason=gate_reason, promote=False, **common
    )


def promote_candidate(
    pipeline: PipelineConfig,
    evaluated: dict[str, Any],
    options: RunOptions,
    run: RunInfo,
    tracking_uri: str,
    approval: Answer | None = None,
) -> dict[str, Any]:
    """Record the decision on the candidate and, if it won, make it the champion.

    If another run promoted since this candidate was evaluated, the candidate is evaluated
    again against the new champion (on its own holdout) and decided again; the record keeps
    the superseded evaluations. A forced promotion is refused instead, and an approved one is
    recorded as rejected: the person who forced or approved it looked at the old champion.
    """
    import mlflow

    client = registry.make_client(tracking_uri)
    decision, evaluated = _decide_and_apply(
        client, pipeline, evaluated, options, run, tracking_uri, approval
    )
    if not decision.promote and not decision.dry_run and evaluated.get("wants_live_evidence"):
        from continuous_training.live_evidence import PENDING, TAG_LIVE

        registry.set_version_tags(
            client, pipeline.model_name, evaluated["model_version"], {TAG_LIVE: PENDING}
        )
    final = {
        "decision": decision.decision,
        "reason": decision.reason,
        "trigger": decision.trigger,
        "airflow_run_id": decision.airflow_run_id,
        "promoted": decision.promote,
        "replaced_version": decision.replaced_version if decision.promote else None,
        "dry_run": decision.dry_run,
        "superseded_evaluations": evaluated.get("superseded", []),
        "approval": None if approval is None else approval.to_dict(),
    }
    run_id = evaluated["mlflow_run_id"]
    record = mlflow.artifacts.load_dict(f"runs:/{run_id}/{RECORD_PATH}")
    card = mlflow.artifacts.load_text(f"runs:/{run_id}/{CARD_PATH}")
    with mlflow.start_run(run_id=run_id):
        mlflow.log_dict({**record, "final": final}, RECORD_PATH)
        mlflow.log_text(model_card.with_final_section(card, final), CARD_PATH)
        mlflow.set_tags({registry.TAG_DECISION: decision.decision})
    champion = registry.alias_version(client, pipeline.model_name, registry.CHAMPION)
    return {**final, "model_version": evaluated["model_version"], "champion_version": champion}


def _decide_and_apply(
    client: Any,
    pipeline: PipelineConfig,
    evaluated: dict[str, Any],
    options: RunOptions,
    run: RunInfo,
    tracking_uri: str,
    approval: Answer | None = None,
) -> tuple[registry.Decision, dict[str, Any]]:
    superseded: list[dict[str, Any]] = []
    timeout = pipeline.approval.timeout_hours
    while True:
        decision = decide(evaluated, options, run, approval, timeout)
        try:
            registry.apply_decision(
                client,
                pipeline.model_name,
                evaluated["model_version"],
                decision,
                expected_champion=evaluated["champion_version"],
            )
            return decision, evaluated
        except registry.ChampionChangedError as moved:
            if approval is not None and approval.approved and not options.force_promote:
                return _approved_too_late(client, pipeline, evaluated, decision, moved), evaluated
            if options.force_promote or len(superseded) >= MAX_REEVALUATIONS:
                raise
            log.warning("%s; evaluating again against version %s", moved, moved.now_champion)
            superseded.append(_superseded(evaluated, str(moved)))
            candidate = storage.read_json(
                storage.snapshot_uri(pipeline.name, run.airflow_run_id, "candidate.json")
            )
            evaluated = {
                **evaluate_candidate(pipeline, candidate, tracking_uri),
                "superseded": superseded,
            }


def _approved_too_late(
    client: Any,
    pipeline: PipelineConfig,
    evaluated: dict[str, Any],
    decision: registry.Decision,
    moved: registry.ChampionChangedError,
) -> registry.Decision:
    """The champion moved while the person decided: their approval was of another change."""
    rejected = dataclasses.replace(
        decision,
        decision=registry.REJECTED,
        reason=f"approved against version {evaluated['champion_version']}, but {moved}; "
        "trigger the retraining again to ask for a new approval",
        promote=False,
        replaced_version=None,
    )
    registry.apply_decision(
        client, pipeline.model_name, evaluated["model_version"], rejected, expected_champion=None
    )
    return rejected


def _superseded(evaluated: dict[str, Any], why: str) -> dict[str, Any]:
    """What the record keeps of an evaluation that a concurrent promotion made stale."""
    keys = ("champion_version", "gate_passed", "gate_reason", "champion_metric")
    return {**{k: evaluated.get(k) for k in keys}, "superseded_because": why}
