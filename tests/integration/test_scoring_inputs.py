"""Real-world scoring inputs through the real batch inference DAG.

One pipeline, `churn_scoring_inputs`, reads a folder of ordinary files (one CSV per month)
whose features carry names any parquet or CSV file may hold (`Monatliche Gebühr (€)`,
`usage gb`). The real weekly retraining DAG makes version 1 champion from it, then batch
inference (with `inference.source` unset, so it scores the training files) runs for chosen
days. Checked here:

- a date is published as a whole: a re-run that fails on one of its partitions leaves the
  published set and manifest byte for byte, and a successful re-run replaces the set, so
  the date still holds exactly one set of rows of one model version;
- a month file scored for one day: batches outside the day are skipped, and a file with no
  row of the day writes an empty, typed part;
- bad scoring data (text or infinity in a numeric feature, a truncated parquet file) fails
  score_partition at its first attempt, naming the file and the column; the champion and the
  published predictions stay as they were;
- drift monitoring works for such column names: the scores are MLflow metrics.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.environment import ROOT
from tests.integration.dag_runs import (
    champion,
    folder_hashes,
    run_dag,
    task_errors,
    task_states,
    versions,
    write_pipeline,
    xcom_value,
)

pytestmark = pytest.mark.integration

NAME = "churn_scoring_inputs"
WEEKLY = datetime(2026, 3, 1, 2, tzinfo=UTC)
DAY_RUN = datetime(2026, 3, 15, 3, tzinfo=UTC)  # scores 2026-03-14
CHARGES, USAGE = "Monatliche Gebühr (€)", "usage gb"
RENAMED = {"monthly_charges": CHARGES, "usage_gb": USAGE}
INFERENCE_CHAIN = ["pin_champion", "list_partitions", "score_partition", "publish_predictions"]


@dataclass(frozen=True)
class Scoring:
    client: Any
    data: Path  # the folder the pipeline reads
    march: pd.DataFrame  # the rows of events_march.csv
    first: Any  # the first, successful batch inference run of DAY_RUN
    date: Path  # predictions/dt=2026-03-14
    hashes: dict[str, str]  # every file under `date` after the first run

    def assert_unchanged(self) -> None:
        """Champion v1, nothing registered, the date's published files byte for byte."""
        assert [v.version for v in versions(self.client, NAME)] == ["1"]
        assert champion(self.client, NAME) == "1"
        manifest = self.date / "_manifest.json"
        published = {k: v for k, v in folder_hashes(self.date).items() if k in self.hashes}
        assert published == self.hashes
        assert hashlib.sha256(manifest.read_bytes()).hexdigest() == self.hashes["_manifest.json"]


def published_rows(date: Path) -> pd.DataFrame:
    """What a reader of the date reads: the parts the manifest points at."""
    import json

    manifest = json.loads((date / "_manifest.json").read_text())
    return pd.concat([pd.read_parquet(p["uri"]) for p in manifest["parts"]], ignore_index=True)


@pytest.fixture(scope="module")
def scoring(
    mlflow_server: str, airflow_db: None, tmp_path_factory: pytest.TempPathFactory
) -> Scoring:
    from mlflow import MlflowClient

    from continuous_training.config import find_pipeline
    from continuous_training.sources import Window, fetch_window, make_source

    churn = find_pipeline("churn")
    data = tmp_path_factory.mktemp("scoring-inputs")
    months = {}
    for name, start, end in (
        ("events_february", datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)),
        ("events_march", datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 16, tzinfo=UTC)),
    ):
        frame = fetch_window(make_source(churn), churn, Window(start, end)).rename(columns=RENAMED)
        frame.to_csv(data / f"{name}.csv", index=False)
        months[name] = frame
    spec = yaml.safe_load((ROOT / "include" / "pipelines" / "churn.yaml").read_text())
    columns = {RENAMED.get(c, c): rule for c, rule in spec["expectations"]["columns"].items()}
    write_pipeline(
        NAME,
        source={"kind": "file", "path": str(data)},
        features={
            "numeric": ["tenure_months", CHARGES, "support_calls", USAGE],
            "categorical": ["plan", "region", "payment_method"],
        },
        expectations={"columns": columns},
        inference={"source": None, "shadow": False},
    )
    client = MlflowClient(mlflow_server)
    weekly = run_dag(f"{NAME}_weekly_retraining", WEEKLY)
    assert str(weekly.state) == "success", (task_states(weekly), task_errors(weekly))
    assert champion(client, NAME) == "1"

    first = run_dag(f"{NAME}_batch_inference", DAY_RUN)
    assert str(first.state) == "success", (task_states(first), task_errors(first))
    from continuous_training import inference

    window = Window(datetime(2026, 3, 14, tzinfo=UTC), datetime(2026, 3, 15, tzinfo=UTC))
    date = Path(inference.predictions_dir(NAME, window))
    return Scoring(client, data, months["events_march"], first, date, folder_hashes(date))


