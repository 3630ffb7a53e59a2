"""Challengers judged on live outcomes (`gates.live_evidence`).

A candidate that the holdout could not decide on (its interval of the improvement straddled
`gates.min_improvement`, every other check passed) is rejected but stays the `challenger`,
and batch inference keeps scoring it in shadow. Each prediction date whose labels are all
in (`labels.delay_days` after it) and on which this champion served and this challenger
shadowed gives one observation: the paired difference of the primary metric on that date's
labelled rows (positive = the challenger is better). The observations are judged with an
always-valid confidence sequence (`continuous_training.sequential`), so looking every day
does not inflate false promotions. When it clears, the challenger is promoted through the
same champion lock and compare-and-set as any promotion, and the evidence is recorded in
its decision tags, its decision record and its model card.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from continuous_training import registry, storage
from continuous_training.config import PipelineConfig

log = logging.getLogger(__name__)

TAG_LIVE = "ct.live_evidence"  # "pending" on a version rejected for want of evidence
PENDING = "pending"
TRIGGER = "live_evidence"
HEADING = "## Live evidence"


def wants_evidence(gate: dict[str, Any], bootstrap: dict[str, Any] | None, gates: Any) -> bool:
    """Rejected only because the holdout's interval straddled `min_improvement`."""
    failed = [c for c in gate["checks"] if not c["passed"]]
    if not failed or any(c["name"] != "improvement" for c in failed) or bootstrap is None:
        return False
    return float(bootstrap["high"]) > gates.min_improvement


def date_bounds(folder_name: str) -> tuple[datetime, datetime]:
    """`dt=2026-03-14` (one day) or `dt=2026-03-08_2026-03-15` as a UTC [start, end)."""
    label = folder_name.rstrip("/").rsplit("/", 1)[-1].removeprefix("dt=")
    first, _, last = label.partition("_")
    start = datetime.fromisoformat(first).replace(tzinfo=UTC)
    end = datetime.fromisoformat(last).replace(tzinfo=UTC) if last else start + timedelta(days=1)
    return start, end


def observations(
    pipeline: PipelineConfig, as_of: datetime, champion: str, challenger: str
) -> list[dict[str, Any]]:
    """One paired difference per complete prediction date of this champion and challenger.

    A date counts once all its labels are in by `as_of` AND its joined rows were measured
    with them: the `as_of` its metrics.json records is at least the date's end plus
    `labels.delay_days`. A date measured earlier (it left the monitoring lookback before its
    labels were complete, or monitoring did not run since) holds only the labels that came
    first, which are not a fair sample of the date's rows.
    """
    from continuous_training.metrics import metric_direction

    assert pipeline.labels is not None
    metric = pipeline.gates.primary_metric
    direction = metric_direction(metric)
    settle = timedelta(days=pipeline.labels.delay_days)
    score = "probability" if pipeline.task == "classification" else "prediction"
    found = []
    for folder in _date_folders(pipeline):
        measured = _measured(folder)
        if measured is None:
            continue  # joined but never recorded: monitoring wrote metrics.json last
        start, end, measured_as_of = measured
        if end + settle > min(as_of, measured_as_of):
            continue  # labels may still arrive: the date would change after being judged
        uri = storage.join(folder, "joined.parquet")
        if not storage.exists(uri):
            continue
        pair = _PairKey(uri, storage.sha256_of(uri), champion, challenger, score, metric)
        rows, diff = _paired_difference(pair)
        if rows < pipeline.gates.live_evidence.min_rows_per_day or diff is None:
            continue
        found.append({"date": start.date().isoformat(), "rows": rows, "diff": direction * diff})
    return sorted(found, key=lambda o: o["date"])


@dataclass(frozen=True)
class _PairKey:
    uri: str
    sha256: str  # a complete date's joined rows never change: its difference is computed once
    champion: str
    challenger: str
    score: str
    metric: str


@functools.lru_cache(maxsize=4096)
def _paired_difference(pair: _PairKey) -> tuple[int, float | None]:
    """(rows, challenger minus champion) on the date's rows of the pair; None: not computable."""
    from continuous_training.metrics import EvaluationError, metric_value

    rows = _pair_rows(pair.uri, pair.champion, pair.challenger, pair.score)
    if rows is None or rows.empty:
        return 0, None
    try:
        champ = metric_value(pair.metric, rows["label"], rows[pair.score])
        chall = metric_value(pair.metric, rows["label"], rows[f"challenger_{pair.score}"])
    except EvaluationError as exc:
        log.info("%s: no observation (%s)", pair.uri, exc)
        return len(rows), None
    return len(rows), chall - champ


