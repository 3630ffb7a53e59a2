"""The MLflow server stopped for real during training, registration and promotion.

Each case: a champion v1 exists; a retrain on drifted data (which should win) loses the server
at one request; its task retries and fails naming the URL; the champion is untouched; the server
comes back and a re-run of the same Airflow run completes with one version for the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.environment import SESSION_DIR
from tests.integration.dag_runs import (
    champion,
    run_dag,
    task_errors,
    task_states,
    versions,
    write_pipeline,
)
from tests.integration.mlflow_outage import MlflowOutage, StopAt

pytestmark = pytest.mark.integration

BEFORE_DRIFT = datetime(2026, 3, 1, 2, tzinfo=UTC)
AFTER_DRIFT = datetime(2026, 3, 22, 2, tzinfo=UTC)

CASES = {
    # the model's files half uploaded: the first artifact of the logged model
    "training": StopAt("PUT", r"/mlflow-artifacts/artifacts/.*/model"),
    # the version is created, the answer never arrives
    "registration": StopAt("POST", r"/model-versions/create$", after_forwarding=True),
    # the lock is held, the alias switch never happens
    "promotion": StopAt("POST", r"/registered-models/alias$", body='"champion"'),
}
FAILING_TASK = {"training": "train_candidate", "registration": "train_candidate"}


@pytest.fixture(scope="module")
def outage(airflow_db: None) -> Iterator[MlflowOutage]:
    server = MlflowOutage(SESSION_DIR / "mlflow-outage")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("case", list(CASES))
def test_mlflow_stopped_then_back(
    case: str, outage: MlflowOutage, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", outage.url)
    client = MlflowClient(outage.url)
    name = f"churn_outage_{case}"
    write_pipeline(name, retries={"count": 2, "delay_seconds": 1})
    dag_id = f"{name}_weekly_retraining"
    assert str(run_dag(dag_id, BEFORE_DRIFT).state) == "success"
    assert champion(client, name) == "1"

    outage.arm(CASES[case])
    failed = run_dag(dag_id, AFTER_DRIFT, run_after=AFTER_DRIFT)
    assert outage.stopped_by is not None, f"never reached {CASES[case]}: {outage.seen[-20:]}"
    task = FAILING_TASK.get(case, "promote")
    states = task_states(failed)
    assert str(failed.state) == "failed" and states[task] == "failed", states
    [instance] = [ti for ti in failed.get_task_instances() if ti.task_id == task]
    assert instance.try_number == 3  # the first try and both retries
    errors = task_errors(failed)[task]
    assert len(errors) == 3, errors
    assert f"MLflow tracking server at {outage.url} is unreachable" in errors[-1], errors

    outage.start()
    assert champion(client, name) == "1"
    assert_no_alias_on_an_unfinished_version(client, name)
    rerun = run_dag(dag_id, AFTER_DRIFT, run_after=AFTER_DRIFT)  # cleared, run again
    assert str(rerun.state) == "success", task_states(rerun)
    assert rerun.run_id == failed.run_id
    [version] = [v for v in versions(client, name) if v.tags["ct.airflow_run_id"] == rerun.run_id]
    assert champion(client, name) == version.version == "2"
    assert version.tags["ct.decision"] == "promoted" and version.tags["ct.replaced_version"] == "1"
    assert_no_alias_on_an_unfinished_version(client, name)
    assert client.search_registered_models(f"name = '{name}.champion-lock'") == []


def assert_no_alias_on_an_unfinished_version(client, name: str) -> None:
    model = client.get_registered_model(name)
    for alias, number in model.aliases.items():
        version = client.get_model_version(name, str(number))
        assert version.status == "READY", (alias, number, version.status)
        if alias == "champion":
            assert version.tags.get("ct.decision") == "promoted", (number, version.tags)
