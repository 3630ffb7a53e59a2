"""The decisions of a retrain that need no MLflow server: split, model, options, decision, window.

Real pandas/sklearn objects throughout; the only fake is a tiny in-memory registry client
for the error paths of the compare-and-set promotion (DESIGN.md: mocks for error paths only).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow.protos.databricks_pb2 import (
    INVALID_PARAMETER_VALUE,
    RESOURCE_DOES_NOT_EXIST,
)

from continuous_training import registry
from continuous_training.config import ConfigError, PipelineConfig, parse_pipeline
from continuous_training.errors import BadInputError
from continuous_training.operators import base
from continuous_training.operators.retraining import run_info, run_options
from continuous_training.promotion import RunOptions, decide
from continuous_training.registry import ChampionChangedError, Decision, apply_decision
from continuous_training.training import (
    RunInfo,
    TrainingError,
    build_model,
    check_model,
    predict_scores,
    time_split,
)
from tests.unit.fake_registry import FakeRegistryClient

WINDOW_END = datetime(2026, 3, 8, tzinfo=UTC)  # churn: holdout_days 7 -> holdout from Mar 1
HOLDOUT_START = datetime(2026, 3, 1, tzinfo=UTC)
MODEL = "churn"

DESIGN_TAGS = {
    registry.TAG_DECISION: "ct.decision",
    registry.TAG_REASON: "ct.decision_reason",
    registry.TAG_TRIGGER: "ct.trigger",
    registry.TAG_RUN_ID: "ct.airflow_run_id",
    registry.TAG_REPLACED: "ct.replaced_version",
}


# --------------------------------------------------------------------------- helpers


def _frame(
    config: PipelineConfig, start: datetime, end: datetime, every: timedelta = timedelta(hours=6)
) -> pd.DataFrame:
    """Rows every `every` in [start, end), with both classes and every configured column."""
    times = pd.date_range(start, end, freq=every, inclusive="left", tz="UTC")
    n = len(times)
    rng = np.random.default_rng(0)
    data: dict[str, Any] = {config.time_column: times}
    for column in config.id_columns:
        data[column] = [f"c{i}" for i in range(n)]
    for column in config.features.numeric:
        data[column] = rng.normal(10, 3, n)
    for column in config.features.categorical:
        data[column] = rng.choice(["a", "b", "c"], n)
    data[config.target] = np.arange(n) % 2
    return pd.DataFrame(data)[config.columns]


def _config(churn_config: dict[str, Any], **changes: Any) -> PipelineConfig:
    """churn.yaml with top-level keys replaced outright (no merging)."""
    return parse_pipeline({**churn_config, **changes}, "/pipelines/churn.yaml")


def _run(trigger: str = "schedule") -> RunInfo:
    return RunInfo(
        airflow_run_id="scheduled__2026-03-08T02:00:00+00:00",
        trigger=trigger,
        window_end=WINDOW_END,
    )


def _evaluated(passed: bool, champion: str | None = "3") -> dict[str, Any]:
    return {
        "model_version": "4",
        "champion_version": champion,
        "gate_passed": passed,
        "gate_reason": "passed: roc_auc 0.81 >= 0.65" if passed else "failed: roc_auc 0.61 < 0.65",
    }


# --------------------------------------------------------------------------- time_split


def test_holdout_is_the_last_days_before_window_end(make_config) -> None:
    config = make_config()
    df = _frame(config, WINDOW_END - timedelta(days=28), WINDOW_END)
    shuffled = df.sample(frac=1.0, random_state=1).reset_index(drop=True)

    split = time_split(shuffled, config, WINDOW_END)

    times = shuffled[config.time_column]
    assert split.holdout_start == HOLDOUT_START
    assert split.holdout[config.time_column].min() == HOLDOUT_START  # boundary row: holdout
    assert (split.holdout[config.time_column] < WINDOW_END).all()
    assert (split.train[config.time_column] < HOLDOUT_START).all()
    assert len(split.train) + len(split.holdout) == len(df)
    assert len(split.holdout) == 7 * 4
    # no row of the holdout is earlier than any training row
    assert split.train[config.time_column].max() < split.holdout[config.time_column].min()
    # nothing is reordered: each part keeps the input's row order
    assert split.train[config.time_column].tolist() == times[times < HOLDOUT_START].tolist()
    assert split.holdout[config.time_column].tolist() == times[times >= HOLDOUT_START].tolist()
    assert list(split.train.index) == list(range(len(split.train)))


def test_holdout_follows_windows_holdout_days(churn_config: dict[str, Any]) -> None:
    config = _config(churn_config, windows={"training_days": 10, "holdout_days": 2})
    df = _frame(config, WINDOW_END - timedelta(days=12), WINDOW_END)
    split = time_split(df, config, WINDOW_END)
    assert split.holdout_start == WINDOW_END - timedelta(days=2)
    assert len(split.holdout) == 2 * 4


def test_empty_holdout_names_the_window(make_config) -> None:
    config = make_config()
    df = _frame(config, WINDOW_END - timedelta(days=28), HOLDOUT_START)
    with pytest.raises(TrainingError) as info:
        time_split(df, config, WINDOW_END)
    message = str(info.value)
    for needle in ("'churn'", "holdout part", "2026-03-08", "2026-03-01", "holdout_days=7"):
        assert needle in message, message


def test_empty_training_names_the_window(make_config) -> None:
    config = make_config()
    df = _frame(config, HOLDOUT_START, WINDOW_END)
    with pytest.raises(TrainingError) as info:
        time_split(df, config, WINDOW_END)
    message = str(info.value)
    for needle in ("training part", "2026-03-08", "2026-03-01"):
        assert needle in message, message


@pytest.mark.parametrize("part", ["training", "holdout"])
def test_single_class_target_names_the_target(make_config, part: str) -> None:
    config = make_config()
    df = _frame(config, WINDOW_END - timedelta(days=28), WINDOW_END)
    in_part = df[config.time_column] < HOLDOUT_START
    if part == "holdout":
        in_part = ~in_part
    df.loc[in_part, config.target] = 0
    with pytest.raises(TrainingError) as info:
        time_split(df, config, WINDOW_END)
    message = str(info.value)
    assert "'churned'" in message and "single class" in message and part in message
    assert "'churned': 0;" in message  # the one class there is


def _regression(churn_config: dict[str, Any]) -> PipelineConfig:
    """churn as a regression of `churned` with a Ridge."""
    columns = {k: v for k, v in churn_config["expectations"]["columns"].items() if k != "churned"}
    return _config(
        churn_config,
        task="regression",
        expectations={**churn_config["expectations"], "columns": columns},
        model={"estimator": "sklearn.linear_model.Ridge", "params": {}},
        gates={"primary_metric": "rmse", "floor": 0.0},
    )


def test_regression_needs_no_two_classes(churn_config: dict[str, Any]) -> None:
    config = _regression(churn_config)
    df = _frame(config, WINDOW_END - timedelta(days=28), WINDOW_END)
    df[config.target] = 1.0
    split = time_split(df, config, WINDOW_END)
    assert len(split.holdout) == 28


# --------------------------------------------------------------------------- build_model


def test_build_model_preprocesses_by_feature_type(make_config) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline

    config = make_config()
    model = build_model(config)

    assert isinstance(model, Pipeline)
    assert [name for name, _ in model.steps] == ["preprocess", "estimator"]
    preprocess = model.named_steps["preprocess"]
    assert isinstance(preprocess, ColumnTransformer)
    assert preprocess.remainder == "drop"
    columns = {name: cols for name, _, cols in preprocess.transformers}
    assert columns == {
        "numeric": config.features.numeric,
        "categorical": config.features.categorical,
    }
    numeric, categorical = (t for _, t, _ in preprocess.transformers)
    assert [type(s).__name__ for _, s in numeric.steps] == ["SimpleImputer", "StandardScaler"]
    assert [type(s).__name__ for _, s in categorical.steps] == ["SimpleImputer", "OneHotEncoder"]
    assert categorical.steps[-1][1].handle_unknown == "infrequent_if_exist"
    estimator = model.named_steps["estimator"]
    assert isinstance(estimator, HistGradientBoostingClassifier)
    assert estimator.get_params()["max_iter"] == 150
    assert estimator.get_params()["learning_rate"] == 0.08


def test_build_model_numeric_only(churn_config: dict[str, Any]) -> None:
    features = {"numeric": ["tenure_months", "usage_gb"]}
    columns = {
        k: v
        for k, v in churn_config["expectations"]["columns"].items()
        if k in {"customer_id", "tenure_months", "usage_gb", "churned"}
    }
    config = _config(
        churn_config,
        features=features,
        expectations={**churn_config["expectations"], "columns": columns},
    )
    preprocess = build_model(config).named_steps["preprocess"]
    assert [name for name, _, _ in preprocess.transformers] == ["numeric"]


@pytest.mark.parametrize(
    ("estimator", "needle"),
    [
        ("sklearn.ensemble.NoSuchModel", "cannot import 'sklearn.ensemble.NoSuchModel'"),
        ("nopkg.X", "cannot import 'nopkg.X': No module named 'nopkg'"),
        ("sklearn.linear_model.Ridge", "'sklearn.linear_model.Ridge' has no predict_proba()"),
        ("collections.OrderedDict", "'collections.OrderedDict' has no fit() or predict_proba()"),
    ],
)
def test_unknown_estimator_names_model_estimator(
    churn_config: dict[str, Any], estimator: str, needle: str
) -> None:
    """The first task's check (naming the file too) and the training step say the same."""
    config = _config(churn_config, model={"estimator": estimator, "params": {}})
    for check, prefix in (
        (build_model, "model.estimator: "),
        (check_model, "/pipelines/churn.yaml: model.estimator: "),
    ):
        with pytest.raises(TrainingError) as info:
            check(config)
        assert str(info.value).startswith(prefix), info.value
        assert needle in str(info.value)


