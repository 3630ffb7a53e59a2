"""Great Expectations validation on small churn-like frames, with real GX (no mocks)."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from continuous_training.config import PipelineConfig, parse_pipeline
from continuous_training.validation import (
    SPLIT_CHECK,
    DataValidationError,
    ValidationFailure,
    ValidationReport,
    build_suite,
    check,
    validate,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
CHURN_YAML = REPO_ROOT / "include" / "pipelines" / "churn.yaml"
ROWS = 300
MIN_ROWS = 100


def _load_churn(columns: dict | None = None, **table: object) -> PipelineConfig:
    data = yaml.safe_load(CHURN_YAML.read_text())
    # churn.yaml wants 1000 rows; small frames keep the tests fast.
    data["expectations"]["table"].update({"min_rows": MIN_ROWS, **table})
    data["expectations"]["columns"].update(columns or {})
    return parse_pipeline(data, "churn.yaml")


@pytest.fixture(scope="module")
def pipeline() -> PipelineConfig:
    return _load_churn()


def churn_frame(rows: int = ROWS, seed: int = 0) -> pd.DataFrame:
    """A valid frame with the columns and dtypes of the churn pipeline."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-01-04", tz="UTC")
    return pd.DataFrame(
        {
            "event_time": start + pd.to_timedelta(np.arange(rows) * 600, unit="s"),
            "customer_id": [f"c{i:06d}" for i in range(rows)],
            "tenure_months": rng.integers(0, 121, rows),
            "monthly_charges": rng.uniform(10, 200, rows).round(2),
            "support_calls": rng.poisson(2, rows),
            "usage_gb": rng.gamma(2.0, 20.0, rows),
            "plan": rng.choice(["basic", "standard", "premium"], rows).astype(object),
            "region": rng.choice(["north", "south", "east", "west"], rows).astype(object),
            "payment_method": rng.choice(
                ["card", "bank_transfer", "paypal", "voucher"], rows
            ).astype(object),
            "churned": rng.integers(0, 2, rows),
        }
    )


def _failures(report: ValidationReport, expectation: str) -> list[ValidationFailure]:
    return [f for f in report.failures if f.expectation == expectation]


def _only(report: ValidationReport, expectation: str, column: str | None) -> ValidationFailure:
    matches = [f for f in _failures(report, expectation) if f.column == column]
    assert len(matches) == 1, report.summary()
    return matches[0]


def test_churn_frame_matches_the_pipeline_columns(pipeline: PipelineConfig) -> None:
    df = churn_frame()
    assert list(df.columns) == pipeline.columns
    assert str(df["event_time"].dtype) == "datetime64[ns, UTC]"


def test_valid_frame_passes(pipeline: PipelineConfig) -> None:
    report = check(churn_frame(), pipeline)
    assert report.success
    assert report.failures == []
    assert report.statistics["rows"] == ROWS
    assert report.statistics["unsuccessful_expectations"] == 0
    assert "passed" in report.summary()


def test_suite_covers_the_config(pipeline: PipelineConfig) -> None:
    suite = build_suite(pipeline)
    types = [e.expectation_type for e in suite.expectations]
    assert types.count("expect_table_row_count_to_be_between") == 1
    assert types.count("expect_compound_columns_to_be_unique") == 1
    assert types.count("expect_table_columns_to_match_set") == 1
    assert types.count("expect_column_values_to_not_be_null") == 9
    # 4 configured ranges, plus a finite check for usage_gb, the one without a max
    assert types.count("expect_column_values_to_be_between") == 4 + 1
    # the one column without not_null (the time column) must not be entirely null
    assert types.count("expect_column_proportion_of_non_null_values_to_be_between") == 1
    # churn's `allowed: [0, 1]` for the target makes the implicit label check redundant
    assert types.count("expect_column_values_to_be_in_set") == 4
    # a distinct-count limit per categorical feature
    assert types.count("expect_column_unique_value_count_to_be_between") == 3
    # one dtype check per column but the id column
    assert types.count("expect_column_values_to_be_in_dtype_list") == len(pipeline.columns) - 1


def test_missing_column_is_named_and_does_not_crash(pipeline: PipelineConfig) -> None:
    report = validate(churn_frame().drop(columns=["usage_gb"]), pipeline)
    assert not report.success
    schema = _only(report, "expect_table_columns_to_match_set", None)
    assert schema.detail == "missing columns: ['usage_gb']"
    # the column-level checks of the missing column fail by name instead of raising
    usage = [f for f in report.failures if f.column == "usage_gb"]
    assert usage
    assert all("missing column(s) ['usage_gb']" in f.detail for f in usage)
    assert "usage_gb" in report.summary()


