"""`check_source` passes the shipped sources and the extension example's, and names what is
wrong with a broken one."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from continuous_training.config import PipelineConfig
from continuous_training.source_checks import SourceCheckError, check_source
from continuous_training.sources import (
    DataSource,
    FileSource,
    SyntheticSource,
    Window,
    fetch_window,
    make_source,
)

MakeConfig = Callable[..., PipelineConfig]
REPO = Path(__file__).resolve().parents[2]
HERE = __name__  # "tests.unit.test_source_checks" when pytest runs from the repo root
WINDOW = Window(datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 2, 3, tzinfo=UTC))


# --------------------------------------------------------------------------- broken sources
# Each breaks one thing the pipeline relies on; the rest is the synthetic source's data.


class NotASource:
    pass


class NoFetch(DataSource):
    pass


class OneArgumentInit(SyntheticSource):
    def __init__(self, pipeline: PipelineConfig) -> None:
        super().__init__(pipeline)


class ForgetsThePipeline(SyntheticSource):
    def __init__(self, pipeline: PipelineConfig, *, connection_uri: str | None = None) -> None:
        self.connection_uri = connection_uri


class ReturnsRecords(SyntheticSource):
    def fetch(self, window: Window) -> Any:
        return super().fetch(window).to_dict("records")


class NoTimeColumn(SyntheticSource):
    def fetch(self, window: Window) -> pd.DataFrame:
        return super().fetch(window).drop(columns="event_time")


class MissingFeature(SyntheticSource):
    def fetch(self, window: Window) -> pd.DataFrame:
        return super().fetch(window).drop(columns="usage_gb")


class EpochTimes(SyntheticSource):
    def fetch(self, window: Window) -> pd.DataFrame:
        df = super().fetch(window)
        return df.assign(event_time=df["event_time"].astype("int64") // 10**9)


class NullTimes(SyntheticSource):
    def fetch(self, window: Window) -> pd.DataFrame:
        df = super().fetch(window)
        df.loc[::7, "event_time"] = pd.NaT
        return df


class Raises(SyntheticSource):
    def fetch(self, window: Window) -> pd.DataFrame:
        raise ConnectionError("crm.example:5432 refused the connection")


class NoRowsEver(SyntheticSource):
    def fetch(self, window: Window) -> pd.DataFrame:
        return super().fetch(window).iloc[0:0]


class RandomSample(SyntheticSource):
    """Reads a random tenth less on every call: a re-run would write another snapshot."""

    def fetch(self, window: Window) -> pd.DataFrame:
        return super().fetch(window).sample(frac=0.9, random_state=np.random.default_rng())


class LocalTimes(SyntheticSource):
    """Filters on UTC but returns naive local times (UTC+2), which the pipeline reads as UTC."""

    def fetch(self, window: Window) -> pd.DataFrame:
        df = super().fetch(window)
        local = df["event_time"].dt.tz_convert("Etc/GMT-2").dt.tz_localize(None)
        return df.assign(event_time=local)


# --------------------------------------------------------------------------- passing sources


def test_the_synthetic_source_passes(make_config: MakeConfig) -> None:
    check_source(SyntheticSource, make_config(), WINDOW)
    check_source("synthetic", make_config(), (WINDOW.start, WINDOW.end))


def _written(make_config: MakeConfig, folder: Path, fmt: str) -> PipelineConfig:
    """The synthetic rows of a wider window, written as the file source reads them."""
    synthetic = make_config()
    wider = Window(WINDOW.start - timedelta(days=1), WINDOW.end + timedelta(days=1))
    df = fetch_window(make_source(synthetic), synthetic, wider)
    path = folder / f"events.{fmt}"
    if fmt == "parquet":
        df.to_parquet(path)
    else:
        df.to_csv(path, index=False)
    return make_config(source={"kind": "file", "path": str(path)})


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_the_file_source_passes(make_config: MakeConfig, tmp_path: Path, fmt: str) -> None:
    check_source(FileSource, _written(make_config, tmp_path, fmt), WINDOW)


@pytest.fixture
def dags_on_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """dags/ on sys.path, as Airflow puts it, so that `crm_extension` imports."""
    monkeypatch.syspath_prepend(str(REPO / "dags"))
    before = set(sys.modules)
    yield
    # forget what this test imported from dags/, as if it had never been on the path
    for name in set(sys.modules) - before:
        if name.split(".")[0] == "crm_extension":
            del sys.modules[name]


def test_the_extension_examples_crm_source_passes(
    dags_on_path: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crm_extension import PIPELINE_YAML
    from crm_extension.demo import make_demo_crm

    db = tmp_path / "crm.sqlite"
    make_demo_crm(db, WINDOW.start - timedelta(days=1), WINDOW.end + timedelta(days=1))
    monkeypatch.setenv("CRM_DB_PATH", str(db))
    check_source("crm_extension.sources.CrmSource", PIPELINE_YAML, WINDOW)


# --------------------------------------------------------------------------- failing sources


@pytest.mark.parametrize(
    ("name", "needles"),
    [
        ("NotASource", ["is not a subclass of continuous_training.sources.DataSource"]),
        ("NoFetch", ["does not implement fetch()"]),
        ("OneArgumentInit", ["cannot be constructed", "connection_uri"]),
        ("ForgetsThePipeline", ["does not keep the pipeline as self.pipeline"]),
        ("ReturnsRecords", ["returned list, not a pandas DataFrame"]),
        ("NoTimeColumn", ["no column(s) ['event_time'] of pipeline.columns"]),
        ("MissingFeature", ["no column(s) ['usage_gb'] of pipeline.columns"]),
        ("EpochTimes", ["time_column 'event_time'", "dtype int64 is neither timestamps"]),
        ("NullTimes", ["time_column 'event_time'", "have no time (null)"]),
        ("Raises", ["raised ConnectionError: crm.example:5432 refused the connection"]),
        ("NoRowsEver", ["returned no rows: give a window in which the data has rows"]),
        ("RandomSample", ["is not deterministic"]),
        ("LocalTimes", ["are not the rows of", "missing from the parts", "naive times are UTC"]),
    ],
)
def test_a_broken_source_fails_naming_the_problem(
    make_config: MakeConfig, name: str, needles: list[str]
) -> None:
    with pytest.raises(SourceCheckError) as info:
        check_source(f"{HERE}.{name}", make_config(), WINDOW)
    message = str(info.value)
    for needle in needles:
        assert needle in message, message
    assert isinstance(info.value, AssertionError)


def test_a_class_is_checked_as_its_import_path_is(make_config: MakeConfig) -> None:
    with pytest.raises(SourceCheckError, match=r"source\.kind: .*NotASource' is not a subclass"):
        check_source(NotASource, make_config(), WINDOW)  # type: ignore[arg-type]
    with pytest.raises(SourceCheckError, match=r"LocalTimes: the rows of"):
        check_source(LocalTimes, make_config(), WINDOW)


def test_an_unimportable_source_names_the_key_and_path(make_config: MakeConfig) -> None:
    with pytest.raises(SourceCheckError, match=r"source\.kind: cannot import 'nowhere_xyz\.Src'"):
        check_source("nowhere_xyz.Src", make_config(), WINDOW)
