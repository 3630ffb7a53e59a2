"""Data drift of a scored window against the champion's training data, with Evidently.

The current side is the bounded uniform sample that the scoring tasks kept; the
reference side is the bounded sample logged with the model at training time. Both are
at most `drift.sample_size` rows, so a check costs the same for a thousand scored rows
as for a billion.

A drift *episode* is drift away from one champion's training data: its id names that
champion. Once a retrain handled an episode, more events of it are skipped, and a new
champion (trained on the new data) starts a new one.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from continuous_training import inference, model_digest, registry, storage
from continuous_training.config import PipelineConfig
from continuous_training.errors import BadInputError
from continuous_training.inference import PREDICTION
from continuous_training.sources import Window

if TYPE_CHECKING:
    import pandas as pd

REFERENCE_ARTIFACT = "reference/reference.parquet"
REPORT_ARTIFACT = "drift/report.html"
SUMMARY_ARTIFACT = "drift/summary.json"
_COLUMN_TEST = re.compile(r"^Value Drift for column (?P<column>.+)$")


class DriftInputError(BadInputError):
    """The drift check has nothing to compare; the message says which side is missing."""


@dataclass(frozen=True)
class ColumnDrift:
    score: float
    method: str
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class DriftResult:
    """What Evidently found, in the terms of the pipeline's thresholds."""

    drifted_share: float
    drifted_columns: list[str]
    columns: dict[str, ColumnDrift]
    prediction: ColumnDrift
    threshold: float
    current_rows: int
    reference_rows: int

    @property
    def breach(self) -> bool:
        return self.drifted_share >= self.threshold

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "breach": self.breach}


def episode_id(model_name: str, champion_version: str) -> str:
    return f"{model_name}/champion-v{champion_version}"


def compare(
    pipeline: PipelineConfig, reference: pd.DataFrame, current: pd.DataFrame
) -> tuple[DriftResult, Any]:
    """Evidently's drift report of `current` against `reference`: the result and the snapshot.

    Both frames hold the features and a `prediction` column (the model's score). The
    drifted share counts features only; prediction drift is reported beside it.
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    columns = [*pipeline.features.all, PREDICTION]
    sides = (("reference (the champion's training sample)", reference), ("scored", current))
    for side, frame in sides:
        if frame.empty:
            raise DriftInputError(f"drift check of {pipeline.name}: the {side} sample is empty")
        empty = [c for c in columns if frame[c].isna().all()]
        if empty:
            # Evidently cannot compare a column without values; an upstream that stopped
            # filling a feature is worth a loud failure, not a retry or a silent skip.
            raise DriftInputError(
                f"drift check of {pipeline.name}: features {empty} are entirely null in the "
                f"{side} sample ({len(frame)} rows): fix the data feeding them"
            )
    cfg = pipeline.drift
    definition = DataDefinition(
        numerical_columns=[*pipeline.features.numeric, PREDICTION],
        categorical_columns=pipeline.features.categorical,
    )
    report = Report(
        [
            DataDriftPreset(
                columns=pipeline.features.all,
                drift_share=cfg.drifted_share_threshold,
                threshold=cfg.column_threshold,
            ),
            ValueDrift(column=PREDICTION, threshold=cfg.column_threshold),
        ],
        include_tests=True,
    )
    try:
        snapshot = report.run(
            current_data=Dataset.from_pandas(current[columns], data_definition=definition),
            reference_data=Dataset.from_pandas(reference[columns], data_definition=definition),
        )
    except (ValueError, TypeError) as exc:  # Evidently's refusals of the data itself
        raise DriftInputError(
            f"drift check of {pipeline.name}: Evidently refused the samples of the features "
            f"{pipeline.features.all}: {exc}"
        ) from exc
    per_column = _column_results(snapshot.dict())
    features = {c: per_column[c] for c in pipeline.features.all}
    drifted = [c for c, d in features.items() if d.drifted]
    result = DriftResult(
        drifted_share=len(drifted) / len(features),
        drifted_columns=drifted,
        columns=features,
        prediction=per_column[PREDICTION],
        threshold=cfg.drifted_share_threshold,
        current_rows=len(current),
        reference_rows=len(reference),
    )
    return result, snapshot


def _column_results(snapshot: dict[str, Any]) -> dict[str, ColumnDrift]:
    """Per column: Evidently's score, method and threshold, and its own drift verdict."""
    scores: dict[str, tuple[float, str, float]] = {}
    for metric in snapshot["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith(":ValueDrift"):
            scores[config["column"]] = (
                float(metric["value"]),
                str(config.get("method")),
                float(config.get("threshold")),
            )
    verdicts: dict[str, bool] = {}
    for test in snapshot["tests"]:
        match = _COLUMN_TEST.match(test["name"])
        if match:
            verdicts[match["column"]] = str(test["status"]).upper().endswith("FAIL")
    missing = sorted(set(scores) - set(verdicts))
    if missing:
        raise DriftInputError(f"Evidently returned no drift verdict for the columns {missing}")
    return {c: ColumnDrift(*scores[c], drifted=verdicts[c]) for c in scores}


# --------------------------------------------------------------------------- with MLflow


def load_reference(client: Any, model_name: str, version: str) -> pd.DataFrame:
    """The training sample logged with `version`, scored by that same model."""
    import mlflow
    import pandas as pd

    run_id = client.get_model_version(model_name, version).run_id
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=REFERENCE_ARTIFACT, dst_path=tmp
            )
        except Exception as exc:  # MLflow raises several types for a missing artifact
            raise DriftInputError(
                f"model {model_name} version {version} has no drift reference "
                f"({REFERENCE_ARTIFACT} in run {run_id}): {exc}"
            ) from exc
        try:
            reference = pd.read_parquet(path)
        except ValueError as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise DriftInputError(
                f"the drift reference of model {model_name} version {version} "
                f"({REFERENCE_ARTIFACT} in run {run_id}) is not a readable parquet file: {exc}"
            ) from exc
    return reference