def test_check_model_accepts_the_shipped_model_and_a_regressor(
    churn_config: dict[str, Any],
) -> None:
    check_model(_config(churn_config))
    check_model(_regression(churn_config))


def test_unknown_param_names_model_params(churn_config: dict[str, Any]) -> None:
    model = {**churn_config["model"], "params": {"max_iter": 10, "n_trees": 5}}
    with pytest.raises(TrainingError) as info:
        build_model(_config(churn_config, model=model))
    message = str(info.value)
    assert message.startswith("model.params:")
    assert "n_trees" in message and "HistGradientBoostingClassifier" in message


def test_invalid_param_value_names_model_params(churn_config: dict[str, Any]) -> None:
    model = {**churn_config["model"], "params": {"learning_rate": -1.0}}
    config = _config(churn_config, model=model)
    df = _frame(config, WINDOW_END - timedelta(days=7), WINDOW_END)
    with pytest.raises(TrainingError, match=r"model\.params"):
        build_model(config).fit(df[config.features.all], df[config.target])


def test_fit_with_nans_and_predict_an_unseen_category(make_config) -> None:
    config = make_config()
    train = _frame(config, WINDOW_END - timedelta(days=6), WINDOW_END)  # 24 rows
    train.loc[::3, "tenure_months"] = np.nan
    train.loc[1::4, "plan"] = np.nan
    train.loc[2::5, "region"] = None
    model = build_model(config)
    model.fit(train[config.features.all], train[config.target])

    new = train.head(3).copy()
    new["plan"] = ["platinum", np.nan, "a"]  # unseen, missing, known
    new.loc[0, "monthly_charges"] = np.nan
    scores = predict_scores(model, new, config.task)  # extra columns are dropped
    assert scores.shape == (3,)
    assert np.isfinite(scores).all()
    assert ((scores >= 0) & (scores <= 1)).all()


