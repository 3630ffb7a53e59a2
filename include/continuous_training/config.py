"""Pipeline configuration: one YAML file per model, validated by pydantic.

Every error raised from here names the file and the dotted YAML key, so a user
can fix a pipeline without reading this module.
"""

from __future__ import annotations

import math
import os
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from continuous_training.errors import BadInputError
from continuous_training.metrics import METRICS, metric_names

DEFAULT_PIPELINES_DIR = Path(__file__).resolve().parents[1] / "pipelines"

# The trigger form's maximum for the training window; the YAML may not exceed it either.
MAX_WINDOW_DAYS = 3650
# Airflow's schedule presets (cron strings are checked by croniter, as Airflow does).
SCHEDULE_PRESETS = {"@once", "@continuous", "@hourly", "@daily", "@weekly", "@monthly"}
SCHEDULE_PRESETS |= {"@quarterly", "@yearly", "@annually", "@midnight"}
# Columns batch inference writes beside the ids (and the drift sample beside the features).
RESERVED_COLUMNS = (
    "prediction",
    "probability",
    "model_name",
    "model_version",
    "airflow_run_id",
    "_sample_key",
)
BUILTIN_SOURCES = {"synthetic", "file", "sql"}
WINDOW_BINDS = ("window_start", "window_end")
# SQLAlchemy's own pattern for `:name` binds in text(), so that the config sees the binds
# exactly as the driver will (a `::cast` is not a bind).
_SQL_BIND = re.compile(r"(?<![:\w\x5c]):(\w+)(?![:\w])")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SQL_PARAM_TYPES = (str, int, float, bool, date, datetime, type(None))


