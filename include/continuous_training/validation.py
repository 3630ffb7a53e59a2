"""Data validation with Great Expectations, built from a pipeline's `expectations` block.

`build_suite` turns the YAML into a GX `ExpectationSuite`; `validate` runs it on a pandas
DataFrame in an ephemeral GX context and condenses GX's result into a `ValidationReport`
that names each failed expectation, its column and a few bad values; `check` raises
`DataValidationError` when anything failed.

DAG files import this module (through the operators), so it must stay light:
great_expectations and pandas are imported inside the functions that need them.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from continuous_training.errors import BadInputError

if TYPE_CHECKING:
    from datetime import datetime

    import pandas as pd
    from great_expectations.core import ExpectationSuite
    from great_expectations.expectations import Expectation

    from continuous_training.config import PipelineConfig

# How many bad values a failure carries; GX computes them as `partial_unexpected_list`.
SAMPLE_SIZE = 5

# BASIC is the cheapest result format that still returns partial_unexpected_list; SUMMARY
# adds value counts and row indices of the bad values, which cost time on 1M rows.
RESULT_FORMAT: dict[str, Any] = {
    "result_format": "BASIC",
    "partial_unexpected_count": SAMPLE_SIZE,
}

# Dtype names as pandas prints them; compared with pandas.api.types.is_dtype_equal.
_INT_DTYPES = [
    *(f"int{bits}" for bits in (8, 16, 32, 64)),
    *(f"uint{bits}" for bits in (8, 16, 32, 64)),
    # pandas' nullable integers
    *(f"Int{bits}" for bits in (8, 16, 32, 64)),
    *(f"UInt{bits}" for bits in (8, 16, 32, 64)),
]
_FLOAT_DTYPES = ["float16", "float32", "float64", "Float32", "Float64"]
NUMERIC_DTYPES = [*_INT_DTYPES, *_FLOAT_DTYPES]
# "str" makes GX check every value of an `object` column: numbers in an object column fail.
# "string" matches pandas' StringDtype in both storages; "category" any categorical.
CATEGORICAL_DTYPES = ["object", "str", "string", "category"]
# Naive or UTC: the pipeline windows its data on UTC data intervals.
DATETIME_DTYPES = [
    *(f"datetime64[{unit}]" for unit in ("ns", "us", "ms", "s")),
    *(f"datetime64[{unit}, UTC]" for unit in ("ns", "us", "ms", "s")),
]
# Floats too: a label column that once held a null is float64 (0.0/1.0) in most exports; the
# label check below still requires the values themselves to be 0 or 1.
CLASSIFICATION_TARGET_DTYPES = [*_INT_DTYPES, *_FLOAT_DTYPES, "bool", "boolean"]
# The classes of a classification target: the positive class is 1 (True).
LABEL_VALUES = (0, 1)

# The largest finite float on either side: a range check with these bounds fails exactly the
# values that are +inf or -inf (GX skips nulls, and NaN is null), which GX has no check for.
FINITE_BOUND = sys.float_info.max
# The report's name for the checks of the time split (not a GX expectation).
SPLIT_CHECK = "ct_time_split_is_trainable"

_DTYPE_KINDS = {
    "numeric": "numeric (int/float)",
    "categorical": "string/object/category",
    "datetime": "datetime (naive or UTC)",
    "label": "numbers 0/1 or bool",
}


@dataclass
class ValidationFailure:
    """One failed expectation, condensed from GX's result."""

    expectation: str  # GX type name, e.g. "expect_column_values_to_be_between"
    column: str | None  # None for table-level expectations
    detail: str
    sample: list[Any] = field(default_factory=list)  # up to SAMPLE_SIZE bad values, JSON-safe

    def line(self) -> str:
        where = self.column if self.column is not None else "<table>"
        text = f"{self.expectation} [{where}]: {self.detail}"
        if self.sample:
            text += f"; sample: {json.dumps(self.sample, default=str)}"
        return text


