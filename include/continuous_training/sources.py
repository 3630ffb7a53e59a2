"""Data sources: where a pipeline's rows for one time window come from.

Three sources are built in and selected by `source.kind` in the pipeline YAML:

- `synthetic` (the default): an embedded, deterministic churn-like table with an
  optional drift onset, so the demo runs with no data of your own;
- `file`: parquet or CSV files (local or any fsspec URL; a file, a folder or a glob);
- `sql`: a SQLAlchemy query with the window passed as bound parameters.

Anything else is the import path of a `DataSource` subclass of your own.

Every fetch goes through `fetch_window`, which makes the result canonical (UTC
times, rows inside the window only, a stable order) so that re-running a task for
the same window gives byte-identical snapshots and the same hash.

pandas, numpy, pyarrow and SQLAlchemy are imported inside functions: importing
this module costs nothing at DAG-parse time.
"""

from __future__ import annotations

import abc
import inspect
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from continuous_training import pii
from continuous_training.errors import BadInputError
from continuous_training.imports import resolve, subclass_of

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from continuous_training.config import PipelineConfig, SourceConfig


class SourceError(BadInputError):
    """Data could not be fetched; the message names the config key, path or column."""


class SourceUnavailableError(RuntimeError):
    """The source's server cannot be reached now: retried, unlike a SourceError."""


class EmptyWindowError(SourceError):
    """The source returned no rows for a window that needs data (a retrain's window)."""


# --------------------------------------------------------------------------- window