class ConfigError(BadInputError):
    """A pipeline YAML is malformed or inconsistent; the message names the file and key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(_Strict):
    """Where the data comes from.

    `kind` is `synthetic`, `file`, `sql`, or the import path of a user class
    (`my_package.sources.MySource`) implementing `continuous_training.sources.DataSource`.
    """

    kind: str = "synthetic"
    # synthetic
    seed: int = 42
    rows_per_day: int = Field(300, gt=0)
    drift_onset: date | None = None
    # from this date the label relationship changes while the features keep their
    # distributions: concept drift that input drift cannot see (labels show it)
    concept_drift_onset: date | None = None
    # file
    path: str | None = None
    format: Literal["parquet", "csv"] | None = None
    # sql
    conn_id: str | None = None
    query: str | None = None
    # values bound as `:name` in `query` (never formatted into its text)
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("params")
    @classmethod
    def _scalar_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        # One value per bind: a list would need an expanding bind the query cannot show.
        for name, value in params.items():
            if not isinstance(value, SQL_PARAM_TYPES):
                raise ValueError(
                    f"source.params.{name}: a string, number, boolean, date or null, "
                    f"not {type(value).__name__}"
                )
        return params

    # free-form options for a user-supplied source class
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _kind_needs(self) -> SourceConfig:
        if self.kind not in BUILTIN_SOURCES and "." not in self.kind:
            raise ValueError(
                f"source.kind: unknown source kind {self.kind!r}: "
                f"use one of {sorted(BUILTIN_SOURCES)} "
                "or an import path such as 'my_package.sources.MySource'"
            )
        if self.kind == "file" and not self.path:
            raise ValueError("source.kind 'file' needs source.path")
        if self.params and self.kind != "sql":
            raise ValueError(
                "source.params is for kind 'sql' (bound query parameters); "
                "a source class of your own reads source.options"
            )
        if self.kind == "sql":
            if not self.conn_id or not self.query:
                raise ValueError("source.kind 'sql' needs source.conn_id and source.query")
            _check_sql_binds(self.query, self.params)
        return self


def _check_sql_binds(query: str, params: dict[str, Any]) -> None:
    """Every value reaches the query as a bound parameter, and every bind has a value.

    The window is bound as `:window_start`/`:window_end` and each `source.params` key as
    `:key`. A key written into the query as `{key}` or `%(key)s` is refused: this project
    never formats values into SQL text, so such a placeholder would be a user expecting
    interpolation that does not (and must not) happen.
    """
    binds = set(_SQL_BIND.findall(query))
    for name in WINDOW_BINDS:
        if name not in binds:
            raise ValueError(
                f"source.query must bind the window as :{name} (bound parameters, "
                "never string formatting)"
            )
    for name in params:
        if not _IDENTIFIER.match(name) or name in WINDOW_BINDS:
            raise ValueError(
                f"source.params.{name}: not a usable bind name (letters, digits and '_', "
                f"not {' or '.join(WINDOW_BINDS)})"
            )
        for formatted in (f"{{{name}}}", f"%({name})s"):
            if formatted in query:
                raise ValueError(
                    f"source.query formats source.params.{name} as {formatted}: "
                    f"bind it as :{name} instead (values are never formatted into SQL)"
                )
        if name not in binds:
            raise ValueError(f"source.params.{name} is not bound in source.query as :{name}")
    unbound = sorted(binds - set(WINDOW_BINDS) - set(params))
    if unbound:
        raise ValueError(
            f"source.query binds {', '.join(':' + n for n in unbound)} but source.params "
            "gives no value for it"
        )


class FeaturesConfig(_Strict):
    numeric: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _non_empty_and_disjoint(self) -> FeaturesConfig:
        if not self.numeric and not self.categorical:
            raise ValueError("at least one numeric or categorical feature is required")
        for key, names in (("numeric", self.numeric), ("categorical", self.categorical)):
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"features.{key}: columns listed twice: {twice}")
        both = set(self.numeric) & set(self.categorical)
        if both:
            raise ValueError(f"columns listed as both numeric and categorical: {sorted(both)}")
        return self

    @property
    def all(self) -> list[str]:
        return [*self.numeric, *self.categorical]


class WindowsConfig(_Strict):
    training_days: int = Field(28, gt=0, le=MAX_WINDOW_DAYS)
    holdout_days: int = Field(7, gt=0, le=MAX_WINDOW_DAYS)


def check_schedule(value: str | None) -> str | None:
    """A cron expression or an Airflow preset, checked now rather than when the DAG parses."""
    if value is None or value in SCHEDULE_PRESETS:
        return value
    from croniter import croniter

    if value.startswith("@") or not croniter.is_valid(value):
        raise ValueError(
            f"{value!r} is neither a cron expression ('0 2 * * 0') nor one of "
            f"{sorted(SCHEDULE_PRESETS)}"
        )
    return value


class ColumnExpectation(_Strict):
    not_null: bool = False
    min: float | None = None
    max: float | None = None
    allowed: list[Any] | None = None

    @model_validator(mode="after")
    def _range_ordered(self) -> ColumnExpectation:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class TableExpectation(_Strict):
    min_rows: int = Field(1, ge=0)
    max_duplicate_share: float = Field(0.0, ge=0.0, le=1.0)
    exact_schema: bool = True
    # a categorical feature with more distinct values than this is likely an id or free text
    # listed as a feature: validation fails naming it (null: no limit)
    max_distinct_categories: int | None = Field(10_000, ge=1)


class PreprocessingConfig(_Strict):
    """How categorical features become model inputs, bounded whatever their cardinality.

    Each categorical feature is one-hot encoded into at most `max_categories` columns: the
    most frequent values get a column each, and values seen fewer than `min_frequency` times
    in the training part (or beyond the `max_categories - 1` most frequent) share one
    "infrequent" column, as do values first seen at scoring time.
    """

    max_categories: int = Field(50, ge=2, le=10_000)
    min_frequency: int = Field(5, ge=1)


class ExpectationsConfig(_Strict):
    table: TableExpectation = Field(default_factory=TableExpectation)
    columns: dict[str, ColumnExpectation] = Field(default_factory=dict)


SEARCH_PARAM_TYPES = ("int", "float", "categorical")
SEARCH_SAMPLERS = ("tpe", "random")
SEARCH_PRUNERS = ("none", "median")


def _number(value: Any) -> Any:
    """A bound as written: a number, never a boolean or a string that looks like one."""
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        if value is not None and not math.isfinite(value):
            raise ValueError(f"must be a finite number, got {value!r}")
        return value
    raise ValueError(f"must be a number, got {value!r}")


class SearchParam(_Strict):
    """One estimator parameter of `model.search.space`.

    `int`/`float`: sampled from [low, high] (log-uniformly with `log: true`, which needs
    low > 0); `categorical`: one of `choices` (strings, numbers, booleans or null).
    """

    type: Literal["int", "float", "categorical"]
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    choices: list[Any] | None = None

    @field_validator("low", "high", mode="before")
    @classmethod
    def _bounds_are_numbers(cls, value: Any) -> Any:
        return _number(value)

    @model_validator(mode="after")
    def _coherent(self) -> SearchParam:
        if self.type == "categorical":
            if self.low is not None or self.high is not None or self.log:
                raise ValueError("a categorical parameter takes choices, not low/high/log")
            if not self.choices:
                raise ValueError("a categorical parameter needs a non-empty list of choices")
            for choice in self.choices:
                if not (choice is None or isinstance(choice, str | int | float | bool)):
                    raise ValueError(
                        f"choices: {choice!r} is not a string, number, boolean or null"
                    )
            if len({repr(c) for c in self.choices}) != len(self.choices):
                raise ValueError(f"choices listed twice in {self.choices}")
            return self
        if self.choices is not None:
            raise ValueError(f"choices are for type categorical, not {self.type}")
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.type} parameter needs both low and high")
        if self.type == "int" and not all(float(v).is_integer() for v in (self.low, self.high)):
            raise ValueError(
                f"an int parameter needs whole low and high, got {self.low}, {self.high}"
            )
        if self.low >= self.high:
            raise ValueError(
                f"low ({self.low}) must be less than high ({self.high}); "
                "a fixed value belongs in model.params"
            )
        if self.log and self.low <= 0:
            raise ValueError(f"log: true needs low > 0, got low {self.low}")
        return self


class SearchConfig(_Strict):
    """A hyperparameter search (Optuna) over the estimator's parameters.

    Each trial fits on the training part less its newest `validation_days` and is scored
    with `gates.primary_metric` on those days (never the holdout); the best parameters are
    then refitted on the whole training part. The YAML's `model.params` (as far as the
    space allows) are the first trial, so the search starts from what the YAML would train.
    The search stops after `n_trials` or `timeout_minutes`, whichever comes first; the
    training task's execution timeout is `timeout_minutes + margin_minutes`, the margin
    covering the refit, logging, registration and a last trial that overran the timeout.
    `pruner: median` stops a trial early when its validation score, measured as the
    estimator's iterations grow (estimators with `warm_start` and `max_iter` or
    `n_estimators`), falls below the median of earlier trials at the same stage.
    """

    space: dict[str, SearchParam]
    n_trials: int = Field(20, gt=0, le=100_000, strict=True)
    timeout_minutes: float = Field(30.0, gt=0, le=7 * 24 * 60)
    margin_minutes: float = Field(30.0, gt=0, le=7 * 24 * 60)
    sampler: Literal["tpe", "random"] = "tpe"
    pruner: Literal["none", "median"] = "none"
    validation_days: int = Field(7, gt=0, le=MAX_WINDOW_DAYS, strict=True)
    seed: int = Field(0, strict=True)

    @field_validator("timeout_minutes", "margin_minutes", mode="before")
    @classmethod
    def _minutes_are_numbers(cls, value: Any) -> Any:
        return _number(value)

    @field_validator("space")
    @classmethod
    def _names(cls, space: dict[str, SearchParam]) -> dict[str, SearchParam]:
        if not space:
            raise ValueError("the search space is empty: name at least one parameter")
        for name in space:
            if not _IDENTIFIER.match(name):
                raise ValueError(
                    f"{name!r} is not a parameter name of the estimator (letters, digits, '_')"
                )
        return space


class ModelConfig(_Strict):
    estimator: str
    params: dict[str, Any] = Field(default_factory=dict)
    # a hyperparameter search; without it the estimator is fitted once with `params`
    search: SearchConfig | None = None

    @field_validator("estimator")
    @classmethod
    def _dotted(cls, value: str) -> str:
        if "." not in value:
            raise ValueError(f"{value!r} is not an import path like 'sklearn.linear_model.X'")
        return value


class GuardrailConfig(_Strict):
    tolerance: float = Field(ge=0.0)


class BootstrapConfig(_Strict):
    resamples: int = Field(1000, ge=100)
    confidence: float = Field(0.95, gt=0.5, lt=1.0)
    seed: int = 0


class LiveEvidenceConfig(_Strict):
    """Promotion of a shadow challenger on realized outcomes, judged day by day.

    Each complete prediction date (all its labels arrived: `labels.delay_days` after it)
    where the champion served and the challenger shadowed gives one paired difference of
    the primary metric on the same labelled rows. The challenger is promoted when the
    lower bound of an always-valid confidence sequence (at `gates.bootstrap.confidence`)
    of the mean daily difference clears `gates.min_improvement`, after `min_days` dates.
    """

    enabled: bool = False
    min_days: int = Field(14, ge=2)
    # a date with fewer labelled rows than this gives no observation
    min_rows_per_day: int = Field(100, ge=10)


class SlicesConfig(_Strict):
    """Per-slice guardrails: the candidate may not be clearly worse on any large slice.

    Each of `columns` (categorical features or id columns of the pipeline; numeric features
    are refused, bin them into a categorical column at the source) splits the holdout into
    groups, a missing value being a group of its own (`<missing>`). On every group with at
    least `min_rows` holdout rows, both models' `metric` (default: the primary metric) is
    compared by a paired bootstrap; the candidate is rejected when the interval's UPPER
    bound of (candidate - champion), positive = candidate better, is below `-tolerance`:
    the candidate is worse by more than the tolerance beyond reasonable doubt. The per-group
    intervals are Bonferroni-adjusted for the number of groups judged. Smaller groups, and
    groups where the metric is undefined (one class), are reported, not judged. Per column,
    the `max_groups` largest groups are reported; the rest are counted, never judged.
    `sensitive` names the columns of the card's fairness section (default: `columns`).
    """

    columns: list[str] = Field(min_length=1)
    min_rows: int = Field(200, ge=10)
    tolerance: float = Field(0.02, ge=0.0)
    metric: str | None = None
    max_groups: int = Field(50, ge=1, le=1000)
    sensitive: list[str] | None = None

    @model_validator(mode="after")
    def _each_column_once(self) -> SlicesConfig:
        for key, names in (("columns", self.columns), ("sensitive", self.sensitive or [])):
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"gates.slices.{key}: columns listed twice: {twice}")
        return self

    @property
    def sensitive_columns(self) -> list[str]:
        return self.columns if self.sensitive is None else self.sensitive


class ExplanationsConfig(_Strict):
    """Permutation importance of both models on the holdout, for the card (never decides).

    At most `max_rows` holdout rows (a seeded sample) are permuted `n_repeats` times per
    feature, scored with the primary metric.
    """

    enabled: bool = True
    n_repeats: int = Field(5, ge=1, le=100)
    max_rows: int = Field(20_000, ge=100)
    seed: int = 0


class GatesConfig(_Strict):
    primary_metric: str = "roc_auc"
    floor: float
    min_improvement: float = 0.0
    # Classification: a holdout with fewer rows of either class says nothing about the
    # metric, so the gate never decides for a candidate on it (see gate._check_classes).
    min_holdout_per_class: int = Field(30, ge=1)
    bootstrap: BootstrapConfig = Field(default_factory=BootstrapConfig)
    guardrails: dict[str, GuardrailConfig] = Field(default_factory=dict)
    max_latency_ms_per_1k: float | None = Field(None, gt=0)
    # import paths of user gate checks: callables (GateContext) -> CheckResult
    extra_checks: list[str] = Field(default_factory=list)
    # a challenger rejected for want of holdout evidence may still win on live outcomes
    live_evidence: LiveEvidenceConfig = Field(default_factory=LiveEvidenceConfig)
    # per-slice guardrails and the card's fairness section (null: none)
    slices: SlicesConfig | None = None
    # permutation importance on the card (evidence, not a check)
    explanations: ExplanationsConfig = Field(default_factory=ExplanationsConfig)

    @property
    def slice_metric(self) -> str:
        """The metric slices are judged on: `slices.metric`, else the primary metric."""
        if self.slices is None or self.slices.metric is None:
            return self.primary_metric
        return self.slices.metric

    @field_validator("live_evidence", mode="before")
    @classmethod
    def _live_evidence_shorthand(cls, value: Any) -> Any:
        return {"enabled": value} if isinstance(value, bool) else value

    @model_validator(mode="after")
    def _known_metrics(self) -> GatesConfig:
        for key, metric in _metric_keys(self):
            if metric not in METRICS:
                raise ValueError(f"{key}: unknown metric {metric!r}: use one of {sorted(METRICS)}")
        self._reachable()
        return self

    def _reachable(self) -> None:
        """Thresholds a candidate can meet: else every run rejects and still "succeeds"."""
        metric = self.primary_metric
        low, high = METRICS[metric].bounds
        if not low <= self.floor <= high:
            raise ValueError(
                f"gates.floor: {self.floor:g} is outside the range of {metric} "
                f"[{low:g}, {high:g}]: no candidate can ever pass"
            )
        span = high - low
        if not -span < self.min_improvement < span:
            raise ValueError(
                f"gates.min_improvement: {self.min_improvement:g} is not a possible change of "
                f"{metric} (values in [{low:g}, {high:g}]): no candidate can ever pass"
            )
        for guarded, guard in self.guardrails.items():
            g_low, g_high = METRICS[guarded].bounds
            if guard.tolerance > g_high - g_low:
                raise ValueError(
                    f"gates.guardrails.{guarded}.tolerance: {guard.tolerance:g} is wider than "
                    f"the range of {guarded} [{g_low:g}, {g_high:g}]: it could never fail"
                )
        if self.slices is not None:
            s_low, s_high = METRICS[self.slice_metric].bounds
            if self.slices.tolerance >= s_high - s_low:
                raise ValueError(
                    f"gates.slices.tolerance: {self.slices.tolerance:g} is as wide as the range "
                    f"of {self.slice_metric} [{s_low:g}, {s_high:g}]: it could never fail"
                )


def _metric_keys(gates: GatesConfig) -> list[tuple[str, str]]:
    """(dotted key, metric) for every metric a gate names, so errors can point at the key."""
    keys = [("gates.primary_metric", gates.primary_metric)]
    if gates.slices is not None and gates.slices.metric is not None:
        keys.append(("gates.slices.metric", gates.slices.metric))
    return keys + [(f"gates.guardrails.{m}", m) for m in gates.guardrails]


class DriftConfig(_Strict):
    """When the scored data has drifted away from the champion's training data.

    `column_threshold` is handed to Evidently's per-column test: a p-value for the
    statistical tests it picks on small samples, a distance for the ones it picks on
    large samples. Unset, each test keeps Evidently's default.
    """

    drifted_share_threshold: float = Field(0.5, gt=0.0, le=1.0)
    column_threshold: float | None = Field(None, gt=0.0)
    sample_size: int = Field(20_000, ge=100)
    cooldown_hours: float = Field(24, ge=0)


class InferenceConfig(_Strict):
    """Batch inference: what is scored, how it is split into mapped tasks, how hard it runs.

    `source` defaults to the training source. A file source may put `{date}` in its path
    (`/data/scoring/{date}/*.parquet`), filled with each day of the window; every matching
    file is one partition. Synthetic and sql sources are split into time ranges of
    `partition_hours`.
    """

    schedule: str | None = "0 3 * * *"  # null: no schedule, runs only when triggered
    source: SourceConfig | None = None

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        return check_schedule(value)

    id_columns: list[str] | None = None
    window_days: int = Field(1, gt=0, le=366)
    partition_hours: int = Field(24, gt=0, le=24 * 366)
    batch_size: int = Field(50_000, gt=0)
    max_active_partitions: int = Field(4, gt=0)
    pool: str | None = None
    max_partitions: int = Field(512, gt=0)
    threads_per_task: int = Field(1, gt=0)
    shadow: bool = True
    progress_every_seconds: float = Field(5.0, gt=0)


class LabelsConfig(_Strict):
    """Where outcomes (ground truth) come from, and when they are complete.

    The source returns the id columns, `time_column` (the time of the row that was
    scored, so its prediction date), the target, and `known_at_column` (when the outcome
    became known). It is fetched by `time_column` like any source; rows whose outcome
    became known after the monitoring run's data interval are left out, so a re-run sees
    what the first run saw. Unset `source`: the scoring source (the synthetic source then
    yields the outcomes of the rows it scored, known `delay_days` later at the latest).
    """

    source: SourceConfig | None = None
    known_at_column: str = "label_time"
    # the expected delay; a prediction date is complete (all its labels in) this long after
    delay_days: float = Field(14, gt=0, le=MAX_WINDOW_DAYS)


class MonitoringConfig(_Strict):
    """`<name>_performance_monitoring`: realized performance and decay of the champion.

    Each run joins the labels known at its data interval's end with the predictions
    published for the last `lookback_days`, writes metrics per prediction date, and
    compares the champion's realized primary metric over the trailing `window_days` of
    prediction dates with its holdout metric at promotion. Decay is signalled only when the
    upper bound of the realized interval lies below expected minus `tolerance`, and only
    with at least `min_labelled_rows` labelled rows of the champion in the window.
    """

    schedule: str | None = "0 5 * * *"  # null: runs on the asset ct.<name>.labels instead
    lookback_days: int = Field(56, gt=0, le=MAX_WINDOW_DAYS)
    window_days: int = Field(28, gt=0, le=MAX_WINDOW_DAYS)
    min_labelled_rows: int = Field(1000, ge=1)
    tolerance: float = Field(0.02, ge=0.0)
    batch_size: int = Field(200_000, gt=0)  # rows joined at once: bounds memory

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        return check_schedule(value)

    @model_validator(mode="after")
    def _window_inside_lookback(self) -> MonitoringConfig:
        if self.window_days > self.lookback_days:
            raise ValueError(
                f"monitoring.window_days ({self.window_days}) is longer than "
                f"monitoring.lookback_days ({self.lookback_days}): the trailing window must "
                "lie inside the dates each run reads"
            )
        return self


class RetriesConfig(_Strict):
    """Airflow's retries of every task: for faults that pass (a server restarting).

    Bad data and bad config fail at once whatever this says; they do not get better.
    """

    count: int = Field(2, ge=0, le=20)
    delay_seconds: float = Field(300, ge=0)
    exponential_backoff: bool = False


class PiiConfig(_Strict):
    """Personal data: columns hashed with a secret key or dropped right after every fetch.

    `hash` columns become HMAC-SHA256 hex digests keyed with the environment variable
    `key_env` (joinable, not reversible without the key); they may be id columns or
    categorical features, never the target, the time column or a numeric feature.
    `drop` columns are removed and so can have no role in the pipeline.
    """

    hash: list[str] = Field(default_factory=list)
    drop: list[str] = Field(default_factory=list)
    key_env: str = Field("CT_PII_HASH_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    @model_validator(mode="after")
    def _each_column_once(self) -> PiiConfig:
        for key, names in (("hash", self.hash), ("drop", self.drop)):
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"pii.{key}: columns listed twice: {twice}")
        both = sorted(set(self.hash) & set(self.drop))
        if both:
            raise ValueError(f"pii: columns in both pii.hash and pii.drop: {both}")
        return self


class RegistryConfig(_Strict):
    model_name: str | None = None
    experiment: str | None = None


class AssignedUser(_Strict):
    """A person who may answer an approval, as Airflow's auth manager knows them."""

    id: str = Field(min_length=1)  # the auth manager's user id (the simple one: the username)
    name: str = Field(min_length=1)


