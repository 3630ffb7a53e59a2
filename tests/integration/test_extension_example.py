"""The worked extension example: a DataSource, an operator, a gate check and a DAG of your own.

`dags/crm_extension/` stands for the user's code; `dags/example_crm_retraining.py` composes
its operator with the shipped ones. The end-to-end test runs that DAG with `dag.test()` on a
real SQLite CRM file against the real MLflow server of the session.
"""

from __future__ import annotations

import itertools
import json
import re
import runpy
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from continuous_training import storage
from continuous_training.config import load_pipeline
from continuous_training.sources import SourceError, Window, fetch_window, make_source
from tests.environment import ROOT
from tests.integration.dag_runs import champion, task_states, versions

pytestmark = pytest.mark.integration

DAGS = ROOT / "dags"
DAG_FILE = DAGS / "example_crm_retraining.py"
CRM_START = datetime(2026, 1, 20, tzinfo=UTC)
CRM_END = datetime(2026, 3, 1, tzinfo=UTC)
RUN_DATE = datetime(2026, 3, 1, 2, tzinfo=UTC)
# the run's window: training_days 21 + holdout_days 7 before midnight of 2026-03-01
WINDOW = Window(datetime(2026, 2, 1, tzinfo=UTC), CRM_END)
ROWS_PER_DAY = 300


@pytest.fixture
def user_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """dags/ on sys.path, as Airflow puts it, so that `crm_extension` imports."""
    monkeypatch.syspath_prepend(str(DAGS))


@pytest.fixture
def crm_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, user_code: None) -> Path:
    """A CRM SQLite file holding synthetic customers from 2026-01-20 to 2026-03-01."""
    from crm_extension.demo import make_demo_crm

    path = tmp_path / "crm.sqlite"
    assert make_demo_crm(path, CRM_START, CRM_END) == 40 * ROWS_PER_DAY
    monkeypatch.setenv("CRM_DB_PATH", str(path))
    return path


def crm_config(**options: Any) -> Any:
    from crm_extension import PIPELINE_YAML

    config = load_pipeline(PIPELINE_YAML)
    source = config.source.model_copy(update={"options": {**config.source.options, **options}})
    return config.model_copy(update={"source": source})


# --------------------------------------------------------------------------- the source alone


def test_source_kind_import_path_fetches_the_window_from_the_crm(crm_db: Path) -> None:
    from crm_extension.sources import CrmSource

    config = crm_config()
    assert config.source.kind == "crm_extension.sources.CrmSource"
    source = make_source(config)
    assert type(source) is CrmSource
    assert source.database_path() == crm_db  # from $CRM_DB_PATH

    frame = fetch_window(source, config, WINDOW)
    assert list(frame.columns) == config.columns  # the CRM's email column stays in the CRM
    assert len(frame) == WINDOW.days * ROWS_PER_DAY
    assert frame[config.time_column].min() >= WINDOW.start
    assert frame[config.time_column].max() < WINDOW.end
    assert str(frame[config.time_column].dtype) == "datetime64[ns, UTC]"

    # the same rows as the synthetic source they were written from
    synthetic = config.model_copy(
        update={"source": config.source.model_copy(update={"kind": "synthetic"})}
    )
    expected = fetch_window(make_source(synthetic), synthetic, WINDOW)
    assert frame.equals(expected)


def test_db_path_option_wins_over_the_environment(
    crm_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_DB_PATH", "/nonexistent/elsewhere.sqlite")
    source = make_source(crm_config(db_path=str(crm_db)))
    assert source.database_path() == crm_db
    assert len(fetch_window(source, source.pipeline, WINDOW)) == WINDOW.days * ROWS_PER_DAY


def test_missing_crm_database_names_the_path_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, user_code: None
) -> None:
    missing = tmp_path / "no" / "crm.sqlite"
    monkeypatch.setenv("CRM_DB_PATH", str(missing))
    config = crm_config()
    with pytest.raises(SourceError, match=re.escape(f"CRM database {missing} does not exist")):
        fetch_window(make_source(config), config, WINDOW)
    assert not missing.exists()

    monkeypatch.delenv("CRM_DB_PATH")
    with pytest.raises(
        SourceError, match=re.escape("set source.options.db_path or the CRM_DB_PATH")
    ):
        fetch_window(make_source(config), config, WINDOW)


def test_crm_table_without_a_pipeline_column_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, user_code: None
) -> None:
    path = tmp_path / "crm.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (event_time TEXT, customer_id TEXT)")
    conn.close()
    config = crm_config(db_path=str(path))
    with pytest.raises(SourceError, match=re.escape(f"CRM database {path}: ")) as error:
        fetch_window(make_source(config), config, WINDOW)
    assert "table 'customers' has no columns ['tenure_months'," in str(error.value)

    with pytest.raises(SourceError, match="has no table 'clients'"):
        fetch_window(make_source(crm_config(db_path=str(path), table="clients")), config, WINDOW)