# --------------------------------------------------------------------------- RunOptions


def test_run_options_defaults() -> None:
    options = RunOptions()
    assert (options.dry_run, options.force_promote, options.reason) == (False, False, "")


@pytest.mark.parametrize("reason", ["", "   "])
def test_force_promote_needs_a_reason(reason: str) -> None:
    with pytest.raises(ValueError, match=r"params\.reason"):
        RunOptions(force_promote=True, reason=reason)


def test_force_promote_and_dry_run_exclude_each_other() -> None:
    with pytest.raises(ValueError, match=r"force_promote.*dry_run"):
        RunOptions(force_promote=True, dry_run=True, reason="hotfix")


def test_bad_trigger_form_is_bad_input() -> None:
    context = {"params": {"force_promote": True, "reason": ""}}
    with pytest.raises(BadInputError, match=r"params\.reason"):
        run_options(context)
    assert run_options({"params": {"dry_run": True}}) == RunOptions(dry_run=True)
    assert run_options({}) == RunOptions()


@pytest.mark.parametrize("value", ["yes", "false", 1, None])
def test_a_flag_that_is_not_a_boolean_is_refused(value: Any) -> None:
    with pytest.raises(BadInputError, match=r"params\.dry_run must be true or false"):
        run_options({"params": {"dry_run": value}})