def test_extra_column_is_named(pipeline: PipelineConfig) -> None:
    report = validate(churn_frame().assign(promo_code="x"), pipeline)
    schema = _only(report, "expect_table_columns_to_match_set", None)
    assert schema.detail == "unexpected columns: ['promo_code']"


def test_extra_column_allowed_without_exact_schema() -> None:
    loose = _load_churn(exact_schema=False)
    assert validate(churn_frame().assign(promo_code="x"), loose).success


def test_missing_and_extra_columns_together(pipeline: PipelineConfig) -> None:
    df = churn_frame().rename(columns={"region": "area"})
    schema = _only(validate(df, pipeline), "expect_table_columns_to_match_set", None)
    assert schema.detail == "missing columns: ['region']; unexpected columns: ['area']"


def test_numbers_stored_as_strings_fail_the_dtype_check(pipeline: PipelineConfig) -> None:
    df = churn_frame()
    df["tenure_months"] = df["tenure_months"].astype(str)
    report = validate(df, pipeline)
    failure = _only(report, "expect_column_values_to_be_in_dtype_list", "tenure_months")
    assert "numeric" in failure.detail
    assert failure.sample == df["tenure_months"].head(5).tolist()


def test_a_datetime_target_fails_the_dtype_check_for_classification(
    pipeline: PipelineConfig,
) -> None:
    df = churn_frame()
    df["churned"] = df["event_time"]
    failure = _only(validate(df, pipeline), "expect_column_values_to_be_in_dtype_list", "churned")
    assert failure.detail == "dtype datetime64[ns, UTC] is not numbers 0/1 or bool"


def test_naive_time_column_fails_only_when_not_datetime(pipeline: PipelineConfig) -> None:
    df = churn_frame()
    df["event_time"] = df["event_time"].dt.tz_localize(None)
    assert validate(df, pipeline).success
    df["event_time"] = df["event_time"].astype(str)
    failure = _only(
        validate(df, pipeline), "expect_column_values_to_be_in_dtype_list", "event_time"
    )
    assert "datetime" in failure.detail


def test_pandas_extension_dtypes_are_accepted(pipeline: PipelineConfig) -> None:
    # GX's own type-list check rejects these; our subclass asks pandas.
    df = churn_frame()
    df["plan"] = df["plan"].astype("category")
    df["region"] = df["region"].astype("string")
    df["tenure_months"] = df["tenure_months"].astype("Int64")
    df["churned"] = df["churned"].astype(bool)
    assert validate(df, pipeline).success, validate(df, pipeline).summary()


def test_nulls_in_not_null_column(pipeline: PipelineConfig) -> None:
    df = churn_frame()
    df.loc[[3, 7, 11], "monthly_charges"] = np.nan
    report = validate(df, pipeline)
    failure = _only(report, "expect_column_values_to_not_be_null", "monthly_charges")
    assert failure.detail == f"3 of {ROWS} values are null"
    assert failure.sample == []


def test_out_of_range_values_are_sampled(pipeline: PipelineConfig) -> None:
    df = churn_frame()
    df.loc[[5, 6], "tenure_months"] = [-5, 999]
    report = validate(df, pipeline)
    failure = _only(report, "expect_column_values_to_be_between", "tenure_months")
    assert failure.detail == f"2 of {ROWS} non-null values outside [0, 120]"
    assert failure.sample == [-5, 999]
    assert len(report.failures) == 1
    line = report.summary()
    assert "tenure_months" in line and "-5" in line and "999" in line


def test_one_sided_range(pipeline: PipelineConfig) -> None:
    df = churn_frame()
    df.loc[0, "usage_gb"] = -1.5
    failure = _only(validate(df, pipeline), "expect_column_values_to_be_between", "usage_gb")
    assert failure.detail == f"1 of {ROWS} non-null values below 0"
    assert failure.sample == [-1.5]


def test_value_not_in_allowed_set(pipeline: PipelineConfig) -> None:
    df = churn_frame()
    df.loc[4, "plan"] = "gold"
    report = validate(df, pipeline)
    failure = _only(report, "expect_column_values_to_be_in_set", "plan")
    assert failure.sample == ["gold"]
    assert "not in ['basic', 'standard', 'premium']" in failure.detail


def test_too_few_rows(pipeline: PipelineConfig) -> None:
    report = validate(churn_frame(rows=10), pipeline)
    failure = _only(report, "expect_table_row_count_to_be_between", None)
    assert failure.detail == f"10 rows, expected at least {MIN_ROWS}"
    assert len(report.failures) == 1


