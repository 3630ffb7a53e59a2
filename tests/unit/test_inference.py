"""Streaming scoring of one partition, partition listing and publishing, on real files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from continuous_training import inference, storage
from continuous_training.config import ModelConfig, PipelineConfig
from continuous_training.errors import BadInputError
from continuous_training.sources import SourceError, SyntheticSource, Window
from continuous_training.training import build_model

DAY = Window(datetime(2026, 2, 25, tzinfo=UTC), datetime(2026, 2, 26, tzinfo=UTC))


@pytest.fixture
def config(make_config: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PipelineConfig:
    monkeypatch.setenv("CT_DATA_ROOT", str(tmp_path / "root"))
    return make_config(
        inference={"batch_size": 100, "partition_hours": 6},
        drift={"sample_size": 150},
    )


@pytest.fixture
def model(config: PipelineConfig) -> Any:
    week = Window(DAY.start - timedelta(days=7), DAY.start)
    train = SyntheticSource(config).fetch(week)
    # A fast estimator: these tests are about streaming, not about the model.
    fast = ModelConfig(estimator="sklearn.linear_model.LogisticRegression", params={})
    return build_model(config.model_copy(update={"model": fast})).fit(
        train[config.features.all], train[config.target]
    )


@pytest.fixture
def day_file(config: PipelineConfig, tmp_path: Path) -> tuple[str, pd.DataFrame]:
    """One day of data plus rows on either side of it, written in many row groups."""
    wider = Window(DAY.start - timedelta(hours=2), DAY.end + timedelta(hours=2))
    frame = SyntheticSource(config).fetch(wider)
    path = tmp_path / "input.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=64)
    return str(path), frame


def job(
    config: PipelineConfig,
    input_uri: str,
    key: str = "p0",
    set_id: str = inference.DEFAULT_SET,
    window: Window = DAY,
) -> inference.ScoringJob:
    return inference.ScoringJob(
        pipeline=config,
        input_uri=input_uri,
        output_uri=inference.prediction_uri(config.name, window, key, set_id),
        sample_uri=inference.sample_uri(config.name, window, key, set_id),
        window=window,
        model_version="7",
        airflow_run_id="manual__x",
        sample_seed=inference.sample_seed(config.name, window, key),
        input_format="csv" if input_uri.endswith(".csv") else "parquet",
    )


# --------------------------------------------------------------------------- partitions


def test_time_partitions_cover_the_window(config: PipelineConfig) -> None:
    parts = inference.list_partitions(config, DAY, max_map_length=1024)
    assert [p.key for p in parts] == [f"2026-02-25T{h:02d}00" for h in (0, 6, 12, 18)]
    assert parts[0].window.start == DAY.start and parts[-1].window.end == DAY.end


@pytest.mark.parametrize(
    ("overrides", "limit", "named"),
    [
        ({"max_partitions": 3}, 1024, "inference.max_partitions (3)"),
        ({}, 2, "core.max_map_length (2)"),
    ],
)
def test_too_many_partitions_fail_before_mapping(
    make_config: Any, overrides: dict, limit: int, named: str
) -> None:
    config = make_config(inference={"partition_hours": 6, **overrides})
    with pytest.raises(inference.PartitionError, match="4 partitions") as err:
        inference.list_partitions(config, DAY, max_map_length=limit)
    assert named in str(err.value)


def test_file_partitions_fill_the_date_placeholder(make_config: Any, tmp_path: Path) -> None:
    for day in ("2026-02-24", "2026-02-25", "2026-02-26"):
        for part in ("a", "b"):
            (tmp_path / day).mkdir(exist_ok=True)
            (tmp_path / day / f"{part}.parquet").write_bytes(b"")
    source = {"kind": "file", "path": str(tmp_path / "{date}" / "*.parquet")}
    config = make_config(inference={"source": source})
    two_days = Window(DAY.start - timedelta(days=1), DAY.end)
    parts = inference.list_partitions(config, two_days, max_map_length=1024)
    assert [Path(p.path).relative_to(tmp_path).as_posix() for p in parts] == [
        "2026-02-24/a.parquet",
        "2026-02-24/b.parquet",
        "2026-02-25/a.parquet",
        "2026-02-25/b.parquet",
    ]
    assert len({p.key for p in parts}) == 4


def test_file_partitions_of_an_empty_window_name_the_path(make_config: Any, tmp_path: Path) -> None:
    source = {"kind": "file", "path": str(tmp_path / "{date}" / "*.parquet")}
    config = make_config(inference={"source": source})
    with pytest.raises(SourceError, match=r"inference.source.path .*matches no files"):
        inference.list_partitions(config, DAY, max_map_length=1024)


def test_a_day_of_the_window_without_its_file_is_named(make_config: Any, tmp_path: Path) -> None:
    """Two days scored, one file landed: the window would be published as if it were whole."""
    (tmp_path / "2026-02-24").mkdir()
    (tmp_path / "2026-02-24" / "a.parquet").write_bytes(b"")
    source = {"kind": "file", "path": str(tmp_path / "{date}" / "*.parquet")}
    config = make_config(inference={"source": source})
    two_days = Window(DAY.start - timedelta(days=1), DAY.end)
    with pytest.raises(SourceError) as err:
        inference.list_partitions(config, two_days, max_map_length=1024)
    message = str(err.value)
    assert "matches no file for 1 of 2 days" in message
    assert str(tmp_path / "2026-02-25" / "*.parquet") in message


def test_window_label() -> None:
    assert inference.window_label(DAY) == "dt=2026-02-25"
    week = Window(DAY.start - timedelta(days=6), DAY.end)
    assert inference.window_label(week) == "dt=2026-02-19_2026-02-26"


# --------------------------------------------------------------------------- scoring


def test_streamed_scores_equal_scoring_in_one_piece(
    config: PipelineConfig, model: Any, day_file: tuple[str, pd.DataFrame]
) -> None:
    path, frame = day_file
    seen: list[tuple[int, int]] = []
    result = inference.score_partition(job(config, path), model, progress=lambda *a: seen.append(a))
    inside = frame[(frame.event_time >= DAY.start) & (frame.event_time < DAY.end)]
    out = pd.read_parquet(result["uri"])
    assert result["rows"] == len(out) == len(inside) == 300
    assert result["input_rows"] == len(frame)
    assert seen[-1] == (len(frame), len(frame))
    expected = model.predict_proba(inside[config.features.all])[:, 1]
    np.testing.assert_allclose(out["probability"], expected)
    assert list(out["customer_id"]) == list(inside["customer_id"])
    assert set(out["model_version"]) == {"7"} and set(out["airflow_run_id"]) == {"manual__x"}
    assert list(out.columns) == [
        "customer_id",
        "prediction",
        "probability",
        "model_name",
        "model_version",
        "airflow_run_id",
    ]


def test_rescoring_replaces_the_output_and_draws_the_same_sample(
    config: PipelineConfig, model: Any, day_file: tuple[str, pd.DataFrame]
) -> None:
    first = inference.score_partition(job(config, day_file[0]), model)
    first_sample = pd.read_parquet(first["sample_uri"])
    second = inference.score_partition(job(config, day_file[0]), model)
    assert second["sha256"] == first["sha256"]
    pd.testing.assert_frame_equal(pd.read_parquet(second["sample_uri"]), first_sample)
    folder = Path(first["uri"]).parent
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == ["part-p0.parquet"]
    assert len(first_sample) == config.drift.sample_size


def test_a_failure_mid_stream_keeps_the_previous_output(
    config: PipelineConfig, model: Any, day_file: tuple[str, pd.DataFrame]
) -> None:
    before = inference.score_partition(job(config, day_file[0]), model)

    class BreaksOnThirdBatch:
        classes_ = model.classes_
        calls = 0

        def predict_proba(self, X: pd.DataFrame) -> Any:
            self.calls += 1
            if self.calls == 3:
                raise RuntimeError("worker lost")
            return model.predict_proba(X)

    with pytest.raises(RuntimeError, match="worker lost"):
        inference.score_partition(job(config, day_file[0]), BreaksOnThirdBatch())
    assert storage.sha256_of(before["uri"]) == before["sha256"]
    folder = Path(before["uri"]).parent
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []


def test_missing_feature_is_named(
    config: PipelineConfig, model: Any, day_file: tuple[str, pd.DataFrame], tmp_path: Path
) -> None:
    path = tmp_path / "no_usage.parquet"
    day_file[1].drop(columns=["usage_gb"]).to_parquet(path)
    with pytest.raises(SourceError, match=r"lacks the columns \['usage_gb'\]"):
        inference.score_partition(job(config, str(path)), model)


def test_shadow_counts_disagreements(
    config: PipelineConfig, model: Any, day_file: tuple[str, pd.DataFrame]
) -> None:
    class AlwaysChurn:
        classes_ = model.classes_

        def predict_proba(self, X: pd.DataFrame) -> Any:
            return np.tile([0.1, 0.9], (len(X), 1))

    result = inference.score_partition(
        job(config, day_file[0]), model, challenger=("8", AlwaysChurn())
    )
    out = pd.read_parquet(result["uri"])
    shadow = result["shadow"]
    assert shadow["version"] == "8" and shadow["rows"] == 300
    assert shadow["disagreements"] == int((out["prediction"] != 1).sum())
    assert shadow["challenger_hist"][18] == 300  # 0.9 falls in bin [0.90, 0.95)
    assert sum(shadow["champion_hist"]) == 300
    assert set(out["model_version"]) == {"7"}  # the shadow is never served


def test_shadow_rows_are_written_beside_the_part(
    config: PipelineConfig, model: Any, day_file: tuple[str, pd.DataFrame]
) -> None:
    class AlwaysChurn:
        classes_ = model.classes_

        def predict_proba(self, X: pd.DataFrame) -> Any:
            return np.tile([0.3, 0.7], (len(X), 1))

    scoring = job(config, day_file[0], "k", "s1")
    result = inference.score_partition(scoring, model, challenger=("8", AlwaysChurn()))
    expected = inference.shadow_uri(config.name, DAY, "k", "s1")
    assert result["shadow_uri"] == expected == scoring.shadow_output_uri
    assert expected == inference.set_dir(config.name, DAY, "s1") + "/_shadow/part-k.parquet"
    main, shadow = pd.read_parquet(result["uri"]), pd.read_parquet(expected)
    assert list(shadow.columns) == ["customer_id", "prediction", "probability", "model_version"]
    assert len(shadow) == len(main) == 300  # batches of 100 rows: streamed in several writes
    assert shadow["customer_id"].tolist() == main["customer_id"].tolist()
    assert set(shadow["model_version"]) == {"8"} and set(main["model_version"]) == {"7"}
    assert (shadow["prediction"] == 1).all() and np.allclose(shadow["probability"], 0.7)
    assert (
        pq.read_schema(expected).field("prediction").type
        == pq.read_schema(result["uri"]).field("prediction").type
    )
    # the part's schema is unchanged by the shadow
    assert list(main.columns) == [
        "customer_id",
        "prediction",
        "probability",
        "model_name",
        "model_version",
        "airflow_run_id",
    ]
    # publish checks the shadow part like the others
    inference.publish(config, DAY, [result], "manual__s1", "s1")
    Path(expected).unlink()
    again = inference.score_partition(
        job(config, day_file[0], "k", "s2"), model, ("8", AlwaysChurn())
    )
    Path(again["shadow_uri"]).unlink()
    with pytest.raises(
        inference.PartitionError, match=r"_shadow/part-k\.parquet of set s2 is missing"
    ):
        inference.publish(config, DAY, [again], "manual__s2", "s2")


def test_no_challenger_writes_no_shadow_rows(
    config: PipelineConfig, model: Any, day_file: tuple[str, pd.DataFrame]
) -> None:
    result = inference.score_partition(job(config, day_file[0], "k", "s1"), model)
    assert result["shadow_uri"] is None and result["shadow"] is None
    assert not Path(inference.set_dir(config.name, DAY, "s1"), "_shadow").exists()
    inference.publish(config, DAY, [result], "manual__s1", "s1")


def test_a_failed_partition_leaves_no_shadow_rows(
    config: PipelineConfig, model: Any, day_file: tuple[str, pd.DataFrame]
) -> None:
    class BreaksOnSecondBatch:
        classes_ = model.classes_
        calls = 0

        def predict_proba(self, X: pd.DataFrame) -> Any:
            self.calls += 1
            if self.calls == 2:
                raise ValueError("broken")
            return np.tile([0.3, 0.7], (len(X), 1))

    scoring = job(config, day_file[0], "k", "s1")
    with pytest.raises(inference.ScoringInputError):
        inference.score_partition(scoring, model, challenger=("8", BreaksOnSecondBatch()))
    assert not Path(scoring.output_uri).exists()
    assert not Path(scoring.shadow_output_uri).exists()
    assert not list(Path(scoring.shadow_output_uri).parent.glob("*"))


def test_published_manifests_lists_published_dates_in_range(
    config: PipelineConfig, model: Any, day_file: tuple[str, pd.DataFrame]
) -> None:
    days = [Window(DAY.start + timedelta(days=i), DAY.end + timedelta(days=i)) for i in range(4)]
    for i, day in enumerate(days):
        part = inference.score_partition(job(config, day_file[0], "x", "a", window=day), model)
        if i != 2:  # the third date is scored but never published
            inference.publish(config, day, [part], f"manual__{i}", "a")
    start, end = days[0].start, days[3].end
    listed = inference.published_manifests(config.name, start, end)
    assert [m["window_start"] for m in listed] == [days[i].start.isoformat() for i in (0, 1, 3)]
    assert [
        m["window_start"] for m in inference.published_manifests(config.name, start, days[1].end)
    ] == [
        days[0].start.isoformat(),
        days[1].start.isoformat(),
    ]
    # a window must lie wholly inside [start, end)
    late = days[0].start + timedelta(hours=1)
    assert inference.published_manifests(config.name, late, days[1].end)[0]["window_start"] == (
        days[1].start.isoformat()
    )
    assert inference.published_manifests("nothing_here", start, end) == []


# --------------------------------------------------------------------------- sampling


def test_bottom_k_samples_merge_into_the_sample_of_the_union() -> None:
    data = pd.DataFrame({"x": np.arange(1000)})
    whole = inference.BottomKSample(50, seed=1)
    whole.add(data)
    halves = []
    for seed, part in ((1, data.iloc[:500]), (2, data.iloc[500:])):
        sample = inference.BottomKSample(50, seed=seed)
        for start in range(0, len(part), 64):
            sample.add(part.iloc[start : start + 64])
        halves.append(sample.result(["x"]))
    assert all(len(h) == 50 for h in halves)
    merged = inference.smallest_keys(pd.concat(halves), 50)
    assert len(merged) == 50 and merged["x"].is_unique
    # the union's sample is the 50 smallest keys over both halves, whatever their sizes
    keys = pd.concat(halves)[inference.SAMPLE_KEY].sort_values().head(50)
    assert sorted(merged[inference.SAMPLE_KEY]) == sorted(keys)


def test_read_sample_is_bounded(
    config: PipelineConfig, model: Any, day_file: tuple[str, pd.DataFrame]
) -> None:
    parts = [inference.score_partition(job(config, day_file[0], k), model) for k in "abc"]
    sample = inference.read_sample(parts, 150)
    assert len(sample) == 150
    assert inference.SAMPLE_KEY not in sample.columns
    assert set(sample.columns) == {*config.features.all, inference.PREDICTION}


# --------------------------------------------------------------------------- publishing


def test_publish_switches_the_date_to_a_whole_new_set(
    config: PipelineConfig, model: Any, day_file: tuple[str, pd.DataFrame]
) -> None:
    old = [inference.score_partition(job(config, day_file[0], k, "a"), model) for k in "xy"]
    inference.publish(config, DAY, old, "manual__a", "a")
    assert inference.published_parts(config.name, DAY) == sorted(p["uri"] for p in old)
    # the next run writes its own set; until it publishes, readers still get set a
    new = [inference.score_partition(job(config, day_file[0], "x", "b"), model)]
    assert inference.published(config.name, DAY)["set"] == "a"
    assert all(Path(p["uri"]).exists() for p in old)
    manifest = inference.publish(config, DAY, new, "manual__b", "b")
    assert manifest["set"] == "b" and manifest["rows"] == 300 and manifest["model_version"] == "7"
    assert manifest["uri"] == inference.set_dir(config.name, DAY, "b")
    assert storage.read_json(inference.manifest_uri(config.name, DAY))["parts"] == new
    date = Path(inference.predictions_dir(config.name, DAY))
    # only after the switch is the superseded set removed
    assert sorted(p.name for p in date.iterdir()) == ["_manifest.json", "set=b"]
    with pytest.raises(inference.PartitionError, match=r"versions \['7', '8'\]"):
        inference.publish(config, DAY, [*new, {**new[0], "model_version": "8"}], "manual__z", "b")


def test_an_incomplete_set_is_not_published(
    config: PipelineConfig, model: Any, day_file: tuple[str, pd.DataFrame]
) -> None:
    old = [inference.score_partition(job(config, day_file[0], "x", "a"), model)]
    inference.publish(config, DAY, old, "manual__a", "a")
    manifest = Path(inference.manifest_uri(config.name, DAY)).read_bytes()
    new = [inference.score_partition(job(config, day_file[0], k, "b"), model) for k in "xy"]
    Path(new[1]["uri"]).unlink()
    with pytest.raises(inference.PartitionError, match="missing: the set is incomplete"):
        inference.publish(config, DAY, new, "manual__b", "b")
    # a part handed over from outside the set folder is refused too
    with pytest.raises(storage.StorageError, match="not under"):
        inference.publish(config, DAY, [old[0]], "manual__b", "b")
    assert Path(inference.manifest_uri(config.name, DAY)).read_bytes() == manifest
    assert all(Path(p["uri"]).exists() for p in old)


def test_a_published_set_is_never_written_again(
    config: PipelineConfig, model: Any, day_file: tuple[str, pd.DataFrame]
) -> None:
    parts = [inference.score_partition(job(config, day_file[0], "x", "a"), model)]
    inference.publish(config, DAY, parts, "manual__a", "a")
    with pytest.raises(inference.PartitionError, match=r"already published.*pin_champion"):
        inference.require_unpublished(config.name, DAY, "a")
    inference.require_unpublished(config.name, DAY, "b")
    assert inference.new_set_id("scheduled__2026-02-26T03:00:00+00:00") != inference.new_set_id(
        "scheduled__2026-02-26T03:00:00+00:00"
    )


def test_publish_removes_the_layout_before_sets(
    config: PipelineConfig, model: Any, day_file: tuple[str, pd.DataFrame]
) -> None:
    date = Path(inference.predictions_dir(config.name, DAY))
    (date / "_drift_sample").mkdir(parents=True)
    for legacy in ("part-old.parquet", "_drift_sample/part-old.parquet", "_drift.json"):
        (date / legacy).write_bytes(b"old")
    parts = [inference.score_partition(job(config, day_file[0], "x", "a"), model)]
    inference.publish(config, DAY, parts, "manual__a", "a")
    assert sorted(p.name for p in date.iterdir()) == ["_manifest.json", "set=a"]


# --------------------------------------------------------------------------- file inputs


def test_file_partition_keys_name_the_day_and_the_file(make_config: Any, tmp_path: Path) -> None:
    for name in ("part-0.parquet", "events march.csv", "_SUCCESS", ".hidden.csv", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    config = make_config(source={"kind": "file", "path": str(tmp_path)}, inference={"source": None})
    parts = inference.list_partitions(config, DAY, max_map_length=1024)
    assert [(p.key[:-9], p.format) for p in parts] == [
        ("2026-02-25-events_march", "csv"),
        ("2026-02-25-part-0", "parquet"),
    ]
    assert all(p.key == storage.safe_token(p.key) for p in parts)
    week = Window(DAY.start - timedelta(days=6), DAY.end)
    [key, _] = [p.key for p in inference.list_partitions(config, week, max_map_length=1024)]
    assert key.startswith("2026-02-19_2026-02-26-events_march-")


def test_a_file_of_unknown_format_names_the_key(make_config: Any, tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_bytes(b"")
    source = {"kind": "file", "path": str(tmp_path / "*.txt")}
    config = make_config(inference={"source": source})
    with pytest.raises(inference.PartitionError, match=r"data.txt.*set inference.source.format"):
        inference.list_partitions(config, DAY, max_map_length=1024)


def test_csv_scores_as_parquet_does(
    config: PipelineConfig, model: Any, day_file: tuple[str, pd.DataFrame], tmp_path: Path
) -> None:
    path, frame = day_file
    csv = tmp_path / "input.csv"
    # ids that look like numbers stay text; times written as text, zero fractions dropped
    frame = frame.assign(customer_id=[f"{i:05d}" for i in range(len(frame))])
    frame.to_csv(csv, index=False)
    frame.to_parquet(path, index=False)
    from_csv = inference.score_partition(job(config, str(csv), "c"), model)
    from_parquet = inference.score_partition(job(config, path, "p"), model)
    a, b = pd.read_parquet(from_csv["uri"]), pd.read_parquet(from_parquet["uri"])
    assert from_csv["rows"] == from_parquet["rows"] == 300
    assert from_csv["input_rows"] == len(frame)
    assert a["customer_id"].iloc[0].startswith("0")
    pd.testing.assert_frame_equal(a, b, check_exact=False)


def test_a_csv_of_another_dialect_scores_as_the_file_source_reads_it(
    config: PipelineConfig, model: Any, day_file: tuple[str, pd.DataFrame], tmp_path: Path
) -> None:
    """A BOM and ';' train (the file source reads them), so they must score too."""
    path, frame = day_file
    frame.to_parquet(path, index=False)
    semicolons = tmp_path / "input.csv"
    semicolons.write_bytes(b"\xef\xbb\xbf" + frame.to_csv(index=False, sep=";").encode())
    from_csv = inference.score_partition(job(config, str(semicolons), "c"), model)
    from_parquet = inference.score_partition(job(config, path, "p"), model)
    a, b = pd.read_parquet(from_csv["uri"]), pd.read_parquet(from_parquet["uri"])
    assert from_csv["rows"] == 300
    pd.testing.assert_frame_equal(a, b, check_exact=False)


def test_categories_that_look_like_numbers_stay_text_in_csv(
    config: PipelineConfig, model: Any, tmp_path: Path
) -> None:
    """Region codes listed as categorical: a CSV has no types, the YAML says text.

    Read as numbers, the model trained on text categories would refuse them at scoring.
    """
    from continuous_training.config import SourceConfig
    from continuous_training.sources import FileSource, csv_text_columns

    csv = tmp_path / "events.csv"
    frame = SyntheticSource(config).fetch(DAY)
    frame.assign(region=["0042"] * len(frame)).to_csv(csv, index=False)
    as_file = config.model_copy(update={"source": SourceConfig(kind="file", path=str(csv))})
    assert FileSource(as_file).fetch(DAY)["region"].iloc[0] == "0042"
    assert set(csv_text_columns(config)) >= {"customer_id", "plan", "region", "payment_method"}
    scored = inference.score_partition(job(config, str(csv)), model)
    assert scored["rows"] == 300


def test_batches_outside_the_window_are_skipped_and_an_empty_part_is_typed(
    config: PipelineConfig, model: Any, tmp_path: Path
) -> None:
    month = Window(datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))
    frame = SyntheticSource(config).fetch(month)
    path = tmp_path / "events_february.csv"
    frame.to_csv(path, index=False)
    scored = inference.score_partition(job(config, str(path)), model)  # batches of 100 rows
    assert scored["rows"] == 300 and scored["input_rows"] == len(frame)
    later = Window(datetime(2026, 3, 5, tzinfo=UTC), datetime(2026, 3, 6, tzinfo=UTC))
    empty = inference.score_partition(job(config, str(path), window=later), model)
    out = pq.read_table(empty["uri"])
    assert empty["rows"] == out.num_rows == 0
    assert out.schema.field("customer_id").type == pa.string()
    assert out.schema.field("prediction").type == pa.int64()
    assert out.schema.field("probability").type == pa.float64()
    assert pq.read_table(scored["uri"]).schema == out.schema


# --------------------------------------------------------------------------- bad inputs


def _truncated(frame: pd.DataFrame, path: Path) -> None:
    frame.to_parquet(path, index=False)
    path.write_bytes(path.read_bytes()[:-100])


def _csv_named_parquet(frame: pd.DataFrame, path: Path) -> None:
    path.write_text(frame.to_csv(index=False))


def _infinite(frame: pd.DataFrame, path: Path) -> None:
    frame = frame.copy()
    frame.loc[frame.index[40], "usage_gb"] = -np.inf
    frame.to_parquet(path, index=False)


def _text_in_numeric_parquet(frame: pd.DataFrame, path: Path) -> None:
    frame.assign(monthly_charges=frame["monthly_charges"].astype(str)).to_parquet(path)


def _text_in_numeric_csv(frame: pd.DataFrame, path: Path) -> None:
    frame = frame.astype({"tenure_months": object})
    frame.loc[frame.index[150], "tenure_months"] = "twelve"
    frame.to_csv(path, index=False)


def _missing_column_csv(frame: pd.DataFrame, path: Path) -> None:
    frame.drop(columns=["region"]).to_csv(path, index=False)


def _bad_time_csv(frame: pd.DataFrame, path: Path) -> None:
    frame.assign(event_time="yesterday").to_csv(path, index=False)


def _numbers_in_categorical_parquet(frame: pd.DataFrame, path: Path) -> None:
    frame.assign(region=np.arange(len(frame))).to_parquet(path)


@pytest.mark.parametrize(
    ("name", "write", "message"),
    [
        ("in.parquet", _truncated, r"is not a readable parquet file \(truncated"),
        ("in.parquet", _csv_named_parquet, r"is not a readable parquet file"),
        ("in.parquet", _infinite, r"column 'usage_gb' holds 1 infinite value\(s\), first at data"),
        ("in.parquet", _text_in_numeric_parquet, r"column 'monthly_charges' is a numeric feature"),
        ("in.csv", _text_in_numeric_csv, r"column 'tenure_months' .* holds 'twelve' \(data row"),
        ("in.csv", _missing_column_csv, r"lacks the columns \['region'\]"),
        ("in.csv", _bad_time_csv, r"time_column 'event_time' cannot be read"),
        (
            "in.parquet",
            _numbers_in_categorical_parquet,
            r"column 'region' is a categorical feature but holds \d+ \(int64, data row",
        ),
    ],
)
def test_bad_scoring_input_names_the_file_and_column(
    config: PipelineConfig,
    model: Any,
    day_file: tuple[str, pd.DataFrame],
    tmp_path: Path,
    name: str,
    write: Any,
    message: str,
) -> None:
    path = tmp_path / name
    write(day_file[1], path)
    scoring = job(config, str(path))
    with pytest.raises(inference.ScoringInputError, match=message) as err:
        inference.score_partition(scoring, model)
    assert isinstance(err.value, BadInputError) and str(path) in str(err.value)
    assert not Path(scoring.output_uri).exists() and not Path(scoring.sample_uri).exists()


def test_the_row_of_an_infinite_value_is_named(
    config: PipelineConfig, model: Any, day_file: tuple[str, pd.DataFrame], tmp_path: Path
) -> None:
    frame = day_file[1].copy()
    frame.loc[frame.index[250], "usage_gb"] = np.inf  # batch 3 (rows 201-300)
    frame.to_csv(tmp_path / "in.csv", index=False)
    with pytest.raises(inference.ScoringInputError, match="first at data row 251;"):
        inference.score_partition(job(config, str(tmp_path / "in.csv")), model)


def test_nulls_in_features_are_scored(
    config: PipelineConfig, model: Any, day_file: tuple[str, pd.DataFrame], tmp_path: Path
) -> None:
    frame = day_file[1].copy()
    frame.loc[frame.index[::3], ["usage_gb", "plan"]] = None
    frame.to_csv(tmp_path / "in.csv", index=False)
    result = inference.score_partition(job(config, str(tmp_path / "in.csv")), model)
    assert result["rows"] == 300
    assert pd.read_parquet(result["uri"])["probability"].notna().all()