def _as_utc(value: datetime, name: str) -> datetime:
    """A plain stdlib `datetime` in UTC; naive datetimes are refused, never guessed."""
    if not isinstance(value, datetime):
        raise SourceError(f"window {name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise SourceError(f"window {name} {value!r} must be timezone-aware")
    v = value.astimezone(UTC)
    return datetime(v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond, UTC)


@dataclass(frozen=True)
class Window:
    """A half-open time interval `[start, end)` in UTC, e.g. an Airflow data interval.

    Accepts any timezone-aware datetime (pendulum and pandas Timestamps included) and
    stores it as a plain UTC `datetime`, so windows compare and hash by instant.
    """

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        start, end = _as_utc(self.start, "start"), _as_utc(self.end, "end")
        if start >= end:
            raise SourceError(
                f"window start {start.isoformat()} is not before end {end.isoformat()}"
            )
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    @property
    def days(self) -> float:
        """Length of the window in days (fractional for partial days)."""
        return (self.end - self.start) / timedelta(days=1)

    @classmethod
    def from_end(cls, end: datetime, days: float) -> Window:
        """The `days` days that end (exclusively) at `end`."""
        return cls(start=end - timedelta(days=days), end=end)

    def __str__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"


# --------------------------------------------------------------------------- interface


class DataSource(abc.ABC):
    """The extension point for bringing your own data.

    To read data from a system the built-in sources do not cover, subclass
    `DataSource`, implement `fetch`, and name the class in the pipeline YAML::

        source:
          kind: my_package.sources.MySource   # any importable dotted path
          options: {table: events, region: eu}  # free-form, read from self.options

    Contract:

    - `__init__(pipeline, *, connection_uri=None)` only stores its arguments (it runs
      wherever the pipeline is loaded); open connections in `fetch`. If you override
      it, call `super().__init__(...)`.
    - `fetch(window)` returns a pandas DataFrame holding the rows whose
      `pipeline.time_column` lies in `[window.start, window.end)` (UTC, end exclusive),
      with exactly `pipeline.columns` in that order. It must be a pure function of
      the window and the config: the same window must yield the same rows, so that a
      re-run produces the same snapshot hash. Never read "now".
    - `connection_uri` is a SQLAlchemy/service URL that the Airflow operator resolves
      from `source.conn_id`; the core never talks to Airflow itself.

    You do not need to sort, convert times to UTC or trim rows at the window edges:
    `fetch_window` does that for every source. Column validation happens in a
    separate Great Expectations step, so return the data as it is.

    `continuous_training.source_checks.check_source` runs a source the way the pipeline
    does and says what in this contract it breaks.
    """

    def __init__(self, pipeline: PipelineConfig, *, connection_uri: str | None = None) -> None:
        self.pipeline = pipeline
        self.connection_uri = connection_uri

    @property
    def options(self) -> dict[str, Any]:
        """`source.options` from the pipeline YAML."""
        return dict(self.pipeline.source.options)

    @abc.abstractmethod
    def fetch(self, window: Window) -> pd.DataFrame:
        """Return the rows of `window` with `pipeline.columns`, in that order."""


def make_source(pipeline: PipelineConfig, *, connection_uri: str | None = None) -> DataSource:
    """Instantiate the source named by `source.kind`: a builtin or an import path."""
    cls = source_class(pipeline.source.kind, pipeline.source_file)
    return cls(pipeline, connection_uri=connection_uri)


def source_class(source: str | type, source_file: str | None = None) -> type[DataSource]:
    """The `DataSource` subclass `source` names (a builtin kind or an import path) or is.

    SourceError names `source.kind` and the path when it is not a usable source.
    """
    if isinstance(source, str) and source in BUILTIN_SOURCES:
        return BUILTIN_SOURCES[source]
    return resolve(
        source,
        key="source.kind",
        error=SourceError,
        checks=(subclass_of(DataSource), _implements_fetch),
        source_file=source_file,
    )


def _implements_fetch(cls: type[DataSource]) -> str | None:
    return "does not implement fetch()" if inspect.isabstract(cls) else None


def fetch_window(source: DataSource, pipeline: PipelineConfig, window: Window) -> pd.DataFrame:
    """Fetch `window` from `source` and make the result canonical.

    The time column is converted to UTC `datetime64[ns]`, rows outside the window are
    dropped, and rows are sorted by (time column, id columns) with a fresh index, so the
    same window always yields the same frame whatever order the source returned.
    First of all, the `pii` rules of the config hash or drop personal data (`pii.apply`).
    """
    import pandas as pd

    df = source.fetch(window)
    if not isinstance(df, pd.DataFrame):
        raise SourceError(
            f"{type(source).__name__}.fetch returned {type(df).__name__}, not a DataFrame"
        )
    # Personal data is hashed or dropped here, before anything downstream can write it.
    df = pii.apply(df, pipeline)
    times = utc_times(df, pipeline.time_column, describe(source.pipeline.source))
    inside = (times >= window.start) & (times < window.end)
    df = df.assign(**{pipeline.time_column: times})[inside.to_numpy()]
    keys = [pipeline.time_column, *(c for c in pipeline.id_columns if c in df.columns)]
    return df.sort_values(keys, kind="mergesort").reset_index(drop=True)


def require_rows(df: pd.DataFrame, pipeline: PipelineConfig, window: Window) -> pd.DataFrame:
    """`df` if it has rows; else EmptyWindowError naming the window and the source.

    A retrain cannot learn from nothing, and an empty window usually means the source
    points at the wrong place or the data has not landed: say which, before any work.
    """
    if len(df) == 0:
        where = f"{pipeline.source_file}: " if pipeline.source_file else ""
        raise EmptyWindowError(
            f"{where}no rows in the window {window} from {describe(pipeline.source)} "
            f"(time_column {pipeline.time_column!r}): nothing to validate or train on"
        )
    return df


def describe(source: SourceConfig) -> str:
    """The source as the YAML names it, e.g. `source.kind 'file' (source.path '/d/*.parquet')`."""
    detail = {"file": ("path", source.path), "sql": ("conn_id", source.conn_id)}.get(source.kind)
    text = f"source.kind {source.kind!r}"
    return f"{text} (source.{detail[0]} {detail[1]!r})" if detail else text


def utc_times(df: pd.DataFrame, column: str, origin: str) -> pd.Series:
    """The time column as UTC `datetime64[ns, UTC]`, read one way only, or SourceError.

    Naive values are UTC, whatever their neighbours: pandas would otherwise give a naive
    text value the offset of the values parsed before it. Values with an offset are
    converted to UTC. Text must be ISO 8601 (`2026-02-03`, `2026-02-03 10:00:00`,
    `2026-02-03T10:00:00.123+02:00`, `...Z`): anything else (`03/02/2026`, epoch numbers,
    `yesterday`) could be read more than one way, so it is refused with a sample of the
    values, naming the column and `origin` (the file, or the source as the YAML names it).
    """
    import pandas as pd

    if column not in df.columns:
        raise SourceError(
            f"time_column {column!r} is missing from the data returned by {origin} "
            f"(columns: {list(df.columns)})"
        )
    values = df[column]
    if isinstance(values.dtype, pd.CategoricalDtype):  # e.g. a dictionary-encoded parquet column
        categories = values.cat.categories
        values = values.astype(categories.dtype if len(categories) else object)
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        times = values.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(values):
        times = values.dt.tz_localize("UTC")  # naive timestamps are UTC
    elif pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values):
        times = _times_of_objects(values, column, origin)
    else:
        raise _unreadable(
            column,
            origin,
            f"dtype {values.dtype} is neither timestamps nor ISO 8601 text (numbers could be "
            "seconds, milliseconds or days since any epoch)",
            values,
        )
    missing = int(times.isna().sum())
    if missing:
        # A row without a time belongs to no window: dropping it would lose it unseen.
        raise SourceError(
            f"time_column {column!r} from {origin}: {missing} of {len(times)} rows have no "
            "time (null); every row needs one, so fix or drop them at the source"
        )
    return times.astype("datetime64[ns, UTC]")


