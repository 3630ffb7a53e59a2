"""Bad inputs end to end: each run fails loudly, names the problem and changes nothing served.

One good run of the real weekly retraining DAG promotes version 1 of `churn_bad_inputs`, whose
file source reads a parquet file this module writes from the synthetic data. Every bad-data
case then rewrites that file one way, runs the DAG again and checks that the run failed at
the expected task, at once (no retries), with a message naming the problem; that no version
was registered; that version 1 is still the champion; and that version 1's run folder is
byte for byte as it was. The config-level cases (a malformed YAML, an unknown estimator, a
trigger param out of range, a path out of the data root, SQL injection through a bound
param) are tested where they happen, with the same checks wherever a run is involved.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sqlalchemy import create_engine, text

from tests.environment import ROOT, SESSION_DIR
from tests.integration.dag_runs import (
    assert_failed_at,
    champion,
    folder_hashes,
    run_dag,
    task_states,
    versions,
    write_pipeline,
)
from tests.integration.postgres import fresh_database

pytestmark = pytest.mark.integration

NAME = "churn_bad_inputs"
DAG_ID = f"{NAME}_weekly_retraining"
GOOD_RUN = datetime(2026, 3, 1, 2, tzinfo=UTC)
# A run's window: the 21 training and 7 holdout days before midnight of its day.
WINDOW_START, WINDOW_END = datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
WINDOW_TEXT = "[2026-02-01T00:00:00+00:00, 2026-03-01T00:00:00+00:00)"
HOLDOUT_START = pd.Timestamp("2026-02-22", tz="UTC")


def data_root() -> Path:
    return Path(os.environ["CT_DATA_ROOT"])


def expectation_columns() -> dict[str, Any]:
    """churn's column rules, but usage_gb may hold nulls and has no maximum.

    So the all-null and infinity cases reach what the YAML does not ask for: an all-null
    column without `not_null`, and +inf in a column whose range has no upper bound.
    """
    churn = yaml.safe_load((ROOT / "include" / "pipelines" / "churn.yaml").read_text())
    return {**churn["expectations"]["columns"], "usage_gb": {"min": 0}}


@dataclass(frozen=True)
class Baseline:
    """The state a bad input must leave as it was."""

    client: Any
    good: pd.DataFrame  # the run window's rows, as the good run read them
    source: Path  # the parquet file the pipeline reads; each case rewrites it
    good_file: Path  # the good rows, never rewritten
    run_folder: Path  # version 1's run folder in the data root
    hashes: dict[str, str]  # sha256 of every file in it

    def assert_unchanged(self) -> None:
        """Nothing registered, version 1 still the champion, its files untouched."""
        assert [v.version for v in versions(self.client, NAME)] == ["1"]
        assert champion(self.client, NAME) == "1"
        assert folder_hashes(self.run_folder) == self.hashes


@pytest.fixture(scope="module")
def baseline(
    mlflow_server: str, airflow_db: None, tmp_path_factory: pytest.TempPathFactory
) -> Baseline:
    from mlflow import MlflowClient

    from continuous_training import storage
    from continuous_training.config import find_pipeline
    from continuous_training.sources import Window, fetch_window, make_source

    churn = find_pipeline("churn")
    good = fetch_window(make_source(churn), churn, Window(WINDOW_START, WINDOW_END))
    folder = tmp_path_factory.mktemp("bad-inputs")
    good.to_parquet(folder / "good.parquet", index=False)
    good.to_parquet(folder / "current.parquet", index=False)
    write_pipeline(
        NAME,
        source={"kind": "file", "path": str(folder / "current.parquet")},
        expectations={"columns": expectation_columns()},
    )
    run = run_dag(DAG_ID, GOOD_RUN)
    assert str(run.state) == "success", task_states(run)
    client = MlflowClient(mlflow_server)
    assert champion(client, NAME) == "1"
    run_folder = Path(storage.snapshot_uri(NAME, run.run_id)).parent
    hashes = folder_hashes(run_folder)
    assert {"snapshot.parquet", "train.parquet", "holdout.parquet"} <= set(hashes)
    return Baseline(
        client, good, folder / "current.parquet", folder / "good.parquet", run_folder, hashes
    )


def other_pipeline(suffix: str, **overrides: Any) -> str:
    """A pipeline sharing the registered model (and so its champion) of `churn_bad_inputs`."""
    name = f"{NAME}_{suffix}"
    write_pipeline(name, registry={"model_name": NAME}, **overrides)
    return f"{name}_weekly_retraining"


# --------------------------------------------------------------------------- bad data


def _shift_a_year_back(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(event_time=df["event_time"] - pd.Timedelta(days=365))


def _nulls(column: str, rows: int) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def corrupt(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        df.loc[df.index[-rows:], column] = np.nan
        return df

    return corrupt


def _infinity(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df.loc[df.index[[10, 20, 30]], "usage_gb"] = np.inf
    return df


def _holdout_of_one_class(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(churned=df["churned"].where(df["event_time"] < HOLDOUT_START, 0))


def _duplicates(df: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([df, df.iloc[:100]], ignore_index=True)


def _out_of_range(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df.loc[df.index[:4], "tenure_months"] = 999
    return df


@dataclass(frozen=True)
class Case:
    corrupt: Callable[[pd.DataFrame], pd.DataFrame]
    task: str  # where the run must fail
    named: tuple[str, ...]  # what its message must say


CASES = {
    "missing-column": Case(
        lambda df: df.drop(columns=["usage_gb"]),
        "validate",
        ("expect_table_columns_to_match_set [<table>]: missing columns: ['usage_gb']",),
    ),
    "extra-column": Case(
        lambda df: df.assign(promo_code="SPRING"),
        "validate",
        ("expect_table_columns_to_match_set [<table>]: unexpected columns: ['promo_code']",),
    ),
    "wrong-dtype": Case(
        lambda df: df.assign(monthly_charges=df["monthly_charges"].astype(str)),
        "validate",
        ("[monthly_charges]: dtype object: 8400 of 8400 non-null values are not numeric",),
    ),
    "all-null-column": Case(
        _nulls("usage_gb", 8400),
        "validate",
        ("[usage_gb]: no non-null values: the column is entirely null",),
    ),
    "empty-window": Case(
        _shift_a_year_back,
        "fetch",
        (f"no rows in the window {WINDOW_TEXT} from source.kind 'file' (source.path '",),
    ),
    "nan-in-feature": Case(
        _nulls("monthly_charges", 40),
        "validate",
        ("expect_column_values_to_not_be_null [monthly_charges]: 40 of 8400 values are null",),
    ),
    "inf-in-feature": Case(
        _infinity,
        "validate",
        ("[usage_gb]: 3 of 8400 non-null values are not finite (inf or -inf)", "Infinity"),
    ),
    "single-class-label": Case(
        lambda df: df.assign(churned=0),
        "validate",
        (
            "the training part (before 2026-02-22) has a single class in target 'churned': 0",
            "the holdout part (2026-02-22 to 2026-03-01, windows.holdout_days=7) has a single",
        ),
    ),
    "single-class-holdout": Case(
        _holdout_of_one_class,
        "validate",
        ("[churned]: the holdout part (2026-02-22 to 2026-03-01", "'churned': 0;"),
    ),
    "duplicate-rows": Case(
        _duplicates,
        "validate",
        ("[<table>]: 200 of 8500 rows are exact duplicates", "at most 1.00% allowed"),
    ),
    "out-of-range": Case(
        _out_of_range,
        "validate",
        ("[tenure_months]: 4 of 8400 non-null values outside [0, 120]; sample: [999,",),
    ),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_data_fails_the_run_and_changes_nothing(baseline: Baseline, case: str) -> None:
    spec = CASES[case]
    spec.corrupt(baseline.good).to_parquet(baseline.source, index=False)
    # Same day as the good run, so the same window; another hour, so another run id.
    run = run_dag(DAG_ID, GOOD_RUN.replace(hour=3, minute=list(CASES).index(case)))
    error = assert_failed_at(run, spec.task)
    for needle in spec.named:
        assert needle in error, error
    if spec.task == "validate":
        assert error.startswith(f"data validation failed for pipeline '{NAME}'")
        report = Path(error.rsplit("report: ", 1)[1])
        assert report.is_file() and report.is_relative_to(data_root())  # kept for the user
    baseline.assert_unchanged()


# --------------------------------------------------------------------------- bad config


def test_malformed_yaml_stands_in_for_its_dags_and_nothing_runs(baseline: Baseline) -> None:
    """A broken edit of a serving pipeline's YAML: its DAGs are replaced by one that shows the
    error, the other pipelines' DAGs stay, and the champion stays."""
    from airflow.dag_processing.dagbag import BundleDagBag

    from continuous_training.config import ConfigError, find_pipeline

    path = SESSION_DIR / "pipelines" / f"{NAME}.yaml"
    good = path.read_text()
    path.write_text(good.replace("target: churned", "target: [churned"))
    try:
        with pytest.raises(ConfigError) as err:
            find_pipeline(NAME)
        assert str(err.value).startswith(f"{path}: malformed YAML: ")
        assert "line " in str(err.value)
        dags = ROOT / "dags"
        bag = BundleDagBag(dag_folder=dags, bundle_path=dags, bundle_name="dags-folder")
    finally:
        path.write_text(good)
    assert bag.import_errors == {}
    stand_in = bag.dags[f"{NAME}_invalid_config"]
    assert f"{path}: malformed YAML" in stand_in.doc_md
    assert DAG_ID not in bag.dag_ids
    assert "churn_weekly_retraining" in bag.dag_ids  # the other pipelines are untouched
    baseline.assert_unchanged()


