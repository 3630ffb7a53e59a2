"""End to end: raw PII from a file source is written nowhere, its keyed hash where it belongs.

A CRM-like export keyed by e-mail (every address contains `alice.pii`) with a phone column is
the source of a pipeline with `pii: {hash: [email], drop: [phone]}`. After the real weekly
retraining and batch inference DAGs ran on it, against the session's MLflow server, neither
raw value is anywhere: not in the data root (snapshots, splits, predictions, drift samples,
reports), the MLflow server's artifact store and backend database, Airflow's database (XCom
included) and log folder, nor in what the tasks logged (tests/integration/task_logs.py). The
hashed e-mail is in the snapshot, the training split and the predictions.
"""

from __future__ import annotations

import json
import os
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from continuous_training import pii
from continuous_training.config import find_pipeline
from continuous_training.sources import SyntheticSource, Window
from tests.environment import SESSION_DIR
from tests.integration import leaks, task_logs
from tests.integration.dag_runs import champion, run_dag, task_states, write_pipeline
from tests.integration.dag_runs import xcom_value as xcom

pytestmark = pytest.mark.integration

NAME = "churn_pii"
WEEKLY = datetime(2026, 3, 1, 2, tzinfo=UTC)  # trains on 2026-02-01 .. 2026-03-01
BATCH = datetime(2026, 2, 26, 3, tzinfo=UTC)  # scores 2026-02-25
RAW_EMAIL = b"alice.pii"  # in every address
RAW_PHONE = b"+1-555-"  # in every phone number
# What the pipeline writes to: data root, MLflow server, Airflow home (tests/environment.py).
WRITTEN = [SESSION_DIR / "data", SESSION_DIR / "mlflow", SESSION_DIR / "airflow"]


def crm_export(source: SyntheticSource, window: Window) -> pd.DataFrame:
    """The synthetic churn rows as a CRM exports them: e-mail instead of id, and a phone."""
    frame = source.fetch(window)
    n = len(frame)
    return frame.drop(columns=["customer_id"]).assign(
        email=[f"alice.pii+{cid}@example.com" for cid in frame["customer_id"]],
        phone=[f"+1-555-{i:07d}" for i in range(n)],
    )


@pytest.fixture
def crm_files(tmp_path: Path, make_config) -> dict[str, Path]:
    """Training export for the weekly window, one scoring file per day; outside every root."""
    config = make_config()
    training = Window(WEEKLY.replace(hour=0) - timedelta(days=28), WEEKLY.replace(hour=0))
    train = tmp_path / "crm" / "customers.parquet"
    train.parent.mkdir()
    crm_export(SyntheticSource(config), training).to_parquet(train, index=False)
    scoring_config = config.model_copy(update={"source": config.scoring_source})
    day = Window(BATCH.replace(hour=0) - timedelta(days=1), BATCH.replace(hour=0))
    scoring = tmp_path / "crm" / "scoring" / f"{day.start.date()}.parquet"
    scoring.parent.mkdir()
    crm_export(SyntheticSource(scoring_config), day).to_parquet(scoring, index=False)
    return {"train": train, "scoring": scoring, "pattern": scoring.parent / "{date}.parquet"}


def pii_pipeline(crm_files: dict[str, Path], churn_config: dict) -> None:
    columns = dict(churn_config["expectations"]["columns"])
    columns["email"] = columns.pop("customer_id")
    write_pipeline(
        NAME,
        source={"kind": "file", "path": str(crm_files["train"])},
        id_columns=["email"],
        expectations={"columns": columns},
        inference={"source": {"kind": "file", "path": str(crm_files["pattern"])}},
        pii={"hash": ["email"], "drop": ["phone"]},
    )


def xcom_texts(*runs) -> str:
    """Every XCom value of the runs, as the metadata database stores them."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        values = session.scalars(
            select(XComModel.value).where(XComModel.run_id.in_([r.run_id for r in runs]))
        ).all()
    return "\n".join(v if isinstance(v, str) else json.dumps(v) for v in values)


def test_raw_pii_is_nowhere_and_the_hash_is_where_expected(
    client,
    crm_files: dict[str, Path],
    churn_config: dict,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CT_PII_HASH_KEY", secrets.token_hex(32))  # generated, never committed
    # The search must find what is there: raw values in a compressed parquet file.
    assert leaks.find(RAW_EMAIL, [crm_files["train"].parent])
    assert leaks.find(RAW_PHONE, [crm_files["train"].parent])

    pii_pipeline(crm_files, churn_config)
    with task_logs.captured() as logs:
        weekly = run_dag(f"{NAME}_weekly_retraining", WEEKLY)
        assert str(weekly.state) == "success", task_states(weekly)
        assert champion(client, NAME) == "1"
        batch = run_dag(f"{NAME}_batch_inference", BATCH)
        assert str(batch.state) == "success", task_states(batch)
    assert "[DAG TEST] end task task_id=score_partition" in logs.text()  # the logs were caught
    logged = capfd.readouterr()  # and whatever reached this test's stdout and stderr
    task_output = "\n".join([logs.text(), logged.out, logged.err, xcom_texts(weekly, batch)])

    for marker in (RAW_EMAIL, RAW_PHONE):
        assert leaks.find(marker, WRITTEN) == [], marker
        assert marker.decode() not in task_output, marker

    key = os.environ["CT_PII_HASH_KEY"].encode()
    expected = expected_hashes(crm_files, key)
    snapshot = Path(xcom(weekly, "fetch")["uri"])
    assert leaks.parquet_column_values([snapshot], "email") == expected["train"]
    assert "phone" not in pd.read_parquet(snapshot).columns
    train_split = Path(xcom(weekly, "train_candidate")["train"]["uri"])
    assert leaks.parquet_column_values([train_split], "email") <= expected["train"]
    parts = [Path(part["uri"]) for part in xcom(batch, "publish_predictions")["parts"]]
    assert leaks.parquet_column_values(parts, "email") == expected["scoring"]
    assert find_pipeline(NAME).pii.hash == ["email"]


def expected_hashes(crm_files: dict[str, Path], key: bytes) -> dict[str, set[str]]:
    raw = {name: pd.read_parquet(crm_files[name])["email"] for name in ("train", "scoring")}
    return {name: {pii.keyed_hash(e, key) for e in emails} for name, emails in raw.items()}


def test_without_the_hash_key_the_fetch_fails_and_writes_nothing(
    client, crm_files: dict[str, Path], churn_config: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from continuous_training import storage

    monkeypatch.delenv("CT_PII_HASH_KEY", raising=False)
    pii_pipeline(crm_files, churn_config)
    with task_logs.captured() as logs:
        run = run_dag(f"{NAME}_weekly_retraining", WEEKLY + timedelta(days=14))
    states = task_states(run)
    assert states["fetch"] == "failed" and states["validate"] == "upstream_failed", states
    assert "pii.hash lists ['email'] but the environment variable CT_PII_HASH_KEY" in logs.task(
        "fetch"
    )
    assert logs.task("fetch").count("[DAG TEST] running task") == 1  # failed, not retried
    assert not storage.exists(storage.snapshot_uri(NAME, run.run_id))