def _measured(folder: str) -> tuple[datetime, datetime, datetime] | None:
    """(window start, window end, as_of) of a date as monitoring last measured it."""
    from continuous_training.monitoring import METRICS

    uri = storage.join(folder, METRICS)
    if not storage.exists(uri):
        return None
    record = storage.read_json(uri)
    start, end = date_bounds(folder)
    if record.get("window_start") and record.get("window_end"):
        start = _utc(record["window_start"])
        end = _utc(record["window_end"])
    return start, end, _utc(record["as_of"])


def _utc(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _date_folders(pipeline: PipelineConfig) -> list[str]:
    from continuous_training.monitoring import monitoring_dir

    root = monitoring_dir(pipeline.name)
    if not storage.exists(root):
        return []
    return sorted(
        e for e in storage.list_entries(root) if e.rstrip("/").rsplit("/", 1)[-1][:3] == "dt="
    )


def _pair_rows(uri: str, champion: str, challenger: str, score: str) -> Any:
    """The date's labelled rows served by `champion` and shadowed by `challenger`.

    Only the five columns the metric needs are read (a date may hold many id columns).
    """
    from continuous_training import monitoring

    if not storage.exists(uri):
        return None
    wanted = ["label", "model_version", score, "challenger_version", f"challenger_{score}"]
    with monitoring.storage_open(uri) as fh:
        joined = monitoring._parquet(fh, uri)
        if any(column not in joined.schema_arrow.names for column in wanted):
            return None  # no challenger shadowed on that date
        frame = joined.read(columns=wanted).to_pandas()
    pair = (frame["model_version"].astype(str) == champion) & (
        frame["challenger_version"].astype(str) == challenger
    )
    return frame[pair.to_numpy()]


def judge_and_promote(
    pipeline: PipelineConfig, as_of: datetime, tracking_uri: str, airflow_run_id: str
) -> dict[str, Any]:
    """Judge the shadow challenger on its live evidence; promote it when the evidence clears."""
    client = registry.make_client(tracking_uri)
    name = pipeline.model_name
    champion = registry.alias_version(client, name, registry.CHAMPION)
    challenger = registry.alias_version(client, name, registry.CHALLENGER)
    if champion is not None and champion == challenger:
        unfinished = _unfinished_promotion(client, pipeline, champion, as_of, airflow_run_id)
        if unfinished is not None:
            return unfinished
    if champion is None or challenger is None or challenger == champion:
        return {"skipped": f"no challenger of {name} is scored in shadow of a champion"}
    if registry.version_tags(client, name, challenger).get(TAG_LIVE) != PENDING:
        return {
            "skipped": f"challenger version {challenger} was not rejected for want of evidence "
            "(only such a challenger is judged on live outcomes)"
        }
    evidence, record = _judge(pipeline, as_of, champion, challenger)
    summary = {"champion_version": champion, "challenger_version": challenger, "evidence": record}
    if not evidence.cleared:
        reason = f"challenger version {challenger} stays in shadow: {evidence.reason}"
        return {**summary, "promoted": False, "reason": reason}
    if pipeline.approval.required:
        # Only the retraining chain asks a person (its approve task); this run asks nobody,
        # so it promotes nothing and says what the evidence showed.
        reason = (
            f"challenger version {challenger} stays in shadow although its live evidence "
            f"cleared ({evidence.reason}): approval.required, and only a retraining run asks "
            "for approval"
        )
        return {**summary, "promoted": False, "reason": reason}
    decision = registry.Decision(
        decision=registry.PROMOTED,
        reason=f"live evidence: {evidence.reason}",
        trigger=TRIGGER,
        airflow_run_id=airflow_run_id,
        promote=True,
        replaced_version=champion,
    )
    try:
        registry.apply_decision(client, name, challenger, decision, expected_champion=champion)
    except registry.ChampionChangedError as moved:
        # The evidence was about the pair that served; the next run judges the new pair.
        return {**summary, "promoted": False, "reason": f"not promoted: {moved}"}
    _finish(client, name, challenger, record, decision)
    reason = f"promoted challenger version {challenger} over {champion}: {decision.reason}"
    return {**summary, "promoted": True, "reason": reason}


def _judge(
    pipeline: PipelineConfig, as_of: datetime, champion: str, challenger: str
) -> tuple[Any, dict[str, Any]]:
    from continuous_training import sequential

    found = observations(pipeline, as_of, champion, challenger)
    gates = pipeline.gates
    evidence = sequential.judge(
        [o["diff"] for o in found],
        min_improvement=gates.min_improvement,
        confidence=gates.bootstrap.confidence,
        min_days=gates.live_evidence.min_days,
    )
    record = {
        **evidence.to_dict(),
        "metric": gates.primary_metric,
        "champion_version": champion,
        "challenger_version": challenger,
        "as_of": as_of.isoformat(),
        "observations": found,
    }
    return evidence, record


def _unfinished_promotion(
    client: Any, pipeline: PipelineConfig, version: str, as_of: datetime, airflow_run_id: str
) -> dict[str, Any] | None:
    """A promotion on live evidence whose alias switched but whose record was not written.

    The task failed (or its worker died) between the switch and the record; its retry, or the
    next run, writes the record and marks the version promoted.
    """
    name = pipeline.model_name
    tags = registry.version_tags(client, name, version)
    if not (
        tags.get(TAG_LIVE) == PENDING
        and tags.get(registry.TAG_TRIGGER) == TRIGGER
        and tags.get(registry.TAG_DECISION) == registry.PROMOTED
    ):
        return None
    replaced = registry.replaced_by(tags)
    _, record = _judge(pipeline, as_of, replaced or "", version)
    decision = registry.Decision(
        decision=registry.PROMOTED,
        reason=tags.get(registry.TAG_REASON, ""),
        trigger=TRIGGER,
        airflow_run_id=tags.get(registry.TAG_RUN_ID, airflow_run_id),
        promote=True,
        replaced_version=replaced,
    )
    _finish(client, name, version, record, decision)
    summary = {"champion_version": replaced, "challenger_version": version, "evidence": record}
    reason = (
        f"promoted challenger version {version} over {replaced}: {decision.reason} "
        "(its record is written now: the run that switched the alias stopped before)"
    )
    return {**summary, "promoted": True, "reason": reason}


def _finish(client: Any, name: str, version: str, evidence: dict[str, Any], decision: Any) -> None:
    """The record and card first; `ct.live_evidence=promoted` last, as the mark of done."""
    _write_record(client, name, version, evidence, decision)
    registry.set_version_tags(client, name, version, {TAG_LIVE: "promoted"})


def _write_record(
    client: Any, name: str, version: str, evidence: dict[str, Any], decision: Any
) -> None:
    """The decision record and model card of the version gain the live evidence and outcome."""
    import mlflow

    from continuous_training.model_card import FINAL_HEADING, with_final_section
    from continuous_training.promotion import CARD_PATH, RECORD_PATH

    run_id = client.get_model_version(name, version).run_id
    record = mlflow.artifacts.load_dict(f"runs:/{run_id}/{RECORD_PATH}")
    card = mlflow.artifacts.load_text(f"runs:/{run_id}/{CARD_PATH}")
    earlier = record.get("final")
    if earlier and earlier.get("trigger") == TRIGGER:  # a retry: keep the holdout's decision
        earlier = earlier.get("earlier")
    final = {
        "decision": decision.decision,
        "reason": decision.reason,
        "trigger": decision.trigger,
        "airflow_run_id": decision.airflow_run_id,
        "promoted": True,
        "replaced_version": decision.replaced_version,
        "dry_run": False,
        "earlier": earlier,
    }
    client.log_dict(run_id, {**record, "live_evidence": evidence, "final": final}, RECORD_PATH)
    # The evaluation as written, then the evidence, then the final decision: the holdout's
    # own final section is replaced (what it said is kept in the evidence section).
    evaluated = card.split(FINAL_HEADING)[0]
    card = with_final_section(_with_evidence(evaluated, evidence, earlier), final)
    client.log_text(run_id, card, CARD_PATH)
    client.set_tag(run_id, registry.TAG_DECISION, decision.decision)


def _with_evidence(card: str, evidence: dict[str, Any], earlier: dict[str, Any] | None) -> str:
    """The card with its live-evidence section (replaced, never repeated, on a retry)."""
    body = card.split(HEADING)[0].rstrip()
    rows = "\n".join(
        f"| {o['date']} | {o['rows']} | {o['diff']:+.4f} |" for o in evidence["observations"]
    )
    holdout = (
        f"At its holdout this version was **{earlier['decision']}**: {earlier['reason']}\n\n"
        if earlier
        else ""
    )
    return (
        f"{body}\n\n{HEADING}\n\n{holdout}"
        f"Judged on {evidence['days']} complete prediction dates as of {evidence['as_of']}: "
        f"mean daily {evidence['metric']} gain {_signed(evidence['mean'])}, "
        f"{evidence['confidence']:.0%} confidence sequence [{_signed(evidence['low'])}, "
        f"{_signed(evidence['high'])}] against min_improvement {evidence['min_improvement']:g}."
        "\n\n"
        f"| prediction date | labelled rows | challenger - champion |\n|---|---|---|\n{rows}\n"
    )


def _signed(value: float | None) -> str:
    """A number of the record as the card shows it; None (JSON's unbounded end) as n/a."""
    return "n/a" if value is None else f"{value:+.4f}"