def test_duplicate_rows_beyond_the_limit(pipeline: PipelineConfig) -> None:
    df = churn_frame()
    df = pd.concat([df, df.head(5)], ignore_index=True)
    report = validate(df, pipeline)
    failure = _only(report, "expect_compound_columns_to_be_unique", None)
    # GX counts every copy of a repeated row: 5 repeats flag 10 rows
    assert failure.detail.startswith(f"10 of {ROWS + 5} rows are exact duplicates")
    assert failure.sample[0]["customer_id"] == "c000000"


def test_duplicate_rows_within_the_limit(pipeline: PipelineConfig) -> None:
    df = churn_frame()
    assert validate(pd.concat([df, df.head(1)], ignore_index=True), pipeline).success


# --------------------------------------------------------------------------- implicit checks


@pytest.fixture(scope="module")
def loose() -> PipelineConfig:
    """churn, but usage_gb and region may hold nulls (no not_null) and usage_gb has no max."""
    regions = ["north", "south", "east", "west"]
    return _load_churn({"usage_gb": {"min": 0}, "region": {"allowed": regions}})


@pytest.mark.parametrize("column", ["usage_gb", "region"])
def test_an_all_null_column_fails_even_without_not_null(loose: PipelineConfig, column: str) -> None:
    df = churn_frame()
    df.loc[3, column] = None
    assert validate(df, loose).success  # some nulls are allowed: the imputers fill them
    df[column] = None
    report = validate(df, loose)
    failure = _only(report, "expect_column_proportion_of_non_null_values_to_be_between", column)
    assert failure.detail.startswith("no non-null values: the column is entirely null")
    assert f"[{column}]" in report.summary()


def test_an_all_null_not_null_column_is_reported_once(pipeline: PipelineConfig) -> None:
    report = validate(churn_frame().assign(usage_gb=np.nan), pipeline)
    assert [(f.expectation, f.column) for f in report.failures] == [
        ("expect_column_values_to_not_be_null", "usage_gb")
    ]


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_infinite_feature_values_fail_with_or_without_a_range(
    loose: PipelineConfig, bad: float
) -> None:
    df = churn_frame()
    df.loc[[2, 9], "usage_gb"] = bad  # a min but no max: only the finite check sees +inf
    df.loc[[4], "monthly_charges"] = bad  # in [0, 500]: its range check sees it
    df.loc[[5], "usage_gb"] = np.nan  # NaN is a null, not an infinity
    report = validate(df, loose)
    details = {(f.column, f.detail): f.sample for f in report.failures}
    assert details[("monthly_charges", f"1 of {ROWS} non-null values outside [0, 500]")] == [bad]
    finite = ("usage_gb", f"2 of {ROWS - 1} non-null values are not finite (inf or -inf)")
    assert details[finite] == [bad, bad]
    # -inf is also below usage_gb's min; +inf only the finite check sees
    assert len(details) == (2 if bad > 0 else 3), report.summary()
    json.dumps(report.to_json())  # inf samples still make a JSON report


def test_a_column_of_the_wrong_type_reports_each_unevaluated_check_once(
    pipeline: PipelineConfig,
) -> None:
    df = churn_frame()
    df["tenure_months"] = df["tenure_months"].astype(str)
    lines = [f.line() for f in validate(df, pipeline).failures if f.column == "tenure_months"]
    assert len(lines) == len(set(lines)) == 2, lines  # the dtype and one "not evaluated"


# --------------------------------------------------------------------------- the time split

# churn_frame spans 2026-01-04 00:00 to 2026-01-06 01:50; with one holdout day ending on
# 2026-01-07, the holdout is 2026-01-06 (12 rows) and training the 288 rows before it.
SPLIT_END = datetime(2026, 1, 7, tzinfo=UTC)


@pytest.fixture(scope="module")
def one_day_holdout() -> PipelineConfig:
    data = yaml.safe_load(CHURN_YAML.read_text())
    data["expectations"]["table"]["min_rows"] = MIN_ROWS
    data["windows"]["holdout_days"] = 1
    return parse_pipeline(data, "churn.yaml")


def test_a_single_class_window_fails_validation_naming_the_target_and_class(
    one_day_holdout: PipelineConfig,
) -> None:
    df = churn_frame().assign(churned=0)
    assert validate(df, one_day_holdout).success  # without a window end: no split to judge
    report = validate(df, one_day_holdout, SPLIT_END)
    assert not report.success
    assert [(f.expectation, f.column) for f in report.failures] == [
        (SPLIT_CHECK, "churned"),
        (SPLIT_CHECK, "churned"),
    ]
    training, holdout = (f.detail for f in report.failures)
    assert training == (
        "the training part (before 2026-01-06) has a single class in target 'churned': 0; "
        "a classifier needs two"
    )
    assert holdout.startswith("the holdout part (2026-01-06 to 2026-01-07, windows.holdout_days=1)")
    with pytest.raises(DataValidationError, match=r"single class in target 'churned': 0"):
        check(df, one_day_holdout, SPLIT_END)