def _operator_config(params: dict[str, Any]) -> PipelineConfig:
    operator = base.PipelineOperator(task_id="fetch", pipeline="churn")
    return operator.config({"params": params})


def test_training_window_days_from_the_trigger_form_is_applied() -> None:
    assert _operator_config({}).windows.training_days == 21
    assert _operator_config({"training_window_days": 14}).windows.training_days == 14


@pytest.mark.parametrize("days", [0, -3, "many", 2.5])
def test_a_bad_training_window_days_names_the_param(days: Any) -> None:
    with pytest.raises(ConfigError, match=r"^params\.training_window_days: "):
        _operator_config({"training_window_days": days})


# --------------------------------------------------------------------------- decide


def test_gate_passed_promotes_and_records_the_replaced_version() -> None:
    decision = decide(_evaluated(True), RunOptions(), _run())
    assert decision.decision == registry.PROMOTED
    assert decision.promote is True
    assert decision.replaced_version == "3"
    assert decision.trigger == "schedule"
    assert decision.reason == _evaluated(True)["gate_reason"]
    assert decision.airflow_run_id == _run().airflow_run_id
    assert decision.tags()[registry.TAG_REPLACED] == "3"


def test_gate_failed_rejects() -> None:
    decision = decide(_evaluated(False), RunOptions(), _run("drift"))
    assert decision.decision == registry.REJECTED
    assert decision.promote is False
    assert decision.trigger == "drift"
    assert decision.reason.startswith("failed")
    assert registry.TAG_REPLACED not in decision.tags()


def test_dry_run_rejects_even_a_winner() -> None:
    decision = decide(_evaluated(True), RunOptions(dry_run=True), _run("manual"))
    assert decision.decision == registry.REJECTED
    assert decision.promote is False
    assert decision.dry_run is True
    assert "dry run" in decision.reason and "passed" in decision.reason
    assert decision.tags()[registry.TAG_DRY_RUN] == "true"


@pytest.mark.parametrize("passed", [True, False])
def test_force_promotes_as_manual_with_the_reason(passed: bool) -> None:
    options = RunOptions(force_promote=True, reason="  hotfix for INC-42  ")
    decision = decide(_evaluated(passed), options, _run("schedule"))
    assert decision.decision == registry.PROMOTED
    assert decision.promote is True
    assert decision.trigger == "manual"
    assert "hotfix for INC-42" in decision.reason
    assert _evaluated(passed)["gate_reason"] in decision.reason  # the overridden gate stays
    assert decision.replaced_version == "3"


