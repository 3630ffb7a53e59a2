"""Labels as data: synthetic outcomes, as-of filtering, files with odd inputs, a sql source."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from continuous_training.config import PipelineConfig
from continuous_training.errors import BadInputError
from continuous_training.labels import LabelError, fetch_labels, label_columns
from continuous_training.sources import DataSource, Window, fetch_window, make_source

MakeConfig = Callable[..., PipelineConfig]
DAYS = Window(datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 5, tzinfo=UTC))
LATE = datetime(2026, 6, 1, tzinfo=UTC)  # every label of DAYS is known by then


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def synthetic(make_config: MakeConfig) -> PipelineConfig:
    return make_config(labels={"delay_days": 10}, source={"concept_drift_onset": "2026-03-03"})


def scored_rows(config: PipelineConfig, window: Window) -> pd.DataFrame:
    """What the synthetic scoring source produced for `window`."""
    scoring = config.model_copy(update={"source": config.scoring_source})
    return fetch_window(make_source(scoring), scoring, window)


def test_label_columns(synthetic: PipelineConfig) -> None:
    assert label_columns(synthetic) == ["customer_id", "event_time", "churned", "label_time"]


def test_synthetic_labels_are_the_scored_rows_outcomes(synthetic: PipelineConfig) -> None:
    labels = fetch_labels(synthetic, DAYS, LATE)
    rows = scored_rows(synthetic, DAYS)
    assert list(labels.columns) == label_columns(synthetic)
    assert len(labels) == len(rows) == 3 * 300
    pd.testing.assert_series_equal(labels["customer_id"], rows["customer_id"])
    pd.testing.assert_series_equal(labels["event_time"], rows["event_time"])
    pd.testing.assert_series_equal(labels["churned"], rows["churned"])
    assert str(labels["label_time"].dtype) == "datetime64[ns, UTC]"
    delay = (labels["label_time"] - labels["event_time"]) / timedelta(days=1)
    assert delay.between(5.0, 10.0).all()  # delay_days * U, U in [0.5, 1]
    assert delay.std() > 1.0


def test_synthetic_labels_follow_the_scoring_source(make_config: MakeConfig) -> None:
    # The churn pipeline scores seed 7 (inference.source): its labels are seed 7's rows.
    config = make_config(labels={})
    labels = fetch_labels(config, DAYS, LATE)
    rows = scored_rows(config, DAYS)
    assert labels["customer_id"].tolist() == rows["customer_id"].tolist()
    assert labels["churned"].tolist() == rows["churned"].tolist()
    training = fetch_window(make_source(config), config, DAYS)
    assert labels["churned"].tolist() != training["churned"].tolist()


def test_as_of_keeps_what_was_known_and_reruns_agree(synthetic: PipelineConfig) -> None:
    everything = fetch_labels(synthetic, DAYS, LATE)
    as_of = utc(2026, 3, 10)
    known = fetch_labels(synthetic, DAYS, as_of)
    assert 0 < len(known) < len(everything)
    assert (known["label_time"] < as_of).all()
    expected = everything[everything["label_time"] < as_of].reset_index(drop=True)
    pd.testing.assert_frame_equal(known, expected)
    pd.testing.assert_frame_equal(fetch_labels(synthetic, DAYS, as_of), known)
    # nothing is known before the first prediction; all is known delay_days after the last
    assert fetch_labels(synthetic, DAYS, DAYS.start).empty
    assert len(fetch_labels(synthetic, DAYS, DAYS.end + timedelta(days=10))) == len(everything)


def test_as_of_must_be_aware(synthetic: PipelineConfig) -> None:
    with pytest.raises(LabelError, match="as_of"):
        fetch_labels(synthetic, DAYS, datetime(2026, 4, 1))


def test_no_labels_section(make_config: MakeConfig) -> None:
    with pytest.raises(LabelError, match="no labels section"):
        fetch_labels(make_config(labels=None, gates={"live_evidence": False}), DAYS, LATE)


def test_label_error_is_bad_input() -> None:
    assert issubclass(LabelError, BadInputError)


# --------------------------------------------------------------------------- files


def outcomes() -> pd.DataFrame:
    """Labels as a team would export them: naive UTC text times, an extra column."""
    return pd.DataFrame(
        {
            "customer_id": ["007", "C2", "C1", "C3", "C1"],
            "event_time": [
                "2026-03-02 10:00:00",
                "2026-03-02 09:00:00",
                "2026-03-02 08:00:00",
                "2026-03-06 08:00:00",  # outside the window
                "2026-03-02 08:00:00",  # a correction of C1, known later
            ],
            "churned": [1, 0, 0, 1, 1],
            "label_time": [
                "2026-03-09 00:00:00",
                "2026-03-12T00:00:00+02:00",
                "2026-03-08 12:00:00",
                "2026-03-09 00:00:00",
                "2026-03-11 12:00:00",
            ],
            "source_system": ["crm"] * 5,
        }
    )


def file_config(make_config: MakeConfig, path: Path) -> PipelineConfig:
    return make_config(labels={"source": {"kind": "file", "path": str(path)}})


def write_csv(frame: pd.DataFrame, path: Path, sep: str = ";") -> Path:
    frame.to_csv(path, sep=sep, index=False)
    return path


def test_a_semicolon_csv_of_labels(make_config: MakeConfig, tmp_path: Path) -> None:
    config = file_config(make_config, write_csv(outcomes(), tmp_path / "labels.csv"))
    labels = fetch_labels(config, DAYS, LATE)
    assert list(labels.columns) == label_columns(config)
    assert labels["customer_id"].tolist() == ["C1", "C2", "007"]  # by time, ids as text
    assert labels["churned"].tolist() == [1, 0, 1]  # C1's correction, known last, wins
    assert labels["event_time"].iloc[0] == pd.Timestamp("2026-03-02 08:00", tz="UTC")
    assert labels["label_time"].iloc[1] == pd.Timestamp("2026-03-11 22:00", tz="UTC")
    assert str(labels["label_time"].dtype) == "datetime64[ns, UTC]"
    # as of 2026-03-10 the correction was not known yet: the first outcome stands
    before = fetch_labels(config, DAYS, utc(2026, 3, 10))
    assert before["customer_id"].tolist() == ["C1", "007"]
    assert before["churned"].tolist() == [0, 1]


def test_a_parquet_file_of_labels_with_naive_times(make_config: MakeConfig, tmp_path: Path) -> None:
    frame = outcomes().iloc[[0, 1, 2]]
    frame = frame.assign(
        event_time=pd.to_datetime(frame["event_time"]),
        label_time=pd.to_datetime(["2026-03-09 00:00", "2026-03-11 22:00", "2026-03-08 12:00"]),
        churned=[1.0, 0.0, 0.0],  # floats 0.0/1.0 are fine
    )
    path = tmp_path / "labels.parquet"
    frame.to_parquet(path, index=False)
    labels = fetch_labels(file_config(make_config, path), DAYS, LATE)
    assert labels["customer_id"].tolist() == ["C1", "C2", "007"]
    assert labels["churned"].tolist() == [0, 0, 1]
    assert str(labels["churned"].dtype) == "int64"
    assert labels["event_time"].iloc[0] == pd.Timestamp("2026-03-02 08:00", tz="UTC")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns=["label_time"]), r"'label_time' \(labels.known_at_column\)"),
        (lambda f: f.drop(columns=["customer_id"]), r"'customer_id' \(id_columns\)"),
        (lambda f: f.drop(columns=["churned"]), r"'churned' \(target\)"),
        (lambda f: f.assign(churned=[1, 0, 2, 1, 1]), r"target 'churned' are not 0 or 1.*'2'"),
        (lambda f: f.assign(churned=["yes", "no"] * 2 + ["no"]), "are not 0 or 1"),
        (lambda f: f.assign(churned=[1, None, 0, 1, 1]), "target 'churned' are null"),
        (lambda f: f.assign(customer_id=["a", None, "c", "d", "e"]), "id column 'customer_id'"),
        (lambda f: f.assign(label_time=["03/09/2026"] * 5), "labels.known_at_column 'label_time'"),
        (lambda f: f.assign(event_time=["yesterday"] * 5), "time_column 'event_time'"),
        (
            lambda f: f.assign(label_time=["2026-03-02 09:59:00", *f["label_time"][1:]]),
            r"1 of 4 outcomes are known .* before .*customer_id=007",
        ),
    ],
)
def test_bad_label_files_name_the_source_and_column(
    make_config: MakeConfig, tmp_path: Path, change: Callable, message: str
) -> None:
    path = write_csv(change(outcomes()), tmp_path / "labels.csv")
    with pytest.raises(LabelError, match=message) as raised:
        fetch_labels(file_config(make_config, path), DAYS, LATE)
    assert "labels.source" in str(raised.value) and "labels.csv" in str(raised.value)


def test_pii_hashes_label_ids_as_it_hashes_scored_ids(
    make_config: MakeConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CT_PII_HASH_KEY", "k" * 32)
    path = write_csv(outcomes(), tmp_path / "labels.csv")
    config = make_config(
        labels={"source": {"kind": "file", "path": str(path)}}, pii={"hash": ["customer_id"]}
    )
    labels = fetch_labels(config, DAYS, LATE)
    assert not set(labels["customer_id"]) & {"C1", "C2", "007"}
    assert labels["customer_id"].str.fullmatch("[0-9a-f]{64}").all()


# --------------------------------------------------------------------------- sql


@pytest.mark.integration
def test_labels_from_postgresql(make_config: MakeConfig) -> None:
    from tests.integration.postgres import fresh_database

    frame = outcomes()
    table = frame.assign(
        event_time=pd.to_datetime(frame["event_time"], utc=True),
        label_time=pd.to_datetime(frame["label_time"], utc=True, format="ISO8601"),
    )
    query = (
        "SELECT customer_id, event_time, churned, label_time, source_system FROM outcomes "
        "WHERE event_time >= :window_start AND event_time < :window_end"
    )
    config = make_config(labels={"source": {"kind": "sql", "conn_id": "labels_db", "query": query}})
    with fresh_database({"outcomes": table}) as uri:
        labels = fetch_labels(config, DAYS, LATE, connection_uri=uri)
        again = fetch_labels(config, DAYS, LATE, connection_uri=uri)
        early = fetch_labels(config, DAYS, utc(2026, 3, 10), connection_uri=uri)
    assert list(labels.columns) == label_columns(config)
    assert labels["customer_id"].tolist() == ["C1", "C2", "007"]
    assert labels["churned"].tolist() == [1, 0, 1]
    assert str(labels["event_time"].dtype) == "datetime64[ns, UTC]"
    pd.testing.assert_frame_equal(labels, again)
    assert early["churned"].tolist() == [0, 1]


class MyLabels(DataSource):
    """A user's labels class: ids, time, target and known-at only, out of order."""

    def fetch(self, window: Window) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "customer_id": ["b", "a"],
                "event_time": [window.start + timedelta(hours=2), window.start],
                "churned": [True, False],
                "label_time": [window.start + timedelta(days=3)] * 2,
            }
        )


