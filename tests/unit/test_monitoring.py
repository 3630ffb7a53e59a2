"""Realized performance: published predictions joined with labels, decay, MLflow history.

Real parquet parts and manifests in a temporary data root, written as `inference.publish`
lays them out; no mocks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from continuous_training import inference, monitoring, storage
from continuous_training.config import PipelineConfig
from continuous_training.sources import Window
from tests.integration.conftest import mlflow_server  # noqa: F401 - a fixture

DAY0 = datetime(2026, 3, 1, tzinfo=UTC)
AS_OF = datetime(2026, 3, 20, tzinfo=UTC)


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CT_DATA_ROOT", str(tmp_path / "root"))
    return tmp_path / "root"


@pytest.fixture
def config(make_config: Callable[..., PipelineConfig]) -> Callable[..., PipelineConfig]:
    def build(**monitoring_overrides: Any) -> PipelineConfig:
        return make_config(
            labels={"known_at_column": "label_time", "delay_days": 14},
            monitoring={"min_labelled_rows": 100, **monitoring_overrides},
            gates={"bootstrap": {"resamples": 200, "confidence": 0.95, "seed": 0}},
        )

    return build


def _predictions(
    day: int, n: int, version: str, seed: int, quality: float = 2.0, start_id: int = 0
) -> pd.DataFrame:
    """n predictions of one day; the hidden outcome is in `_y` (dropped before writing)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    logit = quality * (y - 0.5) + rng.normal(0, 1, n)
    prob = 1 / (1 + np.exp(-logit))
    return pd.DataFrame(
        {
            "customer_id": [f"c{day:02d}-{i:06d}" for i in range(start_id, start_id + n)],
            "prediction": (prob > 0.5).astype("int64"),
            "probability": prob,
            "model_name": "churn",
            "model_version": version,
            "airflow_run_id": f"run-{day}",
            "_y": y,
        }
    )


def _publish(
    pipeline: PipelineConfig,
    day: int,
    parts: list[pd.DataFrame],
    shadows: list[pd.DataFrame | None] | None = None,
) -> Window:
    """Write the parts (and shadow parts) of one date and its manifest, as inference does."""
    window = Window(DAY0 + timedelta(days=day), DAY0 + timedelta(days=day + 1))
    set_id = f"s{day}"
    records = []
    for k, frame in enumerate(parts):
        uri = inference.prediction_uri(pipeline.name, window, f"p{k}", set_id)
        written = storage.write_parquet_atomic(frame.drop(columns=["_y"]), uri)
        shadow_uri = None
        if shadows and shadows[k] is not None:
            shadow_uri = uri.replace(".parquet", "-shadow.parquet")
            shadow = shadows[k][["customer_id", "prediction", "probability", "model_version"]]
            storage.write_parquet_atomic(shadow, shadow_uri)
        records.append({**written, "shadow_uri": shadow_uri})
    manifest = {
        "pipeline": pipeline.name,
        "model_name": pipeline.model_name,
        "model_version": parts[0]["model_version"].iloc[0],
        "window_start": window.start.isoformat(),
        "window_end": window.end.isoformat(),
        "rows": sum(len(p) for p in parts),
        "set": set_id,
        "uri": inference.set_dir(pipeline.name, window, set_id),
        "manifest": inference.manifest_uri(pipeline.name, window),
        "parts": records,
    }
    storage.write_json_atomic(manifest, inference.manifest_uri(pipeline.name, window))
    return window


def _labels(
    frames: list[pd.DataFrame], day: int, share: float = 1.0, seed: int = 0
) -> pd.DataFrame:
    """Labels for a share of the rows of `frames` (prediction date `day`)."""
    frame = pd.concat(frames, ignore_index=True)
    rng = np.random.default_rng(seed)
    frame = frame[rng.random(len(frame)) < share]
    time = DAY0 + timedelta(days=day, hours=6)
    return pd.DataFrame(
        {
            "customer_id": frame["customer_id"].to_numpy(),
            "event_time": pd.Timestamp(time),
            "churned": frame["_y"].to_numpy(),
            "label_time": pd.Timestamp(time + timedelta(days=3)),
        }
    )


def _extra_labels(day: int, n: int) -> pd.DataFrame:
    time = pd.Timestamp(DAY0 + timedelta(days=day, hours=7))
    return pd.DataFrame(
        {
            "customer_id": [f"nobody-{i}" for i in range(n)],
            "event_time": time,
            "churned": 1,
            "label_time": time + pd.Timedelta(days=2),
        }
    )


