"""Batch inference: split a window into partitions and score each one in record batches.

One partition is one mapped Airflow task. It streams its parquet input batch by batch
(`ParquetFile.iter_batches`), so memory depends on the batch size and never on the
partition's size, and writes its predictions through a temporary name, so a re-run of
the same window replaces the output instead of adding to it. Along the way it keeps a
bounded uniform sample of what it scored (for the drift check) and, when a challenger
is shadowing the champion, counts where the two disagree.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
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


# --------------------------------------------------------------------------- partitions


@dataclass(frozen=True)
class Partition:
    """One unit of scoring: a file of the file source or a time range of the others."""

    key: str
    start: str
    end: str
    path: str | None = None

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
        partitions = _file_partitions(source.path or "", window)
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
    step = timedelta(hours=hours)
    partitions, start = [], window.start
    while start < window.end:
        end = min(start + step, window.end)
        key = start.strftime("%Y%m%dT%H%M")
        partitions.append(Partition(key, start.isoformat(), end.isoformat()))
        start = end
    return partitions


def _file_partitions(path: str, window: Window) -> list[Partition]:
    """Every file the path names, with `{date}` filled in for each day of the window."""
    from fsspec.core import url_to_fs

    patterns = [path]
    if DATE_PLACEHOLDER in path:
        days = math.ceil(window.days)
        patterns = [
            path.replace(DATE_PLACEHOLDER, (window.start + timedelta(days=i)).date().isoformat())
            for i in range(days)
        ]
    files: list[str] = []
    for pattern in patterns:
        fs, local = url_to_fs(pattern)
        if any(ch in local for ch in "*?["):
            found = [p for p in fs.glob(local) if not fs.isdir(p)]
        elif fs.isdir(local):
            found = [p for p in fs.find(local) if p.endswith((".parquet", ".pq"))]
        else:
            found = [local] if fs.exists(local) else []
        scheme = pattern.split("://", 1)[0] + "://" if "://" in pattern else ""
        files.extend(scheme + f for f in sorted(found))
    if not files:
        raise SourceError(f"inference.source.path {path!r} matches no files for window {window}")
    return [
        Partition(_file_key(f), window.start.isoformat(), window.end.isoformat(), f) for f in files
    ]


def _file_key(path: str) -> str:
    """A readable, unique key: the file's stem plus a digest of its full path."""
    stem = path.rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    digest = hashlib.sha256(path.encode()).hexdigest()[:8]
    return f"{storage.safe_token(stem)[:40]}-{digest}"


# --------------------------------------------------------------------------- locations


def window_label(window: Window) -> str:
    """`dt=2026-03-14` for a one-day window, `dt=2026-03-08_2026-03-15` otherwise."""
    start, end = window.start.date().isoformat(), window.end.date().isoformat()
    one_day = window.end - window.start == timedelta(days=1) and window.start.hour == 0
    return f"dt={start}" if one_day else f"dt={start}_{end}"


def predictions_dir(pipeline_name: str, window: Window) -> str:
    """Where one window's predictions live: the same place for every re-run of it."""
    return storage.join(storage.data_root(), pipeline_name, "predictions", window_label(window))


def prediction_uri(pipeline_name: str, window: Window, key: str) -> str:
    return storage.join(predictions_dir(pipeline_name, window), f"part-{key}.parquet")


def sample_uri(pipeline_name: str, window: Window, key: str) -> str:
    return storage.join(
        predictions_dir(pipeline_name, window), "_drift_sample", f"part-{key}.parquet"
    )


def manifest_uri(pipeline_name: str, window: Window) -> str:
    return storage.join(predictions_dir(pipeline_name, window), "_manifest.json")


def materialize_input(
    pipeline: PipelineConfig, partition: Partition, run_id: str, connection_uri: str | None
) -> str:
    """The partition's input as a parquet file: the file itself, or a fetched snapshot."""
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
    """Stream the input, write predictions atomically; return rows, URIs and shadow stats."""
    import pyarrow.parquet as pq
    from fsspec.core import url_to_fs
    from threadpoolctl import threadpool_limits

    settings = job.pipeline.inference
    # Resolved before the output is opened: a missing PII key fails with nothing written.
    protect = pii.rules_for(job.pipeline) if job.raw_input else pii.Rules()
    fs, path = url_to_fs(job.input_uri)
    with fs.open(path, "rb") as fh, threadpool_limits(limits=settings.threads_per_task):
        # pre_buffer would keep every row group's bytes until the loop ends: memory would
        # grow with the partition instead of staying at one batch.
        parquet = pq.ParquetFile(fh, pre_buffer=False)
        state = _ScoringState(job, parquet.metadata.num_rows, challenger, progress)
        columns = _input_columns(job.pipeline, parquet.schema_arrow.names, job.input_uri)
        with storage.open_atomic(job.output_uri) as out:
            writer = None
            try:
                for batch in parquet.iter_batches(settings.batch_size, columns=columns):
                    table = state.score(protect(batch.to_pandas()), champion)
                    if writer is None:
                        writer = pq.ParquetWriter(out, table.schema)
                    writer.write_table(table)
                if writer is None:
                    writer = pq.ParquetWriter(out, state.empty_table().schema)
            finally:
                if writer is not None:
                    writer.close()
    return state.finish()