# ISO 8601 as databases, CSV writers and pandas print it: a date, an optional time (`T` or a
# space, optional seconds and fraction) and an optional offset (`Z`, `+02:00`, `+0200`, `+02`).
_ISO_TIME = (
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?"
    r"(?P<offset>\s?(?:Z|[+-]\d{2}(?::?\d{2})?))?"
)


def _times_of_objects(values: pd.Series, column: str, origin: str) -> pd.Series:
    """Text (or Python datetimes) to UTC; naive and offset values are parsed apart."""
    import pandas as pd

    present = values[values.notna()]
    kinds = present.map(type)
    if len(present) and not kinds.map(lambda k: issubclass(k, str)).all():
        return _times_of_datetimes(values, present, kinds, column, origin)
    text = values.astype("string").str.strip()
    parts = text.str.extract(f"^{_ISO_TIME}$")
    matched = text.str.fullmatch(_ISO_TIME).fillna(False)
    bad = text.notna() & ~matched
    if bad.any():
        raise _unreadable(
            column,
            origin,
            f"{int(bad.sum())} of {int(text.notna().sum())} values are not ISO 8601 "
            "(e.g. 2026-02-03 10:00:00 or 2026-02-03T10:00:00+02:00); other formats and "
            "epoch numbers can be read more than one way (day or month first, which unit)",
            values[bad],
        )
    with_offset = parts["offset"].notna().to_numpy()
    times = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    try:
        if with_offset.any():
            aware = pd.to_datetime(text[with_offset], utc=True, format="ISO8601")
            times[with_offset] = aware.astype("datetime64[ns, UTC]")
        naive = matched.to_numpy() & ~with_offset
        if naive.any():
            plain = pd.to_datetime(text[naive], format="ISO8601")
            times[naive] = plain.dt.tz_localize("UTC").astype("datetime64[ns, UTC]")
    except (ValueError, TypeError, OverflowError) as exc:
        parsed = pd.to_datetime(text, utc=True, format="mixed", errors="coerce")
        invalid = text.notna() & parsed.isna()
        reason = str(exc).splitlines()[0].split(", at position")[0]
        raise _unreadable(
            column, origin, f"not valid dates or times ({reason})", values[invalid]
        ) from exc
    return times