def _record(summary: dict[str, Any], date: str) -> dict[str, Any]:
    return next(r for r in summary["dates"] if r["date"] == date)


# --------------------------------------------------------------------------- join


def test_join_coverage_unmatched_and_metrics_equal_sklearn(root: Path, config) -> None:
    pipeline = config()
    preds = _predictions(2, 1000, "3", seed=1)
    _publish(pipeline, 2, [preds.iloc[:600], preds.iloc[600:]])
    labels = pd.concat([_labels([preds], 2, share=0.7), _extra_labels(2, 25)], ignore_index=True)

    summary = monitoring.measure(pipeline, AS_OF, labels)

    record = _record(summary, "2026-03-03")
    labelled = labels.merge(preds, on="customer_id")
    assert record["predictions"] == 1000
    assert record["labelled_rows"] == len(labelled)
    assert record["label_coverage"] == pytest.approx(len(labelled) / 1000)
    assert record["unmatched_labels"] == 25
    (version,) = record["versions"]
    assert version["model_version"] == "3" and version["labelled_rows"] == len(labelled)
    auc = version["metrics"]["roc_auc"]
    assert auc["value"] == pytest.approx(
        skm.roc_auc_score(labelled["churned"], labelled["probability"])
    )
    assert auc["low"] < auc["value"] < auc["high"]
    log_loss = version["metrics"]["log_loss"]["value"]
    assert log_loss == pytest.approx(
        skm.log_loss(labelled["churned"], labelled["probability"], labels=[0, 1])
    )
    joined = pd.read_parquet(root / "churn/monitoring/dt=2026-03-03/joined.parquet")
    assert len(joined) == len(labelled)
    assert {"customer_id", "label", "prediction", "probability", "model_version"} <= set(joined)
    stored = json.loads((root / "churn/monitoring/dt=2026-03-03/metrics.json").read_text())
    assert stored["as_of"] == AS_OF.isoformat() and stored == record


def test_a_date_served_by_two_versions_is_split_by_version(root: Path, config) -> None:
    pipeline = config()
    old, new = _predictions(4, 400, "2", seed=2), _predictions(4, 600, "3", seed=3, start_id=400)
    _publish(pipeline, 4, [old, new])
    summary = monitoring.measure(pipeline, AS_OF, _labels([old, new], 4, share=0.5))
    record = _record(summary, "2026-03-05")
    by_version = {v["model_version"]: v for v in record["versions"]}
    assert sorted(by_version) == ["2", "3"]
    for version, frame in (("2", old), ("3", new)):
        entry = by_version[version]
        labelled = _labels([old, new], 4, share=0.5).merge(frame, on="customer_id")
        assert entry["predictions"] == len(frame)
        assert entry["labelled_rows"] == len(labelled)
        assert entry["metrics"]["roc_auc"]["value"] == pytest.approx(
            skm.roc_auc_score(labelled["churned"], labelled["probability"])
        )


def test_shadow_challenger_metrics_and_paired_difference(root: Path, config) -> None:
    pipeline = config()
    champion = _predictions(5, 2000, "3", seed=4, quality=1.0)
    challenger = champion.copy()
    rng = np.random.default_rng(9)
    logit = 3.0 * (champion["_y"] - 0.5) + rng.normal(0, 1, len(champion))
    challenger["probability"] = 1 / (1 + np.exp(-logit))
    challenger["prediction"] = (challenger["probability"] > 0.5).astype("int64")
    challenger["model_version"] = "4"
    _publish(
        pipeline,
        5,
        [champion.iloc[:1200], champion.iloc[1200:]],
        [challenger.iloc[:1200], challenger.iloc[1200:]],
    )
    labels = _labels([champion], 5, share=0.8)

    summary = monitoring.measure(pipeline, AS_OF, labels)

    (version,) = _record(summary, "2026-03-06")["versions"]
    (shadow,) = version["shadows"]
    labelled = labels.merge(challenger, on="customer_id")
    assert shadow["challenger_version"] == "4"
    assert shadow["labelled_rows"] == len(labelled)
    assert shadow["metrics"]["roc_auc"]["value"] == pytest.approx(
        skm.roc_auc_score(labelled["churned"], labelled["probability"])
    )
    diff = shadow["diff"]
    assert diff["metric"] == "roc_auc"
    assert diff["value"] == pytest.approx(
        shadow["metrics"]["roc_auc"]["value"] - version["metrics"]["roc_auc"]["value"]
    )
    assert diff["low"] > 0  # a much better challenger: positive = challenger better
    joined = pd.read_parquet(root / "churn/monitoring/dt=2026-03-06/joined.parquet")
    assert {"challenger_prediction", "challenger_probability", "challenger_version"} <= set(joined)
    assert (joined["challenger_version"] == "4").all()