def score_reference(model: Any, pipeline: PipelineConfig, reference: pd.DataFrame) -> pd.DataFrame:
    from continuous_training.inference import predict

    X = reference[pipeline.features.all]
    return X.assign(**{PREDICTION: predict(model, X, pipeline.task).score})


# What MLflow accepts in a metric key (mlflow.utils.validation: alphanumerics, `_ - . space`,
# `/` and `:`), kept to ASCII; `/` and `:` are left out too, so that a key is never read as a
# path (`a//b`, a trailing `/`) nor refused on Windows.
_METRIC_UNSAFE = re.compile(r"[^A-Za-z0-9_. -]+")
METRIC_PREFIX = "drift.score."
_MAX_METRIC_KEY = 250  # mlflow.utils.validation.MAX_ENTITY_KEY_LENGTH


def metric_key(column: str) -> str:
    """The MLflow metric key of a column's drift score: readable, accepted, unique.

    A name MLflow accepts as it is stays as it is (`drift.score.usage_gb`). Any other name
    is spelled in ASCII (accents dropped, other characters as `_`) and gets 8 hex digits of
    the sha256 of the real name, so two names never share a key:
    `Monatliche Gebühr (€)` -> `drift.score.Monatliche Gebuhr _-3b0c...`. The real names
    are in `drift/summary.json` (`metric_keys` maps each to its key).
    """
    import hashlib
    import unicodedata

    ascii_name = unicodedata.normalize("NFKD", column).encode("ascii", "ignore").decode()
    readable = _METRIC_UNSAFE.sub("_", ascii_name).strip(" ")
    key = METRIC_PREFIX + readable
    if readable == column and len(key) <= _MAX_METRIC_KEY:
        return key
    digest = hashlib.sha256(column.encode("utf-8")).hexdigest()[:8]
    room = _MAX_METRIC_KEY - len(METRIC_PREFIX) - len(digest) - 1
    return f"{METRIC_PREFIX}{readable[:room]}-{digest}"


def metric_keys(columns: list[str]) -> dict[str, str]:
    """`metric_key` of every column, refusing the (astronomically unlikely) shared key."""
    keys = {c: metric_key(c) for c in columns}
    if len(set(keys.values())) != len(keys):
        raise DriftInputError(f"drift metric keys collide for the columns {columns}: rename one")
    return keys


def log_report(snapshot: Any, result: DriftResult, mlflow_run_id: str, client: Any) -> None:
    """The HTML report, the summary and the scores go to the batch inference's MLflow run.

    Metric keys are `metric_key` of each column; the summary keeps the real names.
    """
    import json

    from mlflow.entities import Metric

    keys = metric_keys(list(result.columns))
    with tempfile.TemporaryDirectory() as tmp:
        html = Path(tmp) / "report.html"
        snapshot.save_html(str(html))
        client.log_artifact(mlflow_run_id, str(html), artifact_path="drift")
        summary = Path(tmp) / "summary.json"
        text = json.dumps({**result.to_json(), "metric_keys": keys}, indent=2, sort_keys=True)
        summary.write_text(text, encoding="utf-8")
        client.log_artifact(mlflow_run_id, str(summary), artifact_path="drift")
    now = int(datetime.now().timestamp() * 1000)
    metrics = {
        "drift.drifted_share": result.drifted_share,
        "drift.prediction_score": result.prediction.score,
        **{keys[column]: drift.score for column, drift in result.columns.items()},
    }
    client.log_batch(
        mlflow_run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()]
    )