def _times_of_datetimes(
    values: pd.Series, present: pd.Series, kinds: pd.Series, column: str, origin: str
) -> pd.Series:
    """Python datetimes (a driver's answer, a parquet date column): naive ones are UTC."""
    import pandas as pd

    def is_time(kind: type) -> bool:
        return issubclass(kind, (datetime, date)) and not issubclass(kind, str)

    odd = ~kinds.map(is_time)
    if odd.any():
        raise _unreadable(
            column,
            origin,
            f"{int(odd.sum())} of {len(present)} values are not datetimes, in a column of "
            f"(types: {sorted({k.__name__ for k in kinds})})",
            present[odd],
        )

    def to_utc(value: Any) -> Any:
        if value is None or value is pd.NaT or (isinstance(value, float) and value != value):
            return pd.NaT
        if not isinstance(value, datetime):  # a date: midnight UTC
            return pd.Timestamp(value.isoformat(), tz="UTC")
        stamp = pd.Timestamp(value)
        return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")

    try:
        return pd.Series(
            [to_utc(v) for v in values], index=values.index, dtype="datetime64[ns, UTC]"
        )
    except (ValueError, OverflowError) as exc:  # e.g. year 1 does not fit datetime64[ns]
        raise _unreadable(column, origin, str(exc).splitlines()[0], present) from exc


def _unreadable(column: str, origin: str, reason: str, bad: pd.Series) -> SourceError:
    sample = [str(v) for v in dict.fromkeys(bad.tolist())][:5]
    return SourceError(
        f"time_column {column!r} cannot be read as timestamps unambiguously from {origin}: "
        f"{reason}; sample: {sample}"
    )


def _conform(df: pd.DataFrame, pipeline: PipelineConfig) -> pd.DataFrame:
    """Put the pipeline's columns first, in schema order; keep the rest after them.

    Missing columns stay missing and extra ones stay, so that the validation step
    (with `expectations.table.exact_schema`) is the one place that judges the schema.
    """
    wanted = [c for c in pipeline.columns if c in df.columns]
    extra = [c for c in df.columns if c not in set(pipeline.columns)]
    return df[wanted + extra]


# --------------------------------------------------------------------------- synthetic


PLANS = ("basic", "standard", "premium")
REGIONS = ("north", "south", "east", "west")
PAYMENT_METHODS = ("card", "bank_transfer", "paypal", "voucher")

SYNTHETIC_COLUMNS: dict[str, str] = {
    "event_time": "datetime64[ns, UTC]",
    "customer_id": "object",
    "tenure_months": "int64",
    "monthly_charges": "float64",
    "support_calls": "int64",
    "usage_gb": "float64",
    "plan": "object",
    "region": "object",
    "payment_method": "object",
    "churned": "int64",
}


@dataclass(frozen=True)
class _Features:
    """How the features of one regime are distributed."""

    region_p: tuple[float, ...]
    payment_p: tuple[float, ...]
    charges_factor: float
    support_extra: float


@dataclass(frozen=True)
class _Labels:
    """How the label of one regime depends on the features (a logistic model)."""

    intercept: float
    tenure_coef: float  # per month
    charges_coef: float  # per currency unit
    support_coef: float  # per call
    usage_coef: float  # per GB
    payment_coef: tuple[float, ...]  # per payment method
    plan_coef: tuple[float, ...]  # per plan


@dataclass(frozen=True)
class _Regime:
    """The generating parameters of one side of the drift onset."""

    features: _Features
    labels: _Labels


_BEFORE = _Regime(
    features=_Features(
        region_p=(0.30, 0.25, 0.25, 0.20),
        payment_p=(0.40, 0.25, 0.25, 0.10),
        charges_factor=1.0,
        support_extra=0.0,
    ),
    labels=_Labels(
        intercept=-1.6,
        tenure_coef=-0.065,
        charges_coef=0.03,
        support_coef=0.45,
        usage_coef=0.0,
        payment_coef=(0.0, -0.2, 0.0, 1.0),
        plan_coef=(0.5, 0.0, -0.3),
    ),
)