def test_first_promotion_replaces_none() -> None:
    decision = decide(_evaluated(True, champion=None), RunOptions(), _run())
    assert decision.promote is True
    assert decision.tags()[registry.TAG_REPLACED] == "none"


# --------------------------------------------------------------------------- Decision.tags


def test_tag_keys_are_the_design_names() -> None:
    assert set(DESIGN_TAGS) == set(DESIGN_TAGS.values())


def test_promoted_tags_are_exactly_the_design_keys() -> None:
    tags = decide(_evaluated(True), RunOptions(), _run()).tags()
    assert tags == {
        "ct.decision": "promoted",
        "ct.decision_reason": _evaluated(True)["gate_reason"],
        "ct.trigger": "schedule",
        "ct.airflow_run_id": _run().airflow_run_id,
        "ct.replaced_version": "3",
    }


def test_rejected_tags_have_no_replaced_version() -> None:
    tags = decide(_evaluated(False), RunOptions(), _run()).tags()
    assert set(tags) == {"ct.decision", "ct.decision_reason", "ct.trigger", "ct.airflow_run_id"}
    assert tags["ct.decision"] == "rejected"


def test_dry_run_tags() -> None:
    tags = decide(_evaluated(True), RunOptions(dry_run=True), _run()).tags()
    assert set(tags) == {
        "ct.decision",
        "ct.decision_reason",
        "ct.trigger",
        "ct.airflow_run_id",
        "ct.dry_run",
    }


def test_reason_is_capped_below_mlflows_tag_limit() -> None:
    decision = Decision("rejected", "x" * 10_000, "schedule", "run", promote=False)
    assert len(decision.tags()[registry.TAG_REASON]) <= 5000


# --------------------------------------------------------------------------- window_end


@pytest.mark.parametrize(
    ("interval_end", "expected"),
    [
        (datetime(2026, 3, 8, 2, 0, tzinfo=UTC), datetime(2026, 3, 8, tzinfo=UTC)),
        (datetime(2026, 3, 8, 0, 0, tzinfo=UTC), datetime(2026, 3, 8, tzinfo=UTC)),
        (datetime(2026, 3, 8, 23, 59, 59, 999, tzinfo=UTC), datetime(2026, 3, 8, tzinfo=UTC)),
        # 01:30 at UTC+5 is 20:30 UTC the day before
        (
            datetime(2026, 3, 8, 1, 30, tzinfo=timezone(timedelta(hours=5))),
            datetime(2026, 3, 7, tzinfo=UTC),
        ),
    ],
)
def test_window_end_floors_to_midnight_utc(interval_end: datetime, expected: datetime) -> None:
    got = base.window_end({"data_interval_end": interval_end, "logical_date": None})
    assert got == expected
    assert got.utcoffset() == timedelta(0)


def test_window_end_prefers_data_interval_end() -> None:
    context = {
        "data_interval_end": datetime(2026, 3, 8, 2, tzinfo=UTC),
        "logical_date": datetime(2026, 3, 1, 2, tzinfo=UTC),
        "dag_run": SimpleNamespace(run_after=datetime(2026, 3, 20, tzinfo=UTC)),
    }
    assert base.window_end(context) == datetime(2026, 3, 8, tzinfo=UTC)


def test_window_end_falls_back_to_logical_date() -> None:
    context = {"data_interval_end": None, "logical_date": datetime(2026, 3, 1, 5, tzinfo=UTC)}
    assert base.window_end(context) == datetime(2026, 3, 1, tzinfo=UTC)