def check_scored_window(
    pipeline: PipelineConfig,
    window: Window,
    parts: list[dict[str, Any]],
    champion_version: str,
    tracking_uri: str,
    mlflow_run_id: str,
    folder: str | None = None,
) -> dict[str, Any]:
    """Compare the window's scoring sample with the champion's reference; log and return it.

    The summary is written as `_drift.json` into `folder`, the published set the parts
    belong to (the date's folder if not given).
    """
    client = registry.make_client(tracking_uri)
    current = inference.read_sample(parts, pipeline.drift.sample_size)
    if current.empty:
        return {"breach": False, "skipped": f"no rows were scored in {window}"}
    model = model_digest.load_verified(client, pipeline.model_name, champion_version)
    reference = load_reference(client, pipeline.model_name, champion_version)
    result, snapshot = compare(pipeline, score_reference(model, pipeline, reference), current)
    log_report(snapshot, result, mlflow_run_id, client)
    summary = {
        **result.to_json(),
        "pipeline": pipeline.name,
        "episode": episode_id(pipeline.model_name, champion_version),
        "champion_version": champion_version,
        "window_start": window.start.isoformat(),
        "window_end": window.end.isoformat(),
        "report_uri": f"runs:/{mlflow_run_id}/{REPORT_ARTIFACT}",
        "mlflow_run_id": mlflow_run_id,
        "metric_keys": metric_keys(list(result.columns)),
    }
    if folder is None:
        folder = inference.predictions_dir(pipeline.name, window)
    else:
        folder = storage.require_in_data_root(folder, "published predictions")
    storage.write_json_atomic(summary, storage.join(folder, "_drift.json"))
    return summary


def event_extra(summary: dict[str, Any]) -> dict[str, Any]:
    """What a drift asset event carries: enough to debounce and to explain the retrain."""
    keys = ("episode", "champion_version", "drifted_share", "drifted_columns", "report_uri")
    return {
        **{k: summary[k] for k in keys},
        "window_end": summary["window_end"],
        "prediction_drift_score": summary["prediction"]["score"],
    }


# --------------------------------------------------------------------------- debounce


@dataclass(frozen=True)
class DebounceDecision:
    proceed: bool
    reason: str


def debounce(
    event: dict[str, Any], versions: list[tuple[str, dict[str, str]]], cooldown_hours: float
) -> DebounceDecision:
    """Whether a drift event deserves a retrain, given the model's versions and their tags.

    Skip when the event's episode was already handled by a drift retrain, or when any
    retrain finished on data that ends within `cooldown_hours` before the drifted window
    ends. Times are data times (window ends), not wall-clock times: a re-run decides the
    same, and a backfill behaves as the live run did.
    """
    episode = event.get("episode")
    for version, tags in versions:
        if episode and tags.get(registry.TAG_DRIFT_EPISODE) == episode:
            return DebounceDecision(
                False,
                f"drift episode {episode} was already handled by version {version} "
                f"(Airflow run {tags.get(registry.TAG_RUN_ID)})",
            )
    drift_end = datetime.fromisoformat(event["window_end"])
    cooldown = timedelta(hours=cooldown_hours)
    for version, tags in versions:
        ended = tags.get(registry.TAG_WINDOW_END)
        if not ended or registry.TAG_DECISION not in tags:
            continue
        trained_to = datetime.fromisoformat(ended)
        if drift_end - cooldown <= trained_to <= drift_end:
            return DebounceDecision(
                False,
                f"version {version} was trained on data up to {trained_to.isoformat()}, "
                f"within the {cooldown_hours:g}h cooldown before this drift "
                f"(data up to {drift_end.isoformat()})",
            )
    if event.get("trigger") == "performance":
        low, high = [*(event.get("interval") or []), None, None][:2]
        return DebounceDecision(
            True,
            f"performance episode {episode}: realized {event.get('metric')} "
            f"{_number(event.get('realized'))} (interval [{_number(low)}, {_number(high)}]) "
            f"below the expected {_number(event.get('expected'))} on "
            f"{_number(event.get('labelled_rows'), ',')} labelled rows",
        )
    return DebounceDecision(
        True,
        f"drift episode {episode}: drifted share {_number(event.get('drifted_share'), '.2f')} "
        f"in {event.get('drifted_columns')}",
    )


def _number(value: Any, spec: str = ".4f") -> str:
    """A number of an event for a log line; what is not a number, as it is."""
    try:
        return format(float(value) if spec != "," else int(value), spec)
    except (TypeError, ValueError):
        return str(value)
