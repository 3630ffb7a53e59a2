"""Every step against real parts, without a DAG: a real MLflow server, real files.

Two retrains (the second a dry run, which leaves its candidate as a shadowing challenger),
then a batch inference and a monitoring run, each step called as its operator calls it.
Each output is checked against its contract in `continuous_training.contracts`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from continuous_training import contracts, inference, registry, storage
from continuous_training.config import PipelineConfig, find_pipeline
from continuous_training.contracts import RunContext
from continuous_training.errors import StepSkipped
from continuous_training.steps import inference as inference_steps
from continuous_training.steps import monitoring as monitoring_steps
from continuous_training.steps import retraining as retraining_steps
from continuous_training.steps import rollback as rollback_steps
from tests.contract_check import assert_conforms
from tests.integration.dag_runs import write_pipeline

pytestmark = pytest.mark.integration

NAME = "churn_steps"
FIRST = datetime(2026, 2, 1, tzinfo=UTC)
SECOND = FIRST + timedelta(days=7)


def run_context(uri: str, run_id: str, end: datetime, **params: Any) -> RunContext:
    return RunContext(
        dag_id=f"{NAME}_weekly_retraining",
        run_id=run_id,
        window_end=end,
        trigger="schedule",
        tracking_uri=uri,
        params=params,
    )


@pytest.fixture(scope="module")
def setup(
    mlflow_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[PipelineConfig, str]]:
    """The churn pipeline under its own name and a data root of its own."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CT_DATA_ROOT", str(tmp_path_factory.mktemp("steps-data")))
        write_pipeline(NAME)
        yield find_pipeline(NAME), mlflow_server


def retrain(config: PipelineConfig, ctx: RunContext) -> dict[str, Any]:
    """fetch -> validate -> train_candidate -> evaluate -> promote, then a pin; every output."""
    out: dict[str, Any] = {"snapshot": retraining_steps.fetch(config, ctx)}
    out["validated"] = retraining_steps.validate(config, ctx, out["snapshot"])
    out["candidate"] = retraining_steps.train_candidate(config, ctx, out["validated"])
    out["evaluation"] = retraining_steps.evaluate(config, ctx, out["candidate"])
    out["promotion"] = retraining_steps.promote(config, ctx, out["evaluation"])
    out["pinned"] = inference_steps.pin_champion(config, ctx)
    return out


@pytest.fixture(scope="module")
def first(setup: tuple[PipelineConfig, str]) -> dict[str, Any]:
    config, uri = setup
    return retrain(config, run_context(uri, "scheduled__steps-1", FIRST))


@pytest.fixture(scope="module")
def second(setup: tuple[PipelineConfig, str], first: dict[str, Any]) -> dict[str, Any]:
    """A dry run: version 2 is rejected, stays `challenger`, and is scored in shadow."""
    config, uri = setup
    return retrain(config, run_context(uri, "manual__steps-2", SECOND, dry_run=True))


@pytest.fixture(scope="module")
def scored(setup: tuple[PipelineConfig, str], second: dict[str, Any]) -> dict[str, Any]:
    """A batch inference of the day before SECOND, step by step."""
    config, uri = setup
    ctx = run_context(uri, "scheduled__steps-batch", SECOND)
    pinned = inference_steps.pin_champion(config, ctx)
    partitions = inference_steps.list_partitions(config, ctx, pinned, 1024)
    parts = [inference_steps.score_partition(config, ctx, pinned, p) for p in partitions]
    published = inference_steps.publish_predictions(config, ctx, pinned, parts)
    drift = inference_steps.check_drift(config, ctx, pinned, published)
    return {
        "pinned": pinned,
        "partitions": partitions,
        "parts": parts,
        "published": published,
        "drift": drift,
    }


def test_pin_champion_refuses_a_model_without_a_champion(
    setup: tuple[PipelineConfig, str],
) -> None:
    config, uri = setup
    empty = config.model_copy(update={"name": "churn_steps_empty"})
    with pytest.raises(registry.RegistryRefusedError, match="has no champion yet: run "):
        inference_steps.pin_champion(empty, run_context(uri, "scheduled__empty", FIRST))


def test_retraining_steps_hand_each_other_their_contracts(first: dict[str, Any]) -> None:
    for key, contract in [
        ("snapshot", contracts.Snapshot),
        ("validated", contracts.ValidatedSnapshot),
        ("candidate", contracts.Candidate),
        ("evaluation", contracts.Evaluation),
        ("promotion", contracts.Promotion),
        ("pinned", contracts.PinnedChampion),
    ]:
        assert_conforms(first[key], contract)
    promotion = first["promotion"]
    assert (promotion["decision"], promotion["model_version"]) == ("promoted", "1")
    assert (promotion["champion_version"], promotion["trigger"]) == ("1", "schedule")
    assert first["validated"]["sha256"] == first["snapshot"]["sha256"]


