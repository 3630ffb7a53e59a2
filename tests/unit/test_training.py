"""The model the config builds: preprocessing stays bounded whatever the data holds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from continuous_training.config import ConfigError, PipelineConfig, parse_pipeline
from continuous_training.training import build_model

MakeConfig = Callable[..., PipelineConfig]
CATEGORICAL = ["plan", "region", "payment_method", "zip_code"]


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