def test_labels_from_a_source_class_of_your_own(make_config: MakeConfig) -> None:
    config = make_config(labels={"source": {"kind": "tests.unit.test_labels.MyLabels"}})
    labels = fetch_labels(config, DAYS, LATE)
    assert labels["customer_id"].tolist() == ["a", "b"]
    assert labels["churned"].tolist() == [0, 1]


def test_labels_module_imports_nothing_heavy() -> None:
    import subprocess
    import sys

    code = (
        "import sys, continuous_training.labels\n"
        "heavy = {'airflow', 'pandas', 'numpy', 'pyarrow', 'sqlalchemy', 'fsspec'}\n"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_label_files_per_date_with_a_date_not_landed_yet(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    frame = outcomes()
    for day in ("2026-03-02", "2026-03-06"):  # 2026-03-03 and -04 have no file yet
        (tmp_path / day).mkdir()
        rows = frame[frame["event_time"].str.startswith(day)]
        write_csv(rows, tmp_path / day / "labels.csv")
    path = tmp_path / "{date}" / "*.csv"
    config = make_config(labels={"source": {"kind": "file", "path": str(path)}})
    labels = fetch_labels(config, DAYS, LATE)
    assert labels["customer_id"].tolist() == ["C1", "C2", "007"]
    nothing = Window(utc(2026, 3, 3), utc(2026, 3, 5))
    empty = fetch_labels(config, nothing, LATE)
    assert empty.empty and list(empty.columns) == label_columns(config)
    assert str(empty["event_time"].dtype) == str(empty["label_time"].dtype) == "datetime64[ns, UTC]"
    assert str(empty["churned"].dtype) == "int64"
