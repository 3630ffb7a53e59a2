"""End to end: a model file changed in the artifact store after registration is never served.

The weekly DAG registers a champion with `ct.model_sha256`; batch inference scores a day with
it. Then the champion's model file is changed on the disk of the MLflow server (what someone
with write access to the artifact store could do): the next batch inference fails at
`pin_champion`, naming the model, the version and both digests, and writes no predictions;
the day scored before keeps its output; a retrain fails at `evaluate_vs_champion` and the
champion stays.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from continuous_training import inference, model_digest, storage
from continuous_training.sources import Window
from tests.environment import SESSION_DIR
from tests.integration import task_logs
from tests.integration.dag_runs import champion, run_dag, task_states, versions, write_pipeline
from tests.integration.dag_runs import xcom_value as xcom

pytestmark = pytest.mark.integration

NAME = "churn_tamper"
WEEKLY = datetime(2026, 3, 1, 2, tzinfo=UTC)
SCORED = datetime(2026, 2, 26, 3, tzinfo=UTC)  # scores 2026-02-25
REFUSED = datetime(2026, 2, 27, 3, tzinfo=UTC)  # scores 2026-02-26
MLFLOW_ARTIFACTS = SESSION_DIR / "mlflow" / "artifacts"  # tests/integration/conftest.py


def day_before(logical: datetime) -> Window:
    end = logical.replace(hour=0)
    return Window(end - timedelta(days=1), end)


def stored_model_folder(client, version: str) -> Path:
    """Where the session's MLflow server keeps the version's files (--artifacts-destination)."""
    model_id = client.get_model_version(NAME, version).source.rsplit("/", 1)[-1]
    [folder] = MLFLOW_ARTIFACTS.glob(f"*/models/{model_id}/artifacts")
    return folder


def output_digests(window: Window) -> dict[str, str]:
    """Every file of a window's predictions (parts, drift sample, manifest) and its sha256."""
    folder = Path(inference.predictions_dir(NAME, window))
    return {str(p): storage.sha256_of(str(p)) for p in folder.rglob("*") if p.is_file()}


def test_a_tampered_champion_is_refused_by_inference_and_evaluation(client) -> None:
    write_pipeline(NAME)
    weekly = run_dag(f"{NAME}_weekly_retraining", WEEKLY)
    assert str(weekly.state) == "success", task_states(weekly)
    [v1] = versions(client, NAME)
    recorded = v1.tags[model_digest.TAG_MODEL_SHA]
    stored = stored_model_folder(client, "1")
    assert model_digest.directory_digest(stored) == recorded  # the files the server holds

    scored = run_dag(f"{NAME}_batch_inference", SCORED)
    assert str(scored.state) == "success", task_states(scored)
    assert xcom(scored, "pin_champion")["champion_sha256"] == recorded
    before = output_digests(day_before(SCORED))
    assert any(uri.endswith(".parquet") for uri in before)

    model_file = stored / "model.skops"
    model_file.write_bytes(model_file.read_bytes() + b"tampered")
    tampered = model_digest.directory_digest(stored)

    with task_logs.captured() as logs:
        refused = run_dag(f"{NAME}_batch_inference", REFUSED)
    states = task_states(refused)
    assert str(refused.state) == "failed", states
    assert states["pin_champion"] == "failed", states
    assert states["score_partition"] == "upstream_failed", states
    message = logs.task("pin_champion")
    assert f"model {NAME} version 1: its artifacts do not match" in message
    assert f"recorded {recorded}, found {tampered}" in message
    assert not storage.exists(inference.predictions_dir(NAME, day_before(REFUSED)))
    assert output_digests(day_before(SCORED)) == before

    with task_logs.captured() as logs:
        retrain = run_dag(f"{NAME}_weekly_retraining", WEEKLY + timedelta(days=7))
    states = task_states(retrain)
    assert states["evaluate_vs_champion"] == "failed", states
    assert states["promote"] == "upstream_failed", states
    message = logs.task("evaluate_vs_champion")
    assert f"recorded {recorded}, found {tampered}" in message
    assert champion(client, NAME) == "1"


def test_a_version_without_a_digest_is_refused_until_one_is_recorded(client) -> None:
    """Versions registered before digests existed: refused, then adopted by the CLI."""
    from continuous_training import registry
    from continuous_training.cli import main

    name = "churn_legacy"
    write_pipeline(name)
    assert str(run_dag(f"{name}_weekly_retraining", WEEKLY).state) == "success"
    recorded = versions(client, name)[0].tags[model_digest.TAG_MODEL_SHA]
    client.delete_model_version_tag(name, "1", model_digest.TAG_MODEL_SHA)
    tracking = registry.make_client(client.tracking_uri)
    with pytest.raises(model_digest.ModelDigestError, match=r"has no ct\.model_sha256 tag"):
        model_digest.load_verified(tracking, name, "1")

    assert main(["record-digest", name, "1", "--tracking-uri", client.tracking_uri]) == 0
    assert versions(client, name)[0].tags[model_digest.TAG_MODEL_SHA] == recorded
    assert model_digest.load_verified(tracking, name, "1") is not None
    with pytest.raises(model_digest.ModelDigestError, match="never replaced"):
        model_digest.record(tracking, name, "1")
