"""Pipeline config errors: each one names the file and the dotted YAML key.

The YAML is the whole user interface of a pipeline (DESIGN.md: "pointed at new data by its
YAML alone"), so a mistake in it must say where it is without reading the code.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from continuous_training.config import (
    DEFAULT_PIPELINES_DIR,
    ConfigError,
    PipelineConfig,
    find_pipeline,
    load_all_pipelines,
    load_pipeline,
    parse_pipeline,
    pipelines_dir,
)

FILE = "/pipelines/churn.yaml"


def _error(data: dict[str, Any], source_file: str = FILE) -> str:
    """The message of the ConfigError raised for `data` (fails the test if none is)."""
    with pytest.raises(ConfigError) as info:
        parse_pipeline(data, source_file)
    return str(info.value)


def _assert_names(message: str, *needles: str) -> None:
    for needle in (FILE, *needles):
        assert needle in message, f"{needle!r} not named in:\n{message}"


def _write(directory: Path, name: str, data: Any) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


# --------------------------------------------------------------------------- the shipped one


def test_shipped_churn_pipeline_is_valid() -> None:
    config = load_pipeline(DEFAULT_PIPELINES_DIR / "churn.yaml")
    assert config.name == "churn"
    assert config.schedule == "0 2 * * 0"
    assert config.source_file == str(DEFAULT_PIPELINES_DIR / "churn.yaml")


def test_columns_are_in_schema_order(make_config: Callable[..., PipelineConfig]) -> None:
    config = make_config()
    assert config.columns == [
        "event_time",
        "customer_id",
        "tenure_months",
        "monthly_charges",
        "support_calls",
        "usage_gb",
        "plan",
        "region",
        "payment_method",
        "churned",
    ]
    assert config.features.all == config.columns[2:-1]


def test_model_name_defaults_to_the_pipeline_name(make_config) -> None:
    config = make_config()
    assert config.model_name == "churn"
    assert config.experiment_name == "ct/churn"


def test_registry_model_name_overrides(make_config) -> None:
    config = make_config(registry={"model_name": "churn_eu", "experiment": "eu/churn"})
    assert config.model_name == "churn_eu"
    assert config.experiment_name == "eu/churn"
    assert config.name == "churn"  # DAG ids keep the pipeline name


def test_config_is_frozen(make_config) -> None:
    config = make_config()
    with pytest.raises(ValueError):
        config.target = "other"


# --------------------------------------------------------------------------- schema errors


def test_missing_required_key(churn_config: dict[str, Any]) -> None:
    del churn_config["target"]
    message = _error(churn_config)
    _assert_names(message, "target")
    assert re.search(r"^\s+target: Field required", message, re.M), message


def test_unknown_key_is_a_typo_not_ignored(churn_config: dict[str, Any]) -> None:
    churn_config["featurs"] = churn_config["features"]
    _assert_names(_error(churn_config), "featurs")


def test_unknown_nested_key(churn_config: dict[str, Any]) -> None:
    churn_config["windows"]["trainig_days"] = 14
    _assert_names(_error(churn_config), "windows.trainig_days")


def test_wrong_type(churn_config: dict[str, Any]) -> None:
    churn_config["windows"]["training_days"] = "x"
    message = _error(churn_config)
    _assert_names(message, "windows.training_days")
    assert "integer" in message


@pytest.mark.parametrize("key", ["training_days", "holdout_days"])
@pytest.mark.parametrize("value", [0, -3])
def test_window_must_be_positive(churn_config: dict[str, Any], key: str, value: int) -> None:
    churn_config["windows"][key] = value
    message = _error(churn_config)
    _assert_names(message, f"windows.{key}")
    assert "greater than 0" in message


def test_top_level_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match=re.escape(f"{FILE}: top level must be a mapping")):
        parse_pipeline(["name", "churn"], FILE)


def test_several_errors_are_reported_together(churn_config: dict[str, Any]) -> None:
    del churn_config["target"]
    churn_config["windows"]["holdout_days"] = 0
    _assert_names(_error(churn_config), "target", "windows.holdout_days")


# --------------------------------------------------------------------------- source


def test_unknown_source_kind(churn_config: dict[str, Any]) -> None:
    churn_config["source"] = {"kind": "ftp"}
    message = _error(churn_config)
    assert "'ftp'" in message
    _assert_names(message, "source.kind")


def test_unknown_source_kind_names_the_value(churn_config: dict[str, Any]) -> None:
    churn_config["source"] = {"kind": "ftp"}
    message = _error(churn_config)
    _assert_names(message, "source", "'ftp'", "my_package.sources.MySource")


def test_a_dotted_source_kind_is_a_user_class(make_config) -> None:
    config = make_config(source={"kind": "my_package.sources.MySource", "options": {"a": 1}})
    assert config.source.kind == "my_package.sources.MySource"
    assert config.source.options == {"a": 1}


def test_file_source_needs_a_path(churn_config: dict[str, Any]) -> None:
    churn_config["source"] = {"kind": "file"}
    _assert_names(_error(churn_config), "source.path")


def test_file_source_with_a_path(make_config) -> None:
    config = make_config(source={"kind": "file", "path": "s3://bucket/churn/*.parquet"})
    assert config.source.path == "s3://bucket/churn/*.parquet"


def test_file_source_format_is_checked(churn_config: dict[str, Any]) -> None:
    churn_config["source"] = {"kind": "file", "path": "/data/x", "format": "xlsx"}
    _assert_names(_error(churn_config), "source.format")


def test_sql_source_needs_conn_id_and_query(churn_config: dict[str, Any]) -> None:
    churn_config["source"] = {"kind": "sql", "query": "select 1"}
    _assert_names(_error(churn_config), "source.conn_id")


@pytest.mark.parametrize("missing", [":window_start", ":window_end"])
def test_sql_source_must_bind_the_window(churn_config: dict[str, Any], missing: str) -> None:
    query = "SELECT * FROM events WHERE event_time >= :window_start AND event_time < :window_end"
    churn_config["source"] = {
        "kind": "sql",
        "conn_id": "warehouse",
        "query": query.replace(missing, "'2026-01-01'"),
    }
    _assert_names(_error(churn_config), "source.query", missing)


def test_sql_source_with_both_binds(make_config) -> None:
    query = "SELECT * FROM events WHERE event_time >= :window_start AND event_time < :window_end"
    config = make_config(source={"kind": "sql", "conn_id": "warehouse", "query": query})
    assert config.source.conn_id == "warehouse"


SQL = "SELECT * FROM events WHERE t >= :window_start AND t < :window_end"


def test_sql_source_params_are_bound_by_name(make_config) -> None:
    query = SQL + " AND region = :region AND t::date > :since"
    params = {"region": "north", "since": "2026-01-01"}
    config = make_config(source={"kind": "sql", "conn_id": "w", "query": query, "params": params})
    assert config.source.params == params


@pytest.mark.parametrize(
    ("query", "params", "needles"),
    [
        (
            SQL + " AND region = '{region}'",
            {"region": "north"},
            ["source.params.region", "{region}", ":region"],
        ),
        (SQL + " AND region = %(region)s", {"region": "north"}, ["%(region)s", ":region"]),
        (SQL, {"region": "north"}, ["source.params.region is not bound", ":region"]),
        (SQL + " AND region = :region", {}, ["binds :region", "source.params"]),
        (SQL + " AND a = :window_start", {"window_start": "x"}, ["source.params.window_start"]),
        (SQL + " AND a = :x", {"x; DROP": "x"}, ["source.params.x; DROP"]),
    ],
    ids=[
        "python-format",
        "pyformat",
        "unbound-param",
        "bind-without-value",
        "window-name",
        "bad-name",
    ],
)
def test_sql_source_params_must_be_bound(
    churn_config: dict[str, Any], query: str, params: dict[str, Any], needles: list[str]
) -> None:
    churn_config["source"] = {"kind": "sql", "conn_id": "w", "query": query, "params": params}
    _assert_names(_error(churn_config), *needles)


def test_sql_source_params_are_scalars(churn_config: dict[str, Any]) -> None:
    query = SQL + " AND region = :region"
    churn_config["source"] = {
        "kind": "sql",
        "conn_id": "w",
        "query": query,
        "params": {"region": ["a"]},
    }
    _assert_names(_error(churn_config), "source.params.region")


def test_params_belong_to_the_sql_source(churn_config: dict[str, Any]) -> None:
    churn_config["source"] = {"kind": "synthetic", "params": {"region": "north"}}
    _assert_names(_error(churn_config), "source.params", "kind 'sql'", "source.options")


# --------------------------------------------------------------------------- columns


def test_feature_listed_as_numeric_and_categorical(churn_config: dict[str, Any]) -> None:
    churn_config["features"]["categorical"].append("tenure_months")
    _assert_names(_error(churn_config), "features", "tenure_months")


def test_feature_listed_twice_in_one_list(churn_config: dict[str, Any]) -> None:
    churn_config["features"]["numeric"].append("usage_gb")
    _assert_names(_error(churn_config), "features.numeric", "usage_gb")


@pytest.mark.parametrize("key", ["target", "time_column"])
def test_target_or_time_column_listed_as_feature(churn_config: dict[str, Any], key: str) -> None:
    column = churn_config[key]
    churn_config["features"]["numeric"].append(column)
    _assert_names(_error(churn_config), key, repr(column), "feature")


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda d: d["features"]["numeric"].append("customer_id"), id="id-feature"),
        pytest.param(lambda d: d.update(target="event_time"), id="target-is-time"),
    ],
)
def test_a_column_has_one_role(churn_config: dict[str, Any], change: Callable) -> None:
    change(churn_config)
    churn_config["expectations"]["columns"].pop("churned", None)
    message = _error(churn_config)
    assert "customer_id" in message or "event_time" in message, message


def test_at_least_one_feature(churn_config: dict[str, Any]) -> None:
    churn_config["features"] = {"numeric": [], "categorical": []}
    _assert_names(_error(churn_config), "features")


def test_expectations_for_an_unknown_column(churn_config: dict[str, Any]) -> None:
    churn_config["expectations"]["columns"]["tenure_monts"] = {"not_null": True}
    _assert_names(_error(churn_config), "expectations.columns", "tenure_monts")


def test_expectation_range_must_be_ordered(churn_config: dict[str, Any]) -> None:
    churn_config["expectations"]["columns"]["tenure_months"] = {"min": 10, "max": 1}
    _assert_names(_error(churn_config), "expectations.columns.tenure_months", "min")


# --------------------------------------------------------------------------- model and gates


def test_estimator_must_be_an_import_path(churn_config: dict[str, Any]) -> None:
    churn_config["model"]["estimator"] = "RandomForestClassifier"
    _assert_names(_error(churn_config), "model.estimator", "RandomForestClassifier")


def test_metric_not_applicable_names_the_key(churn_config: dict[str, Any]) -> None:
    churn_config["gates"]["primary_metric"] = "rmse"
    _assert_names(_error(churn_config), "gates.primary_metric", "'rmse'")


def test_metric_not_applicable_to_the_task(churn_config: dict[str, Any]) -> None:
    churn_config["gates"]["primary_metric"] = "rmse"
    _assert_names(_error(churn_config), "'rmse'", "classification")


def test_guardrail_not_applicable_to_the_task(churn_config: dict[str, Any]) -> None:
    churn_config["gates"]["guardrails"]["mae"] = {"tolerance": 0.1}
    _assert_names(_error(churn_config), "'mae'", "classification")


def test_classification_metric_on_a_regression_task(churn_config: dict[str, Any]) -> None:
    churn_config["task"] = "regression"
    _assert_names(_error(churn_config), "'roc_auc'", "regression")


def test_regression_pipeline_with_regression_metrics(churn_config: dict[str, Any]) -> None:
    churn_config["task"] = "regression"
    churn_config["gates"] |= {"primary_metric": "rmse", "guardrails": {"mae": {"tolerance": 1}}}
    churn_config["expectations"]["columns"].pop("churned")
    config = parse_pipeline(churn_config, FILE)
    assert config.task == "regression"
    assert config.gates.primary_metric == "rmse"


def test_unknown_metric_names_the_key(churn_config: dict[str, Any]) -> None:
    churn_config["gates"]["primary_metric"] = "auc"
    _assert_names(_error(churn_config), "gates.primary_metric", "'auc'")


def test_unknown_metric(churn_config: dict[str, Any]) -> None:
    churn_config["gates"]["primary_metric"] = "auc"
    _assert_names(_error(churn_config), "gates", "unknown metric 'auc'", "roc_auc")


def test_unknown_guardrail_metric(churn_config: dict[str, Any]) -> None:
    churn_config["gates"]["guardrails"]["logloss"] = {"tolerance": 0.1}
    _assert_names(_error(churn_config), "gates", "unknown metric 'logloss'")


def test_gate_floor_is_required(churn_config: dict[str, Any]) -> None:
    del churn_config["gates"]["floor"]
    _assert_names(_error(churn_config), "gates.floor")


def test_bootstrap_confidence_bounds(churn_config: dict[str, Any]) -> None:
    churn_config["gates"]["bootstrap"]["confidence"] = 1.5
    _assert_names(_error(churn_config), "gates.bootstrap.confidence")


def test_pipeline_name_pattern(churn_config: dict[str, Any]) -> None:
    churn_config["name"] = "Churn-EU"
    _assert_names(_error(churn_config), "name")


# --------------------------------------------------------------------------- files


def test_malformed_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "churn", "name: churn\ntarget: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_pipeline(path)
    message = str(info.value)
    assert message.startswith(f"{path}: malformed YAML"), message
    assert "line 2" in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'nope.yaml'}: ")):
        load_pipeline(tmp_path / "nope.yaml")


def test_file_name_must_match_name(tmp_path: Path, churn_config: dict[str, Any]) -> None:
    path = _write(tmp_path, "churn_eu", churn_config)
    with pytest.raises(ConfigError) as info:
        load_pipeline(path)
    message = str(info.value)
    assert str(path) in message
    assert "name" in message and "'churn'" in message and "'churn_eu'" in message


def test_load_errors_name_the_file(tmp_path: Path, churn_config: dict[str, Any]) -> None:
    churn_config["windows"]["training_days"] = "x"
    path = _write(tmp_path, "churn", churn_config)
    with pytest.raises(ConfigError) as info:
        load_pipeline(path)
    assert str(info.value).startswith(f"{path}: invalid pipeline config")
    assert "windows.training_days" in str(info.value)


def test_load_all_pipelines_reads_ct_pipelines_dir(
    tmp_path: Path, churn_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    second = copy.deepcopy(churn_config) | {"name": "churn_eu"}
    _write(tmp_path, "churn_eu", second)
    _write(tmp_path, "churn", churn_config)
    (tmp_path / "notes.txt").write_text("not a pipeline")
    monkeypatch.setenv("CT_PIPELINES_DIR", str(tmp_path))

    assert pipelines_dir() == tmp_path
    configs = load_all_pipelines()
    assert [c.name for c in configs] == ["churn", "churn_eu"]  # sorted by file name
    assert configs[1].source_file == str(tmp_path / "churn_eu.yaml")
    assert find_pipeline("churn_eu").name == "churn_eu"


def test_load_all_pipelines_without_env_reads_the_shipped_folder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CT_PIPELINES_DIR", raising=False)
    assert pipelines_dir() == DEFAULT_PIPELINES_DIR
    names = [c.name for c in load_all_pipelines()]
    assert "churn" in names


def test_load_all_pipelines_fails_on_one_broken_file(
    tmp_path: Path, churn_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, "churn", churn_config)
    bad = copy.deepcopy(churn_config) | {"name": "broken"}
    bad["windows"]["holdout_days"] = -1
    _write(tmp_path, "broken", bad)
    monkeypatch.setenv("CT_PIPELINES_DIR", str(tmp_path))
    with pytest.raises(ConfigError) as info:
        load_all_pipelines()
    assert str(tmp_path / "broken.yaml") in str(info.value)
    assert "windows.holdout_days" in str(info.value)


def test_missing_pipelines_dir_fails_loudly(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CT_PIPELINES_DIR", str(tmp_path / "typo"))
    with pytest.raises(ConfigError, match="typo"):
        load_all_pipelines()


@pytest.mark.parametrize(
    ("overrides", "key", "name"),
    [
        (
            {"features": {"numeric": ["prediction"], "categorical": ["plan"]}},
            "features",
            "prediction",
        ),
        ({"id_columns": ["model_version"]}, "id_columns", "model_version"),
        ({"inference": {"id_columns": ["probability"]}}, "inference.id_columns", "probability"),
    ],
)
def test_columns_named_like_the_predictions_own_are_refused(
    churn_config: dict[str, Any], overrides: dict[str, Any], key: str, name: str
) -> None:
    """A feature called `prediction` would be overwritten in the drift sample, unseen."""
    from continuous_training.inference import PREDICTION, PROBABILITY, SAMPLE_KEY

    message = _error({**churn_config, "expectations": {}, **overrides})
    _assert_names(message, f"{key}: ['{name}'] are names the predictions", "rename them")
    from continuous_training.config import RESERVED_COLUMNS

    assert {PREDICTION, PROBABILITY, SAMPLE_KEY} <= set(RESERVED_COLUMNS)