def test_window_end_falls_back_to_run_after() -> None:
    """An Airflow 3 manual run may have no logical date and no data interval."""
    context = {
        "data_interval_end": None,
        "logical_date": None,
        "dag_run": SimpleNamespace(run_after=datetime(2026, 3, 9, 17, 45, tzinfo=UTC)),
    }
    assert base.window_end(context) == datetime(2026, 3, 9, tzinfo=UTC)
    assert base.window_end({"dag_run": context["dag_run"]}) == datetime(2026, 3, 9, tzinfo=UTC)


def test_fetch_start_covers_training_and_holdout(make_config) -> None:
    assert base.fetch_start(make_config(), WINDOW_END) == WINDOW_END - timedelta(days=28)


# --------------------------------------------------------------------------- trigger_of


def _run_types(name: str) -> list[Any]:
    """The same run type as a str, as the core enum and as the Task SDK's enum."""
    from airflow.sdk.api.datamodels._generated import DagRunType as SdkDagRunType
    from airflow.utils.types import DagRunType

    return [name.lower(), DagRunType[name], SdkDagRunType[name]]


def _ctx(run_type: Any) -> dict[str, Any]:
    return {"dag_run": SimpleNamespace(run_type=run_type)}


@pytest.mark.parametrize("run_type", _run_types("MANUAL"), ids=["str", "core", "sdk"])
def test_manual_run_is_manual(run_type: Any) -> None:
    assert base.trigger_of(_ctx(run_type), "schedule") == "manual"


@pytest.mark.parametrize("run_type", _run_types("SCHEDULED"), ids=["str", "core", "sdk"])
def test_scheduled_run_is_schedule(run_type: Any) -> None:
    assert base.trigger_of(_ctx(run_type), "schedule") == "schedule"


@pytest.mark.parametrize(
    "run_type",
    [*_run_types("MANUAL"), *_run_types("ASSET_TRIGGERED")],
    ids=[f"{kind}-{source}" for kind in ("manual", "asset") for source in ("str", "core", "sdk")],
)
def test_drift_stays_drift(run_type: Any) -> None:
    assert base.trigger_of(_ctx(run_type), "drift") == "drift"


def test_trigger_of_without_run_type() -> None:
    assert base.trigger_of({"dag_run": SimpleNamespace()}, "schedule") == "schedule"


def test_run_info_force_promote_is_manual() -> None:
    context = {
        "params": {"force_promote": True, "reason": "hotfix"},
        "run_id": "scheduled__x",
        "dag_run": SimpleNamespace(run_type="scheduled"),
        "data_interval_end": datetime(2026, 3, 8, 2, tzinfo=UTC),
    }
    info = run_info(context, "schedule", base.window_end(context))
    assert info == RunInfo("scheduled__x", "manual", WINDOW_END)
    context["params"] = {}
    assert run_info(context, "schedule", WINDOW_END).trigger == "schedule"


def test_run_info_records_the_drift_episode() -> None:
    context = {"params": {}, "run_id": "asset__x", "dag_run": SimpleNamespace(run_type="x")}
    info = run_info(context, "drift", WINDOW_END, "churn/champion-v3")
    assert info.registration_tags()["ct.drift_episode"] == "churn/champion-v3"
    assert info.registration_tags()["ct.trigger"] == "drift"
    assert info.registration_tags()["ct.window_end"] == WINDOW_END.isoformat()
    assert "ct.drift_episode" not in run_info(context, "drift", WINDOW_END).registration_tags()


# --------------------------------------------------------------------------- tracking URI


