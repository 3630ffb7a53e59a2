"""Realized performance: published predictions joined with the labels that arrived since.

Batch inference publishes each date's predictions (`inference.publish`, a manifest per
date). Labels arrive later (`labels.delay_days`). A monitoring run at `as_of` joins the
labels known by then with the predictions of the last `monitoring.lookback_days` and
writes, per prediction date::

    $CT_DATA_ROOT/<pipeline>/monitoring/dt=<date>/
        joined.parquet      the labelled predictions: ids, label, prediction, probability,
                            model_version (+ challenger_* when a challenger shadowed)
        metrics.json        realized metrics per model version with bootstrap intervals,
                            label coverage, unmatched labels, and the `as_of` they know of

Both are written atomically, metrics.json last. A run with the same `as_of` writes the same
bytes again; a run with an older `as_of` leaves a date measured with newer knowledge alone.

Memory: a date's labels are held (they fit in memory); its predictions are streamed part by
part in record batches of `monitoring.batch_size` (`ParquetFile.iter_batches`), each batch
looked up in a hash index of the date's labels, so memory does not grow with the number of
predictions. Only the labelled rows' label and score (two floats a row) are kept for the
bootstrap.

Decay (`check_decay`) pools the champion's labelled rows of the trailing
`monitoring.window_days` and compares the realized primary metric's bootstrap interval with
the metric the champion showed on its holdout at promotion (`expected_metric`). Too few labels
is never evidence of decay.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from continuous_training import inference, storage
from continuous_training.config import PipelineConfig
from continuous_training.errors import BadInputError
from continuous_training.inference import PREDICTION, PROBABILITY
from continuous_training.sources import Window

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

MONITORING = "monitoring"
JOINED = "joined.parquet"
METRICS = "metrics.json"
LABEL = "label"
MODEL_VERSION = "model_version"
CHALLENGER_PREDICTION = "challenger_prediction"
CHALLENGER_PROBABILITY = "challenger_probability"
CHALLENGER_VERSION = "challenger_version"
SUMMARY_ARTIFACT = "monitoring/summary.json"
REPORT_ARTIFACT = "monitoring/performance_report.html"
REPORT_ROWS = 50_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MLFLOW_BATCH = 1000  # metrics per log_batch call (MLflow's limit)


class MonitoringInputError(BadInputError):
    """Labels or published predictions cannot be joined; the message names file and column."""


# --------------------------------------------------------------------------- locations


def monitoring_dir(pipeline_name: str) -> str:
    return storage.join(storage.data_root(), pipeline_name, MONITORING)


def date_dir(pipeline_name: str, window: Window) -> str:
    """`<root>/<pipeline>/monitoring/dt=<date>`: the same label as the predictions' folder."""
    return storage.join(monitoring_dir(pipeline_name), inference.window_label(window))