@pytest.mark.parametrize("estimator", ["sklearn.ensemble.NoSuchModel", "nopkg.X"])
def test_unknown_estimator_fails_the_first_task(baseline: Baseline, estimator: str) -> None:
    dag_id = other_pipeline(
        "estimator",
        source={"kind": "file", "path": str(baseline.good_file)},
        model={"estimator": estimator, "params": {}},
    )
    minute = ["sklearn.ensemble.NoSuchModel", "nopkg.X"].index(estimator)
    run = run_dag(dag_id, GOOD_RUN.replace(hour=4, minute=minute))
    error = assert_failed_at(run, "fetch")
    assert f"{NAME}_estimator.yaml: model.estimator: cannot import {estimator!r}" in error
    assert not list(data_root().glob(f"{NAME}_estimator/runs/*/snapshot.parquet"))
    baseline.assert_unchanged()


@pytest.mark.parametrize(
    ("conf", "param", "minute"),
    [
        ({"training_window_days": 0}, "training_window_days", 0),
        ({"training_window_days": 99999}, "training_window_days", 1),
        ({"dry_run": "yes"}, "dry_run", 2),
    ],
    ids=["window-0", "window-99999", "dry-run-yes"],
)
def test_trigger_param_out_of_range_is_refused_before_a_run_exists(
    baseline: Baseline, conf: dict[str, Any], param: str, minute: int
) -> None:
    """Airflow validates the run conf against the DAG's params when it creates the run."""
    from airflow.exceptions import ParamValidationError
    from airflow.models.dagrun import DagRun

    logical_date = GOOD_RUN.replace(hour=5, minute=minute)
    with pytest.raises(ParamValidationError, match=f"Invalid input for param {param}: "):
        run_dag(DAG_ID, logical_date, conf)
    assert not DagRun.find(dag_id=DAG_ID, logical_date=logical_date)
    baseline.assert_unchanged()