# After the onset prices rise, support load grows, the customer mix moves south and
# towards paypal, and what drives churn changes: long-standing customers are no longer
# safe, low usage becomes the strongest signal and paypal customers leave in numbers.
_AFTER = _Regime(
    features=_Features(
        region_p=(0.20, 0.40, 0.20, 0.20),
        payment_p=(0.30, 0.20, 0.35, 0.15),
        charges_factor=1.25,
        support_extra=1.0,
    ),
    labels=_Labels(
        intercept=-2.4,
        tenure_coef=-0.025,
        charges_coef=0.02,
        support_coef=0.3,
        usage_coef=-0.07,
        payment_coef=(0.0, -0.2, 1.5, 0.8),
        plan_coef=(0.3, 0.0, -0.2),
    ),
)

# From the concept drift onset the customers look the same (the features keep their
# distributions) but why they leave changes: a competitor's offer makes low usage the
# strongest sign of leaving, paypal customers leave in numbers, voucher customers stay, and
# long tenure protects less. Input drift cannot see this; only the labels do. Measured with
# the churn pipeline's model (21 days of 300 rows to train, 7 days to test): ROC AUC 0.80
# before the onset, 0.67 after it, 0.80 for a model retrained on 21 days after it.
_CONCEPT = _Labels(
    intercept=-1.9,
    tenure_coef=-0.04,
    charges_coef=0.01,
    support_coef=0.45,
    usage_coef=-0.05,
    payment_coef=(0.0, -0.2, 1.2, 0.0),
    plan_coef=(0.5, 0.0, -0.3),
)


class SyntheticSource(DataSource):
    """An embedded churn-like table, deterministic per (seed, day).

    Each UTC day is generated on its own from a numpy Generator seeded with
    `(source.seed, day ordinal)`, `source.rows_per_day` rows per day: overlapping windows
    share identical rows for the days they share, and any window can be regenerated
    exactly. From `source.drift_onset` (a date) on, feature distributions and the
    relation between features and the label both shift, so a model trained before
    the onset degrades afterwards and retraining on recent data helps.

    From `source.concept_drift_onset` (a date) on, only the relation between features
    and the label changes (concept drift): the features of a day are byte for byte those
    the day would have without it (the same random draws in the same order), and the
    labels follow another rule, under which a model trained before the onset loses much of
    its ROC AUC. Input drift checks cannot see it; realized performance on labels can.
    The two onsets combine: features follow `drift_onset`, labels follow the concept
    rule from `concept_drift_onset` on, else the rule of `drift_onset`'s side.

    The pipeline may use the synthetic schema or a subset of it; columns the
    generator cannot produce raise `SourceError` naming them.
    """

    def fetch(self, window: Window) -> pd.DataFrame:
        import pandas as pd

        self._check_columns()
        first = window.start.date()
        last = (window.end - timedelta(microseconds=1)).date()
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        df = pd.concat([self._day_frame(day) for day in days], ignore_index=True)
        inside = (df["event_time"] >= window.start) & (df["event_time"] < window.end)
        return df.loc[inside, self.pipeline.columns].reset_index(drop=True)

    def _check_columns(self) -> None:
        unknown = [c for c in self.pipeline.columns if c not in SYNTHETIC_COLUMNS]
        if unknown:
            where = f"{self.pipeline.source_file}: " if self.pipeline.source_file else ""
            raise SourceError(
                f"{where}source.kind 'synthetic' cannot produce the columns {unknown}; "
                f"it produces {list(SYNTHETIC_COLUMNS)} (time_column 'event_time', "
                "target 'churned')"
            )

    def _day_frame(self, day: date) -> pd.DataFrame:
        import pandas as pd

        cfg = self.pipeline.source
        columns = synthetic_day(cfg, day)
        df = pd.DataFrame(columns)
        df["event_time"] = df["event_time"].dt.tz_localize(UTC)
        return df.astype(SYNTHETIC_COLUMNS)


