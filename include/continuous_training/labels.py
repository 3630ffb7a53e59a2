"""Labels as data: the outcomes (ground truth) of scored rows, as known at a given time.

Outcomes arrive days after the predictions. `fetch_labels` reads them from the pipeline's
labels source (`labels.source`, else the scoring source) for the rows whose `time_column`
(the time of the scored row, so its prediction date) lies in a window, and keeps only those
whose `labels.known_at_column` is before `as_of`: a run passes its data interval's end, so a
re-run sees exactly what the first run saw, whatever has arrived since. Nothing here reads
the clock.

A labels source is any source kind (`synthetic`, `file`, `sql`, a `DataSource` class) and
returns the scoring id columns, `time_column`, the target and the known-at column; features
are not needed and extra columns are dropped. A file source's path may hold `{date}` (files
per prediction date, as for scoring); a date with no file yet has no labels yet. The `pii`
rules apply to its ids as to every fetch, so labels join predictions whose ids were hashed.
The `synthetic` kind yields the outcomes of exactly the rows the synthetic scoring source
with the same settings produced, each known `labels.delay_days * U` after its row (U uniform
in [0.5, 1], drawn per seed and day), so every label of a date is in `delay_days` after it.

Duplicates: several outcomes for the same ids and prediction date (the UTC date of
`time_column`) are corrections; the one known last (as of `as_of`) is kept.

pandas and numpy are imported inside functions: importing this module costs nothing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from continuous_training.sources import DataSource, SourceError, Window

if TYPE_CHECKING:
    import pandas as pd

    from continuous_training.config import LabelsConfig, PipelineConfig, SourceConfig

# a file source's path may hold `{date}`, one folder or file per prediction date (as scoring)
DATE_PLACEHOLDER = "{date}"
# the classes of a classification target (validation.LABEL_VALUES, kept light here)
LABEL_VALUES = (0, 1)
# salt of the synthetic delays' generator: independent of the rows' own draws
_DELAY_STREAM = 0x1ABE15


class LabelError(SourceError):
    """Labels cannot be used as they are; the message names the source and the column."""


def label_columns(pipeline: PipelineConfig) -> list[str]:
    """The columns `fetch_labels` returns, in order: ids, time, target, known-at."""
    labels = _labels_config(pipeline)
    return [
        *pipeline.scoring_id_columns,
        pipeline.time_column,
        pipeline.target,
        labels.known_at_column,
    ]


def fetch_labels(
    pipeline: PipelineConfig,
    window: Window,
    as_of: datetime,
    *,
    connection_uri: str | None = None,
) -> pd.DataFrame:
    """The outcomes of the rows scored in `window` that were known before `as_of`.

    Columns exactly `label_columns(pipeline)`; `time_column` and the known-at column as
    `datetime64[ns, UTC]`; a classification target as int64 0/1; sorted by (time, ids) with
    a fresh index. Bad labels raise `LabelError` naming the source and the column; a labels
    server that cannot be reached raises `SourceUnavailableError` (retried).
    """
    from continuous_training import sources

    labels = _labels_config(pipeline)
    as_of = _as_of(as_of)
    config = pipeline.labels_source
    assert config is not None  # a labels section always has a source
    derived = pipeline.model_copy(update={"source": config})
    origin = _origin(pipeline)
    if config.kind == "synthetic":
        source: DataSource = SyntheticLabels(derived)
    elif config.kind == "file" and DATE_PLACEHOLDER in (config.path or ""):
        source = DatedFiles(derived)
    else:
        source = sources.make_source(derived, connection_uri=connection_uri)
    try:
        df = sources.fetch_window(source, derived, window)
    except LabelError:
        raise
    except SourceError as exc:
        raise LabelError(f"labels from {origin}: {exc}") from exc
    return _canonical(df, pipeline, labels.known_at_column, as_of, origin)


def _labels_config(pipeline: PipelineConfig) -> LabelsConfig:
    if pipeline.labels is None:
        where = f"{pipeline.source_file}: " if pipeline.source_file else ""
        raise LabelError(f"{where}the pipeline has no labels section: it has no outcomes to fetch")
    return pipeline.labels


def _as_of(value: datetime) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise LabelError(f"as_of {value!r} must be a timezone-aware datetime")
    v = value.astimezone(UTC)
    return datetime(v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond, UTC)


def _origin(pipeline: PipelineConfig) -> str:
    """The labels source as the YAML names it, e.g. `labels.source.kind 'file' (...)`."""
    from continuous_training.sources import describe

    assert pipeline.labels is not None and pipeline.labels_source is not None
    if pipeline.labels.source is not None:
        key = "labels.source"
    elif pipeline.inference.source is not None:
        key = "inference.source"
    else:
        key = "source"
    text = describe(pipeline.labels_source).replace("source.", f"{key}.")
    return f"{pipeline.source_file}: {text}" if pipeline.source_file else text


def _canonical(
    df: pd.DataFrame, pipeline: PipelineConfig, known_at: str, as_of: datetime, origin: str
) -> pd.DataFrame:
    """Checked, filtered to `as_of`, corrections resolved, label columns only, sorted."""
    from continuous_training.sources import utc_times

    ids, time, target = pipeline.scoring_id_columns, pipeline.time_column, pipeline.target
    keys = {
        **{
            c: "inference.id_columns" if pipeline.inference.id_columns else "id_columns"
            for c in ids
        },
        target: "target",
        known_at: "labels.known_at_column",
    }
    missing = [c for c in keys if c not in df.columns]
    if missing:
        described = ", ".join(f"{c!r} ({keys[c]})" for c in missing)
        raise LabelError(
            f"labels from {origin} lack the columns {described}; a labels source returns "
            f"{label_columns(pipeline)} (columns found: {list(df.columns)})"
        )
    try:
        known = utc_times(df, known_at, origin)
    except SourceError as exc:
        message = str(exc).replace(
            f"time_column {known_at!r}", f"labels.known_at_column {known_at!r}"
        )
        raise LabelError(f"labels from {origin}: {message}") from exc
    df = df.assign(**{known_at: known})
    # What was known before as_of, and nothing else: a re-run sees the same rows.
    df = df[(known < as_of).to_numpy()]
    _check_ids(df, ids, origin)
    df = df.assign(**{target: _checked_target(df[target], pipeline, origin)})
    early = df[known_at] < df[time]
    if early.any():
        first = df[early.to_numpy()].iloc[0]
        example = ", ".join(f"{c}={first[c]!s}" for c in [*ids, time, known_at])
        raise LabelError(
            f"labels from {origin}: {int(early.sum())} of {len(df)} outcomes are known "
            f"(labels.known_at_column {known_at!r}) before their row's time_column {time!r}: "
            f"an outcome cannot be known before the prediction; e.g. {example}"
        )
    # Corrections: for the same ids and prediction date, the outcome known last wins.
    date = df[time].dt.floor("D")
    order = [*ids, "__date", known_at]
    df = (
        df.assign(__date=date)
        .sort_values(order, kind="mergesort")
        .drop_duplicates([*ids, "__date"], keep="last")
    )
    columns = label_columns(pipeline)
    df = df[columns].sort_values([time, *ids], kind="mergesort").reset_index(drop=True)
    return df.astype({time: "datetime64[ns, UTC]", known_at: "datetime64[ns, UTC]"})


def _check_ids(df: pd.DataFrame, ids: list[str], origin: str) -> None:
    for column in ids:
        nulls = int(df[column].isna().sum())
        if nulls:
            raise LabelError(
                f"labels from {origin}: {nulls} of {len(df)} values of the id column "
                f"{column!r} are null; an outcome without its id joins no prediction"
            )


def _checked_target(values: pd.Series, pipeline: PipelineConfig, origin: str) -> pd.Series:
    """The target as the model saw it: 0/1 (int64) for classification, numbers otherwise."""
    import pandas as pd

    column = pipeline.target
    nulls = int(values.isna().sum())
    if nulls:
        raise LabelError(
            f"labels from {origin}: {nulls} of {len(values)} values of the target {column!r} "
            "are null; a row without its outcome has no label yet: leave it out until known"
        )
    if pipeline.task != "classification":
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            raise LabelError(
                f"labels from {origin}: the target {column!r} is {values.dtype}, not numbers"
            )
        return values.astype("float64")
    if pd.api.types.is_bool_dtype(values):
        return values.astype("int64")
    numeric = pd.api.types.is_numeric_dtype(values)
    bad = ~values.isin(LABEL_VALUES) if numeric else pd.Series(True, index=values.index)
    if bad.any():
        sample = [str(v) for v in dict.fromkeys(values[bad].tolist())][:5]
        raise LabelError(
            f"labels from {origin}: {int(bad.sum())} of {len(values)} values of the "
            f"classification target {column!r} are not 0 or 1 (False or True), e.g. {sample}; "
            "map the outcomes to 1 for the positive class and 0 for the other at the source"
        )
    return values.astype("int64")


def _days(window: Window) -> list[date]:
    first = window.start.date()
    last = (window.end - timedelta(microseconds=1)).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


class DatedFiles(DataSource):
    """A file source whose path holds `{date}`: the files of each prediction date.

    A date whose path matches nothing has no labels yet (they arrive late): it is skipped.
    """

    def fetch(self, window: Window) -> pd.DataFrame:
        import pandas as pd
        from fsspec.core import url_to_fs

        from continuous_training.sources import FileSource, matching_files

        config = self.pipeline.source
        frames = []
        for day in _days(window):
            path = (config.path or "").replace(DATE_PLACEHOLDER, day.isoformat())
            fs, local = url_to_fs(path)
            if not matching_files(fs, local, config.format):
                continue
            dated = self.pipeline.model_copy(
                update={"source": config.model_copy(update={"path": path})}
            )
            frames.append(FileSource(dated).fetch(window))
        if not frames:
            return pd.DataFrame(columns=label_columns(self.pipeline))
        return pd.concat(frames, ignore_index=True)


class SyntheticLabels(DataSource):
    """The outcomes of the synthetic source's rows, each known some days after its row.

    The same seed, rows per day and onsets give the same ids and targets as the synthetic
    scoring source; the known-at time is `event_time + labels.delay_days * U`, U uniform in
    [0.5, 1] from a generator seeded with (seed, day), to the millisecond.
    """

    def fetch(self, window: Window) -> pd.DataFrame:
        import pandas as pd

        from continuous_training.sources import SYNTHETIC_COLUMNS

        pipeline = self.pipeline
        wanted = [*pipeline.scoring_id_columns, pipeline.time_column, pipeline.target]
        unknown = [c for c in wanted if c not in SYNTHETIC_COLUMNS]
        if unknown:
            raise LabelError(
                f"labels from {_origin(pipeline)}: the synthetic source cannot produce the "
                f"columns {unknown}; it produces {list(SYNTHETIC_COLUMNS)}"
            )
        frames = [self._day(day, wanted) for day in _days(window)]
        return pd.concat(frames, ignore_index=True)

    def _day(self, day: date, wanted: list[str]) -> pd.DataFrame:
        import numpy as np
        import pandas as pd

        from continuous_training.sources import synthetic_day

        config: SourceConfig = self.pipeline.source
        labels = self.pipeline.labels
        assert labels is not None
        columns = synthetic_day(config, day)
        n = len(columns["event_time"])
        rng = np.random.default_rng([config.seed, day.toordinal(), _DELAY_STREAM])
        delay_ms = np.round(labels.delay_days * 86_400_000 * rng.uniform(0.5, 1.0, n))
        known = columns["event_time"] + delay_ms.astype("int64").astype("timedelta64[ms]")
        frame = pd.DataFrame({c: columns[c] for c in wanted})
        frame[labels.known_at_column] = known.astype("datetime64[ns]")
        return frame