@pytest.fixture
def no_mlflow_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("AIRFLOW_CONN_MLFLOW_DEFAULT", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return monkeypatch


def test_tracking_uri_default(no_mlflow_env: pytest.MonkeyPatch) -> None:
    assert base.resolve_tracking_uri() == base.DEFAULT_TRACKING_URI


def test_tracking_uri_from_env(no_mlflow_env: pytest.MonkeyPatch) -> None:
    no_mlflow_env.setenv("MLFLOW_TRACKING_URI", "http://tracking.internal:5000")
    assert base.resolve_tracking_uri() == "http://tracking.internal:5000"


@pytest.mark.parametrize(
    ("conn", "expected"),
    [
        ("http://mlflow.example:5001", "http://mlflow.example:5001"),
        (
            '{"conn_type": "http", "host": "mlflow.example", "port": 5001}',
            "http://mlflow.example:5001",
        ),
        (
            '{"conn_type": "http", "host": "mlflow.example", "schema": "https"}',
            "https://mlflow.example",
        ),
        ('{"conn_type": "http", "host": "https://mlflow.example/"}', "https://mlflow.example"),
    ],
    ids=["uri", "json", "json-https-schema", "json-url-host"],
)
def test_airflow_connection_overrides_env(
    no_mlflow_env: pytest.MonkeyPatch, conn: str, expected: str
) -> None:
    """BaseHook.get_connection reads AIRFLOW_CONN_* outside a task: no supervisor needed."""
    no_mlflow_env.setenv("MLFLOW_TRACKING_URI", "http://tracking.internal:5000")
    no_mlflow_env.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", conn)
    assert base.resolve_tracking_uri() == expected


def test_other_connection_id(no_mlflow_env: pytest.MonkeyPatch) -> None:
    no_mlflow_env.setenv("AIRFLOW_CONN_MLFLOW_EU", "http://eu.example:5000")
    assert base.resolve_tracking_uri("mlflow_eu") == "http://eu.example:5000"
    assert base.resolve_tracking_uri() == base.DEFAULT_TRACKING_URI


def test_https_connection_uri_keeps_https(no_mlflow_env: pytest.MonkeyPatch) -> None:
    no_mlflow_env.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", "https://mlflow.example:443")
    assert base.resolve_tracking_uri() == "https://mlflow.example:443"


# --------------------------------------------------------------------------- apply_decision


def _promotion(replaced: str | None = "3") -> Decision:
    return decide(_evaluated(True, champion=replaced), RunOptions(), _run())


def test_promotion_moves_champion_and_writes_tags() -> None:
    client = FakeRegistryClient(champion="3")
    apply_decision(client, MODEL, "4", _promotion(), expected_champion="3")
    assert client.aliases[registry.CHAMPION] == "4"
    assert client.alias_writes == [(MODEL, registry.CHAMPION, "4")]
    assert client.tags["4"] == _promotion().tags()


@pytest.mark.parametrize("error", [RESOURCE_DOES_NOT_EXIST, INVALID_PARAMETER_VALUE])
def test_first_promotion_without_a_champion(error: int) -> None:
    client = FakeRegistryClient(champion=None)
    client.missing_error = error
    apply_decision(client, MODEL, "1", _promotion(replaced=None), expected_champion=None)
    assert client.aliases[registry.CHAMPION] == "1"
    assert client.tags["1"][registry.TAG_REPLACED] == "none"


@pytest.mark.parametrize(("expected", "now"), [("3", "5"), (None, "5"), ("3", None)])
def test_promotion_refused_when_champion_moved(expected: str | None, now: str | None) -> None:
    client = FakeRegistryClient(champion=now)
    with pytest.raises(ChampionChangedError) as info:
        apply_decision(client, MODEL, "4", _promotion(expected), expected_champion=expected)
    message = str(info.value)
    assert f"from version {expected} to {now}" in message and "version 4" in message
    assert client.alias_writes == []
    assert client.tags == {}  # nothing recorded as promoted
    assert client.aliases.get(registry.CHAMPION) == now


def test_retry_after_a_successful_switch_does_not_write_the_alias_again() -> None:
    client = FakeRegistryClient(champion="4")  # the first attempt switched, then crashed
    apply_decision(client, MODEL, "4", _promotion("3"), expected_champion="3")
    assert client.alias_writes == []
    assert client.aliases[registry.CHAMPION] == "4"
    assert client.tags["4"][registry.TAG_DECISION] == "promoted"
    assert client.tags["4"][registry.TAG_REPLACED] == "3"


def test_concurrent_promotion_detected_after_the_switch() -> None:
    client = FakeRegistryClient(champion="3", thief="6")
    with pytest.raises(ChampionChangedError, match="version 6 right after switching to 4"):
        apply_decision(client, MODEL, "4", _promotion(), expected_champion="3")
    assert client.tags["4"][registry.TAG_DECISION] == "rejected"
    assert client.models == {}  # the lock is released on the way out


LOCK = MODEL + registry.LOCK_SUFFIX


def test_promotion_waits_for_the_lock_and_names_its_holder() -> None:
    client = FakeRegistryClient(champion="3")
    client.create_registered_model(
        LOCK, {registry.TAG_LOCK_HOLDER: "other_run", registry.TAG_LOCK_SINCE: "9e12"}, ""
    )
    lock = registry.champion_lock(client, MODEL, holder="our_run", wait=0.6)
    with pytest.raises(registry.RegistryError, match=r"holds it \(run other_run\)"), lock:
        pass
    assert client.models[LOCK][registry.TAG_LOCK_HOLDER] == "other_run"


@pytest.mark.parametrize(
    ("holder", "since"), [("our_run", "9e12"), ("dead_run", "0")], ids=["retry", "stale"]
)
def test_lock_taken_back_by_a_retry_or_from_a_dead_holder(holder: str, since: str) -> None:
    client = FakeRegistryClient(champion="3")
    tags = {registry.TAG_LOCK_HOLDER: holder, registry.TAG_LOCK_SINCE: since}
    client.create_registered_model(LOCK, tags, "")
    with registry.champion_lock(client, MODEL, holder="our_run", wait=5):
        assert client.models[LOCK][registry.TAG_LOCK_HOLDER] == "our_run"
    assert LOCK not in client.models


def test_promotion_holds_the_lock_while_switching() -> None:
    seen: list[dict[str, dict[str, str]]] = []

    class Watching(FakeRegistryClient):
        def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
            seen.append({k: dict(v) for k, v in self.models.items()})
            super().set_registered_model_alias(name, alias, version)

    client = Watching(champion="3")
    apply_decision(client, MODEL, "4", _promotion(), expected_champion="3")
    assert [s[LOCK][registry.TAG_LOCK_HOLDER] for s in seen] == [_run().airflow_run_id]
    assert client.models == {}


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: decide(_evaluated(False), RunOptions(), _run()), id="gate-failed"),
        pytest.param(
            lambda: decide(_evaluated(True), RunOptions(dry_run=True), _run()), id="dry-run"
        ),
    ],
)
def test_rejection_never_touches_the_alias(make: Callable[[], Decision]) -> None:
    client = FakeRegistryClient(champion="3")
    # even with a stale expected champion: a rejection needs no compare-and-set
    apply_decision(client, MODEL, "4", make(), expected_champion="2")
    assert client.alias_writes == []
    assert client.aliases == {registry.CHAMPION: "3"}
    assert client.tags["4"][registry.TAG_DECISION] == "rejected"
    assert registry.TAG_REPLACED not in client.tags["4"]


def test_estimators_get_a_fixed_seed_unless_the_config_sets_one() -> None:
    from continuous_training.training import DEFAULT_SEED, import_estimator

    forest = import_estimator("sklearn.ensemble.RandomForestClassifier", {"n_estimators": 5})
    assert forest.random_state == DEFAULT_SEED
    seeded = import_estimator("sklearn.ensemble.RandomForestClassifier", {"random_state": 7})
    assert seeded.random_state == 7
    # no random_state parameter at all: nothing is added
    plain = import_estimator("sklearn.linear_model.LinearRegression", {})
    assert "random_state" not in plain.get_params()