def _manifest_window(manifest: dict[str, Any], uri: str) -> Window:
    try:
        return Window(
            datetime.fromisoformat(manifest["window_start"]),
            datetime.fromisoformat(manifest["window_end"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        where = uri or manifest.get("manifest", "a manifest")
        raise MonitoringInputError(
            f"{where}: key window_start/window_end missing or not ISO times: {exc}"
        ) from exc


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise MonitoringInputError(f"as_of {value.isoformat()} has no timezone: pass UTC times")
    # a plain datetime: pendulum's (Airflow's) loses its zone in some arithmetic
    return datetime.fromtimestamp(value.timestamp(), tz=UTC)


def _seed(base: int, *parts: Any) -> int:
    """A deterministic bootstrap seed per date (and version): same inputs, same interval."""
    text = "|".join([str(base), *map(str, parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def _version_key(version: str) -> tuple[int, Any]:
    return (0, int(version)) if str(version).isdigit() else (1, str(version))


# --------------------------------------------------------------------------- metrics


def _metric_names(pipeline: PipelineConfig) -> list[str]:
    gates = pipeline.gates
    return list(dict.fromkeys([gates.primary_metric, *gates.guardrails]))


def _null(metric: str, reason: str) -> dict[str, Any]:
    return {"value": None, "low": None, "high": None, "reason": reason}


def _interval(
    pipeline: PipelineConfig, metric: str, y: np.ndarray, p: np.ndarray, seed: int
) -> dict[str, Any]:
    """The metric with its percentile bootstrap interval, or null with the reason."""
    from continuous_training.bootstrap import bootstrap_interval
    from continuous_training.metrics import EvaluationError

    if len(y) == 0:
        return _null(metric, "no labelled rows")
    cfg = pipeline.gates.bootstrap
    try:
        result = bootstrap_interval(
            metric, y, p, resamples=cfg.resamples, confidence=cfg.confidence, seed=seed
        )
    except EvaluationError as exc:
        return _null(metric, str(exc))
    return {"value": result.value, "low": result.low, "high": result.high, "reason": None}


def _paired(
    pipeline: PipelineConfig, y: np.ndarray, challenger: np.ndarray, champion: np.ndarray, seed: int
) -> dict[str, Any]:
    """Challenger minus champion on the primary metric (positive = challenger better)."""
    from continuous_training.bootstrap import paired_bootstrap
    from continuous_training.metrics import EvaluationError

    metric = pipeline.gates.primary_metric
    if len(y) == 0:
        return {"metric": metric, **_null(metric, "no labelled rows")}
    cfg = pipeline.gates.bootstrap
    try:
        boot = paired_bootstrap(
            metric,
            y,
            challenger,
            champion,
            resamples=cfg.resamples,
            confidence=cfg.confidence,
            seed=seed,
        )
    except EvaluationError as exc:
        return {"metric": metric, **_null(metric, str(exc))}
    return {
        "metric": metric,
        "value": boot.observed_diff,
        "low": boot.low,
        "high": boot.high,
        "reason": None,
    }


# --------------------------------------------------------------------------- labels


def _prepare_labels(pipeline: PipelineConfig, labels: pd.DataFrame) -> pd.DataFrame:
    """The labels frame checked (columns present), times in UTC, rows without a target dropped."""
    from continuous_training.sources import SourceError, utc_times

    needed = [*pipeline.scoring_id_columns, pipeline.time_column, pipeline.target]
    missing = [c for c in needed if c not in labels.columns]
    if missing:
        raise MonitoringInputError(
            f"labels of {pipeline.name} lack the columns {missing} (have {list(labels.columns)})"
        )
    try:
        times = utc_times(labels, pipeline.time_column, f"the labels of {pipeline.name}")
    except SourceError as exc:
        raise MonitoringInputError(str(exc)) from exc
    known_at = pipeline.labels.known_at_column if pipeline.labels else None
    columns = [*pipeline.scoring_id_columns, pipeline.target]
    if known_at and known_at in labels.columns:
        columns.append(known_at)
    frame = labels[columns].assign(**{pipeline.time_column: times})
    return frame[frame[pipeline.target].notna()]


def _id_keys(frame: pd.DataFrame, ids: list[str], as_text: bool) -> Any:
    """What a hash index of ids is built from and looked up with."""
    import pandas as pd

    columns = [frame[c].astype(str) if as_text else frame[c] for c in ids]
    if len(columns) == 1:
        return pd.Index(columns[0])
    return pd.MultiIndex.from_arrays(columns)


def _ids_as_text(pipeline: PipelineConfig, labels: pd.DataFrame, part_schema: Any) -> bool:
    """True when labels and predictions store an id column differently (e.g. int vs text)."""
    import pandas as pd
    import pyarrow as pa

    for column in pipeline.scoring_id_columns:
        kind = part_schema.field(column).type
        numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind)
        if numeric != pd.api.types.is_numeric_dtype(labels[column]):
            return True
    return False


# --------------------------------------------------------------------------- measure


def measure(pipeline: PipelineConfig, as_of: datetime, labels: pd.DataFrame) -> dict[str, Any]:
    """Join the labels known at `as_of` with the predictions of the lookback; write per date.

    Returns `{"pipeline", "task", "as_of", "lookback": {start, end}, "primary_metric",
    "metrics", "batch_size", "dates": [<metrics.json record>...], "written": [dates],
    "kept": [{date, stored_as_of, reason}], "labels": {rows, outside_published_dates}}`.
    """
    import numpy as np

    as_of = _utc(as_of)
    start = as_of - timedelta(days=pipeline.monitoring.lookback_days)
    prepared = _prepare_labels(pipeline, labels)
    times = prepared[pipeline.time_column]
    covered = np.zeros(len(prepared), dtype=bool)
    records, written, kept = [], [], []
    for manifest in inference.published_manifests(pipeline.name, start, as_of):
        window = _manifest_window(manifest, manifest.get("manifest", ""))
        in_window = ((times >= window.start) & (times < window.end)).to_numpy()
        covered |= in_window
        folder = date_dir(pipeline.name, window)
        stored = _stored_record(folder)
        if stored is not None and datetime.fromisoformat(stored["as_of"]) > as_of:
            kept.append(
                {
                    "date": stored["date"],
                    "stored_as_of": stored["as_of"],
                    "reason": f"{folder} was measured at {stored['as_of']}, after this "
                    f"run's as_of {as_of.isoformat()}: its newer knowledge is kept",
                }
            )
            records.append(stored)
            continue
        record = _measure_date(pipeline, manifest, window, prepared[in_window], as_of, folder)
        records.append(record)
        written.append(record["date"])
    return {
        "pipeline": pipeline.name,
        "task": pipeline.task,
        "as_of": as_of.isoformat(),
        "lookback": {"start": start.isoformat(), "end": as_of.isoformat()},
        "primary_metric": pipeline.gates.primary_metric,
        "metrics": _metric_names(pipeline),
        "batch_size": pipeline.monitoring.batch_size,
        "monitoring_uri": monitoring_dir(pipeline.name),
        "dates": records,
        "written": written,
        "kept": kept,
        "labels": {
            "rows": len(prepared),
            "outside_published_dates": int((~covered).sum()),
        },
    }


def _stored_record(folder: str) -> dict[str, Any] | None:
    uri = storage.join(folder, METRICS)
    return storage.read_json(uri) if storage.exists(uri) else None


class _Collected:
    """The labelled rows of one date, per model version, as plain arrays."""

    def __init__(self) -> None:
        self.predictions: dict[str, int] = {}
        self.chunks: dict[str, list[dict[str, np.ndarray]]] = {}

    def add_predictions(self, versions: pd.Series) -> None:
        for version, count in versions.value_counts().items():
            self.predictions[str(version)] = self.predictions.get(str(version), 0) + int(count)

    def add_labelled(self, frame: pd.DataFrame, score: str, challenger_score: str | None) -> None:
        for version, rows in frame.groupby(MODEL_VERSION, sort=False):
            chunk = {
                "y": rows[LABEL].to_numpy(dtype=float, na_value=float("nan")),
                "p": _floats(rows, score),
            }
            if challenger_score is not None:
                chunk["cp"] = _floats(rows, challenger_score)
                chunk["cv"] = rows[CHALLENGER_VERSION].to_numpy(dtype=object)
            self.chunks.setdefault(str(version), []).append(chunk)

    def arrays(self, version: str) -> dict[str, np.ndarray]:
        import numpy as np

        chunks = self.chunks.get(version, [])
        if not chunks:
            return {"y": np.zeros(0), "p": np.zeros(0)}
        keys = set.intersection(*(set(c) for c in chunks))
        return {k: np.concatenate([c[k] for c in chunks]) for k in keys}


def _floats(frame: pd.DataFrame, column: str) -> np.ndarray:
    import numpy as np

    if column not in frame.columns:
        return np.full(len(frame), np.nan)
    import pandas as pd

    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _measure_date(
    pipeline: PipelineConfig,
    manifest: dict[str, Any],
    window: Window,
    labels: pd.DataFrame,
    as_of: datetime,
    folder: str,
) -> dict[str, Any]:
    """Join one date's parts with its labels, write joined.parquet and metrics.json."""
    import numpy as np
    import pyarrow.parquet as pq

    ids = pipeline.scoring_id_columns
    known_at = pipeline.labels.known_at_column if pipeline.labels else None
    # one label per id: the latest known (a corrected outcome replaces the first one)
    order = [*ids, known_at] if known_at and known_at in labels.columns else ids
    labels = labels.sort_values(order, kind="stable")
    duplicated = labels.duplicated(ids, keep="last").to_numpy()
    labels = labels[~duplicated].reset_index(drop=True)
    parts = manifest.get("parts") or []
    shadowed = any(p.get("shadow_uri") for p in parts)
    score = PROBABILITY if pipeline.task == "classification" else PREDICTION
    challenger_score = (
        (CHALLENGER_PROBABILITY if pipeline.task == "classification" else CHALLENGER_PREDICTION)
        if shadowed
        else None
    )
    y_all = labels[pipeline.target]
    matched = np.zeros(len(labels), dtype=bool)
    collected = _Collected()
    joined_uri = storage.join(folder, JOINED)
    index = None
    writer = schema = None
    with storage.open_atomic(joined_uri) as out:
        try:
            for part in parts:
                for part_schema, batch in _part_batches(pipeline, part, shadowed):
                    if index is None:
                        as_text = _ids_as_text(pipeline, labels, part_schema)
                        index = _id_keys(labels, ids, as_text)
                        if not index.is_unique:  # pragma: no cover - deduplicated above
                            raise MonitoringInputError("label ids are not unique")
                    collected.add_predictions(batch[MODEL_VERSION].astype(str))
                    positions = index.get_indexer(_id_keys(batch, ids, as_text))
                    hit = positions >= 0
                    if not hit.any():
                        continue
                    matched[positions[hit]] = True
                    rows = batch[hit].reset_index(drop=True)
                    rows.insert(len(ids), LABEL, y_all.to_numpy()[positions[hit]])
                    rows[MODEL_VERSION] = rows[MODEL_VERSION].astype(str)
                    collected.add_labelled(rows, score, challenger_score)
                    table = _joined_table(rows, schema)
                    if writer is None:
                        schema = _filled_schema(table.schema)
                        table = table.cast(schema)
                        writer = pq.ParquetWriter(out, schema)
                    writer.write_table(table)
            if writer is None:
                empty = _empty_joined(pipeline, labels, shadowed)
                writer = pq.ParquetWriter(out, empty.schema)
                writer.write_table(empty)
        finally:
            if writer is not None:
                writer.close()
    predictions = sum(collected.predictions.values())
    labelled = int(matched.sum())
    cfg = pipeline.gates.bootstrap
    date = window.start.date().isoformat()
    versions = sorted(set(collected.predictions) | set(collected.chunks), key=_version_key)
    record = {
        "pipeline": pipeline.name,
        "date": date,
        "window_start": window.start.isoformat(),
        "window_end": window.end.isoformat(),
        "as_of": as_of.isoformat(),
        "manifest": {
            "uri": manifest.get("manifest"),
            "set": manifest.get("set"),
            "model_version": manifest.get("model_version"),
            "rows": manifest.get("rows"),
        },
        "primary_metric": pipeline.gates.primary_metric,
        "metrics": _metric_names(pipeline),
        "bootstrap": {"resamples": cfg.resamples, "confidence": cfg.confidence, "seed": cfg.seed},
        "predictions": predictions,
        "labels_in_window": len(labels) + int(duplicated.sum()),
        "duplicate_labels": int(duplicated.sum()),
        "labelled_rows": labelled,
        "label_coverage": labelled / predictions if predictions else None,
        "unmatched_labels": int(len(labels) - labelled),
        "versions": [_version_record(pipeline, date, v, collected, shadowed) for v in versions],
        "joined": {
            "uri": joined_uri,
            "rows": int(sum(len(c["y"]) for cs in collected.chunks.values() for c in cs)),
            "sha256": storage.sha256_of(joined_uri),
        },
    }
    storage.write_json_atomic(record, storage.join(folder, METRICS))
    return record


def _version_record(
    pipeline: PipelineConfig, date: str, version: str, collected: _Collected, shadowed: bool
) -> dict[str, Any]:
    import numpy as np

    base = pipeline.gates.bootstrap.seed
    arrays = collected.arrays(version)
    y, p = arrays["y"], arrays["p"]
    predictions = collected.predictions.get(version, 0)
    record: dict[str, Any] = {
        "model_version": version,
        "predictions": predictions,
        "labelled_rows": len(y),
        "label_coverage": len(y) / predictions if predictions else None,
        "metrics": {
            m: _interval(pipeline, m, y, p, _seed(base, date, version, m))
            for m in _metric_names(pipeline)
        },
        "shadows": [],
    }
    if not shadowed or "cv" not in arrays:
        return record
    cv = arrays["cv"]
    present = np.array([v is not None and v == v for v in cv], dtype=bool)  # not None/NaN
    for challenger in sorted({str(v) for v in cv[present]}, key=_version_key):
        rows = present & (cv.astype(str) == challenger)
        yc, pc, champion = y[rows], arrays["cp"][rows], p[rows]
        record["shadows"].append(
            {
                "challenger_version": challenger,
                "labelled_rows": int(rows.sum()),
                "metrics": {
                    m: _interval(pipeline, m, yc, pc, _seed(base, date, challenger, m))
                    for m in _metric_names(pipeline)
                },
                "champion_metrics_on_same_rows": {
                    m: _interval(pipeline, m, yc, champion, _seed(base, date, version, m, "same"))
                    for m in _metric_names(pipeline)
                },
                "diff": _paired(pipeline, yc, pc, champion, _seed(base, date, version, challenger)),
            }
        )
    return record


def _part_batches(
    pipeline: PipelineConfig, part: dict[str, Any], shadowed: bool
) -> Iterator[tuple[Any, pd.DataFrame]]:
    """A part's rows in batches of `monitoring.batch_size`, the shadow's columns beside them.

    Yields (the part's arrow schema, the batch as a DataFrame).
    """

    uri = storage.require_in_data_root(part["uri"], "prediction part")
    shadow_uri = part.get("shadow_uri")
    size = pipeline.monitoring.batch_size
    with storage_open(uri) as fh:
        champion = _parquet(fh, uri)
        _require_columns(pipeline, champion.schema_arrow, uri, [PREDICTION, MODEL_VERSION])
        if not shadow_uri:
            for batch in champion.iter_batches(size):
                frame = batch.to_pandas()
                if shadowed:
                    frame[CHALLENGER_PREDICTION] = None
                    frame[CHALLENGER_VERSION] = None
                    if pipeline.task == "classification":
                        frame[CHALLENGER_PROBABILITY] = float("nan")
                yield champion.schema_arrow, frame
            return
        shadow_uri = storage.require_in_data_root(shadow_uri, "shadow prediction part")
        with storage_open(shadow_uri) as sh:
            shadow = _parquet(sh, shadow_uri)
            _require_columns(pipeline, shadow.schema_arrow, shadow_uri, [PREDICTION, MODEL_VERSION])
            if shadow.metadata.num_rows != champion.metadata.num_rows:
                raise MonitoringInputError(
                    f"shadow part {shadow_uri} has {shadow.metadata.num_rows} rows but its "
                    f"part {uri} has {champion.metadata.num_rows}: they must match row by row"
                )
            columns = [PREDICTION, MODEL_VERSION]
            if pipeline.task == "classification" and PROBABILITY in shadow.schema_arrow.names:
                columns.append(PROBABILITY)
            renamed = {
                PREDICTION: CHALLENGER_PREDICTION,
                PROBABILITY: CHALLENGER_PROBABILITY,
                MODEL_VERSION: CHALLENGER_VERSION,
            }
            pairs = _aligned(
                champion.iter_batches(size), shadow.iter_batches(size, columns=columns)
            )
            for left, right in pairs:
                frame = left.to_pandas()
                extra = right.to_pandas().rename(columns=renamed)
                for column in extra.columns:
                    frame[column] = extra[column].to_numpy()
                frame[CHALLENGER_VERSION] = frame[CHALLENGER_VERSION].astype(str)
                yield champion.schema_arrow, frame


def _aligned(left: Iterator[Any], right: Iterator[Any]) -> Iterator[tuple[Any, Any]]:
    """Pairs of equally long record batches of two streams of the same rows.

    `iter_batches` also cuts at row-group boundaries, which two files need not share.
    """
    a = b = None
    while True:
        if a is None or a.num_rows == 0:
            a = next(left, None)
        if b is None or b.num_rows == 0:
            b = next(right, None)
        if a is None or b is None:
            return
        n = min(a.num_rows, b.num_rows)
        if n == 0:
            continue
        yield a.slice(0, n), b.slice(0, n)
        a, b = a.slice(n), b.slice(n)


def _filled_schema(schema: Any) -> Any:
    """The joined file's schema, with columns that were all null in the first batch typed."""
    import pyarrow as pa

    typed = {
        CHALLENGER_PREDICTION: schema.field(PREDICTION).type,
        CHALLENGER_PROBABILITY: pa.float64(),
        CHALLENGER_VERSION: pa.string(),
    }
    fields = [
        pa.field(f.name, typed.get(f.name, pa.string())) if pa.types.is_null(f.type) else f
        for f in schema
    ]
    return pa.schema(fields)


def storage_open(uri: str) -> Any:
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(uri)
    return fs.open(path, "rb")


def _parquet(fh: Any, uri: str) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(fh, pre_buffer=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise MonitoringInputError(f"{uri} is not a readable parquet file: {exc}") from exc


def _require_columns(pipeline: PipelineConfig, schema: Any, uri: str, extra: list[str]) -> None:
    missing = [c for c in [*pipeline.scoring_id_columns, *extra] if c not in schema.names]
    if missing:
        raise MonitoringInputError(
            f"published predictions {uri} lack the columns {missing} (have {schema.names})"
        )


_JOINED_DROP = ("model_name", "airflow_run_id")


def _joined_table(rows: pd.DataFrame, schema: Any) -> Any:
    import pyarrow as pa

    rows = rows.drop(columns=[c for c in _JOINED_DROP if c in rows.columns])
    if schema is None:
        return pa.Table.from_pandas(rows, preserve_index=False)
    return pa.Table.from_pandas(rows[schema.names], schema=schema, preserve_index=False)


def _empty_joined(pipeline: PipelineConfig, labels: pd.DataFrame, shadowed: bool) -> Any:
    import pandas as pd
    import pyarrow as pa

    columns = [*pipeline.scoring_id_columns, LABEL, PREDICTION]
    if pipeline.task == "classification":
        columns.append(PROBABILITY)
    columns.append(MODEL_VERSION)
    if shadowed:
        columns += [CHALLENGER_PREDICTION, CHALLENGER_VERSION]
        if pipeline.task == "classification":
            columns.append(CHALLENGER_PROBABILITY)
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return pa.Table.from_pandas(frame, preserve_index=False)


# --------------------------------------------------------------------------- decay


def _stored_records(pipeline_name: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The metrics.json of every prediction date whose window lies in [start, end)."""
    records = []
    for entry in storage.list_entries(monitoring_dir(pipeline_name)):
        name = entry.rstrip("/").rsplit("/", 1)[-1]
        if not name.startswith("dt="):
            continue
        record = _stored_record(storage.join(monitoring_dir(pipeline_name), name))
        if record is None:
            continue
        ws = datetime.fromisoformat(record["window_start"])
        we = datetime.fromisoformat(record["window_end"])
        if start <= ws and we <= end:
            records.append(record)
    return sorted(records, key=lambda r: r["window_start"])


def _version_rows(
    records: list[dict[str, Any]], version: str, columns: list[str], batch_size: int
) -> Iterator[pd.DataFrame]:
    """The joined rows of `version` in the records' dates, in bounded batches."""
    import pyarrow.compute as pc

    for record in records:
        uri = storage.require_in_data_root(record["joined"]["uri"], "joined predictions")
        with storage_open(uri) as fh:
            joined = _parquet(fh, uri)
            names = joined.schema_arrow.names
            wanted = [c for c in columns if c in names]
            if MODEL_VERSION not in names:
                continue
            for batch in joined.iter_batches(batch_size, columns=[*wanted, MODEL_VERSION]):
                mask = pc.equal(batch.column(MODEL_VERSION).cast("string"), version)
                rows = batch.filter(mask)
                if rows.num_rows:
                    yield rows.to_pandas()


def check_decay(
    pipeline: PipelineConfig, as_of: datetime, champion_version: str | int, expected: float | None
) -> dict[str, Any]:
    """Whether the champion's realized primary metric over the trailing window has decayed.

    Decayed iff at least `monitoring.min_labelled_rows` labelled rows of the champion lie in
    the window AND the whole bootstrap interval lies beyond `expected` by more than
    `monitoring.tolerance` on the worse side. Returns `{"decayed", "reason", "extra"}`;
    `extra` is the asset event's payload.
    """
    import numpy as np

    from continuous_training.bootstrap import bootstrap_interval
    from continuous_training.metrics import EvaluationError, metric_direction

    as_of = _utc(as_of)
    version = str(champion_version)
    mon = pipeline.monitoring
    metric = pipeline.gates.primary_metric
    start = as_of - timedelta(days=mon.window_days)
    records = _stored_records(pipeline.name, start, as_of)
    score = PROBABILITY if pipeline.task == "classification" else PREDICTION
    ys, ps = [], []
    for rows in _version_rows(records, version, [LABEL, score], mon.batch_size):
        ys.append(rows[LABEL].to_numpy(dtype=float, na_value=np.nan))
        ps.append(_floats(rows, score))
    y = np.concatenate(ys) if ys else np.zeros(0)
    p = np.concatenate(ps) if ps else np.zeros(0)
    predictions = sum(
        v["predictions"] for r in records for v in r["versions"] if v["model_version"] == version
    )
    labelled = len(y)
    unlabelled = max(predictions - labelled, 0)
    extra: dict[str, Any] = {
        "metric": metric,
        "expected": expected,
        "realized": None,
        "interval": [None, None],
        "window": {"start": start.isoformat(), "end": as_of.isoformat()},
        "champion_version": version,
        "labelled_rows": labelled,
        "predictions": predictions,
        "dates": len(records),
    }
    if labelled < mon.min_labelled_rows:
        delay = (
            f" (labels arrive up to {pipeline.labels.delay_days:g} days after the prediction)"
            if pipeline.labels
            else ""
        )
        reason = (
            f"{labelled:,} labelled rows of version {version} in the window, "
            f"{mon.min_labelled_rows:,} needed; {unlabelled:,} predictions are still without "
            f"a label{delay}"
        )
        return {"decayed": False, "reason": reason, "extra": extra}
    cfg = pipeline.gates.bootstrap
    try:
        result = bootstrap_interval(
            metric,
            y,
            p,
            resamples=cfg.resamples,
            confidence=cfg.confidence,
            seed=_seed(cfg.seed, as_of.isoformat(), version),
        )
    except EvaluationError as exc:
        return {
            "decayed": False,
            "reason": f"realized {metric} of version {version} cannot be computed: {exc}",
            "extra": extra,
        }
    extra |= {"realized": result.value, "interval": [result.low, result.high]}
    realized = (
        f"realized {metric} {result.value:.4f} ({result.confidence:.0%} CI "
        f"[{result.low:.4f}, {result.high:.4f}]) of version {version} on {labelled:,} labelled "
        f"rows from {start.date()} to {as_of.date()}"
    )
    if expected is None:
        return {
            "decayed": False,
            "reason": f"{realized}; no expected {metric} is recorded for version {version}",
            "extra": extra,
        }
    if metric_direction(metric) > 0:
        bound = expected - mon.tolerance
        decayed = result.high < bound
        side = "below" if decayed else "not entirely below"
    else:
        bound = expected + mon.tolerance
        decayed = result.low > bound
        side = "above" if decayed else "not entirely above"
    reason = (
        f"{realized}: the interval is {side} the expected {expected:.4f} "
        f"{'-' if bound < expected else '+'} tolerance {mon.tolerance:g} = {bound:.4f}"
    )
    return {"decayed": bool(decayed), "reason": reason, "extra": extra}


def expected_metric(client: Any, pipeline: PipelineConfig, version: str | int) -> float | None:
    """The champion's holdout primary metric at promotion (`eval_challenger_<metric>`)."""
    run_id = client.get_model_version(pipeline.model_name, str(version)).run_id
    if not run_id:
        return None
    metrics = client.get_run(run_id).data.metrics
    value = metrics.get(f"eval_challenger_{pipeline.gates.primary_metric}")
    return None if value is None else float(value)


# --------------------------------------------------------------------------- MLflow


def _date_step(date: str) -> tuple[int, int]:
    """(days since 1970-01-01, that midnight in ms): the step and timestamp of a date."""
    day = datetime.fromisoformat(date).replace(tzinfo=UTC)
    days = (day - _EPOCH).days
    return days, days * 86_400_000


def _main_version(record: dict[str, Any]) -> dict[str, Any] | None:
    """The version that served most of the date (the later one on a tie)."""
    versions = record.get("versions") or []
    if not versions:
        return None
    return max(versions, key=lambda v: (v["predictions"], _version_key(v["model_version"])))


def _date_metrics(record: dict[str, Any]) -> dict[str, float]:
    values: dict[str, float] = {"labelled_rows": float(record["labelled_rows"])}
    if record.get("label_coverage") is not None:
        values["label_coverage"] = float(record["label_coverage"])
    main = _main_version(record)
    if main is None:
        return values
    for name, m in main["metrics"].items():
        if m["value"] is not None:
            values[f"realized_{name}"] = m["value"]
            values[f"realized_{name}_low"] = m["low"]
            values[f"realized_{name}_high"] = m["high"]
    shadows = [s for s in main.get("shadows", []) if s["labelled_rows"]]
    if shadows:
        shadow = max(shadows, key=lambda s: s["labelled_rows"])
        for name, m in shadow["metrics"].items():
            if m["value"] is not None:
                values[f"shadow_{name}"] = m["value"]
        diff = shadow["diff"]
        if diff["value"] is not None:
            values[f"shadow_diff_{diff['metric']}"] = diff["value"]
            values[f"shadow_diff_{diff['metric']}_low"] = diff["low"]
            values[f"shadow_diff_{diff['metric']}_high"] = diff["high"]
    return values


def log_to_mlflow(
    client: Any, run_id: str, summary: dict[str, Any], decay: dict[str, Any] | None
) -> dict[str, Any]:
    """Realized performance per prediction date as metric history, the summary and a report.

    Each date's metrics carry `step` = days since 1970-01-01 and `timestamp` = its midnight,
    so the MLflow UI plots them over prediction time. Returns what was logged.
    """
    from mlflow.entities import Metric

    metrics = []
    for record in sorted(summary["dates"], key=lambda r: r["date"]):
        step, timestamp = _date_step(record["date"])
        metrics += [Metric(k, float(v), timestamp, step) for k, v in _date_metrics(record).items()]
    if decay is not None:
        step, timestamp = _date_step(summary["as_of"][:10])
        metrics.append(Metric("decayed", float(bool(decay["decayed"])), timestamp, step))
        if decay["extra"].get("realized") is not None:
            name = f"window_realized_{decay['extra']['metric']}"
            metrics.append(Metric(name, float(decay["extra"]["realized"]), timestamp, step))
    for i in range(0, len(metrics), _MLFLOW_BATCH):
        client.log_batch(run_id, metrics=metrics[i : i + _MLFLOW_BATCH])
    report = None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "monitoring"
        folder.mkdir()
        (folder / "summary.json").write_text(
            json.dumps({**summary, "decay": decay}, indent=2, sort_keys=True, default=str),
            encoding="utf-8",
        )
        if decay is not None:
            report = _quality_report(summary, decay, folder / "performance_report.html")
        client.log_artifacts(run_id, str(folder), artifact_path="monitoring")
    return {"metrics": len(metrics), "report": report}


def _report_rows(summary: dict[str, Any], decay: dict[str, Any]) -> pd.DataFrame:
    """A bounded uniform sample (at most REPORT_ROWS) of the champion's joined window rows."""
    extra = decay["extra"]
    window = extra["window"]
    records = [
        r
        for r in summary["dates"]
        if window["start"] <= r["window_start"] and r["window_end"] <= window["end"]
    ]
    columns = [LABEL, PREDICTION, PROBABILITY]
    sample = inference.BottomKSample(REPORT_ROWS, _seed(0, summary["pipeline"], window["end"]))
    for rows in _version_rows(
        records, str(extra["champion_version"]), columns, summary["batch_size"]
    ):
        sample.add(rows.reset_index(drop=True))
    frame = sample.result(columns)
    return frame.drop(columns=[inference.SAMPLE_KEY], errors="ignore").reset_index(drop=True)


def _quality_report(summary: dict[str, Any], decay: dict[str, Any], path: Path) -> str:
    """Evidently's classification (or regression) quality report of the window, as HTML."""
    from evidently import BinaryClassification, DataDefinition, Dataset, Regression, Report
    from evidently.presets import ClassificationPreset, RegressionPreset

    rows = _report_rows(summary, decay)
    if rows.empty:
        path.write_text("<p>No labelled rows of the champion in the window: no quality report.</p>")
        return "empty"
    if summary["task"] == "classification":
        rows = rows.assign(**{LABEL: rows[LABEL].astype(int), PREDICTION: rows[PREDICTION]})
        definition = DataDefinition(
            classification=[
                BinaryClassification(
                    target=LABEL,
                    prediction_labels=PREDICTION,
                    prediction_probas=PROBABILITY,
                    pos_label=1,
                )
            ]
        )
        preset = ClassificationPreset()
        rows = rows[[LABEL, PREDICTION, PROBABILITY]]
    else:
        definition = DataDefinition(
            numerical_columns=[LABEL, PREDICTION],
            regression=[Regression(target=LABEL, prediction=PREDICTION)],
        )
        preset = RegressionPreset()
        rows = rows[[LABEL, PREDICTION]].astype(float)
    try:
        snapshot = Report([preset]).run(
            current_data=Dataset.from_pandas(rows, data_definition=definition)
        )
    except (ValueError, TypeError) as exc:  # e.g. one class only in the window
        path.write_text(f"<p>Evidently could not build the quality report: {exc}</p>")
        return f"failed: {exc}"
    snapshot.save_html(str(path))
    return f"{len(rows)} rows"


__all__ = [
    "MonitoringInputError",
    "check_decay",
    "date_dir",
    "expected_metric",
    "log_to_mlflow",
    "measure",
    "monitoring_dir",
]


def describe(summary: dict[str, Any]) -> list[str]:
    """One log line per prediction date: what a person reads in measure_performance's log."""
    metric = summary["primary_metric"]
    lines = []
    for record in summary["dates"]:
        start = datetime.fromisoformat(record["window_start"])
        end = datetime.fromisoformat(record["window_end"])
        # a batch of several days reads as the half-open range its predictions cover
        when = (
            record["date"]
            if end - start <= timedelta(days=1)
            else f"{start:%Y-%m-%d} to {end:%Y-%m-%d}"
        )
        for version in record["versions"]:
            value = version["metrics"].get(metric, {})
            shown = "n/a" if value.get("value") is None else f"{value['value']:.4f}"
            interval = (
                f" [{value['low']:.4f}, {value['high']:.4f}]"
                if value.get("low") is not None
                else ""
            )
            line = (
                f"{when}: version {version['model_version']} realized {metric} "
                f"{shown}{interval} on {version['labelled_rows']:,} of "
                f"{version['predictions']:,} predictions labelled "
                f"({version['label_coverage']:.0%})"
            )
            for shadow in version.get("shadows", []):
                diff = shadow["diff"]
                if diff.get("value") is not None:
                    line += (
                        f"; shadow version {shadow['challenger_version']} "
                        f"{diff['value']:+.4f} [{diff['low']:+.4f}, {diff['high']:+.4f}]"
                    )
            lines.append(line)
    labels = summary["labels"]
    lines.append(
        f"{labels['rows']:,} labels known; {labels['outside_published_dates']:,} match no "
        "published date (counted, not fatal)"
    )
    return lines


def event_extra(pipeline: PipelineConfig, decay: dict[str, Any]) -> dict[str, Any]:
    """The performance asset event: the evidence, plus what the retrain's debounce needs."""
    from continuous_training import drift

    extra = decay["extra"]
    episode = drift.episode_id(pipeline.model_name, extra["champion_version"])
    return {**extra, "episode": f"{episode}/performance", "window_end": extra["window"]["end"]}
