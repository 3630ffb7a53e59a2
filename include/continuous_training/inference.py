"""Batch inference: split a window into partitions and score each one in record batches.

One partition is one mapped Airflow task. It streams its input batch by batch (parquet with
`ParquetFile.iter_batches`, CSV with pandas' chunked reader), so memory depends on the batch
size and never on the partition's size. Along the way it keeps a bounded uniform sample of
what it scored (for the drift check) and, when a challenger is shadowing the champion,
counts where the two disagree.

Published layout, and why. A date's predictions switch as a whole::

    $CT_DATA_ROOT/<pipeline>/predictions/dt=<date>/
        _manifest.json                    the pointer: which set is current, its parts
        set=<run id>-<nonce>/             one complete set, never changed once published
            part-<key>.parquet            (sha256 and rows of each in the manifest)
            _shadow/part-<key>.parquet    the shadow challenger's scores of the same rows
            _drift_sample/part-<key>.parquet
            _drift.json

Every run writes into a set folder of its own (`pin_champion` draws the nonce, so even a
cleared run of the same run id gets a fresh one); the mapped tasks never touch a published
set. `publish_predictions` then writes `_manifest.json`, one small object replaced
atomically (a rename locally, a single PUT on object stores), and only after that removes
the sets it superseded. We chose a manifest pointer over renaming a folder into place
because object stores (S3, GCS via fsspec) have no atomic folder rename: a "rename" there is
a copy and delete per object, which readers can observe half done. A single-object write
is atomic everywhere.

Readers find a date's current set by reading `_manifest.json` and following its `uri` (the
set folder) or its `parts` (URIs with sha256); `published_parts` does that. They must not
glob the date folder itself: an unpublished set of a running or failed run may lie beside
the current one until the next successful publish removes it. A failed run therefore leaves
the published set and the manifest byte for byte as they were.
"""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from continuous_training import pii, storage
from continuous_training.config import PipelineConfig
from continuous_training.errors import BadInputError
from continuous_training.sources import SourceError, Window

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

PREDICTION = "prediction"
PROBABILITY = "probability"
HISTOGRAM_BINS = 20
SAMPLE_KEY = "_sample_key"
DATE_PLACEHOLDER = "{date}"


class PartitionError(BadInputError):
    """The window cannot be split as configured; the message names the key to change."""


class ScoringInputError(SourceError):
    """A scoring input cannot be scored as it is; the message names the file and the column."""


# --------------------------------------------------------------------------- partitions


@dataclass(frozen=True)
class Partition:
    """One unit of scoring: a file of the file source or a time range of the others."""

    key: str
    start: str
    end: str
    path: str | None = None
    format: str | None = None  # "parquet" or "csv" for a file; None for a fetched range

    @property
    def window(self) -> Window:
        return Window(datetime.fromisoformat(self.start), datetime.fromisoformat(self.end))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Partition:
        return cls(**data)


def list_partitions(
    pipeline: PipelineConfig, window: Window, max_map_length: int
) -> list[Partition]:
    """The partitions of `window`, refused before they exceed what can be mapped."""
    source = pipeline.scoring_source
    if source.kind == "file":
        partitions = _file_partitions(pipeline, window)
    else:
        partitions = _time_partitions(window, pipeline.inference.partition_hours)
    limit = min(pipeline.inference.max_partitions, max_map_length)
    if len(partitions) > limit:
        raise PartitionError(
            f"window {window} has {len(partitions)} partitions, more than "
            f"inference.max_partitions ({pipeline.inference.max_partitions}) or Airflow's "
            f"core.max_map_length ({max_map_length}) allow: raise inference.partition_hours, "
            "merge input files, or raise the limit"
        )
    return partitions


def _time_partitions(window: Window, hours: int) -> list[Partition]:
    """Time ranges of `hours`; each key says where it starts, e.g. `2026-03-14T0600`."""
    step = timedelta(hours=hours)
    partitions, start = [], window.start
    while start < window.end:
        end = min(start + step, window.end)
        key = start.strftime("%Y-%m-%dT%H%M")
        partitions.append(Partition(key, start.isoformat(), end.isoformat()))
        start = end
    return partitions


def _source_key(pipeline: PipelineConfig) -> str:
    """The YAML key of the scoring source, for messages."""
    return "inference.source" if pipeline.inference.source is not None else "source"


