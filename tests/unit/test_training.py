"""Training: the time split, the model the config builds, the estimator by import path.

Real pandas/sklearn objects throughout; preprocessing stays bounded whatever the data holds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from continuous_training.config import ConfigError, PipelineConfig, parse_pipeline
from continuous_training.training import (
    TrainingError,
    build_model,
    check_model,
    predict_scores,
    time_split,
)
from tests.unit.decisions import WINDOW_END

MakeConfig = Callable[..., PipelineConfig]
CATEGORICAL = ["plan", "region", "payment_method", "zip_code"]
HOLDOUT_START = datetime(2026, 3, 1, tzinfo=UTC)


def frame(rows: int, zip_codes: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "tenure_months": rng.integers(0, 120, rows),
            "monthly_charges": rng.normal(70, 20, rows),
            "support_calls": rng.integers(0, 10, rows),
            "usage_gb": rng.gamma(2, 10, rows),
            "plan": rng.choice(["basic", "standard", "premium"], rows).astype(object),
            "region": rng.choice(["north", "south"], rows).astype(object),
            "payment_method": rng.choice(["card", "paypal"], rows).astype(object),
            # a few frequent codes, then a long tail of codes seen once or twice
            "zip_code": [
                f"Z{v:05d}"
                for v in np.where(
                    rng.random(rows) < 0.5,
                    rng.integers(0, 5, rows),
                    rng.integers(0, zip_codes, rows),
                )
            ],
            "churned": rng.integers(0, 2, rows),
        }
    )


@pytest.fixture
def many_categories(churn_config: dict[str, Any]) -> Callable[..., PipelineConfig]:
    def build(estimator: str = "sklearn.ensemble.HistGradientBoostingClassifier", **prep: int):
        params = {"max_iter": 20} if "Hist" in estimator else {}
        data = {
            **churn_config,
            "features": {**churn_config["features"], "categorical": CATEGORICAL},
            "model": {"estimator": estimator, "params": params},
            "expectations": {},
            "preprocessing": prep,
        }
        return parse_pipeline(data)

    return build


@pytest.mark.parametrize(
    "estimator",
    ["sklearn.ensemble.HistGradientBoostingClassifier", "sklearn.linear_model.LogisticRegression"],
)
def test_one_hot_width_is_bounded_by_max_categories(
    many_categories: Callable[..., PipelineConfig], estimator: str
) -> None:
    pipeline = many_categories(estimator)
    df = frame(20_000, zip_codes=10_000)
    assert df["zip_code"].nunique() > 5_000
    model = build_model(pipeline).fit(df[pipeline.features.all], df["churned"])
    encoded = model.named_steps["preprocess"].transform(df[pipeline.features.all].head(10))
    # 4 numeric + 3 + 2 + 2 + at most 50 for zip_code, whatever its cardinality
    assert encoded.shape[1] <= 4 + 3 + 2 + 2 + pipeline.preprocessing.max_categories
    assert pipeline.preprocessing.max_categories == 50
    # a code never seen in training is scored like the rare ones, not refused
    unseen = df[pipeline.features.all].head(3).assign(zip_code="NEVER-SEEN")
    assert model.predict_proba(unseen).shape == (3, 2)


def test_small_categories_are_encoded_one_column_each(
    many_categories: Callable[..., PipelineConfig],
) -> None:
    pipeline = many_categories(max_categories=10, min_frequency=1)
    df = frame(2_000, zip_codes=5).astype({"plan": "category"})  # parquet dictionary column
    model = build_model(pipeline).fit(df[pipeline.features.all], df["churned"])
    encoder = model.named_steps["preprocess"].named_transformers_["categorical"][-1]
    assert [len(c) for c in encoder.categories_] == [3, 2, 2, 5]
    assert all(not_used is None for not_used in encoder.infrequent_categories_)


@pytest.mark.parametrize(
    ("prep", "key"),
    [
        ({"max_categories": 1}, "preprocessing.max_categories"),
        ({"min_frequency": 0}, "preprocessing.min_frequency"),
        ({"max_categorys": 10}, "preprocessing.max_categorys"),
    ],
)
def test_preprocessing_keys_are_validated(
    make_config: MakeConfig, prep: dict[str, int], key: str
) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        make_config(preprocessing=prep)


def test_what_the_estimator_refuses_at_fit_is_bad_input_naming_the_params(
    churn_config: dict[str, Any],
) -> None:
    """A param that only fails on these data (a column it does not know) is not retried."""
    from continuous_training.errors import BadInputError
    from continuous_training.training import TrainingError, fit

    params = {"max_iter": 5, "categorical_features": ["no_such_column"]}
    model_cfg = {"estimator": "sklearn.ensemble.HistGradientBoostingClassifier", "params": params}
    pipeline = parse_pipeline({**churn_config, "model": model_cfg})
    with pytest.raises(TrainingError) as refused:
        fit(build_model(pipeline), pipeline, frame(200, zip_codes=3), "/d/train.parquet")
    message = str(refused.value)
    assert "HistGradientBoostingClassifier" in message and "no_such_column" in message
    assert "could not be fitted on /d/train.parquet" in message
    assert isinstance(refused.value, BadInputError)


# --------------------------------------------------------------------------- time_split


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


def test_estimators_get_a_fixed_seed_unless_the_config_sets_one() -> None:
    from continuous_training.training import DEFAULT_SEED, import_estimator

    forest = import_estimator("sklearn.ensemble.RandomForestClassifier", {"n_estimators": 5})
    assert forest.random_state == DEFAULT_SEED
    seeded = import_estimator("sklearn.ensemble.RandomForestClassifier", {"random_state": 7})
    assert seeded.random_state == 7
    # no random_state parameter at all: nothing is added
    plain = import_estimator("sklearn.linear_model.LinearRegression", {})
    assert "random_state" not in plain.get_params()