def test_yaml_alone_and_the_custom_operator_give_the_same_snapshot(crm_db: Path) -> None:
    """The shipped FetchData (source.kind from the YAML) and ExportCustomersFromCrm agree."""
    from continuous_training.operators import FetchData
    from crm_extension import PIPELINE_YAML
    from crm_extension.operators import ExportCustomersFromCrm

    def context(run_id: str) -> dict[str, Any]:
        return {"params": {}, "data_interval_end": RUN_DATE, "run_id": run_id}

    shipped = FetchData(task_id="fetch", pipeline=PIPELINE_YAML).execute(context("yaml_alone"))
    custom = ExportCustomersFromCrm(task_id="export", pipeline=PIPELINE_YAML, db_path=str(crm_db))
    own = custom.execute(context("own_operator"))
    assert (
        set(own) == set(shipped) == {"uri", "sha256", "rows", "bytes", "window_start", "window_end"}
    )
    assert own["sha256"] == shipped["sha256"]
    assert own["sha256"] == storage.sha256_of(own["uri"])
    assert own["rows"] == WINDOW.days * ROWS_PER_DAY
    assert (own["window_start"], own["window_end"]) == (
        WINDOW.start.isoformat(),
        WINDOW.end.isoformat(),
    )
    assert own["uri"] == storage.snapshot_uri("churn_crm", "own_operator")


def test_extra_check_passes_and_fails_on_holdout_size(user_code: None) -> None:
    from continuous_training.gate import GateContext, evaluate_gate
    from crm_extension.checks import MIN_HOLDOUT_ROWS

    gates = crm_config().gates
    metrics = {"roc_auc": 0.8, "log_loss": 0.4}

    def decide(rows: int) -> Any:
        ctx = GateContext(
            gates=gates,
            task="classification",
            challenger_metrics=metrics,
            holdout_rows=rows,
            challenger_latency_ms_per_1k=1.0,
        )
        return evaluate_gate(ctx)

    passed = decide(MIN_HOLDOUT_ROWS)
    assert passed.passed
    assert passed.checks[-1].name == "holdout_large_enough"
    rejected = decide(MIN_HOLDOUT_ROWS - 1)
    assert not rejected.passed
    assert rejected.reason == f"rejected: holdout {MIN_HOLDOUT_ROWS - 1} rows < minimum 1000"


# --------------------------------------------------------------------------- the example DAG


def load_example_dag() -> Any:
    """The DAG object, loaded from its file as Airflow does, with a 1 s retry delay."""
    dag = runpy.run_path(str(DAG_FILE))["dag"]
    for task in dag.tasks:
        task.retry_delay = timedelta(seconds=1)  # keep the retries, not the 5-minute wait
    return dag


def test_example_dag_structure(user_code: None) -> None:
    dag = load_example_dag()
    assert dag.dag_id == "example_crm_retraining"
    assert {"continuous-training", "churn_crm", "example"} <= set(dag.tags)
    assert dag.schedule is None
    assert dag.max_active_runs == 1
    assert not dag.catchup
    assert set(dag.params) == {"dry_run", "force_promote", "reason", "training_window_days"}
    chain = [
        "export_customers",
        "validate",
        "train_candidate",
        "evaluate_vs_champion",
        "promote",
        "notify",
    ]
    for upstream, downstream in itertools.pairwise(chain):
        assert dag.get_task(upstream).downstream_task_ids == {downstream}
    for task in dag.tasks:
        assert task.retries == 2
        assert task.owner == "crm-analytics"


def test_example_dag_end_to_end(crm_db: Path, mlflow_server: str, airflow_db: None) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server)
    run = load_example_dag().test(logical_date=RUN_DATE)
    states = task_states(run)
    assert str(run.state) == "success", states
    assert states == {
        "export_customers": "success",
        "validate": "success",
        "train_candidate": "success",
        "evaluate_vs_champion": "success",
        "promote": "success",
        "notify": "success",
    }

    [v1] = versions(client, "churn_crm")
    assert champion(client, "churn_crm") == "1"
    assert v1.tags["ct.decision"] == "promoted"
    assert v1.tags["ct.replaced_version"] == "none"
    assert "holdout 2100 rows >= minimum 1000" in v1.tags["ct.decision_reason"]

    record_file = client.download_artifacts(v1.run_id, "evaluation/decision_record.json")
    record = json.loads(Path(record_file).read_text())
    checks = {c["name"]: c for c in record["gate"]["checks"]}
    assert checks["holdout_large_enough"]["passed"] is True
    assert record["holdout"]["rows"] == 7 * ROWS_PER_DAY
    assert record["final"]["decision"] == "promoted"

    snapshot = storage.read_parquet(storage.snapshot_uri("churn_crm", run.run_id))
    assert len(snapshot) == WINDOW.days * ROWS_PER_DAY
    assert snapshot["event_time"].min() >= WINDOW.start
    assert snapshot["event_time"].max() < WINDOW.end

    summary = Path(storage.snapshot_uri("churn_crm", run.run_id, "decision.txt")).read_text()
    assert summary.startswith("churn_crm version 1 promoted (champion now: 1): passed: ")
    assert summary.endswith("holdout 2100 rows >= minimum 1000\n")