def _file_partitions(pipeline: PipelineConfig, window: Window) -> list[Partition]:
    """Every file the path names (`sources.matching_files`, as the file source lists them),
    with `{date}` filled in for each day of the window."""
    from fsspec.core import url_to_fs

    from continuous_training.sources import extension_format, matching_files

    source = pipeline.scoring_source
    path = source.path or ""
    key = _source_key(pipeline)
    patterns = [path]
    if DATE_PLACEHOLDER in path:
        days = math.ceil(window.days)
        patterns = [
            path.replace(DATE_PLACEHOLDER, (window.start + timedelta(days=i)).date().isoformat())
            for i in range(days)
        ]
    files: list[str] = []
    unmatched: list[str] = []
    for pattern in patterns:
        fs, local = url_to_fs(pattern)
        found = matching_files(fs, local, source.format) or []
        scheme = pattern.split("://", 1)[0] + "://" if "://" in pattern else ""
        files.extend(scheme + f for f in found)
        if not found:
            unmatched.append(pattern)
    if not files:
        raise SourceError(f"{key}.path {path!r} matches no files for window {window}")
    if unmatched:
        # A day without its file would leave the window published as if it were whole.
        raise SourceError(
            f"{key}.path {path!r} matches no file for {len(unmatched)} of {len(patterns)} "
            f"days of window {window}: {unmatched[:5]}; run the window again once they "
            "have landed (a file with no rows marks a day without data)"
        )
    partitions = []
    for f in files:
        fmt = source.format or extension_format(f)
        if fmt is None:
            raise PartitionError(
                f"cannot tell the format of {f!r} ({key}.path {path!r}): "
                f"set {key}.format to parquet or csv"
            )
        start, end = window.start.isoformat(), window.end.isoformat()
        partitions.append(Partition(_file_key(f, window), start, end, f, fmt))
    return partitions


def _file_key(path: str, window: Window) -> str:
    """A readable, unique key: the day(s) scored, the file's stem, a digest of its full path.

    E.g. `2026-03-14-events_march-1a2b3c4d` for `.../events_march.csv` scored for 2026-03-14.
    """
    stem = path.rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    digest = hashlib.sha256(path.encode()).hexdigest()[:8]
    days = window_label(window).removeprefix("dt=")
    return f"{days}-{storage.safe_token(stem)[:40]}-{digest}"


# --------------------------------------------------------------------------- locations

MANIFEST = "_manifest.json"
SET_PREFIX = "set="
DEFAULT_SET = "manual"


def window_label(window: Window) -> str:
    """`dt=2026-03-14` for a one-day window, `dt=2026-03-08_2026-03-15` otherwise."""
    start, end = window.start.date().isoformat(), window.end.date().isoformat()
    one_day = window.end - window.start == timedelta(days=1) and window.start.hour == 0
    return f"dt={start}" if one_day else f"dt={start}_{end}"


def predictions_dir(pipeline_name: str, window: Window) -> str:
    """The date's folder: its manifest (the pointer) and its sets live here."""
    return storage.join(storage.data_root(), pipeline_name, "predictions", window_label(window))


def new_set_id(airflow_run_id: str) -> str:
    """A set id no other run, nor another try of this run, has used: run id plus a nonce."""
    return f"{storage.safe_token(airflow_run_id)[:80]}-{uuid.uuid4().hex[:8]}"


def set_dir(pipeline_name: str, window: Window, set_id: str = DEFAULT_SET) -> str:
    """The folder of one set of predictions of the window."""
    return storage.join(predictions_dir(pipeline_name, window), f"{SET_PREFIX}{set_id}")


def prediction_uri(pipeline_name: str, window: Window, key: str, set_id: str = DEFAULT_SET) -> str:
    return storage.join(set_dir(pipeline_name, window, set_id), f"part-{key}.parquet")


def sample_uri(pipeline_name: str, window: Window, key: str, set_id: str = DEFAULT_SET) -> str:
    return storage.join(
        set_dir(pipeline_name, window, set_id), "_drift_sample", f"part-{key}.parquet"
    )


def shadow_uri(pipeline_name: str, window: Window, key: str, set_id: str = DEFAULT_SET) -> str:
    """The shadow challenger's scores of the part `key`: same rows, same order as the part."""
    return storage.join(set_dir(pipeline_name, window, set_id), "_shadow", f"part-{key}.parquet")