def test_a_metric_that_cannot_be_computed_is_null_with_the_reason(root: Path, config) -> None:
    pipeline = config()
    preds = _predictions(6, 300, "3", seed=5)
    _publish(pipeline, 6, [preds])
    _publish(pipeline, 7, [_predictions(7, 50, "3", seed=6)])  # no labels at all
    one_class = _labels([preds[preds["_y"] == 1]], 6)

    summary = monitoring.measure(pipeline, AS_OF, one_class)

    auc = _record(summary, "2026-03-07")["versions"][0]["metrics"]["roc_auc"]
    assert auc["value"] is None and "single class" in auc["reason"]
    empty = _record(summary, "2026-03-08")
    assert empty["labelled_rows"] == 0 and empty["label_coverage"] == 0
    assert empty["versions"][0]["metrics"]["roc_auc"]["reason"] == "no labelled rows"


def test_a_batch_smaller_than_the_part_gives_the_same_metrics(root: Path, config) -> None:
    preds = _predictions(8, 3000, "3", seed=7)
    big = config(batch_size=200_000)
    _publish(big, 8, [preds])
    labels = _labels([preds], 8, share=0.6)
    whole = _record(monitoring.measure(big, AS_OF, labels), "2026-03-09")
    small = _record(monitoring.measure(config(batch_size=128), AS_OF, labels), "2026-03-09")
    assert small["versions"] == whole["versions"]
    assert small["labelled_rows"] == whole["labelled_rows"]


# --------------------------------------------------------------------------- idempotency


def test_same_as_of_twice_writes_the_same_bytes_once_per_date(root: Path, config) -> None:
    pipeline = config()
    frames = {d: _predictions(d, 500, "3", seed=d) for d in (1, 2)}
    for day, frame in frames.items():
        _publish(pipeline, day, [frame])
    labels = pd.concat([_labels([f], d, 0.5) for d, f in frames.items()], ignore_index=True)
    folder = root / "churn/monitoring"

    monitoring.measure(pipeline, AS_OF, labels)
    first = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    monitoring.measure(pipeline, AS_OF, labels)
    second = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}

    assert first == second
    assert sorted(p.relative_to(folder).as_posix() for p in second) == [
        "dt=2026-03-02/joined.parquet",
        "dt=2026-03-02/metrics.json",
        "dt=2026-03-03/joined.parquet",
        "dt=2026-03-03/metrics.json",
    ]


def test_an_older_as_of_does_not_replace_newer_knowledge(root: Path, config) -> None:
    pipeline = config()
    preds = _predictions(1, 800, "3", seed=11)
    _publish(pipeline, 1, [preds])
    monitoring.measure(pipeline, AS_OF, _labels([preds], 1, share=0.9))
    path = root / "churn/monitoring/dt=2026-03-02/metrics.json"
    newer = path.read_bytes()

    summary = monitoring.measure(pipeline, AS_OF - timedelta(days=1), _labels([preds], 1, 0.3))

    assert path.read_bytes() == newer
    assert summary["written"] == []
    (kept,) = summary["kept"]
    assert kept["date"] == "2026-03-02" and kept["stored_as_of"] == AS_OF.isoformat()
    assert "newer knowledge is kept" in kept["reason"]


# --------------------------------------------------------------------------- decay


def _window_of_days(pipeline: PipelineConfig, quality: float, share: float = 1.0) -> pd.DataFrame:
    frames = {d: _predictions(d, 400, "3", seed=100 + d, quality=quality) for d in range(10, 19)}
    for day, frame in frames.items():
        _publish(pipeline, day, [frame])
    labels = pd.concat([_labels([f], d, share) for d, f in frames.items()], ignore_index=True)
    monitoring.measure(pipeline, AS_OF, labels)
    return labels.merge(pd.concat(frames.values()), on="customer_id")