def synthetic_day(source: SourceConfig, day: date) -> dict[str, np.ndarray]:
    """The columns the synthetic `source` generates for `day` (naive UTC `event_time`)."""
    drifted = source.drift_onset is not None and day >= source.drift_onset
    regime = _AFTER if drifted else _BEFORE
    labels = regime.labels
    if source.concept_drift_onset is not None and day >= source.concept_drift_onset:
        labels = _CONCEPT
    return _generate_day(day, source.rows_per_day, source.seed, regime.features, labels)


def _generate_day(
    day: date, n: int, seed: int, features: _Features, labels: _Labels
) -> dict[str, np.ndarray]:
    """Generate one day of churn data; a pure function of its arguments.

    The label is drawn last: the features of a day do not depend on `labels`.
    """
    import numpy as np

    rng = np.random.default_rng([seed, day.toordinal()])
    midnight = np.datetime64(day.isoformat(), "ns")
    # millisecond resolution: what databases, CSV and most parquet writers keep intact
    offsets = np.sort(rng.integers(0, 86_400_000, n)).astype("timedelta64[ms]")
    plan = rng.choice(len(PLANS), n, p=[0.45, 0.35, 0.20])
    region = rng.choice(len(REGIONS), n, p=features.region_p)
    payment = rng.choice(len(PAYMENT_METHODS), n, p=features.payment_p)
    tenure = np.minimum(np.floor(rng.exponential(26.0, n)), 120).astype(np.int64)
    base_charge = np.array([40.0, 75.0, 115.0])[plan]
    charges = (base_charge + rng.normal(0.0, 14.0, n)) * features.charges_factor
    charges = np.round(np.clip(charges, 20.0, 200.0), 2)
    usage = np.round(rng.gamma(2.0, np.array([8.0, 14.0, 22.0])[plan]), 3)
    support_rate = 1.0 + 0.6 * (plan == 0) + features.support_extra
    support = np.minimum(rng.poisson(support_rate), 15).astype(np.int64)
    logit = (
        labels.intercept
        + labels.tenure_coef * (tenure - 24)
        + labels.charges_coef * (charges - 75)
        + labels.support_coef * (support - 1.5)
        + labels.usage_coef * (usage - 25)
        + np.asarray(labels.payment_coef)[payment]
        + np.asarray(labels.plan_coef)[plan]
    )
    churned = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    return {
        "event_time": (midnight + offsets).astype("datetime64[ns]"),
        "customer_id": np.array([f"C{day:%Y%m%d}-{i:05d}" for i in range(n)], dtype=object),
        "tenure_months": tenure,
        "monthly_charges": charges,
        "support_calls": support,
        "usage_gb": usage,
        "plan": np.asarray(PLANS, dtype=object)[plan],
        "region": np.asarray(REGIONS, dtype=object)[region],
        "payment_method": np.asarray(PAYMENT_METHODS, dtype=object)[payment],
        "churned": churned,
    }


# --------------------------------------------------------------------------- file


_EXTENSIONS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