@dataclass
class ValidationReport:
    success: bool
    failures: list[ValidationFailure]
    statistics: dict[str, Any]
    raw: dict[str, Any]  # ExpectationSuiteValidationResult.to_json_dict()

    def to_json(self, *, include_raw: bool = True) -> dict[str, Any]:
        """A JSON-serializable dict; `include_raw=False` keeps it small enough for XCom."""
        out: dict[str, Any] = {
            "success": self.success,
            "failures": [asdict(failure) for failure in self.failures],
            "statistics": self.statistics,
        }
        if include_raw:
            out["raw"] = self.raw
        # GX already made `raw` JSON-safe; the round trip also catches anything that slipped
        # through (numpy scalars in samples) instead of failing later in XCom.
        return json.loads(json.dumps(out, default=str))

    def summary(self) -> str:
        if self.success:
            stats = self.statistics
            return f"all {stats.get('evaluated_expectations', 0)} expectation(s) passed"
        return "\n".join(failure.line() for failure in self.failures)


class DataValidationError(BadInputError):
    """Raised by `check`; carries the full `ValidationReport` as `.report`."""

    def __init__(
        self, report: ValidationReport, pipeline_name: str, report_uri: str | None = None
    ) -> None:
        self.report = report
        self.pipeline_name = pipeline_name
        self.report_uri = report_uri
        where = f"\nreport: {report_uri}" if report_uri else ""
        super().__init__(
            f"data validation failed for pipeline '{pipeline_name}': "
            f"{len(report.failures)} expectation(s) failed\n{report.summary()}{where}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Exceptions pickle their args by default, which do not match our __init__.
        return (type(self), (self.report, self.pipeline_name, self.report_uri))


# --------------------------------------------------------------------------- GX set-up


def _import_gx() -> Any:
    # Must happen before the first import of great_expectations, which reads it.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    # GX's API-docs decorator logs ~200 "Skipping registering function" lines at INFO on
    # import; in a task log they bury what validation found.
    logging.getLogger("great_expectations._docs_decorators").setLevel(logging.WARNING)
    import great_expectations as gx

    return gx


@functools.cache
def _dtype_expectation_class() -> type[Expectation]:
    """ExpectColumnValuesToBeInTypeList, with pandas' own dtype comparison.

    GX 1.24 turns each pandas type name into a numpy dtype or a pandas class and compares
    those with the column's dtype. That never matches a parametrized extension dtype:
    `datetime64[ns, UTC]`, `category` and `string[pyarrow]` always fail. pandas compares
    its dtypes with the names it prints for them, so we ask pandas. `object` columns still
    take GX's per-value path, which checks each value's Python type.

    Built on first use (GX is heavy) and only once: GX registers every Expectation subclass
    by name when the class is created.
    """
    _import_gx()
    from great_expectations.expectations import ExpectColumnValuesToBeInTypeList
    from pandas.api.types import is_dtype_equal

    class ExpectColumnValuesToBeInDtypeList(ExpectColumnValuesToBeInTypeList):
        def _validate_pandas(self, actual_column_type: Any, expected_types_list: Any) -> dict:
            success = expected_types_list is None or any(
                is_dtype_equal(actual_column_type, name) for name in expected_types_list
            )
            # str(dtype) reads "datetime64[ns, UTC]" where GX would say "Timestamp".
            return {"success": success, "result": {"observed_value": str(actual_column_type)}}

    return ExpectColumnValuesToBeInDtypeList


# --------------------------------------------------------------------------- the suite


def build_suite(pipeline: PipelineConfig) -> ExpectationSuite:
    """The GX suite for `pipeline.expectations` and the pipeline's column types."""
    _import_gx()
    from great_expectations.core import ExpectationSuite

    expectations = [
        *_table_expectations(pipeline),
        *_column_expectations(pipeline),
        *_implicit_expectations(pipeline),
    ]
    # Passing the expectations to the constructor works without a Data Context;
    # suite.add_expectation() would demand one.
    return ExpectationSuite(name=f"{pipeline.name}_data", expectations=expectations)


def _table_expectations(pipeline: PipelineConfig) -> list[Expectation]:
    import great_expectations.expectations as gxe

    table = pipeline.expectations.table
    out: list[Expectation] = [
        gxe.ExpectTableRowCountToBeBetween(min_value=table.min_rows, max_value=None),
        # GX flags every copy of a repeated row (pandas duplicated(keep=False)), so the share
        # measured is that of rows that have an identical twin elsewhere in the frame.
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=pipeline.columns,
            mostly=1.0 - table.max_duplicate_share,
            ignore_row_if="never",
        ),
    ]
    if table.exact_schema:
        out.append(gxe.ExpectTableColumnsToMatchSet(column_set=pipeline.columns, exact_match=True))
    # Types are checked whatever exact_schema says: a numeric feature stored as text or a
    # string label would otherwise fail inside the model's fit with a library error.
    out.extend(_dtype_expectations(pipeline))
    return out