def _assigned_user(value: Any) -> Any:
    """A plain string names a user whose id and name are both that string."""
    return {"id": value, "name": value} if isinstance(value, str) else value


# The approval form's one field beside Approve and Reject: why, recorded with the decision.
APPROVAL_COMMENT = "comment"


class ApprovalConfig(_Strict):
    """A person approves every champion change before it happens (Airflow's human in the loop).

    With `required`, a candidate that passed the gate (or is forced) waits in the `approve`
    task of the retraining run, on the Required Actions page of the Airflow UI and in the REST
    API, until someone approves or rejects it. No answer within `timeout_hours`: rejected as
    not approved in time. A candidate the gate rejected asks nobody.
    """

    required: bool = False
    timeout_hours: float = Field(72.0, gt=0, le=24 * 365)
    # who may answer; empty: anyone allowed to act on the DAG
    assigned_users: list[AssignedUser] = Field(default_factory=list)

    @field_validator("assigned_users", mode="before")
    @classmethod
    def _users(cls, value: Any) -> Any:
        return [_assigned_user(v) for v in value] if isinstance(value, list) else value


NOTIFY_EVENTS = ("promotion", "rejection", "drift", "decay", "approval_requested", "failure")


class EmailNotifyConfig(_Strict):
    """E-mail through the smtp provider's notifier and the Airflow connection `conn_id`."""

    to: list[str] = Field(min_length=1)
    conn_id: str = "smtp_default"
    from_email: str | None = None  # unset: the connection's `from_email` extra