@pytest.fixture
def escape_route(baseline: Baseline, tmp_path: Path) -> Iterator[Path]:
    """The pipeline's folder in the data root is a symlink to a folder outside it."""
    link = data_root() / f"{NAME}_escape"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(tmp_path, target_is_directory=True)
    yield tmp_path
    link.unlink()


def test_paths_escaping_the_data_root_are_refused(baseline: Baseline, escape_route: Path) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from continuous_training.operators import ValidateData

    dag_id = other_pipeline("escape", source={"kind": "file", "path": str(baseline.good_file)})
    run = run_dag(dag_id, GOOD_RUN.replace(hour=6))
    error = assert_failed_at(run, "fetch")
    assert f"path '{data_root()}/{NAME}_escape/runs/" in error, error
    assert f"resolves to '{escape_route}/runs/" in error, error
    assert f"which is not under '{data_root()}'" in error, error
    assert list(escape_route.rglob("*")) == []  # nothing was written out there

    # A snapshot path handed over by an upstream task (XCom) that leads out of the root.
    validate = ValidateData(
        task_id="validate",
        pipeline=NAME,
        snapshot={"uri": f"{baseline.run_folder}/{'../' * 12}etc/passwd"},
    )
    context = {"run_id": "manual__escape", "params": {}, "data_interval_end": GOOD_RUN}
    with pytest.raises(AirflowFailException, match=r"snapshot '.*' resolves to '/etc/passwd'"):
        validate.execute(context)
    baseline.assert_unchanged()


def test_sql_injection_through_a_bound_param_is_a_literal(
    baseline: Baseline, monkeypatch: pytest.MonkeyPatch
) -> None:
    injection = "x'; DROP TABLE events; --"
    query = (
        "SELECT * FROM events WHERE event_time >= :window_start AND event_time < :window_end "
        "AND region = :region"
    )
    with fresh_database({"events": baseline.good}) as uri:
        monkeypatch.setenv("AIRFLOW_CONN_BAD_INPUTS_WAREHOUSE", uri.replace("+psycopg2", ""))
        dag_id = other_pipeline(
            "sql",
            source={
                "kind": "sql",
                "conn_id": "bad_inputs_warehouse",
                "query": query,
                "params": {"region": injection},
            },
        )
        run = run_dag(dag_id, GOOD_RUN.replace(hour=7))
        engine = create_engine(uri)
        with engine.connect() as conn:
            survivors = conn.execute(text("SELECT count(*) FROM events")).scalar_one()
        engine.dispose()
    assert survivors == len(baseline.good)  # the table is still there, every row of it
    error = assert_failed_at(run, "fetch")
    assert (
        f"no rows in the window {WINDOW_TEXT} from source.kind 'sql' "
        "(source.conn_id 'bad_inputs_warehouse')"
    ) in error, error
    baseline.assert_unchanged()
