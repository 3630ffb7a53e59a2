"""Per-slice comparison of champion and challenger, and the card's fairness figures.

A slice is one group of one column of the holdout (`gates.slices.columns`). Per-group
metrics of each model come from fairlearn's `MetricFrame`; the per-slice decision rests on
the same paired bootstrap as the overall gate, run on the slice's rows. The gate's
`slices` check (gate.py) only reads the `SliceReport` built here.

No Airflow, no MLflow; numpy, pandas and fairlearn are imported inside the functions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from continuous_training.bootstrap import paired_bootstrap
from continuous_training.metrics import EvaluationError, metric_direction, metric_value

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from continuous_training.config import GatesConfig

MISSING = "<missing>"  # the group of rows whose slice column is null
# Guardrail comparisons subtract two metrics; allow for float noise at an exact tolerance.
_FLOAT_SLACK = 1e-12


@dataclass(frozen=True)
class SliceResult:
    """One group of one column: both models' metric and, when judged, the paired interval.

    `diff`, `low`, `high` are (challenger - champion) x the metric's direction: positive
    means the challenger is better. `passed` is None for a group that was not judged.
    """

    column: str
    group: str
    rows: int
    challenger: float | None
    champion: float | None
    diff: float | None = None
    low: float | None = None
    high: float | None = None
    judged: bool = False
    passed: bool | None = None
    note: str = ""

    @property
    def label(self) -> str:
        return f"{self.column}={self.group}"


@dataclass(frozen=True)
class FairnessResult:
    """Per-group metric of one sensitive column, and the largest gap between groups.

    The gap is taken over groups with at least `min_rows` rows where the metric is defined
    (a smaller group's metric is mostly noise); `worst`/`best` name those groups.
    """

    column: str
    groups: dict[str, dict[str, Any]]  # group -> {"rows", "challenger", "champion"}
    compared: list[str]
    challenger_gap: float | None
    challenger_worst: str | None
    challenger_best: str | None
    champion_gap: float | None = None
    champion_worst: str | None = None
    champion_best: str | None = None


@dataclass(frozen=True)
class SliceReport:
    metric: str
    min_rows: int
    tolerance: float
    confidence: float  # the per-group (Bonferroni-adjusted) confidence of the intervals
    family_confidence: float  # gates.bootstrap.confidence, for all judged groups at once
    has_champion: bool
    results: list[SliceResult]
    # column -> {"groups": n, "rows": n} beyond max_groups: counted, never judged
    omitted: dict[str, dict[str, int]] = field(default_factory=dict)
    fairness: list[FairnessResult] = field(default_factory=list)

    @property
    def judged(self) -> list[SliceResult]:
        return [r for r in self.results if r.judged]

    @property
    def failed(self) -> list[SliceResult]:
        return [r for r in self.results if r.judged and not r.passed]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def group_labels(values: Any) -> pd.Series:
    """A slice column as string group labels; a null value is the group `<missing>`."""
    import pandas as pd

    series = pd.Series(values).reset_index(drop=True)
    labels = series.astype(object).where(series.notna(), MISSING)
    return labels.map(str)


def _safe_metric(metric: str) -> Any:
    """`metric_value` for MetricFrame: NaN where a group cannot define it (one class)."""

    def fn(y_true: Any, y_pred: Any) -> float:
        try:
            return metric_value(metric, y_true, y_pred)
        except EvaluationError:
            return float("nan")

    fn.__name__ = metric
    return fn


def _by_group(metric: str, y: np.ndarray, pred: np.ndarray, labels: pd.Series) -> pd.DataFrame:
    """fairlearn MetricFrame: rows and `metric` per group."""
    from fairlearn.metrics import MetricFrame, count

    frame = MetricFrame(
        metrics={"rows": count, "value": _safe_metric(metric)},
        y_true=y,
        y_pred=pred,
        sensitive_features=labels.rename("group"),
    )
    return frame.by_group


def _undefined_reason(metric: str, task: str, y: np.ndarray, gates: GatesConfig) -> str | None:
    """Why a group large enough to judge still cannot be judged on `metric`, if it cannot."""
    import numpy as np

    if task != "classification":
        return None
    positives = int(np.sum(y == 1))
    negatives = int(y.size - positives)
    if positives == 0 or negatives == 0:
        return f"one class only ({positives} positive, {negatives} negative rows): "
    needed = gates.min_holdout_per_class
    if min(positives, negatives) < needed:
        return (
            f"{positives} positive and {negatives} negative rows, fewer than "
            f"gates.min_holdout_per_class={needed} of a class: "
        )
    return None


def _value(value: Any) -> float | None:
    import math

    return None if value is None or math.isnan(float(value)) else float(value)


def compute_slices(
    gates: GatesConfig,
    task: str,
    y_true: Any,
    pred_challenger: Any,
    pred_champion: Any | None,
    frame: pd.DataFrame,
) -> SliceReport:
    """Every slice of `gates.slices` on the holdout: reported, and judged where it can be.

    `frame` holds the holdout's slice columns, row for row with `y_true`.
    """
    import numpy as np

    cfg = gates.slices
    if cfg is None:
        raise EvaluationError("gates.slices is not configured")
    metric = gates.slice_metric
    y = np.asarray(y_true, dtype=float).ravel()
    new = np.asarray(pred_challenger, dtype=float).ravel()
    old = None if pred_champion is None else np.asarray(pred_champion, dtype=float).ravel()
    if len(frame) != y.size:
        raise EvaluationError(f"slice columns have {len(frame)} rows, the holdout {y.size}")
    columns = list(dict.fromkeys([*cfg.columns, *cfg.sensitive_columns]))
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise EvaluationError(f"gates.slices: holdout has no column {missing}")

    labels = {c: group_labels(frame[c].to_numpy()) for c in columns}
    tables: dict[str, pd.DataFrame] = {}
    omitted: dict[str, dict[str, int]] = {}
    for column in columns:
        tables[column], rest = _tables(metric, y, new, old, labels[column], cfg.max_groups)
        if rest["groups"]:
            omitted[column] = rest

    # every reported group of a guarded column, with its rows
    plans = [
        (column, str(group), (labels[column] == group).to_numpy())
        for column in cfg.columns
        for group in tables[column].index
    ]
    judged_count = sum(
        1
        for _, _, mask in plans
        if old is not None
        and mask.sum() >= cfg.min_rows
        and _undefined_reason(metric, task, y[mask], gates) is None
    )
    family = gates.bootstrap.confidence
    per_group = 1.0 - (1.0 - family) / max(judged_count, 1)

    results = [
        _one_slice(gates, task, metric, column, group, mask, y, new, old, tables, per_group)
        for column, group, mask in plans
    ]
    fairness = [
        _fairness(column, tables[column], cfg.min_rows, metric) for column in cfg.sensitive_columns
    ]
    return SliceReport(
        metric=metric,
        min_rows=cfg.min_rows,
        tolerance=cfg.tolerance,
        confidence=per_group,
        family_confidence=family,
        has_champion=old is not None,
        results=results,
        omitted={c: omitted[c] for c in cfg.columns if c in omitted},
        fairness=fairness,
    )


def _tables(
    metric: str,
    y: np.ndarray,
    new: np.ndarray,
    old: np.ndarray | None,
    labels: pd.Series,
    max_groups: int,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Per group: rows, challenger, champion; the `max_groups` largest groups (ties by name).

    Groups beyond the cap are counted, not computed: a column of a million ids costs one
    value count, not a million metric calls.
    """
    counts = labels.value_counts()
    order = sorted(counts.index, key=lambda g: (-int(counts[g]), str(g)))
    kept, dropped = order[:max_groups], order[max_groups:]
    rest = {"groups": len(dropped), "rows": int(sum(int(counts[g]) for g in dropped))}
    keep = labels.isin(kept).to_numpy()
    sub = labels[keep].reset_index(drop=True)
    table = _by_group(metric, y[keep], new[keep], sub).rename(columns={"value": "challenger"})
    if old is None:
        table["champion"] = float("nan")
    else:
        table["champion"] = _by_group(metric, y[keep], old[keep], sub)["value"]
    table["rows"] = table["rows"].astype(int)
    table.index = table.index.map(str)
    return table.loc[[str(g) for g in kept]], rest


def _one_slice(
    gates: GatesConfig,
    task: str,
    metric: str,
    column: str,
    group: str,
    mask: np.ndarray,
    y: np.ndarray,
    new: np.ndarray,
    old: np.ndarray | None,
    tables: dict[str, pd.DataFrame],
    confidence: float,
) -> SliceResult:
    cfg = gates.slices
    assert cfg is not None
    row = tables[column].loc[group]
    rows = int(row["rows"])
    base = {
        "column": column,
        "group": group,
        "rows": rows,
        "challenger": _value(row["challenger"]),
        "champion": _value(row["champion"]),
    }
    if old is None:
        return SliceResult(**base, note="no champion: reported, not judged")
    if rows < cfg.min_rows:
        return SliceResult(
            **base, note=f"{rows} rows < gates.slices.min_rows={cfg.min_rows}: reported, not judged"
        )
    undefined = _undefined_reason(metric, task, y[mask], gates)
    if undefined is not None:
        return SliceResult(**base, note=undefined + f"{metric} not judged")
    boot = gates.bootstrap
    try:
        result = paired_bootstrap(
            metric,
            y[mask],
            new[mask],
            old[mask],
            resamples=boot.resamples,
            confidence=confidence,
            seed=boot.seed,
        )
    except EvaluationError as exc:
        return SliceResult(**base, note=f"not judged: {exc}")
    # mirror of the guardrail: worse by more than the tolerance fails, here on the interval's
    # most favourable end, so that only a clear loss on the slice rejects the candidate
    passed = result.high >= -cfg.tolerance - _FLOAT_SLACK
    interval = f"[{result.low:+.4f}, {result.high:+.4f}]"
    if passed:
        note = f"CI {interval} not entirely below -{cfg.tolerance:g}"
    else:
        note = f"worse: CI {interval} entirely below -{cfg.tolerance:g}"
    return SliceResult(
        **base,
        diff=result.observed_diff,
        low=result.low,
        high=result.high,
        judged=True,
        passed=passed,
        note=note,
    )


def _fairness(column: str, table: pd.DataFrame, min_rows: int, metric: str) -> FairnessResult:
    direction = metric_direction(metric)
    groups = {
        str(g): {
            "rows": int(r["rows"]),
            "challenger": _value(r["challenger"]),
            "champion": _value(r["champion"]),
        }
        for g, r in table.iterrows()
    }
    compared = [g for g, v in groups.items() if v["rows"] >= min_rows]

    def gap(whose: str) -> tuple[float | None, str | None, str | None]:
        values = {g: groups[g][whose] for g in compared if groups[g][whose] is not None}
        if len(values) < 2:
            return None, None, None
        ordered = sorted(values, key=lambda g: direction * values[g])
        worst, best = ordered[0], ordered[-1]
        return abs(values[best] - values[worst]), worst, best

    new_gap, new_worst, new_best = gap("challenger")
    old_gap, old_worst, old_best = gap("champion")
    return FairnessResult(
        column=column,
        groups=groups,
        compared=compared,
        challenger_gap=new_gap,
        challenger_worst=new_worst,
        challenger_best=new_best,
        champion_gap=old_gap,
        champion_worst=old_worst,
        champion_best=old_best,
    )


__all__ = ["MISSING", "FairnessResult", "SliceReport", "SliceResult", "compute_slices"]