class SlackNotifyConfig(_Strict):
    """Slack through the slack provider's notifiers and an Airflow connection.

    `conn_id` names a Slack API connection (a bot token) and needs `channel`;
    `webhook_conn_id` names an incoming-webhook connection, whose channel is fixed by Slack.
    """

    conn_id: str | None = None
    channel: str | None = None
    webhook_conn_id: str | None = None

    @model_validator(mode="after")
    def _one_way(self) -> SlackNotifyConfig:
        if (self.conn_id is None) == (self.webhook_conn_id is None):
            raise ValueError("notify.slack: set exactly one of conn_id and webhook_conn_id")
        if self.conn_id is not None and not self.channel:
            raise ValueError("notify.slack.channel is required with notify.slack.conn_id")
        return self


class NotifyConfig(_Strict):
    """Who hears of decisions without opening a UI; no notifier set: nothing is sent.

    A notifier that cannot reach its server is logged as a warning and never fails the task.
    """

    email: EmailNotifyConfig | None = None
    slack: SlackNotifyConfig | None = None
    # which events are sent (all by default)
    events: list[Literal[NOTIFY_EVENTS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(NOTIFY_EVENTS)
    )

    @property
    def any(self) -> bool:
        return self.email is not None or self.slack is not None


class PipelineConfig(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = ""
    owner: str = "ml-platform"
    schedule: str | None = "0 2 * * 0"  # null: no schedule, retrains only when triggered
    task: Literal["classification", "regression"] = "classification"
    source: SourceConfig = Field(default_factory=SourceConfig)
    target: str
    time_column: str
    id_columns: list[str] = Field(default_factory=list)
    features: FeaturesConfig
    windows: WindowsConfig = Field(default_factory=WindowsConfig)
    expectations: ExpectationsConfig = Field(default_factory=ExpectationsConfig)
    model: ModelConfig
    gates: GatesConfig
    drift: DriftConfig = Field(default_factory=DriftConfig)
    inference: InferenceConfig = Field(default_factory=InferenceConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    retries: RetriesConfig = Field(default_factory=RetriesConfig)
    pii: PiiConfig = Field(default_factory=PiiConfig)
    preprocessing: PreprocessingConfig = Field(default_factory=PreprocessingConfig)
    # ground truth: with a labels section, <name>_performance_monitoring is built
    labels: LabelsConfig | None = None
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    # people in the loop: approval of champion changes, notifications of decisions
    approval: ApprovalConfig = Field(default_factory=ApprovalConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    # filled in by load_pipeline, so that errors raised later can name the file
    source_file: str | None = None

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        return check_schedule(value)

    @model_validator(mode="after")
    def _consistent(self) -> PipelineConfig:
        features = self.features.all
        special = {"target": self.target, "time_column": self.time_column}
        for key, column in special.items():
            if column in features:
                raise ValueError(f"{key} {column!r} is also listed as a feature")
        unknown = set(self.expectations.columns) - set(self.columns)
        if unknown:
            raise ValueError(
                "expectations.columns names columns that are not in the pipeline: "
                f"{sorted(unknown)}"
            )
        allowed = metric_names(self.task)
        for key, metric in _metric_keys(self.gates):
            if metric not in allowed:
                raise ValueError(f"{key}: metric {metric!r} does not apply to a {self.task} task")
        self._one_role_per_column()
        self._slice_columns()
        self._search_window()
        self._no_reserved_names()
        self._pii_roles()
        self._labels_usable()
        if not self.scoring_id_columns:
            raise ValueError(
                "batch inference needs id columns to key its predictions: "
                "set id_columns or inference.id_columns"
            )
        return self

    def _one_role_per_column(self) -> None:
        roles: dict[str, list[str]] = {}
        keyed = [
            ("time_column", [self.time_column]),
            ("id_columns", self.id_columns),
            ("features", self.features.all),
            ("target", [self.target]),
        ]
        for key, columns in keyed:
            for column in columns:
                roles.setdefault(column, []).append(key)
        clashes = {c: keys for c, keys in roles.items() if len(keys) > 1}
        if clashes:
            described = "; ".join(f"{c!r} is in {' and '.join(k)}" for c, k in clashes.items())
            raise ValueError(f"a column may have one role only: {described}")

    @property
    def slice_columns_allowed(self) -> list[str]:
        """Columns a holdout can be sliced by: categorical features and id columns."""
        return [*self.features.categorical, *self.id_columns]

    def _slice_columns(self) -> None:
        """Slices are groups of a column the holdout keeps, with a handful of values."""
        slices = self.gates.slices
        if slices is None:
            return
        allowed = self.slice_columns_allowed
        why = {
            **{
                c: "is a numeric feature: bin it into a categorical column at the source"
                for c in self.features.numeric
            },
            self.target: "is the target: a slice of one label has no ranking metric",
            self.time_column: "is the time column: the holdout is already one time window",
        }
        for key, names in (("columns", slices.columns), ("sensitive", slices.sensitive or [])):
            for column in names:
                if column in allowed:
                    continue
                reason = why.get(column, "is not a column of the pipeline")
                raise ValueError(
                    f"gates.slices.{key}: {column!r} {reason}; slice by one of "
                    f"{allowed} (categorical features and id columns)"
                )

    def _search_window(self) -> None:
        search = self.model.search
        if search is not None and search.validation_days >= self.windows.training_days:
            raise ValueError(
                f"model.search.validation_days ({search.validation_days}) must be less than "
                f"windows.training_days ({self.windows.training_days}): the trials need "
                "training days before the validation days"
            )

    def _no_reserved_names(self) -> None:
        """Predictions and drift samples add columns of their own beside ids and features."""
        keyed = [
            ("id_columns", self.id_columns),
            ("inference.id_columns", self.inference.id_columns or []),
            ("features", self.features.all),
        ]
        for key, columns in keyed:
            taken = sorted(set(columns) & set(RESERVED_COLUMNS))
            if taken:
                raise ValueError(
                    f"{key}: {taken} are names the predictions and drift samples use for "
                    f"their own columns ({', '.join(RESERVED_COLUMNS)}): rename them at the "
                    "source"
                )

    def _labels_usable(self) -> None:
        """Labels join predictions by id and date; the sequence needs a higher-is-better gap."""
        if self.labels is None:
            if self.gates.live_evidence.enabled:
                raise ValueError(
                    "gates.live_evidence needs a labels section: live evidence is realized "
                    "outcomes of the shadow challenger's predictions"
                )
            return
        known_at = self.labels.known_at_column
        if known_at in self.columns:
            raise ValueError(
                f"labels.known_at_column {known_at!r} is also a column of the pipeline: "
                "name the column that says when each outcome became known"
            )
        if known_at in RESERVED_COLUMNS:
            raise ValueError(f"labels.known_at_column {known_at!r} is a reserved column name")

    def _pii_roles(self) -> None:
        """A dropped column has no role; a hashed one is text, so only an id or a category."""
        roles = {
            "time_column": [self.time_column],
            "target": [self.target],
            "features.numeric": self.features.numeric,
            "features.categorical": self.features.categorical,
            "id_columns": self.id_columns,
            "inference.id_columns": self.inference.id_columns or [],
        }
        for key, columns in roles.items():
            dropped = sorted(set(self.pii.drop) & set(columns))
            if dropped:
                raise ValueError(
                    f"pii.drop: {dropped} also in {key}: a dropped column cannot be used "
                    "(hash it instead with pii.hash if it is an id)"
                )
        for key in ("time_column", "target", "features.numeric"):
            hashed = sorted(set(self.pii.hash) & set(roles[key]))
            if hashed:
                raise ValueError(
                    f"pii.hash: {hashed} also in {key}: a hashed value is text, so it can "
                    "only be an id column or a categorical feature"
                )
        for column in self.pii.hash:
            rule = self.expectations.columns.get(column)
            if rule and (rule.allowed is not None or rule.min is not None or rule.max is not None):
                raise ValueError(
                    f"expectations.columns.{column}: allowed/min/max would compare raw values, "
                    "but pii.hash replaces them with keyed hashes; keep not_null only"
                )

    @property
    def columns(self) -> list[str]:
        """Every column a snapshot holds, in schema order."""
        return [self.time_column, *self.id_columns, *self.features.all, self.target]

    @property
    def scoring_id_columns(self) -> list[str]:
        """The columns that key each prediction row."""
        if self.inference.id_columns is not None:
            return self.inference.id_columns
        return self.id_columns

    @property
    def scoring_source(self) -> SourceConfig:
        return self.inference.source or self.source

    @property
    def labels_source(self) -> SourceConfig | None:
        """Where outcomes come from: `labels.source`, else the scoring source; None: no labels."""
        if self.labels is None:
            return None
        return self.labels.source or self.scoring_source

    @property
    def model_name(self) -> str:
        return self.registry.model_name or self.name

    @property
    def experiment_name(self) -> str:
        return self.registry.experiment or f"ct/{self.name}"


def pipelines_dir() -> Path:
    return Path(os.environ.get("CT_PIPELINES_DIR") or DEFAULT_PIPELINES_DIR)


def _format_errors(path: Path, exc: ValidationError) -> str:
    lines = [f"{path}: invalid pipeline config"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "<top level>"
        message = err["msg"].removeprefix("Value error, ")
        # A validator of a section names the exact key itself (gates.floor, not gates).
        lines.append(f"  {message}" if message.startswith(f"{key}.") else f"  {key}: {message}")
    return "\n".join(lines)


def parse_pipeline(data: Any, source_file: str | Path = "<memory>") -> PipelineConfig:
    """Validate an already-loaded mapping; errors name `source_file` and the key."""
    path = Path(source_file)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    try:
        return PipelineConfig.model_validate({**data, "source_file": str(path)})
    except ValidationError as exc:
        raise ConfigError(_format_errors(path, exc)) from None


def load_pipeline(path: str | Path) -> PipelineConfig:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: pipeline file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: malformed YAML: {exc}") from None
    config = parse_pipeline(data, path)
    if config.name != path.stem:
        raise ConfigError(f"{path}: name: {config.name!r} must match the file name {path.stem!r}")
    return config


def pipeline_files(directory: str | Path | None = None) -> list[Path]:
    """The pipeline YAML files of `directory` (default: CT_PIPELINES_DIR), sorted."""
    directory = Path(directory) if directory else pipelines_dir()
    if not directory.is_dir():
        raise ConfigError(f"{directory}: pipelines folder not found (set by CT_PIPELINES_DIR)")
    return sorted(directory.glob("*.yaml"))


def load_all_pipelines(directory: str | Path | None = None) -> list[PipelineConfig]:
    """Every pipeline of `directory`; the first invalid file raises ConfigError."""
    return [load_pipeline(p) for p in pipeline_files(directory)]


def find_pipeline(name: str, directory: str | Path | None = None) -> PipelineConfig:
    directory = Path(directory) if directory else pipelines_dir()
    return load_pipeline(directory / f"{name}.yaml")
