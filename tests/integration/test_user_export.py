"""A user's own export, as it comes, through the real weekly retraining and batch inference.

Everything at once that once broke a run or bent its result: a CSV with a BOM and `;` as
delimiter, column names with spaces, brackets and non-ASCII letters, a history from 2019,
times as text mixing naive values (UTC) with values carrying an offset, categories that look
like numbers (`0042`), ids with leading zeros, and labels written as floats (0.0/1.0). The
same file is trained on and scored (`inference.source` unset).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from tests.integration.dag_runs import champion, run_dag, task_states, write_pipeline, xcom_value

pytestmark = pytest.mark.integration

NAME = "churn_user_export"
END = datetime(2019, 3, 3, tzinfo=UTC)
RENAMED = {
    "customer_id": "Kunden-Nr",
    "monthly_charges": "Monatliche Gebühr (€)",
    "region": "Region [Code]",
    "churned": "gekündigt",
    "event_time": "Zeitpunkt",
}
REGION_CODES = {"north": "0042", "south": "0043", "east": "0101", "west": "0007"}


def export(path: Path) -> pd.DataFrame:
    from continuous_training.config import find_pipeline
    from continuous_training.sources import Window, fetch_window, make_source

    churn = find_pipeline("churn")
    recent_end = datetime(2026, 3, 1, tzinfo=UTC)
    frame = fetch_window(make_source(churn), churn, Window.from_end(recent_end, 35))
    frame["event_time"] -= recent_end - END
    frame["customer_id"] = [f"{i:07d}" for i in range(len(frame))]
    frame["region"] = frame["region"].map(REGION_CODES)
    frame["churned"] = frame["churned"].astype("float64")
    # every other row in Central European Time, the rest naive (UTC), as two systems wrote them
    text = frame["event_time"].dt.strftime("%Y-%m-%d %H:%M:%S.%f").str[:-3]
    cet = (frame["event_time"] + pd.Timedelta(hours=1)).dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
    text[1::2] = cet[1::2].str[:-3] + "+01:00"
    out = frame.assign(event_time=text).rename(columns=RENAMED)
    path.write_bytes(b"\xef\xbb\xbf" + out.to_csv(index=False, sep=";").encode("utf-8"))
    return frame


def test_a_users_own_export_trains_and_scores(client, tmp_path: Path) -> None:
    frame = export(tmp_path / "export.csv")
    columns = {RENAMED.get(c, c): c for c in frame.columns}
    back = {v: k for k, v in columns.items()}
    write_pipeline(
        NAME,
        source={"kind": "file", "path": str(tmp_path / "export.csv")},
        target=back["churned"],
        time_column=back["event_time"],
        id_columns=[back["customer_id"]],
        features={
            "numeric": ["tenure_months", back["monthly_charges"], "support_calls", "usage_gb"],
            "categorical": ["plan", back["region"], "payment_method"],
        },
        expectations={"columns": {back["region"]: {"allowed": sorted(REGION_CODES.values())}}},
        inference={"source": None},
    )
    weekly = run_dag(f"{NAME}_weekly_retraining", END.replace(hour=2))
    assert str(weekly.state) == "success", task_states(weekly)
    assert champion(client, NAME) == "1"
    snapshot = pd.read_parquet(xcom_value(weekly, "fetch")["uri"])
    # the instants written, whichever way each row wrote them; nothing shifted or lost
    window_start = pd.Timestamp(END) - pd.Timedelta(days=28)  # 21 training + 7 holdout days
    times = frame["event_time"]
    expected = times[(times >= window_start) & (times < END)]
    expected = expected.sort_values().reset_index(drop=True)
    pd.testing.assert_series_equal(
        snapshot[back["event_time"]].sort_values(ignore_index=True), expected, check_names=False
    )
    assert set(snapshot[back["region"]]) == set(REGION_CODES.values())

    scored = run_dag(f"{NAME}_batch_inference", datetime(2019, 2, 28, 3, tzinfo=UTC))
    assert str(scored.state) == "success", task_states(scored)
    published = xcom_value(scored, "publish_predictions")
    rows = pd.concat([pd.read_parquet(p["uri"]) for p in published["parts"]])
    day = frame[frame["event_time"].dt.date == datetime(2019, 2, 27).date()]
    assert sorted(rows[back["customer_id"]]) == sorted(day["customer_id"])  # text, zeros kept
    assert set(rows["model_version"]) == {"1"} and rows["probability"].between(0, 1).all()