def test_a_single_class_holdout_alone_fails(one_day_holdout: PipelineConfig) -> None:
    df = churn_frame()
    df.loc[df["event_time"] >= "2026-01-06", "churned"] = 1
    [failure] = validate(df, one_day_holdout, SPLIT_END).failures
    assert failure.detail.startswith("the holdout part") and "'churned': 1;" in failure.detail


def test_an_empty_training_part_fails(one_day_holdout: PipelineConfig) -> None:
    df = churn_frame(rows=120)  # 20 hours from 2026-01-04, moved into the holdout day
    df["event_time"] += pd.Timedelta(days=2)
    [failure] = validate(df, one_day_holdout, SPLIT_END).failures
    assert (failure.expectation, failure.column) == (SPLIT_CHECK, None)
    assert failure.detail == (
        "the training part (before 2026-01-06) of the window ending 2026-01-07 is empty"
    )


def test_the_split_is_judged_only_when_the_suite_passed(one_day_holdout: PipelineConfig) -> None:
    df = churn_frame().assign(churned=0).drop(columns=["usage_gb"])
    report = validate(df, one_day_holdout, SPLIT_END)
    assert SPLIT_CHECK not in {f.expectation for f in report.failures}
    assert "usage_gb" in report.summary()


def test_check_raises_naming_every_failing_column(pipeline: PipelineConfig) -> None:
    df = churn_frame()
    df.loc[0, "support_calls"] = 77
    df.loc[1, "region"] = "mars"
    df.loc[2, "customer_id"] = None
    with pytest.raises(DataValidationError) as caught:
        check(df, pipeline)
    err = caught.value
    assert isinstance(err, ValueError)
    message = str(err)
    assert message.startswith(
        "data validation failed for pipeline 'churn': 3 expectation(s) failed"
    )
    for column in ("support_calls", "region", "customer_id"):
        assert column in message
    assert "mars" in message and "77" in message
    assert len(err.report.failures) == 3
    # Airflow may pickle task exceptions
    assert str(pickle.loads(pickle.dumps(err))) == message


def test_report_to_json_is_serializable(pipeline: PipelineConfig) -> None:
    df = churn_frame()
    df = pd.concat([df, df.head(3)], ignore_index=True)  # samples carry timestamps
    df.loc[10, "tenure_months"] = 500
    df.loc[11, "plan"] = None
    report = validate(df, pipeline)
    payload = report.to_json()
    text = json.dumps(payload)
    assert json.loads(text)["success"] is False
    assert {f["expectation"] for f in payload["failures"]} >= {
        "expect_compound_columns_to_be_unique",
        "expect_column_values_to_be_between",
        "expect_column_values_to_not_be_null",
    }
    assert payload["raw"]["results"]
    small = report.to_json(include_raw=False)
    assert "raw" not in small
    json.dumps(small)


def test_import_stays_light() -> None:
    code = (
        "import sys, continuous_training.validation\n"
        "heavy = [m for m in ('great_expectations', 'pandas', 'numpy') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT
    )
    assert done.stdout.strip() == ""


# --------------------------------------------------------------------------- labels and categories


def _loose(**changes: object) -> PipelineConfig:
    """churn without column rules: what a user's first YAML looks like."""
    data = yaml.safe_load(CHURN_YAML.read_text())
    data["expectations"] = {"table": {"min_rows": MIN_ROWS, "exact_schema": False}}
    data.update(changes)
    return parse_pipeline(data, "churn.yaml")


@pytest.mark.parametrize(
    ("labels", "detail"),
    [
        (["yes", "no"], "not 0 or 1"),
        ([0, 2], "not 0 or 1"),
        ([1, -1], "not 0 or 1"),
    ],
)
def test_a_label_other_than_0_1_fails_naming_the_column_and_values(
    labels: list[object], detail: str
) -> None:
    pipeline = _loose()
    df = churn_frame()
    df["churned"] = np.resize(np.array(labels, dtype=object), len(df))
    if all(isinstance(v, int) for v in labels):
        df["churned"] = df["churned"].astype("int64")
    report = validate(df, pipeline, datetime(2026, 1, 6, tzinfo=UTC))
    assert not report.success
    failure = _only(report, "expect_column_values_to_be_in_set", "churned")
    assert detail in failure.detail and "map the labels" in failure.detail
    assert set(failure.sample) <= set(labels) and set(failure.sample) - {0, 1}
    # the split check runs only on data that passed: no library error from a string label
    assert not _failures(report, SPLIT_CHECK)