def _beside(output_uri: str, folder: str) -> str:
    """`<set>/<folder>/part-<key>.parquet` for the part `<set>/part-<key>.parquet`."""
    parent, _, name = output_uri.rstrip("/").rpartition("/")
    return storage.join(parent, folder, name)


def manifest_uri(pipeline_name: str, window: Window) -> str:
    return storage.join(predictions_dir(pipeline_name, window), MANIFEST)


def published(pipeline_name: str, window: Window) -> dict[str, Any] | None:
    """The window's manifest (the current set), or None if nothing was published."""
    uri = manifest_uri(pipeline_name, window)
    return storage.read_json(uri) if storage.exists(uri) else None


def published_manifests(pipeline_name: str, start: datetime, end: datetime) -> list[dict]:
    """The manifests of the dates published whose window lies inside `[start, end)`.

    Sorted by `window_start`; a date folder without a manifest (nothing published yet, or
    only an unpublished set of a running or failed run) is skipped.
    """
    span = Window(start, end)  # UTC, aware, start before end
    folder = storage.join(storage.data_root(), pipeline_name, "predictions")
    if not storage.exists(folder):
        return []
    manifests = []
    for entry in storage.list_entries(folder):
        name = entry.rstrip("/").rsplit("/", 1)[-1]
        uri = storage.join(folder, name, MANIFEST)
        if not name.startswith("dt=") or not storage.exists(uri):
            continue
        manifest = storage.read_json(uri)
        first = datetime.fromisoformat(manifest["window_start"])
        last = datetime.fromisoformat(manifest["window_end"])
        if span.start <= first and last <= span.end:
            manifests.append(manifest)
    return sorted(manifests, key=lambda m: datetime.fromisoformat(m["window_start"]))


def published_parts(pipeline_name: str, window: Window) -> list[str]:
    """The part files of the window's current set: what a reader of the date reads."""
    manifest = published(pipeline_name, window)
    return [p["uri"] for p in manifest["parts"]] if manifest else []


def require_unpublished(pipeline_name: str, window: Window, set_id: str) -> None:
    """Refuse to write into a set that readers already follow."""
    manifest = published(pipeline_name, window)
    if manifest and manifest.get("set") == set_id:
        raise PartitionError(
            f"set {set_id} of window {window} is already published "
            f"({manifest_uri(pipeline_name, window)}): clear the whole run, from "
            "pin_champion, to score the window again"
        )


def materialize_input(
    pipeline: PipelineConfig, partition: Partition, run_id: str, connection_uri: str | None
) -> str:
    """The partition's input: the file itself, or a fetched snapshot (parquet)."""
    from continuous_training import sources

    if partition.path is not None:
        return partition.path
    scoring = pipeline.model_copy(update={"source": pipeline.scoring_source})
    source = sources.make_source(scoring, connection_uri=connection_uri)
    frame = sources.fetch_window(source, scoring, partition.window)
    uri = storage.snapshot_uri(
        pipeline.name, run_id, f"inference-input/part-{partition.key}.parquet"
    )
    return storage.write_parquet_atomic(frame, uri)["uri"]


# --------------------------------------------------------------------------- scoring


@dataclass
class ShadowStats:
    """How a shadowing challenger compares with the champion on the rows scored."""

    version: str
    rows: int = 0
    disagreements: int = 0
    abs_diff_sum: float = 0.0
    champion_hist: list[int] = field(default_factory=lambda: [0] * HISTOGRAM_BINS)
    challenger_hist: list[int] = field(default_factory=lambda: [0] * HISTOGRAM_BINS)

    def add(self, champion: Scores, challenger: Scores) -> None:
        import numpy as np

        self.rows += len(champion.score)
        self.disagreements += int(np.sum(champion.label != challenger.label))
        self.abs_diff_sum += float(np.abs(champion.score - challenger.score).sum())
        if champion.probability is not None and challenger.probability is not None:
            for hist, values in (
                (self.champion_hist, champion.probability),
                (self.challenger_hist, challenger.probability),
            ):
                counts, _ = np.histogram(values, bins=HISTOGRAM_BINS, range=(0.0, 1.0))
                hist[:] = [a + int(b) for a, b in zip(hist, counts, strict=True)]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Scores:
    """One model's output on one batch: the label, and the probability if it has one."""

    label: np.ndarray
    probability: np.ndarray | None

    @property
    def score(self) -> np.ndarray:
        """What drift and shadow compare: the probability, else the prediction."""
        return self.probability if self.probability is not None else self.label