def test_pin_champion_scores_no_shadow_when_the_challenger_is_the_champion(
    setup: tuple[PipelineConfig, str], first: dict[str, Any]
) -> None:
    config, uri = setup
    pinned = first["pinned"]
    assert (pinned["champion_version"], pinned["challenger_version"]) == ("1", None)
    client = registry.make_client(uri)
    run = client.get_run(pinned["mlflow_run_id"])
    assert run.data.tags["ct.champion_version"] == "1"
    assert run.data.tags[registry.TAG_KIND] == inference_steps.KIND_BATCH_INFERENCE
    assert run.info.run_name == f"{NAME}:batch:scheduled__steps-1"
    assert pinned["mlflow_run_url"] == registry.run_url(
        uri, run.info.experiment_id, run.info.run_id
    )
    assert (
        pinned["champion_sha256"]
        == registry.version_tags(client, config.model_name, "1")["ct.model_sha256"]
    )
    # pinned again (a retry): the same MLflow run, a fresh output set
    again = inference_steps.pin_champion(config, run_context(uri, "scheduled__steps-1", FIRST))
    assert again["mlflow_run_id"] == pinned["mlflow_run_id"]
    assert again["output_set"] != pinned["output_set"]


def test_pin_champion_shadows_with_a_challenger(second: dict[str, Any]) -> None:
    assert second["promotion"]["decision"] == "rejected"
    assert second["promotion"]["dry_run"] is True
    assert second["promotion"]["trigger"] == "schedule"
    pinned = second["pinned"]
    assert (pinned["champion_version"], pinned["challenger_version"]) == ("1", "2")


def test_batch_inference_steps_publish_and_log_to_mlflow(
    setup: tuple[PipelineConfig, str], scored: dict[str, Any]
) -> None:
    _, uri = setup
    for partition in scored["partitions"]:
        assert_conforms(partition, contracts.PartitionSpec)
    for part in scored["parts"]:
        assert_conforms(part, contracts.ScoredPart)
        assert part["shadow"] is not None and part["shadow"]["version"] == "2"
    published = scored["published"]
    assert_conforms(published, contracts.Published)
    assert published["rows"] == sum(p["rows"] for p in scored["parts"]) > 0
    assert published["model_version"] == "1"
    window = inference_steps.pinned_window(scored["pinned"])
    assert storage.read_json(inference.manifest_uri(NAME, window))["uri"] == published["uri"]

    client = registry.make_client(uri)
    run = client.get_run(scored["pinned"]["mlflow_run_id"])
    assert run.data.metrics["rows_scored"] == published["rows"]
    shadow = published["shadow"]
    assert shadow is not None and shadow["challenger_version"] == "2"
    assert run.data.metrics["shadow.disagreement_rate"] == pytest.approx(
        shadow["disagreement_rate"]
    )
    assert "shadow.mean_abs_score_diff" in run.data.metrics
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "shadow")}
    assert logged == {"shadow/distributions.json"}
    # Publishing leaves the batch run open for the drift check, which ends it.
    assert client.get_run(run.info.run_id).info.status == "FINISHED"


def test_check_drift_summarises_against_the_champions_reference(scored: dict[str, Any]) -> None:
    drift = scored["drift"]
    assert_conforms(drift, contracts.DriftSummary)
    assert drift["champion_version"] == "1"
    assert drift["episode"] == f"{NAME}/champion-v1"
    assert storage.exists(storage.join(scored["published"]["uri"], "_drift.json"))


def test_debounce_skips_an_event_the_last_retrain_covered(
    setup: tuple[PipelineConfig, str], first: dict[str, Any]
) -> None:
    config, uri = setup
    ctx = run_context(uri, "asset_triggered__steps", FIRST)
    covered: contracts.TriggeringEvent = {
        "trigger": "drift",
        "episode": f"{NAME}/champion-v1",
        "window_end": (FIRST + timedelta(hours=12)).isoformat(),
    }
    with pytest.raises(StepSkipped, match="within the 24h cooldown"):
        retraining_steps.debounce(config, ctx, covered)
    later = {**covered, "window_end": (FIRST + timedelta(days=20)).isoformat(), "x": 1}
    assert retraining_steps.debounce(config, ctx, later) == later  # type: ignore[arg-type]
    assert_conforms(later, contracts.TriggeringEvent, extra_keys=True)


def test_rollback_refuses_a_champion_that_replaced_nothing(
    setup: tuple[PipelineConfig, str], first: dict[str, Any]
) -> None:
    config, uri = setup
    ctx = run_context(uri, "manual__rollback", FIRST, reason="bad predictions")
    with pytest.raises(registry.RegistryRefusedError, match="replaced no earlier version"):
        rollback_steps.rollback(config, ctx)
    with pytest.raises(registry.RegistryRefusedError, match="needs a reason"):
        rollback_steps.rollback(config, run_context(uri, "manual__rollback", FIRST))


def test_monitoring_steps_measure_and_close_their_run(
    setup: tuple[PipelineConfig, str], scored: dict[str, Any]
) -> None:
    """A week after the scored day every label is known: too few for a verdict, still logged."""
    config, uri = setup
    ctx = run_context(uri, "scheduled__steps-monitoring", SECOND + timedelta(days=8))
    measured = monitoring_steps.measure_performance(config, ctx)
    assert_conforms(measured, contracts.Measured)
    assert measured["summary"]["labels"]["rows"] > 0
    decay = monitoring_steps.check_decay(config, ctx, measured)
    assert_conforms(decay, contracts.DecayCheck)
    assert decay["decayed"] is False
    assert monitoring_steps.verdict(decay) == "no verdict"  # fewer than min_labelled_rows
    client = registry.make_client(uri)
    assert client.get_run(measured["mlflow_run_id"]).info.status == "FINISHED"
    with pytest.raises(StepSkipped, match="was not rejected for want of evidence"):
        monitoring_steps.judge_live_evidence(config, ctx, measured)