def _dtype_expectations(pipeline: PipelineConfig) -> list[Expectation]:
    dtype_expectation = _dtype_expectation_class()
    if pipeline.task == "classification":
        target = (CLASSIFICATION_TARGET_DTYPES, "label")
    else:
        target = (NUMERIC_DTYPES, "numeric")
    expected: dict[str, tuple[list[str], str]] = {
        pipeline.time_column: (DATETIME_DTYPES, "datetime"),
        **{column: (NUMERIC_DTYPES, "numeric") for column in pipeline.features.numeric},
        **{column: (CATEGORICAL_DTYPES, "categorical") for column in pipeline.features.categorical},
        pipeline.target: target,
    }
    return [
        # meta.ct_kind lets the report say "not numeric" instead of listing 25 dtype names.
        dtype_expectation(column=column, type_list=dtypes, meta={"ct_kind": kind})
        for column, (dtypes, kind) in expected.items()
    ]


def _column_expectations(pipeline: PipelineConfig) -> list[Expectation]:
    import great_expectations.expectations as gxe

    out: list[Expectation] = []
    for column, rules in pipeline.expectations.columns.items():
        if rules.not_null:
            out.append(gxe.ExpectColumnValuesToNotBeNull(column=column))
        if rules.min is not None or rules.max is not None:
            out.append(
                gxe.ExpectColumnValuesToBeBetween(
                    column=column, min_value=rules.min, max_value=rules.max
                )
            )
        if rules.allowed is not None:
            out.append(gxe.ExpectColumnValuesToBeInSet(column=column, value_set=rules.allowed))
    return out


def _implicit_expectations(pipeline: PipelineConfig) -> list[Expectation]:
    """Checks every pipeline needs whatever its YAML says.

    - No column may be null throughout: the imputers would silently drop an all-null
      feature and train without it. Columns with `not_null` are already covered.
    - Numeric features (and a regression target) must be finite: GX treats inf as a value,
      so a range check without a max lets +inf through, and the scaler then turns the
      whole column into NaN. A column whose YAML sets both `min` and `max` needs no more.
    """
    import great_expectations.expectations as gxe

    rules = pipeline.expectations.columns
    out: list[Expectation] = [
        gxe.ExpectColumnProportionOfNonNullValuesToBeBetween(
            column=column, min_value=0.0, strict_min=True
        )
        for column in pipeline.columns
        if not (column in rules and rules[column].not_null)
    ]
    numeric = list(pipeline.features.numeric)
    if pipeline.task == "regression":
        numeric.append(pipeline.target)
    bounded = {c for c, r in rules.items() if r.min is not None and r.max is not None}
    out.extend(
        gxe.ExpectColumnValuesToBeBetween(
            column=column,
            min_value=-FINITE_BOUND,
            max_value=FINITE_BOUND,
            meta={"ct_check": "finite"},
        )
        for column in numeric
        if column not in bounded
    )
    out.extend(_label_expectations(pipeline))
    limit = pipeline.expectations.table.max_distinct_categories
    if limit is not None:
        out.extend(
            gxe.ExpectColumnUniqueValueCountToBeBetween(
                column=column, min_value=None, max_value=limit, meta={"ct_check": "distinct"}
            )
            for column in pipeline.features.categorical
        )
    return out


def _label_expectations(pipeline: PipelineConfig) -> list[Expectation]:
    """A classification target holds 0 and 1 (or False and True) and no null, whatever the
    YAML's `allowed` says: the model is scored as the probability of class 1, so a label
    such as "yes"/"no" would only fail later, inside training or evaluation.
    """
    import great_expectations.expectations as gxe

    if pipeline.task != "classification":
        return []
    target = pipeline.target
    rule = pipeline.expectations.columns.get(target)
    out: list[Expectation] = []
    # `allowed: [0, 1]` in the YAML already says as much.
    if not (rule and rule.allowed and set(rule.allowed) <= set(LABEL_VALUES)):
        out.append(
            gxe.ExpectColumnValuesToBeInSet(
                column=target, value_set=list(LABEL_VALUES), meta={"ct_check": "label"}
            )
        )
    if not (rule and rule.not_null):
        out.append(gxe.ExpectColumnValuesToNotBeNull(column=target, meta={"ct_check": "label"}))
    return out