def predict(model: Any, X: pd.DataFrame, task: str) -> Scores:
    """Label and positive-class probability from one pass of `predict_proba`."""
    if task != "classification":
        return Scores(model.predict(X), None)
    proba = model.predict_proba(X)
    label = model.classes_[proba.argmax(axis=1)]
    return Scores(label, proba[:, 1])


@dataclass(frozen=True)
class ScoringJob:
    """Everything one partition's scoring needs, all plain values."""

    pipeline: PipelineConfig
    input_uri: str
    output_uri: str
    sample_uri: str
    window: Window
    model_version: str
    airflow_run_id: str
    sample_seed: int
    # True when the input is a file of the source read as it is (its PII rules are applied
    # to each batch); False for a snapshot `materialize_input` fetched, already protected.
    raw_input: bool = True
    input_format: str = "parquet"  # or "csv"
    # where a shadowing challenger's scores go (`shadow_uri`); unset: `_shadow/` beside the part
    shadow_uri: str | None = None

    @property
    def shadow_output_uri(self) -> str:
        return self.shadow_uri or _beside(self.output_uri, "_shadow")


class BottomKSample:
    """A uniform random sample of at most `k` rows of a stream, in memory O(k + batch).

    Every row gets a uniform random key and the `k` smallest keys are kept. Samples of
    several streams merge by taking the `k` smallest keys of their union, which is again
    a uniform sample of all their rows: the drift check relies on this.
    """

    def __init__(self, k: int, seed: int) -> None:
        import numpy as np

        self.k = k
        self.rng = np.random.default_rng(seed)
        self.frame: pd.DataFrame | None = None

    def add(self, batch: pd.DataFrame, **columns: Any) -> None:
        """Offer every row of `batch` (plus `columns`, arrays aligned with it) to the sample."""
        import pandas as pd

        keys = self.rng.random(len(batch))
        if self.frame is not None and len(self.frame) >= self.k:
            # Once the sample is full, only rows with a key below its largest can enter:
            # copy those alone, not the whole batch.
            entering = keys < self.frame[SAMPLE_KEY].max()
            if not entering.any():
                return
            batch, keys = batch[entering], keys[entering]
            columns = {name: values[entering] for name, values in columns.items()}
        keyed = batch.assign(**columns, **{SAMPLE_KEY: keys})
        merged = keyed if self.frame is None else pd.concat([self.frame, keyed])
        self.frame = smallest_keys(merged, self.k)

    def result(self, columns: list[str]) -> pd.DataFrame:
        import pandas as pd

        if self.frame is None:
            return pd.DataFrame(columns=[*columns, SAMPLE_KEY])
        return self.frame.reset_index(drop=True)


def smallest_keys(frame: pd.DataFrame, k: int) -> pd.DataFrame:
    if len(frame) <= k:
        return frame
    return frame.nsmallest(k, SAMPLE_KEY)


