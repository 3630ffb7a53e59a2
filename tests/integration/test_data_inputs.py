"""Users' own files through the real weekly retraining DAG: times and labels as people write them.

A CSV file source holds the synthetic window with its times written the way exports mix
them: naive values (UTC, as the README says) next to values with an offset, and rows just
outside and just inside the window once their offset is applied. The good run must read
exactly the UTC instants that were written and promote version 1. A time column that can
be read more than one way then fails `fetch` at its first attempt, naming the column, the
file and a sample, and a 'yes'/'no' label fails `validate` naming the target; neither
registers anything, moves the champion or touches version 1's files.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tests.environment import ROOT
from tests.integration.dag_runs import (
    assert_failed_at,
    champion,
    folder_hashes,
    run_dag,
    task_states,
    versions,
    write_pipeline,
)

pytestmark = pytest.mark.integration

NAME = "churn_data_inputs"
DAG_ID = f"{NAME}_weekly_retraining"
GOOD_RUN = datetime(2026, 3, 1, 2, tzinfo=UTC)
WINDOW_START, WINDOW_END = datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)

# (written, the UTC instant it is, inside the run's window?) around both window edges
EDGES = [
    ("2026-02-01T00:30:00+01:00", "2026-01-31 23:30:00", False),
    ("2026-01-31 23:59:59.999", "2026-01-31 23:59:59.999", False),
    ("2026-02-01 00:00:00", "2026-02-01 00:00:00", True),
    ("2026-01-31T22:00:00-02:00", "2026-02-01 00:00:00", True),
    ("2026-03-01T01:30:00+02:00", "2026-02-28 23:30:00", True),
    ("2026-02-28 23:59:59.999", "2026-02-28 23:59:59.999", True),
    ("2026-02-28T23:30:00-01:00", "2026-03-01 00:30:00", False),
    ("2026-03-01 00:00:00", "2026-03-01 00:00:00", False),
]


def as_export(times: pd.Series) -> list[str]:
    """Every third value naive UTC, the others with an offset of +05:30 or -08:00."""
    out = []
    for i, t in enumerate(times):
        if i % 3 == 0:
            out.append(t.tz_localize(None).isoformat(sep=" "))
        else:
            zone = "Asia/Kolkata" if i % 3 == 1 else "America/Los_Angeles"
            out.append(t.tz_convert(zone).isoformat())
    return out


@dataclass(frozen=True)
class Good:
    client: Any
    frame: pd.DataFrame  # the rows as written, with the UTC instants they stand for
    csv: Path
    run_folder: Path
    hashes: dict[str, str]

    def assert_unchanged(self) -> None:
        assert [v.version for v in versions(self.client, NAME)] == ["1"]
        assert champion(self.client, NAME) == "1"
        assert folder_hashes(self.run_folder) == self.hashes


@pytest.fixture(scope="module")
def good(mlflow_server: str, airflow_db: None, tmp_path_factory: pytest.TempPathFactory) -> Good:
    from mlflow import MlflowClient

    from continuous_training import storage
    from continuous_training.config import find_pipeline
    from continuous_training.sources import Window, fetch_window, make_source

    churn = find_pipeline("churn")
    rows = fetch_window(make_source(churn), churn, Window(WINDOW_START, WINDOW_END))
    written = rows.assign(event_time=as_export(rows["event_time"]), utc=rows["event_time"])
    edges = rows.iloc[: len(EDGES)].assign(
        event_time=[w for w, _, _ in EDGES],
        utc=[pd.Timestamp(u, tz="UTC") for _, u, _ in EDGES],
        customer_id=[f"EDGE-{i}" for i in range(len(EDGES))],
    )
    frame = pd.concat([written, edges], ignore_index=True)
    folder = tmp_path_factory.mktemp("data-inputs")
    csv = folder / "events.csv"
    frame.drop(columns=["utc"]).to_csv(csv, index=False)
    columns = yaml.safe_load((ROOT / "include" / "pipelines" / "churn.yaml").read_text())
    rules = columns["expectations"]["columns"]
    del rules["churned"]  # no `allowed` for the label: the implicit label check judges it
    write_pipeline(NAME, source={"kind": "file", "path": str(csv)}, expectations={"columns": rules})
    run = run_dag(DAG_ID, GOOD_RUN)
    assert str(run.state) == "success", task_states(run)
    client = MlflowClient(mlflow_server)
    assert champion(client, NAME) == "1"
    snapshot = Path(storage.snapshot_uri(NAME, run.run_id))
    return Good(client, frame, csv, snapshot.parent, folder_hashes(snapshot.parent))


def test_mixed_naive_and_offset_times_are_the_instants_written(good: Good) -> None:
    snapshot = pd.read_parquet(good.run_folder / "snapshot.parquet")
    inside = good.frame[(good.frame["utc"] >= WINDOW_START) & (good.frame["utc"] < WINDOW_END)]
    expected = inside.sort_values(["utc", "customer_id"], kind="mergesort")
    assert list(snapshot["customer_id"]) == list(expected["customer_id"])
    assert list(snapshot["event_time"]) == list(expected["utc"])
    edges_in = {f"EDGE-{i}" for i, (_, _, inside) in enumerate(EDGES) if inside}
    assert {c for c in snapshot["customer_id"] if c.startswith("EDGE-")} == edges_in
    assert len(snapshot) == len(good.frame) - sum(not i for _, _, i in EDGES)


def test_an_ambiguous_time_column_fails_fetch_at_once(good: Good) -> None:
    text = good.frame.drop(columns=["utc"])
    text.loc[text.index[100:105], "event_time"] = "03/02/2026 10:00"  # 3 Feb or 2 March?
    text.to_csv(good.csv, index=False)
    run = run_dag(DAG_ID, GOOD_RUN.replace(hour=3))
    error = assert_failed_at(run, "fetch")
    assert "time_column 'event_time' cannot be read as timestamps" in error, error
    assert f"file '{good.csv}'" in error
    assert "5 of " in error and "sample: ['03/02/2026 10:00']" in error
    good.assert_unchanged()


def test_a_yes_no_label_fails_validate_naming_the_target(good: Good) -> None:
    text = good.frame.drop(columns=["utc"])
    text["churned"] = text["churned"].map({0: "no", 1: "yes"})
    text.to_csv(good.csv, index=False)
    run = run_dag(DAG_ID, GOOD_RUN.replace(hour=4))
    error = assert_failed_at(run, "validate")
    assert "expect_column_values_to_be_in_set [churned]:" in error, error
    assert ("are not 0 or 1" in error and '"no"' in error) or '"yes"' in error
    good.assert_unchanged()