def test_decayed_when_realized_is_far_below_expected(root: Path, config) -> None:
    pipeline = config()
    labelled = _window_of_days(pipeline, quality=0.5)
    decay = monitoring.check_decay(pipeline, AS_OF, "3", expected=0.95)
    realized = skm.roc_auc_score(labelled["churned"], labelled["probability"])
    assert decay["decayed"] is True
    extra = decay["extra"]
    assert extra["realized"] == pytest.approx(realized)
    assert extra["interval"][1] < 0.95 - 0.02
    assert extra["labelled_rows"] == len(labelled) and extra["champion_version"] == "3"
    assert extra["metric"] == "roc_auc" and extra["expected"] == 0.95
    assert extra["window"] == {
        "start": (AS_OF - timedelta(days=pipeline.monitoring.window_days)).isoformat(),
        "end": AS_OF.isoformat(),
    }


def test_not_decayed_when_realized_is_close_to_expected(root: Path, config) -> None:
    pipeline = config()
    labelled = _window_of_days(pipeline, quality=2.0)
    realized = skm.roc_auc_score(labelled["churned"], labelled["probability"])
    decay = monitoring.check_decay(pipeline, AS_OF, "3", expected=realized + 0.01)
    assert decay["decayed"] is False and "not entirely below" in decay["reason"]


def test_too_few_labels_is_never_decay_and_says_how_many(root: Path, config) -> None:
    pipeline = config(min_labelled_rows=1000)
    labelled = _window_of_days(pipeline, quality=0.0, share=0.1)
    decay = monitoring.check_decay(pipeline, AS_OF, 3, expected=0.99)
    n = len(labelled)
    missing = 9 * 400 - n
    assert decay["decayed"] is False
    assert decay["reason"] == (
        f"{n:,} labelled rows of version 3 in the window, 1,000 needed; {missing:,} "
        "predictions are still without a label (labels arrive up to 14 days after the "
        "prediction)"
    )


# --------------------------------------------------------------------------- MLflow


@pytest.mark.integration
def test_log_to_mlflow_one_point_per_date_and_the_report(
    root: Path,
    config,
    mlflow_server: str,  # noqa: F811 - the imported fixture
) -> None:
    from mlflow import MlflowClient

    pipeline = config()
    frames = {d: _predictions(d, 400, "3", seed=100 + d, quality=1.5) for d in range(10, 19)}
    for day, frame in frames.items():
        _publish(pipeline, day, [frame])
    labels = pd.concat([_labels([f], d, 0.8) for d, f in frames.items()], ignore_index=True)
    summary = monitoring.measure(pipeline, AS_OF, labels)
    decay = monitoring.check_decay(pipeline, AS_OF, "3", expected=0.9)
    client = MlflowClient(mlflow_server)
    experiment = client.create_experiment(f"monitoring-{datetime.now().timestamp()}")
    run_id = client.create_run(experiment).info.run_id

    logged = monitoring.log_to_mlflow(client, run_id, summary, decay)

    history = client.get_metric_history(run_id, "realized_roc_auc")
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    expected = [(DAY0 + timedelta(days=d) - epoch).days for d in range(10, 19)]
    assert sorted(m.step for m in history) == expected
    assert sorted(m.timestamp for m in history) == [s * 86_400_000 for s in expected]
    assert len(client.get_metric_history(run_id, "label_coverage")) == len(expected)
    names = {f.path for f in client.list_artifacts(run_id, "monitoring")}
    assert {"monitoring/summary.json", "monitoring/performance_report.html"} <= names
    assert logged["report"].endswith("rows")


@pytest.mark.integration
def test_expected_metric_is_the_holdout_metric_of_the_versions_run(
    make_config: Callable[..., PipelineConfig],
    mlflow_server: str,  # noqa: F811 - the imported fixture
) -> None:
    from mlflow import MlflowClient

    name = f"monitoring-expected-{datetime.now().timestamp():.0f}"
    pipeline = make_config(registry={"model_name": name})
    client = MlflowClient(mlflow_server)
    run = client.create_run(client.create_experiment(name))
    client.log_metric(run.info.run_id, "eval_challenger_roc_auc", 0.87)
    client.create_registered_model(name)
    version = client.create_model_version(name, run.info.artifact_uri, run_id=run.info.run_id)
    assert monitoring.expected_metric(client, pipeline, version.version) == 0.87
    other = client.create_run(run.info.experiment_id)  # a run that logged no evaluation
    bare = client.create_model_version(name, other.info.artifact_uri, run_id=other.info.run_id)
    assert monitoring.expected_metric(client, pipeline, bare.version) is None