def sample_seed(pipeline_name: str, window: Window, key: str) -> int:
    """The same partition of the same window always draws the same sample."""
    text = f"{pipeline_name}|{window}|{key}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def score_partition(
    job: ScoringJob,
    champion: Any,
    challenger: tuple[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Stream the input, write predictions atomically; return rows, URIs and shadow stats.

    With a `challenger` (version, model), its scores of the same rows, in the same order, are
    written too (`job.shadow_output_uri`: the ids, `prediction`, `probability` for
    classification, and the challenger's `model_version`), streamed and atomic like the part.

    Bad input (an unreadable file, a missing column, text or infinity in a numeric feature,
    rows the model refuses) raises `ScoringInputError` naming the file and the column, with
    nothing written. A batch with no row inside the window is skipped; a partition with no
    such row at all writes an empty part of the same schema.
    """
    from contextlib import ExitStack

    import pyarrow.parquet as pq
    from fsspec.core import url_to_fs
    from threadpoolctl import threadpool_limits

    settings = job.pipeline.inference
    # Resolved before the output is opened: a missing PII key fails with nothing written.
    protect = pii.rules_for(job.pipeline) if job.raw_input else pii.Rules()
    fs, path = url_to_fs(job.input_uri)
    with fs.open(path, "rb") as fh, threadpool_limits(limits=settings.threads_per_task):
        reader = _CsvInput(job, fh) if job.input_format == "csv" else _ParquetInput(job, fh)
        state = _ScoringState(job, reader.total, challenger, progress)
        schema = _output_schema(job.pipeline, reader.id_types, champion)
        shadow_schema = None
        with ExitStack() as stack:
            writer = pq.ParquetWriter(
                stack.enter_context(storage.open_atomic(job.output_uri)), schema
            )
            stack.callback(writer.close)
            shadow_writer = None
            if challenger is not None:
                shadow_schema = _shadow_schema(job.pipeline, reader.id_types, challenger[1])
                out = stack.enter_context(storage.open_atomic(job.shadow_output_uri))
                shadow_writer = pq.ParquetWriter(out, shadow_schema)
                stack.callback(shadow_writer.close)
            for frame in reader.batches():
                tables = state.score(protect(frame), champion, schema, shadow_schema)
                if tables is not None:
                    writer.write_table(tables[0])
                    if shadow_writer is not None:
                        shadow_writer.write_table(tables[1])
    return state.finish()


# pyarrow's errors that mean "these bytes are not a readable parquet file"; its OSError
# (ArrowIOError, a network read failing) is left to retries.
def _arrow_bad_input() -> tuple[type[Exception], ...]:
    import pyarrow as pa

    return (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class _ParquetInput:
    """A parquet file in record batches of `inference.batch_size` rows."""

    def __init__(self, job: ScoringJob, fh: Any) -> None:
        import pyarrow.parquet as pq

        self.job = job
        try:
            # pre_buffer would keep every row group's bytes until the loop ends: memory
            # would grow with the partition instead of staying at one batch.
            self.parquet = pq.ParquetFile(fh, pre_buffer=False)
        except _arrow_bad_input() as exc:
            raise ScoringInputError(
                f"scoring input {job.input_uri} is not a readable parquet file "
                f"(truncated, or another format): {_first_line(exc)}"
            ) from exc
        schema = self.parquet.schema_arrow
        self.columns = _input_columns(job.pipeline, schema.names, job.input_uri)
        self.total = self.parquet.metadata.num_rows
        self.id_types = {c: schema.field(c).type for c in job.pipeline.scoring_id_columns}
        _check_numeric_types(job, {c: schema.field(c).type for c in job.pipeline.features.numeric})

    def batches(self) -> Iterator[pd.DataFrame]:
        batches = self.parquet.iter_batches(
            self.job.pipeline.inference.batch_size, columns=self.columns
        )
        read = 0
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except _arrow_bad_input() as exc:
                raise ScoringInputError(
                    f"scoring input {self.job.input_uri} cannot be read after row {read}: "
                    f"{_first_line(exc)}"
                ) from exc
            read += batch.num_rows
            yield batch.to_pandas()


class _CsvInput:
    """A CSV file in chunks of `inference.batch_size` rows, read as the file source reads it:
    the same delimiter and BOM handling, ids and categories as text, times by the same rules."""

    def __init__(self, job: ScoringJob, fh: Any) -> None:
        import pandas as pd
        import pyarrow as pa

        from continuous_training.sources import csv_delimiter

        self.job, self.fh = job, fh
        self.delimiter = csv_delimiter(fh.read(64 * 1024))
        fh.seek(0)
        try:
            header = list(
                pd.read_csv(fh, nrows=0, sep=self.delimiter, encoding="utf-8-sig").columns
            )
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise ScoringInputError(
                f"scoring input {job.input_uri} is not a readable CSV file: {_first_line(exc)}"
            ) from exc
        fh.seek(0)
        self.columns = _input_columns(job.pipeline, header, job.input_uri)
        self.total = 0  # unknown until read
        self.id_types = {c: pa.string() for c in job.pipeline.scoring_id_columns}

    def batches(self) -> Iterator[pd.DataFrame]:
        import pandas as pd

        from continuous_training.sources import csv_text_columns

        pipeline = self.job.pipeline
        wanted = set(self.columns)
        chunks = pd.read_csv(
            self.fh,
            sep=self.delimiter,
            encoding="utf-8-sig",
            chunksize=pipeline.inference.batch_size,
            usecols=lambda c: c in wanted,
            dtype=csv_text_columns(pipeline),
        )
        read = 0
        while True:
            try:
                frame = next(chunks)
            except StopIteration:
                return
            except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
                raise ScoringInputError(
                    f"scoring input {self.job.input_uri} cannot be read as CSV after data row "
                    f"{read}: {_first_line(exc)}"
                ) from exc
            read += len(frame)
            yield frame


def _input_columns(pipeline: PipelineConfig, available: list[str], uri: str) -> list[str]:
    needed = list(dict.fromkeys([*pipeline.scoring_id_columns, *pipeline.features.all]))
    missing = [c for c in needed if c not in available]
    if missing:
        raise ScoringInputError(
            f"scoring input {uri} lacks the columns {missing} (id columns and features "
            "are required)"
        )
    time_column = [pipeline.time_column] if pipeline.time_column in available else []
    return list(dict.fromkeys(time_column + needed))


def _check_numeric_types(job: ScoringJob, types: dict[str, Any]) -> None:
    """Refuse a parquet file whose numeric feature is stored as text (or any non-number)."""
    import pyarrow as pa

    for column, kind in types.items():
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)) and not (
            pa.types.is_null(kind) or pa.types.is_boolean(kind) or pa.types.is_decimal(kind)
        ):
            raise ScoringInputError(
                f"scoring input {job.input_uri}: column {column!r} is a numeric feature "
                f"but is stored as {kind}"
            )


def _output_schema(pipeline: PipelineConfig, id_types: dict[str, Any], champion: Any) -> Any:
    """The schema of every part, known before the first row: ids, prediction, provenance."""
    import numpy as np
    import pyarrow as pa

    fields = [pa.field(c, t) for c, t in id_types.items()]
    if pipeline.task == "classification":
        label = pa.array(np.asarray(champion.classes_)[:0]).type
        fields += [pa.field(PREDICTION, label), pa.field(PROBABILITY, pa.float64())]
    else:
        fields.append(pa.field(PREDICTION, pa.float64()))
    fields += [pa.field(c, pa.string()) for c in ("model_name", "model_version", "airflow_run_id")]
    return pa.schema(fields)


def _shadow_schema(pipeline: PipelineConfig, id_types: dict[str, Any], challenger: Any) -> Any:
    """The schema of a shadow part: ids, the challenger's prediction (and probability), version."""
    import pyarrow as pa

    fields = [pa.field(c, t) for c, t in id_types.items()]
    fields += [f for f in _output_schema(pipeline, {}, challenger) if f.name in _SCORE_COLUMNS]
    return pa.schema([*fields, pa.field("model_version", pa.string())])


_SCORE_COLUMNS = (PREDICTION, PROBABILITY)


class _ScoringState:
    """What accumulates over the batches of one partition."""

    def __init__(
        self,
        job: ScoringJob,
        total: int,
        challenger: tuple[str, Any] | None,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        self.job = job
        self.total = total
        self.done = 0
        self.rows = 0
        self.challenger_model = challenger[1] if challenger else None
        self.shadow = ShadowStats(challenger[0]) if challenger else None
        self.sample = BottomKSample(job.pipeline.drift.sample_size, job.sample_seed)
        self.progress = progress
        self.every = job.pipeline.inference.progress_every_seconds
        self.last_report = time.monotonic()

    def score(
        self, frame: pd.DataFrame, champion: Any, schema: Any, shadow_schema: Any = None
    ) -> tuple[Any, Any] | None:
        """The output tables of one batch (the part's, the shadow's or None), or None when no
        row of it is inside the window."""
        pipeline = self.job.pipeline
        first_row = self.done + 1  # 1-based data row of the file, for messages
        self.done += len(frame)
        frame = self._inside_window(frame)
        self._report()
        if frame.empty:
            return None
        X = self._checked_features(frame[pipeline.features.all], first_row)
        scores = self._predict(champion, X, first_row)
        shadow_table = None
        if self.shadow is not None:
            challenger = self._predict(self.challenger_model, X, first_row)
            self.shadow.add(scores, challenger)
            if shadow_schema is not None:
                shadow_table = self._output_table(
                    frame, challenger, shadow_schema, {"model_version": self.shadow.version}
                )
        self.sample.add(X, **{PREDICTION: scores.score})
        self.rows += len(frame)
        provenance = {
            "model_name": self.job.pipeline.model_name,
            "model_version": self.job.model_version,
            "airflow_run_id": self.job.airflow_run_id,
        }
        return self._output_table(frame, scores, schema, provenance), shadow_table

    def _where(self, frame: pd.DataFrame, mask: Any, first_row: int) -> str:
        """`data row N` of the file for the first row where `mask` holds."""
        import numpy as np

        position = int(np.flatnonzero(np.asarray(mask))[0])
        return f"data row {first_row + int(frame.index[position] - frame.index[0])}"

    def _checked_features(self, X: pd.DataFrame, first_row: int) -> pd.DataFrame:
        """Numeric features as numbers, finite or null; the first offending value is named.

        Null is fine (the model's pipeline imputes it); text and infinity are not.
        """
        import numpy as np
        import pandas as pd

        uri = self.job.input_uri
        converted = {}
        for column in self.job.pipeline.features.numeric:
            values = X[column]
            if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
                numbers = pd.to_numeric(values, errors="coerce")
                bad = numbers.isna() & values.notna()
                if bad.any():
                    raise ScoringInputError(
                        f"scoring input {uri}: column {column!r} is a numeric feature but "
                        f"holds {values[bad].iloc[0]!r} ({self._where(X, bad, first_row)})"
                    )
                converted[column] = numbers.astype("float64")
                values = converted[column]
            if pd.api.types.is_float_dtype(values):
                infinite = np.isinf(values.to_numpy(dtype="float64", na_value=np.nan))
                if infinite.any():
                    raise ScoringInputError(
                        f"scoring input {uri}: column {column!r} holds {int(infinite.sum())} "
                        f"infinite value(s), first at {self._where(X, infinite, first_row)}; "
                        "only finite numbers or nulls can be scored"
                    )
        for column in self.job.pipeline.features.categorical:
            values = X[column]
            if isinstance(values.dtype, pd.CategoricalDtype):
                values = values.astype(object)
            # infer_dtype runs in C: the per-value path below is taken only to name a culprit
            if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
                # Training saw text (validation requires it): numbers here would either be
                # refused by the encoder or silently match nothing.
                bad = values.notna() & ~values.map(lambda v: isinstance(v, str))
                first = values[bad].iloc[0]
                shown = first.item() if hasattr(first, "item") else first
                raise ScoringInputError(
                    f"scoring input {uri}: column {column!r} is a categorical feature but holds "
                    f"{shown!r} ({type(first).__name__}, {self._where(X, bad, first_row)}); "
                    "categories are text, as in training"
                )
        return X.assign(**converted) if converted else X

    def _predict(self, model: Any, X: pd.DataFrame, first_row: int) -> Scores:
        """The model's scores; a refusal of the rows (sklearn's ValueError) names the file."""
        try:
            return predict(model, X, self.job.pipeline.task)
        except (ValueError, TypeError) as exc:
            raise ScoringInputError(
                f"scoring input {self.job.input_uri}: the model refuses data rows "
                f"{first_row}-{self.done} (columns {list(X.columns)}): {_first_line(exc)}"
            ) from exc

    def _inside_window(self, frame: pd.DataFrame) -> pd.DataFrame:
        import pandas as pd

        from continuous_training.sources import utc_times

        column = self.job.pipeline.time_column
        if column not in frame.columns:
            return frame
        times = frame[column]
        if not isinstance(times.dtype, pd.DatetimeTZDtype):
            # Converting an already tz-aware column costs as much as the rest of the batch.
            # Text (CSV) is parsed as the file source parses it.
            try:
                times = utc_times(frame, column, "the scoring input")
            except SourceError as exc:
                raise ScoringInputError(f"scoring input {self.job.input_uri}: {exc}") from exc
        inside = (times >= self.job.window.start) & (times < self.job.window.end)
        return frame[inside.to_numpy()]

    def _output_table(
        self, frame: pd.DataFrame, scores: Scores, schema: Any, provenance: dict[str, str]
    ) -> Any:
        import pyarrow as pa

        n = len(frame)
        ids = frame[self.job.pipeline.scoring_id_columns].reset_index(drop=True)
        id_schema = pa.schema([schema.field(c) for c in ids.columns])
        table = pa.Table.from_pandas(ids, schema=id_schema, preserve_index=False)
        table = table.append_column(
            schema.field(PREDICTION), pa.array(scores.label).cast(schema.field(PREDICTION).type)
        )
        if scores.probability is not None:
            table = table.append_column(
                schema.field(PROBABILITY), pa.array(scores.probability, pa.float64())
            )
        for name, value in provenance.items():
            table = table.append_column(name, pa.repeat(pa.scalar(value, pa.string()), n))
        return table.cast(schema)

    def _report(self, final: bool = False) -> None:
        now = time.monotonic()
        if self.progress and (final or now - self.last_report >= self.every):
            self.progress(self.done, self.total)
            self.last_report = now

    def finish(self) -> dict[str, Any]:
        self._report(final=True)
        sample = self.sample.result(self.job.pipeline.features.all)
        storage.write_parquet_atomic(sample, self.job.sample_uri)
        return {
            "uri": self.job.output_uri,
            "rows": self.rows,
            "input_rows": self.total or self.done,
            "sha256": storage.sha256_of(self.job.output_uri),
            "model_version": self.job.model_version,
            "sample_uri": self.job.sample_uri,
            "sample_rows": len(sample),
            "shadow": self.shadow.to_json() if self.shadow else None,
            "shadow_uri": self.job.shadow_output_uri if self.shadow else None,
        }


# --------------------------------------------------------------------------- publishing


def publish(
    pipeline: PipelineConfig,
    window: Window,
    parts: list[dict[str, Any]],
    airflow_run_id: str,
    set_id: str = DEFAULT_SET,
) -> dict[str, Any]:
    """Make the set `set_id` the window's published predictions, in one step.

    Checks that every part lies in the set's folder and exists, then replaces the window's
    manifest (one atomic write: the switch), then removes what the switch superseded:
    earlier sets, sets of failed runs, and files of the layout before sets. Readers that
    follow the manifest see the previous complete set or this one, never a mix.
    """
    versions = sorted({p["model_version"] for p in parts})
    if len(versions) > 1:
        raise PartitionError(f"parts of window {window} were scored by versions {versions}")
    folder = set_dir(pipeline.name, window, set_id)
    for part in parts:
        for what in ("uri", "sample_uri", "shadow_uri"):
            if what == "shadow_uri" and not part.get(what):
                continue  # no challenger shadowed this part
            uri = storage.require_inside(part[what], folder, f"part {what}")
            if not storage.exists(uri):
                raise PartitionError(
                    f"part {uri} of set {set_id} is missing: the set is incomplete and was "
                    f"not published; run the window again"
                )
    manifest = {
        "pipeline": pipeline.name,
        "model_name": pipeline.model_name,
        "model_version": versions[0] if versions else None,
        "window_start": window.start.isoformat(),
        "window_end": window.end.isoformat(),
        "airflow_run_id": airflow_run_id,
        "rows": sum(p["rows"] for p in parts),
        "set": set_id,
        "uri": folder,
        "manifest": manifest_uri(pipeline.name, window),
        "parts": sorted(parts, key=lambda p: p["uri"]),
    }
    storage.write_json_atomic(manifest, manifest_uri(pipeline.name, window))
    _remove_superseded(pipeline.name, window, keep=folder)
    return manifest


def _remove_superseded(pipeline_name: str, window: Window, keep: str) -> None:
    """Everything in the date's folder but the manifest and the current set."""
    kept = {MANIFEST, keep.rstrip("/").rsplit("/", 1)[-1]}
    for entry in storage.list_entries(predictions_dir(pipeline_name, window)):
        if entry.rstrip("/").rsplit("/", 1)[-1] not in kept:
            storage.remove(entry, recursive=True)


def merge_shadow(parts: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The shadow statistics of all parts as one record, or None without a challenger."""
    shadows = [p["shadow"] for p in parts if p.get("shadow")]
    if not shadows:
        return None
    rows = sum(s["rows"] for s in shadows)
    return {
        "challenger_version": shadows[0]["version"],
        "rows": rows,
        "disagreement_rate": sum(s["disagreements"] for s in shadows) / rows if rows else 0.0,
        "mean_abs_score_diff": sum(s["abs_diff_sum"] for s in shadows) / rows if rows else 0.0,
        "champion_hist": _sum_columns([s["champion_hist"] for s in shadows]),
        "challenger_hist": _sum_columns([s["challenger_hist"] for s in shadows]),
        "bins": HISTOGRAM_BINS,
    }


def _sum_columns(rows: list[list[int]]) -> list[int]:
    return [sum(column) for column in zip(*rows, strict=True)]


def read_sample(parts: list[dict[str, Any]], k: int) -> pd.DataFrame:
    """The uniform sample of every part's scored rows: the `k` smallest keys of the union."""
    import pandas as pd

    frames = [
        storage.read_parquet(storage.require_in_data_root(p["sample_uri"], "drift sample"))
        for p in parts
        if p.get("sample_rows", 1)  # a part with no row in the window has an empty sample
    ]
    merged = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if merged.empty:
        return merged
    return smallest_keys(merged, k).drop(columns=[SAMPLE_KEY]).reset_index(drop=True)