class FileSource(DataSource):
    """Parquet or CSV files: `source.path` is a file, a folder or a glob, local or fsspec URL.

    `source.format` picks the reader, else the file extension does. Parquet files are
    read with a pyarrow filter on the time column when it is a timestamp column, so only
    the window's row groups are decoded; everything is trimmed to the window afterwards.
    """

    def fetch(self, window: Window) -> pd.DataFrame:
        fs, paths = self._resolve()
        # Each file is read, its times made UTC (an error names that file) and trimmed to the
        # window on its own; files with no row in the window are left out of the concat,
        # which would otherwise warn about (and guess the dtypes of) empty frames.
        frames = [self._window_of(fs, path, window) for path in paths]
        kept = [frame for frame in frames if len(frame)] or frames[:1]
        if len(kept) > 1:
            import pandas as pd

            df = pd.concat(kept, ignore_index=True)
        else:
            df = kept[0].reset_index(drop=True)
        return _conform(df, self.pipeline)

    def _window_of(self, fs: Any, path: str, window: Window) -> pd.DataFrame:
        df = self._read(fs, path, window)
        column = self.pipeline.time_column
        times = utc_times(df, column, f"file {_file_name(fs, path)!r}")
        df = df.assign(**{column: times})
        return df[((times >= window.start) & (times < window.end)).to_numpy()]

    def _resolve(self) -> tuple[Any, list[str]]:
        """The filesystem and the sorted list of files `source.path` names.

        A glob takes every file it matches; a folder takes its visible files (not `_*`
        or `.*`, e.g. Spark's `_SUCCESS`) of the configured format, or with a known
        extension if `source.format` is unset.
        """
        from fsspec.core import url_to_fs

        url = self.pipeline.source.path or ""
        fs, path = url_to_fs(url)
        files = matching_files(fs, path, self.pipeline.source.format)
        if files is None:
            raise SourceError(f"source.path {url!r} does not exist")
        if not files:
            raise SourceError(f"source.path {url!r} matches no parquet or csv files")
        return fs, files

    def _format_of(self, path: str) -> str:
        fmt = self.pipeline.source.format or extension_format(path)
        if fmt is None:
            raise SourceError(
                f"cannot tell the format of {path!r}: set source.format to parquet or csv"
            )
        return fmt

    def _read(self, fs: Any, path: str, window: Window) -> pd.DataFrame:
        if self._format_of(path) == "parquet":
            return _read_parquet(fs, path, self.pipeline.time_column, window)
        return _read_csv(fs, path, self.pipeline)


def csv_delimiter(head: bytes) -> str:
    """The delimiter (`,` `;` tab or `|`) the header line of a CSV is split by."""
    import csv

    first_line = head.decode("utf-8-sig", errors="replace").splitlines()[:1]
    try:
        return csv.Sniffer().sniff(first_line[0], delimiters=",;\t|").delimiter
    except (csv.Error, IndexError):
        return ","


def csv_text_columns(pipeline: PipelineConfig) -> dict[str, type]:
    """Columns a CSV must hand over as text: CSV has no types, the YAML says what they are.

    Ids stay strings ("007" is not 7), as in parquet and SQL; categorical features stay
    categories even when they look like numbers (zip codes, store numbers), in training and
    scoring alike.
    """
    columns = [
        *pipeline.id_columns,
        *pipeline.scoring_id_columns,
        *pipeline.features.categorical,
    ]
    return dict.fromkeys(columns, str)


def _read_csv(fs: Any, path: str, pipeline: PipelineConfig) -> pd.DataFrame:
    """A CSV as its writer meant it: a UTF-8 BOM is not part of the first column's name, the
    delimiter is the header's, and the YAML's text columns are read as text."""
    import pandas as pd

    with fs.open(path, "rb") as fh:
        delimiter = csv_delimiter(fh.read(64 * 1024))
    with fs.open(path, "rb") as fh:
        try:
            return pd.read_csv(
                fh, sep=delimiter, encoding="utf-8-sig", dtype=csv_text_columns(pipeline)
            )
        except (ValueError, pd.errors.ParserError) as exc:
            reason = str(exc).strip().splitlines()[0]
            raise SourceError(
                f"file {_file_name(fs, path)!r} cannot be read as CSV: {reason}"
            ) from exc


def _file_name(fs: Any, path: str) -> str:
    """A local path as it is, anything else as a URL with its protocol."""
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
    return path if "file" in protocols or "local" in protocols else fs.unstrip_protocol(path)