def test_month_files_scored_for_one_day(scoring: Scoring) -> None:
    states = task_states(scoring.first)
    assert states["score_partition"] == "success*2", states
    parts = xcom_value(scoring.first, "publish_predictions")["parts"]
    keys = sorted(p["key"] for p in parts)
    assert [k[:-9] for k in keys] == ["2026-03-14-events_february", "2026-03-14-events_march"]
    by_file = {p["key"][:-9]: p for p in parts}
    # February holds no row of the day: an empty part with the same schema
    import pyarrow.parquet as pq

    empty = pq.read_table(by_file["2026-03-14-events_february"]["uri"])
    full = pq.read_table(by_file["2026-03-14-events_march"]["uri"])
    assert empty.num_rows == 0 and full.num_rows == 300
    assert empty.schema == full.schema
    assert str(full.schema.field("customer_id").type) == "string"
    rows = published_rows(scoring.date)
    times = scoring.march["event_time"]
    day = scoring.march[(times >= "2026-03-14") & (times < "2026-03-15")]
    assert sorted(rows["customer_id"]) == sorted(day["customer_id"])
    assert set(rows["model_version"]) == {"1"}


def test_drift_check_names_columns_mlflow_would_refuse(scoring: Scoring) -> None:
    from continuous_training.drift import metric_key

    assert task_states(scoring.first)["check_drift"] == "success"
    summary = xcom_value(scoring.first, "check_drift")
    assert {CHARGES, USAGE} <= set(summary["columns"])
    run_id = xcom_value(scoring.first, "pin_champion")["mlflow_run_id"]
    metrics = scoring.client.get_run(run_id).data.metrics
    assert metrics[metric_key(CHARGES)] == pytest.approx(summary["columns"][CHARGES]["score"])
    assert metrics["drift.score.usage gb"] == pytest.approx(summary["columns"][USAGE]["score"])
    assert summary["metric_keys"][CHARGES] == metric_key(CHARGES)
    published = xcom_value(scoring.first, "publish_predictions")
    assert (Path(published["uri"]) / "_drift.json").exists()


def _on_the_day(march: pd.DataFrame, n: int) -> Any:
    """The index of the n-th row of march scored for 2026-03-14."""
    times = march["event_time"]
    return march.index[(times >= "2026-03-14") & (times < "2026-03-15")][n]


def _text_in_usage(march: pd.DataFrame, path: Path) -> None:
    frame = march.astype({USAGE: object})
    frame.loc[_on_the_day(frame, 5), USAGE] = "n/a GB"
    frame.to_csv(path.with_suffix(".csv"), index=False)


def _infinite_charges(march: pd.DataFrame, path: Path) -> None:
    frame = march.copy()
    frame.loc[_on_the_day(frame, 7), CHARGES] = np.inf
    frame.to_csv(path.with_suffix(".csv"), index=False)


def _truncated_parquet(march: pd.DataFrame, path: Path) -> None:
    target = path.with_suffix(".parquet")
    march.to_parquet(target, index=False)
    target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])


BAD = {
    "text-in-numeric": (_text_in_usage, ".csv", f"column '{USAGE}' is a numeric feature"),
    "infinity": (_infinite_charges, ".csv", f"column '{CHARGES}' holds 1 infinite value"),
    "truncated-parquet": (_truncated_parquet, ".parquet", "is not a readable parquet file"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_scoring_file_fails_at_once_and_keeps_the_published_date(
    scoring: Scoring, case: str
) -> None:
    write, suffix, message = BAD[case]
    late = scoring.data / "events_march_late"
    write(scoring.march, late)
    try:
        run = run_dag(f"{NAME}_batch_inference", DAY_RUN.replace(hour=10 + list(BAD).index(case)))
    finally:
        late.with_suffix(suffix).unlink()
    states = task_states(run)
    assert str(run.state) == "failed", states
    assert states["score_partition"] == "failed/success*3", states
    assert states["publish_predictions"] == "upstream_failed", states
    [error] = task_errors(run)["score_partition"]  # one attempt: bad input is not retried
    assert message in error and str(late.with_suffix(suffix)) in error, error
    scoring.assert_unchanged()
    # the failed run did write its good partitions, into a set readers do not follow
    published_set = Path(xcom_value(scoring.first, "publish_predictions")["uri"]).name
    unpublished = [p for p in scoring.date.glob("set=*") if p.name != published_set]
    assert any(len(list(p.glob("part-*.parquet"))) >= 2 for p in unpublished)
    rows = published_rows(scoring.date)
    assert len(rows) == 300 and set(rows["model_version"]) == {"1"}
    assert set(rows["airflow_run_id"]) == {scoring.first.run_id}


def test_rerun_of_a_date_replaces_its_set_as_a_whole(scoring: Scoring) -> None:
    before = xcom_value(scoring.first, "publish_predictions")
    again = run_dag(f"{NAME}_batch_inference", DAY_RUN.replace(hour=20))
    assert str(again.state) == "success", task_states(again)
    after = xcom_value(again, "publish_predictions")
    assert after["uri"] != before["uri"]
    # the superseded set and any set a failed run left are gone; one set of rows remains
    assert sorted(p.name for p in scoring.date.iterdir()) == [
        "_manifest.json",
        Path(after["uri"]).name,
    ]
    rows = published_rows(scoring.date)
    assert len(rows) == 300 and rows["customer_id"].is_unique
    assert set(rows["airflow_run_id"]) == {again.run_id}
    assert champion(scoring.client, NAME) == "1"