def _input_columns(pipeline: PipelineConfig, available: list[str], uri: str) -> list[str]:
    needed = [*pipeline.scoring_id_columns, *pipeline.features.all]
    missing = [c for c in needed if c not in available]
    if missing:
        raise SourceError(
            f"scoring input {uri} lacks the columns {missing} (id columns and features "
            "are required)"
        )
    time_column = [pipeline.time_column] if pipeline.time_column in available else []
    return time_column + needed


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

    def score(self, frame: pd.DataFrame, champion: Any) -> Any:
        pipeline = self.job.pipeline
        self.done += len(frame)
        frame = self._inside_window(frame)
        X = frame[pipeline.features.all]
        scores = predict(champion, X, pipeline.task)
        if self.shadow is not None and len(frame):
            self.shadow.add(scores, predict(self.challenger_model, X, pipeline.task))
        self.sample.add(X, **{PREDICTION: scores.score})
        self.rows += len(frame)
        self._report()
        return self._output_table(frame, scores)

    def _inside_window(self, frame: pd.DataFrame) -> pd.DataFrame:
        import pandas as pd

        column = self.job.pipeline.time_column
        if column not in frame.columns:
            return frame
        times = frame[column]
        if not isinstance(times.dtype, pd.DatetimeTZDtype):
            # Converting an already tz-aware column costs as much as the rest of the batch.
            times = pd.to_datetime(times, utc=True)
        inside = (times >= self.job.window.start) & (times < self.job.window.end)
        return frame[inside.to_numpy()]

    def _output_table(self, frame: pd.DataFrame, scores: Scores) -> Any:
        import pyarrow as pa

        n = len(frame)
        ids = frame[self.job.pipeline.scoring_id_columns].reset_index(drop=True)
        table = pa.Table.from_pandas(ids, preserve_index=False)
        table = table.append_column(PREDICTION, pa.array(scores.label))
        if scores.probability is not None:
            table = table.append_column(PROBABILITY, pa.array(scores.probability, pa.float64()))
        for name, value in (
            ("model_name", self.job.pipeline.model_name),
            ("model_version", self.job.model_version),
            ("airflow_run_id", self.job.airflow_run_id),
        ):
            table = table.append_column(name, pa.repeat(pa.scalar(value, pa.string()), n))
        return table

    def empty_table(self) -> Any:
        import pandas as pd

        columns = [*self.job.pipeline.scoring_id_columns, *self.job.pipeline.features.all]
        empty = pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
        return self._output_table(empty, Scores(empty.iloc[:, 0].to_numpy(), None))

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
            "input_rows": self.total,
            "sha256": storage.sha256_of(self.job.output_uri),
            "model_version": self.job.model_version,
            "sample_uri": self.job.sample_uri,
            "sample_rows": len(sample),
            "shadow": self.shadow.to_json() if self.shadow else None,
        }


# --------------------------------------------------------------------------- publishing


def publish(
    pipeline: PipelineConfig, window: Window, parts: list[dict[str, Any]], airflow_run_id: str
) -> dict[str, Any]:
    """Write the window's manifest and remove parts that this run did not write.

    A window re-scored with fewer partitions (other files, other settings) must not keep
    stale parts from before; the manifest lists exactly the parts of the last run.
    """
    versions = sorted({p["model_version"] for p in parts})
    if len(versions) > 1:
        raise PartitionError(f"parts of window {window} were scored by versions {versions}")
    keep = {p["uri"] for p in parts} | {p["sample_uri"] for p in parts}
    folder = predictions_dir(pipeline.name, window)
    for pattern in ("part-*.parquet", "_drift_sample/part-*.parquet"):
        for uri in storage.list_files(folder, pattern):
            if uri not in keep:
                storage.remove(uri)
    manifest = {
        "pipeline": pipeline.name,
        "model_name": pipeline.model_name,
        "model_version": versions[0] if versions else None,
        "window_start": window.start.isoformat(),
        "window_end": window.end.isoformat(),
        "airflow_run_id": airflow_run_id,
        "rows": sum(p["rows"] for p in parts),
        "uri": folder,
        "parts": sorted(parts, key=lambda p: p["uri"]),
    }
    storage.write_json_atomic(manifest, manifest_uri(pipeline.name, window))
    return manifest


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
    ]
    merged = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if merged.empty:
        return merged
    return smallest_keys(merged, k).drop(columns=[SAMPLE_KEY]).reset_index(drop=True)