# --------------------------------------------------------------------------- validation


def validate(
    df: pd.DataFrame, pipeline: PipelineConfig, window_end: datetime | None = None
) -> ValidationReport:
    """Run the pipeline's suite on `df`; never raises for bad data (see `check`).

    With `window_end`, data that passes the suite must also split into a trainable
    training part and holdout (`training.split_problems`), so that a retrain fails here,
    with the rest of the data checks, and not in the training step.
    """
    started = time.perf_counter()
    gx = _import_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    suite = build_suite(pipeline)
    # Ephemeral: nothing is written to disk, and each call starts from a clean context.
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_definition = (
        context.data_sources.add_pandas(f"{pipeline.name}_source")
        .add_dataframe_asset(f"{pipeline.name}_frame")
        .add_batch_definition_whole_dataframe("whole_frame")
    )
    # A ValidationDefinition loads the frame once; batch.validate() would load (and hash)
    # it a second time, which costs ~0.25 s per million rows.
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(
            name=f"{pipeline.name}_validation",
            data=batch_definition,
            suite=context.suites.add(suite),
        )
    )
    result = definition.run(batch_parameters={"dataframe": df}, result_format=RESULT_FORMAT)

    raw = result.to_json_dict()
    present = {str(column) for column in df.columns}
    failures = _distinct(
        [_failure(item, present) for item in raw.get("results", []) if not item.get("success")]
    )
    if result.success and window_end is not None:
        failures = _split_failures(df, pipeline, window_end)
    # GX returns results in the order its metric graph resolved them; table-level first,
    # then schema order, reads better.
    order = {column: index for index, column in enumerate(pipeline.columns)}
    failures.sort(key=lambda f: (f.column is not None, order.get(f.column or "", len(order))))
    statistics = {
        **raw.get("statistics", {}),
        "rows": len(df),
        "columns": len(df.columns),
        "seconds": round(time.perf_counter() - started, 3),
    }
    return ValidationReport(success=not failures, failures=failures, statistics=statistics, raw=raw)


def _split_failures(
    df: pd.DataFrame, pipeline: PipelineConfig, window_end: datetime
) -> list[ValidationFailure]:
    from continuous_training import training

    split = training.split_frame(df, pipeline, window_end)
    return [
        ValidationFailure(expectation=SPLIT_CHECK, column=problem.column, detail=problem.detail)
        for problem in training.split_problems(split, pipeline, window_end)
    ]


def check(
    df: pd.DataFrame, pipeline: PipelineConfig, window_end: datetime | None = None
) -> ValidationReport:
    """Validate `df`; raise DataValidationError naming every failure, else return the report."""
    report = validate(df, pipeline, window_end)
    if not report.success:
        raise DataValidationError(report, pipeline.name)
    return report


# --------------------------------------------------------------------------- the report


def _failure(item: dict[str, Any], present: set[str]) -> ValidationFailure:
    """Condense one failed GX result (already JSON-serialized) into a ValidationFailure."""
    config = item.get("expectation_config") or {}
    kind = config.get("type", "unknown")
    kwargs = config.get("kwargs") or {}
    result = item.get("result") or {}
    column = kwargs.get("column")
    exception = item.get("exception_info") or {}
    if not result and _raised(exception):
        detail = _exception_detail(kwargs, exception, present)
        return ValidationFailure(expectation=kind, column=column, detail=detail, sample=[])
    detail = _detail(kind, kwargs, result, config.get("meta") or {})
    # The bad values of a not-null check are all nulls: nothing to show.
    sampled = kind != "expect_column_values_to_not_be_null"
    sample = list(result.get("partial_unexpected_list") or [])[:SAMPLE_SIZE] if sampled else []
    return ValidationFailure(expectation=kind, column=column, detail=detail, sample=sample)


def _distinct(failures: list[ValidationFailure]) -> list[ValidationFailure]:
    """One line per column for checks GX could not evaluate, which all say the same thing.

    A column of the wrong type or a missing one makes each of its checks fail the same way;
    the dtype or schema failure says why, once.
    """
    seen: set[tuple[str | None, str]] = set()
    out = []
    for failure in failures:
        key = (failure.column, failure.detail)
        if failure.detail.startswith("not evaluated") and key in seen:
            continue
        seen.add(key)
        out.append(failure)
    return out