def matching_files(fs: Any, path: str, fmt: str | None) -> list[str] | None:
    """The files `path` names, sorted; None if it names nothing that exists.

    A glob takes every file it matches; a folder takes its visible files (not `_*` or `.*`,
    e.g. Spark's `_SUCCESS`) of format `fmt`, or with a known extension if `fmt` is unset.
    Training (the file source) and scoring (file partitions) list files through this alone.
    """
    if any(ch in path for ch in "*?["):
        return sorted(p for p in fs.glob(path) if not fs.isdir(p))
    if fs.isdir(path):
        return sorted(
            p
            for p in fs.find(path)
            if not p.rsplit("/", 1)[-1].startswith(("_", "."))
            and (fmt or extension_format(p) is not None)
        )
    return [path] if fs.exists(path) else None


def extension_format(path: str) -> str | None:
    name = path.rsplit("/", 1)[-1].lower()
    return _EXTENSIONS.get("." + name.rsplit(".", 1)[-1]) if "." in name else None


def _read_parquet(fs: Any, path: str, time_column: str, window: Window) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path, filesystem=fs)
        filters = _time_filter(schema, time_column, window)
        return pq.read_table(path, filesystem=fs, filters=filters).to_pandas()
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        reason = str(exc).strip().splitlines()[0]
        raise SourceError(
            f"file {_file_name(fs, path)!r} cannot be read as parquet: {reason}"
        ) from exc


def _time_filter(schema: Any, column: str, window: Window) -> list[tuple] | None:
    """A pyarrow filter for `[start, end)` if `column` is a timestamp column, else None.

    Naive parquet timestamps are taken to be UTC, as `fetch_window` does for all sources.
    """
    import pyarrow as pa

    if column not in schema.names:
        return None
    kind = schema.field(column).type
    if not pa.types.is_timestamp(kind):
        return None
    start, end = window.start, window.end
    if kind.tz is None:
        start, end = start.replace(tzinfo=None), end.replace(tzinfo=None)
    return [(column, ">=", pa.scalar(start, type=kind)), (column, "<", pa.scalar(end, type=kind))]


# --------------------------------------------------------------------------- sql


class SqlSource(DataSource):
    """Runs `source.query` against `connection_uri` (a SQLAlchemy URL).

    The window is passed as the bound parameters `:window_start` and `:window_end`
    (timezone-aware UTC datetimes), and each `source.params` key as `:key`: values go to
    the driver as parameters, never formatted into the SQL text, so a value such as
    `x'; DROP TABLE events; --` is compared as the literal string it is. Store times as
    `timestamptz` (or naive UTC with the session time zone set to UTC). The Airflow
    operator resolves `source.conn_id` to the URL; the core never imports Airflow.
    """

    def fetch(self, window: Window) -> pd.DataFrame:
        import pandas as pd
        from sqlalchemy import create_engine, text
        from sqlalchemy.exc import OperationalError, SQLAlchemyError

        cfg = self.pipeline.source
        if not self.connection_uri:
            raise SourceError(
                f"source.conn_id {cfg.conn_id!r}: no connection URI was given to the sql source"
            )
        params = {**cfg.params, "window_start": window.start, "window_end": window.end}
        try:
            engine = create_engine(self.connection_uri)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise SourceError(f"source.conn_id {cfg.conn_id!r}: bad connection URI: {exc}") from exc
        safe_url = engine.url.render_as_string(hide_password=True)
        try:
            with engine.connect() as conn:
                df = pd.read_sql_query(text(cfg.query or ""), conn, params=params)
        except OperationalError as exc:
            # The database is down, restarting or unreachable: a fault that passes, so it
            # is left to the retries (not a SourceError), but it names the connection.
            raise SourceUnavailableError(
                f"source.conn_id {cfg.conn_id!r} ({safe_url}): the database could not be "
                f"reached or failed to run source.query: {_first_line(exc)}"
            ) from exc
        except SQLAlchemyError as exc:
            raise SourceError(
                f"source.conn_id {cfg.conn_id!r} ({safe_url}): source.query failed: {exc}"
            ) from exc
        finally:
            engine.dispose()
        return _conform(df, self.pipeline)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


BUILTIN_SOURCES: dict[str, type[DataSource]] = {
    "synthetic": SyntheticSource,
    "file": FileSource,
    "sql": SqlSource,
}
