"""`check_source`: run your own data source the way the pipeline does, before a DAG does.

Like scikit-learn's `check_estimator`, it exercises a `DataSource` class against what the
pipeline relies on and raises `SourceCheckError` (an `AssertionError`) naming the first
thing that is wrong::

    from datetime import UTC, datetime
    from continuous_training.source_checks import check_source

    check_source(
        "my_package.sources.MySource",          # or the class itself
        "include/pipelines/my_model.yaml",      # or a PipelineConfig
        (datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 2, 8, tzinfo=UTC)),
    )

Give it a window in which your data has rows. What it checks, in order:

1. the class is a `DataSource` that implements `fetch` (as `source.kind` is resolved);
2. `cls(pipeline, connection_uri=...)` constructs it and keeps both arguments (the
   pipeline reads `source.pipeline` and `source.options`);
3. `fetch(window)` returns a pandas DataFrame holding every column of `pipeline.columns`;
4. its time column can be read as timestamps one way only (naive values are UTC, aware
   ones are converted; ISO 8601 text), with no row lacking a time;
5. the window has rows (else nothing below would mean anything);
6. a second instance fetching the same window gives the same rows, in the same canonical
   frame: a re-run must give the same snapshot hash;
7. the window's rows are exactly the rows of its two parts, split at a row's time: every
   row lies in one window only, and none is lost at a window's edge (as when a source
   filters on times of another time zone than the ones it returns).

Rows outside the window are not an error: the source contract lets `fetch_window` trim them.
No Airflow; pandas is imported inside the functions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from continuous_training.config import PipelineConfig, load_pipeline
from continuous_training.sources import (
    DataSource,
    SourceError,
    Window,
    describe,
    fetch_window,
    source_class,
    utc_times,
)

if TYPE_CHECKING:
    import pandas as pd


class SourceCheckError(AssertionError):
    """A data source does not do what the pipeline relies on; the message says what."""


def check_source(
    source: type[DataSource] | str,
    pipeline: PipelineConfig | str | Path,
    window: Window | tuple[datetime, datetime],
    *,
    connection_uri: str | None = None,
) -> None:
    """Raise SourceCheckError naming the first thing `source` does that the pipeline cannot use.

    `source` is a `DataSource` subclass or its import path; `pipeline` a config or the path
    of its YAML; `window` a time window (timezone-aware) in which the data has rows;
    `connection_uri` what the operator would resolve from `source.conn_id`.
    """
    config = pipeline if isinstance(pipeline, PipelineConfig) else load_pipeline(pipeline)
    whole = window if isinstance(window, Window) else Window(*window)
    cls = _source_class(source, config)
    name = cls.__name__
    raw = _fetch(_construct(cls, config, connection_uri), config, whole)
    _check_has_pipeline_columns(name, config, raw)
    _check_times(name, config, raw)
    first = _canonical(cls, config, connection_uri, whole)
    if len(first) == 0:
        _fail(name, f"fetch({whole}) returned no rows: give a window in which the data has rows")
    again = _canonical(cls, config, connection_uri, whole)
    _check_same(name, whole, first, again)
    _check_parts(name, config, connection_uri, cls, whole, first)


def _fail(name: str, problem: str) -> None:
    raise SourceCheckError(f"{name}: {problem}")


def _source_class(source: type[DataSource] | str, config: PipelineConfig) -> type[DataSource]:
    try:
        return source_class(source, config.source_file)
    except SourceError as exc:
        raise SourceCheckError(str(exc)) from exc


def _construct(
    cls: type[DataSource], config: PipelineConfig, connection_uri: str | None
) -> DataSource:
    try:
        instance = cls(config, connection_uri=connection_uri)
    except TypeError as exc:
        raise SourceCheckError(
            f"{cls.__name__}(pipeline, connection_uri=...) cannot be constructed as the "
            f"pipeline constructs it: {exc}"
        ) from exc
    if getattr(instance, "pipeline", None) is not config:
        _fail(
            cls.__name__,
            "__init__ does not keep the pipeline as self.pipeline: call "
            "super().__init__(pipeline, connection_uri=connection_uri)",
        )
    if getattr(instance, "connection_uri", None) != connection_uri:
        _fail(cls.__name__, "__init__ does not keep connection_uri as self.connection_uri")
    return instance


def _guarded(name: str, what: str, call: Callable[[], Any]) -> Any:
    """`call()`; any error it raises becomes a SourceCheckError saying which call failed."""
    try:
        return call()
    except SourceCheckError:
        raise
    except Exception as exc:  # whatever the user code raises: say where
        raise SourceCheckError(f"{name}: {what} raised {type(exc).__name__}: {exc}") from exc


def _fetch(instance: DataSource, config: PipelineConfig, window: Window) -> pd.DataFrame:
    import pandas as pd

    name = type(instance).__name__
    df = _guarded(name, f"fetch({window})", lambda: instance.fetch(window))
    if not isinstance(df, pd.DataFrame):
        _fail(name, f"fetch({window}) returned {type(df).__name__}, not a pandas DataFrame")
    return df


def _check_has_pipeline_columns(name: str, config: PipelineConfig, df: pd.DataFrame) -> None:
    missing = [c for c in config.columns if c not in df.columns]
    if missing:
        _fail(
            name,
            f"fetch returned no column(s) {missing} of pipeline.columns {config.columns} "
            f"(it returned {list(df.columns)})",
        )


def _check_times(name: str, config: PipelineConfig, df: pd.DataFrame) -> None:
    origin = describe(config.source)
    _guarded(name, "reading the time column", lambda: utc_times(df, config.time_column, origin))


def _canonical(
    cls: type[DataSource], config: PipelineConfig, connection_uri: str | None, window: Window
) -> pd.DataFrame:
    """The window as the pipeline sees it, fetched by a fresh instance (as each task does)."""
    instance = cls(config, connection_uri=connection_uri)
    return _guarded(
        cls.__name__, f"fetch_window({window})", lambda: fetch_window(instance, config, window)
    )


def _check_same(name: str, window: Window, first: pd.DataFrame, again: pd.DataFrame) -> None:
    if len(first) != len(again):
        _fail(
            name,
            f"fetch({window}) is not deterministic: {len(first)} rows, then {len(again)} rows "
            "from a second instance; the same window must give the same rows, or a re-run "
            "writes another snapshot",
        )
    for column in first.columns:
        if column not in again.columns or not first[column].equals(again[column]):
            _fail(
                name,
                f"fetch({window}) is not deterministic: column {column!r} differs between "
                "two fetches of the same window; the same window must give the same rows "
                "(never read 'now' or sample at random), or a re-run writes another snapshot",
            )


def _row_keys(config: PipelineConfig, df: pd.DataFrame) -> Counter[tuple[Any, ...]]:
    """Each row as (time, id columns...): what identifies it whatever the dtypes."""
    ids = [c for c in config.id_columns if c in df.columns]
    times = df[config.time_column].astype("int64").tolist()
    columns = [df[c].astype(str).tolist() for c in ids]
    return Counter(zip(times, *columns, strict=True))


def _split_point(config: PipelineConfig, window: Window, df: pd.DataFrame) -> datetime | None:
    """The time of a middle row, after the window's start: a row sits on the split edge."""
    import pandas as pd

    times = df[config.time_column]
    later = times[times > pd.Timestamp(window.start)].drop_duplicates()
    if later.empty:
        return None
    return later.iloc[len(later) // 2].floor("us").to_pydatetime()


def _check_parts(
    name: str,
    config: PipelineConfig,
    connection_uri: str | None,
    cls: type[DataSource],
    whole: Window,
    rows: pd.DataFrame,
) -> None:
    split = _split_point(config, whole, rows)
    if split is None:
        return  # every row at the window's start: there is no edge inside it to test
    early, late = Window(whole.start, split), Window(split, whole.end)
    parts = _row_keys(config, _canonical(cls, config, connection_uri, early))
    parts += _row_keys(config, _canonical(cls, config, connection_uri, late))
    expected = _row_keys(config, rows)
    lost, extra = expected - parts, parts - expected
    if lost or extra:
        _fail(
            name,
            f"the rows of {whole} are not the rows of {early} and {late}: "
            f"{sum(lost.values())} row(s) missing from the parts, {sum(extra.values())} "
            "row(s) only in the parts. Every row must lie in exactly one window [start, "
            "end), with times read as the pipeline reads them (naive times are UTC): rows "
            "are lost at a window's edges when the source filters on times of another time "
            "zone than the ones it returns",
        )


__all__ = ["SourceCheckError", "check_source"]