def _raised(exception: dict[str, Any]) -> bool:
    # GX keeps exception_info either flat or keyed by metric id, depending on where it failed.
    if "raised_exception" in exception:
        return bool(exception["raised_exception"])
    return any(isinstance(info, dict) for info in exception.values())


def _exception_detail(kwargs: dict[str, Any], exception: dict[str, Any], present: set[str]) -> str:
    wanted = [kwargs["column"]] if kwargs.get("column") else list(kwargs.get("column_list") or [])
    missing = [column for column in wanted if column not in present]
    if missing:
        return f"not evaluated: missing column(s) {missing}"
    messages = [exception.get("exception_message")] + [
        info.get("exception_message") for info in exception.values() if isinstance(info, dict)
    ]
    message = next((m for m in messages if m), "unknown error")
    return f"not evaluated: {str(message).strip().splitlines()[0]}"


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def _detail(kind: str, kwargs: dict[str, Any], result: dict[str, Any], meta: dict) -> str:
    unexpected = result.get("unexpected_count")
    total = result.get("element_count")
    non_null = total - (result.get("missing_count") or 0) if total is not None else None
    if kind == "expect_table_row_count_to_be_between":
        return f"{result.get('observed_value')} rows, expected at least {kwargs.get('min_value')}"
    if kind == "expect_table_columns_to_match_set":
        mismatched = (result.get("details") or {}).get("mismatched") or {}
        parts = []
        if mismatched.get("missing"):
            parts.append(f"missing columns: {mismatched['missing']}")
        if mismatched.get("unexpected"):
            parts.append(f"unexpected columns: {mismatched['unexpected']}")
        return "; ".join(parts) or f"columns: {result.get('observed_value')}"
    if kind == "expect_compound_columns_to_be_unique":
        allowed = 1.0 - float(kwargs.get("mostly", 1.0))
        return (
            f"{unexpected} of {total} rows are exact duplicates of another row "
            f"({result.get('unexpected_percent', 0):.2f}%), at most {allowed:.2%} allowed"
        )
    if kind == "expect_column_values_to_be_in_dtype_list":
        expected = _DTYPE_KINDS.get(meta.get("ct_kind"), str(kwargs.get("type_list")))
        if "observed_value" in result:
            hint = ""
            if result["observed_value"] in ("bool", "boolean") and meta.get("ct_kind") in (
                "numeric",
                "categorical",
            ):
                hint = "; store a boolean feature as 0/1 integers and list it under numeric"
            return f"dtype {result['observed_value']} is not {expected}{hint}"
        # object dtype: GX checked each value's type
        return f"dtype object: {unexpected} of {non_null} non-null values are not {expected}"
    if kind == "expect_column_values_to_not_be_null" and meta.get("ct_check") == "label":
        return (
            f"{unexpected} of {total} values of the classification target are null; "
            "every row needs a label 0 or 1"
        )
    if kind == "expect_column_values_to_not_be_null":
        return f"{unexpected} of {total} values are null"
    if kind == "expect_column_values_to_be_in_set" and meta.get("ct_check") == "label":
        return (
            f"{unexpected} of {non_null} non-null values of the classification target are not "
            "0 or 1 (False or True); map the labels to 1 for the positive class and 0 for the "
            "other at the source"
        )
    if kind == "expect_column_unique_value_count_to_be_between":
        return (
            f"{result.get('observed_value')} distinct values, more than "
            f"expectations.table.max_distinct_categories ({kwargs.get('max_value')}): an id or "
            "free text listed as a categorical feature? Remove it from features.categorical "
            "or raise the limit"
        )
    if kind == "expect_column_proportion_of_non_null_values_to_be_between":
        return "no non-null values: the column is entirely null (or the table empty)"
    if kind == "expect_column_values_to_be_between" and meta.get("ct_check") == "finite":
        return f"{unexpected} of {non_null} non-null values are not finite (inf or -inf)"
    if kind == "expect_column_values_to_be_between":
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        if low is not None and high is not None:
            bound = f"outside [{_num(low)}, {_num(high)}]"
        elif low is not None:
            bound = f"below {_num(low)}"
        else:
            bound = f"above {_num(high)}"
        return f"{unexpected} of {non_null} non-null values {bound}"
    if kind == "expect_column_values_to_be_in_set":
        return f"{unexpected} of {non_null} non-null values not in {kwargs.get('value_set')}"
    if unexpected is not None:
        return f"{unexpected} of {total} values unexpected"
    return f"observed {result.get('observed_value')!r}"