def test_a_yaml_allowing_string_labels_still_fails_on_them() -> None:
    pipeline = _loose(
        expectations={
            "table": {"min_rows": MIN_ROWS},
            "columns": {"churned": {"allowed": ["yes", "no"]}},
        }
    )
    df = churn_frame()
    df["churned"] = np.where(df["churned"] == 1, "yes", "no").astype(object)
    report = validate(df, pipeline)
    in_set = _failures(report, "expect_column_values_to_be_in_set")
    labels = [f for f in in_set if f.column == "churned"]
    assert len(labels) == 1 and "not 0 or 1" in labels[0].detail, report.summary()
    assert labels[0].sample[0] in ("yes", "no")


def test_boolean_labels_pass_and_null_labels_fail() -> None:
    pipeline = _loose()
    df = churn_frame()
    df["churned"] = df["churned"].astype(bool)
    assert validate(df, pipeline).success, validate(df, pipeline).summary()
    df["churned"] = df["churned"].astype(object)
    df.loc[df.index[:3], "churned"] = None
    report = validate(df, pipeline)
    failure = _only(report, "expect_column_values_to_not_be_null", "churned")
    assert failure.detail.startswith("3 of 300 values of the classification target are null")


def test_a_regression_target_as_text_fails_naming_the_column() -> None:
    pipeline = _loose(task="regression", gates={"primary_metric": "rmse", "floor": 100})
    df = churn_frame()
    df["churned"] = df["churned"].astype(str)
    report = validate(df, pipeline)
    failure = _only(report, "expect_column_values_to_be_in_dtype_list", "churned")
    assert "not numeric" in failure.detail and failure.sample[0] in ("0", "1")


def test_types_are_checked_without_exact_schema() -> None:
    """A numeric feature stored as text with thousands separators fails in validation."""
    pipeline = _loose()
    df = churn_frame().assign(promo="x")  # an extra column is fine without exact_schema
    assert validate(df, pipeline).success
    df["monthly_charges"] = [f"{1000 + v:,.2f}" for v in df["monthly_charges"]]
    report = validate(df, pipeline)
    failure = _only(report, "expect_column_values_to_be_in_dtype_list", "monthly_charges")
    assert "not numeric" in failure.detail and failure.sample[0].startswith("1,0")


def test_a_boolean_feature_is_refused_with_a_hint() -> None:
    pipeline = _loose()
    df = churn_frame()
    df["support_calls"] = df["support_calls"] > 2
    report = validate(df, pipeline)
    failure = _only(report, "expect_column_values_to_be_in_dtype_list", "support_calls")
    assert "dtype bool is not numeric" in failure.detail and "0/1" in failure.detail


def test_a_categorical_feature_beyond_the_distinct_limit_fails_with_its_count() -> None:
    data = yaml.safe_load(CHURN_YAML.read_text())
    data["expectations"] = {"table": {"min_rows": MIN_ROWS, "max_distinct_categories": 100}}
    pipeline = parse_pipeline(data, "churn.yaml")
    df = churn_frame(rows=1000)
    df["region"] = [f"r{i % 250}" for i in range(len(df))]
    df["plan"] = pd.Categorical(df["plan"])  # a dictionary column from parquet is fine
    report = validate(df, pipeline)
    [failure] = report.failures
    assert failure.expectation == "expect_column_unique_value_count_to_be_between"
    assert failure.column == "region"
    assert failure.detail.startswith("250 distinct values, more than ")
    assert "expectations.table.max_distinct_categories (100)" in failure.detail
    data["expectations"]["table"]["max_distinct_categories"] = None
    assert validate(df, parse_pipeline(data, "churn.yaml")).success


def test_float_labels_of_0_and_1_pass_and_other_floats_fail() -> None:
    """A label column that once held a null is float64 in most exports: 0.0/1.0 are labels."""
    pipeline = _loose()
    df = churn_frame()
    df["churned"] = df["churned"].astype("float64")
    assert validate(df, pipeline).success, validate(df, pipeline).summary()
    df.loc[df.index[:2], "churned"] = 0.5
    failure = _only(validate(df, pipeline), "expect_column_values_to_be_in_set", "churned")
    assert failure.detail.startswith("2 of 300 non-null values of the classification target")
    assert 0.5 in failure.sample
