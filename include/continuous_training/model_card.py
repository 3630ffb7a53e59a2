"""The model card: one markdown page per candidate, with the evidence and the decision.

Rendered when the candidate is evaluated (`render_model_card`) and completed with what was
finally done when it is promoted or rejected (`with_final_section`). The card reads the
metrics, the bootstrap, the gate's decision and, when they ran, the slices, explanations and
search summary; it computes nothing that decides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from continuous_training.bootstrap import power_statement
from continuous_training.metrics import get_metric, metric_direction, metric_names

if TYPE_CHECKING:
    from continuous_training.bootstrap import BootstrapResult
    from continuous_training.config import GatesConfig, PipelineConfig
    from continuous_training.explanations import Explanations
    from continuous_training.gate import GateDecision
    from continuous_training.slices import SliceReport

FINAL_HEADING = "## Final decision"


def _fmt(value: float | None, spec: str = ".4f") -> str:
    return "n/a" if value is None else format(value, spec)


def _window(data: Mapping[str, Any], split: str) -> str:
    window = data.get(f"{split}_window")
    if window is None and (f"{split}_start" in data or f"{split}_end" in data):
        window = (data.get(f"{split}_start"), data.get(f"{split}_end"))
    if isinstance(window, Sequence) and not isinstance(window, str) and len(window) == 2:
        return f"{window[0]} to {window[1]}"
    return "n/a" if window is None else str(window)


_DATA_KEYS = {
    f"{split}_{part}"
    for split in ("train", "holdout")
    for part in ("window", "start", "end", "rows", "sha256")
}


def _data_section(data: Mapping[str, Any]) -> list[str]:
    lines = ["| Split | Window | Rows | sha256 |", "|---|---|---:|---|"]
    for split in ("train", "holdout"):
        rows = data.get(f"{split}_rows", "n/a")
        sha = data.get(f"{split}_sha256", "n/a")
        lines.append(f"| {split} | {_window(data, split)} | {rows} | `{sha}` |")
    lines += [f"- {key}: {value}" for key, value in data.items() if key not in _DATA_KEYS]
    return lines


def _metrics_section(
    task: str,
    challenger: Mapping[str, float],
    champion: Mapping[str, float] | None,
    bootstrap: BootstrapResult | None,
) -> list[str]:
    lines = [
        "| Metric | Better | Challenger | Champion | Difference (challenger - champion) |",
        "|---|---|---:|---:|---:|",
    ]
    listed = metric_names(task)
    for name in [m for m in listed if m in challenger] + sorted(set(challenger) - set(listed)):
        new = challenger[name]
        old = None if champion is None else champion.get(name)
        diff = None if old is None else new - old
        better = get_metric(name).better
        lines.append(f"| {name} | {better} | {_fmt(new)} | {_fmt(old)} | {_fmt(diff, '+.4f')} |")
    if bootstrap is not None:
        lines += [
            "",
            f"Paired bootstrap on `{bootstrap.metric}` ({bootstrap.resamples} resamples of the "
            f"holdout rows, positive = challenger better): improvement "
            f"{bootstrap.observed_diff:+.4f}, {bootstrap.confidence:.0%} CI "
            f"[{bootstrap.low:.4f}, {bootstrap.high:.4f}].",
        ]
    return lines


def _thresholds_section(gates: GatesConfig) -> list[str]:
    direction = "at least" if metric_direction(gates.primary_metric) > 0 else "at most"
    boot = gates.bootstrap
    lines = [
        f"- primary metric: `{gates.primary_metric}`",
        f"- floor: challenger {direction} {gates.floor:g}",
        f"- min_improvement: bootstrap CI lower bound must be greater than "
        f"{gates.min_improvement:g}",
        f"- bootstrap: {boot.resamples} resamples, {boot.confidence:.0%} confidence, "
        f"seed {boot.seed}",
    ]
    lines += [
        f"- guardrail `{m}`: may not be worse than the champion by more than {g.tolerance:g}"
        for m, g in gates.guardrails.items()
    ]
    if gates.slices is not None:
        sl = gates.slices
        lines.append(
            f"- slices `{', '.join(sl.columns)}`: on every group with at least {sl.min_rows} "
            f"rows, the {gates.slice_metric} CI upper bound of (challenger - champion) must "
            f"not be below -{sl.tolerance:g}"
        )
    if gates.max_latency_ms_per_1k is not None:
        lines.append(f"- max latency: {gates.max_latency_ms_per_1k:g} ms per 1,000 rows")
    lines += [f"- extra check: `{path}`" for path in gates.extra_checks]
    return lines


def _limitations_section(pipeline: PipelineConfig, holdout_rows: Any) -> list[str]:
    windows = pipeline.windows
    lines = [
        f"- The holdout is the most recent {windows.holdout_days} day(s) "
        f"({holdout_rows} rows) after {windows.training_days} training day(s): it measures "
        "one recent period, not seasonality or what comes next.",
        "- The bootstrap interval assumes independent rows; repeated entities or days that "
        "move together make the true uncertainty wider than shown.",
        "- Both models are scored on this run's holdout only; the champion's score here can "
        "differ from the one recorded when it was promoted.",
    ]
    if pipeline.task == "classification":
        lines.append(
            "- accuracy and f1 use a fixed 0.5 threshold; the serving threshold may differ."
        )
    lines.append("- Latency is measured on the training worker, not on the serving infrastructure.")
    if pipeline.source.kind == "synthetic":
        lines.append(
            "- The data are SYNTHETIC demo data from the embedded generator: these numbers "
            "say nothing about any real population."
        )
    return lines


def _cell(value: float | None) -> str:
    return _fmt(value)


def _slices_section(report: SliceReport) -> list[str]:
    lines = [
        f"`{report.metric}` per group of the holdout. A group with at least {report.min_rows} "
        "rows is judged on a paired bootstrap of its rows: it fails when the CI upper bound "
        f"of (challenger - champion), positive = challenger better, is below "
        f"-{report.tolerance:g}. CIs are {report.confidence:.2%} each (Bonferroni over "
        f"{max(len(report.judged), 1)} judged group(s), {report.family_confidence:.0%} "
        "together).",
        "",
        "| Column | Group | Rows | Champion | Challenger | Difference [CI] | Judged | Verdict |",
        "|---|---|---:|---:|---:|---|---|---|",
    ]
    for r in report.results:
        diff = "n/a"
        if r.diff is not None:
            diff = f"{r.diff:+.4f} [{r.low:+.4f}, {r.high:+.4f}]"
        elif r.challenger is not None and r.champion is not None:
            point = metric_direction(report.metric) * (r.challenger - r.champion)
            diff = f"{point:+.4f}"
        prefix = "" if not r.judged else "pass: " if r.passed else "**FAIL**: "
        verdict = prefix + r.note
        judged = "judged" if r.judged else "reported"
        lines.append(
            f"| {r.column} | {r.group} | {r.rows} | {_cell(r.champion)} | "
            f"{_cell(r.challenger)} | {diff} | {judged} | {verdict} |"
        )
    for column, rest in report.omitted.items():
        lines.append(
            f"\n- `{column}`: {rest['groups']} more group(s) with {rest['rows']} rows in all, "
            "beyond gates.slices.max_groups: neither listed nor judged."
        )
    return lines


def _fairness_section(report: SliceReport) -> list[str]:
    if not report.fairness:
        return ["No sensitive column named (gates.slices.sensitive)."]
    lines = [
        f"- sensitive columns: {', '.join(f'`{f.column}`' for f in report.fairness)}",
        f"- metric: `{report.metric}`; gaps are between groups with at least "
        f"{report.min_rows} rows where it is defined.",
    ]
    for f in report.fairness:
        lines += [
            "",
            f"### `{f.column}`",
            "",
            "| Group | Rows | Challenger | Champion |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| {g} | {v['rows']} | {_cell(v['challenger'])} | {_cell(v['champion'])} |"
            for g, v in f.groups.items()
        ]
        lines.append("")
        for whose, gap, worst, best in (
            ("challenger", f.challenger_gap, f.challenger_worst, f.challenger_best),
            ("champion", f.champion_gap, f.champion_worst, f.champion_best),
        ):
            if whose == "champion" and not report.has_champion:
                lines.append("- champion: none (first model)")
            elif gap is None:
                lines.append(
                    f"- {whose}: largest gap not computed (fewer than two groups with "
                    f"{report.min_rows} rows and a defined {report.metric})"
                )
            else:
                lines.append(
                    f"- {whose}: largest gap between groups {gap:.4f} "
                    f"(worst `{worst}`, best `{best}`)"
                )
    return lines


def _explanations_section(explanations: Explanations | str) -> list[str]:
    if isinstance(explanations, str):
        return [f"Not computed: {explanations}"]
    ex = explanations
    lines = [
        f"Permutation importance on {ex.rows} holdout rows ({ex.n_repeats} repeats, seed "
        f"{ex.seed}): the drop in `{ex.metric}` when one feature is shuffled (positive = the "
        "model relies on it). Plot: `evaluation/permutation_importance.png`.",
        "",
        "| Feature | Challenger (mean ± std) | Champion (mean ± std) |",
        "|---|---:|---:|",
    ]
    old = {f.feature: f for f in ex.champion or []}
    for f in ex.challenger:
        prev = old.get(f.feature)
        champ = "n/a" if prev is None else f"{prev.mean:.4f} ± {prev.std:.4f}"
        lines.append(f"| {f.feature} | {f.mean:.4f} ± {f.std:.4f} | {champ} |")
    lines.append("")
    if not ex.changes:
        lines.append("Changed most: no champion to compare with.")
    else:
        from continuous_training.explanations import TOP_CHANGES

        lines.append("Changed most between champion and challenger:")
        lines += [
            f"- `{c.feature}`: {c.champion:.4f} -> {c.challenger:.4f} ({c.change:+.4f})"
            for c in ex.changes[:TOP_CHANGES]
        ]
    return lines


def _evidence_sections(
    slices: SliceReport | None, explanations: Explanations | str | None
) -> list[str]:
    out: list[str] = []
    if slices is not None:
        out += ["## Slices", *_slices_section(slices), ""]
        out += ["## Fairness", *_fairness_section(slices), ""]
    if explanations is not None:
        out += ["## Explanations", *_explanations_section(explanations), ""]
    return out


def _search_section(search: Mapping[str, Any] | None) -> list[str]:
    """The hyperparameter search behind the candidate (`model.search`); nothing without one."""
    if not search:
        return []
    metric = search.get("metric", "score")
    stopped = search.get("stopped_by")
    budget = (
        f"n_trials={search.get('n_trials')}"
        if stopped == "n_trials"
        else f"timeout_minutes={search.get('timeout_minutes')}"
    )
    defaults = search.get("defaults_score")
    best = ", ".join(f"`{k}={v!r}`" for k, v in sorted(search.get("best_params", {}).items()))
    return [
        "## Search",
        f"- trials: {search.get('trials')} ({search.get('complete')} complete, "
        f"{search.get('pruned')} pruned, {search.get('failed')} failed); stopped by "
        f"{stopped} ({budget}); {search.get('seconds', 0.0):.1f} s",
        f"- sampler: {search.get('sampler')} (seed {search.get('seed')}); "
        f"pruner: {search.get('pruner')}",
        f"- best params (trial {search.get('best_trial')}): {best or 'none'}",
        f"- best validation {metric}: {_fmt(search.get('best_score'))}"
        + ("" if defaults is None else f" (the YAML's params, trial 0: {_fmt(defaults)})"),
        f"- validation: {search.get('validation_rows')} rows from "
        f"{search.get('validation_start')} to the holdout start; trials fitted on "
        f"{search.get('fit_rows')} earlier rows; the best params refitted on the whole "
        "training part. The holdout was never seen by the search.",
        f"- optimisation history: `{search.get('plot')}` in the candidate's MLflow run; "
        "each trial is a nested run of it",
        "",
    ]


def render_model_card(
    *,
    pipeline: PipelineConfig,
    model_name: str,
    challenger_version: str | int | None,
    champion_version: str | int | None,
    data: Mapping[str, Any],
    challenger_metrics: Mapping[str, float],
    champion_metrics: Mapping[str, float] | None,
    decision: GateDecision,
    bootstrap: BootstrapResult | None,
    slices: SliceReport | None = None,
    explanations: Explanations | str | None = None,
    search: Mapping[str, Any] | None = None,
) -> str:
    """A markdown model card for one challenger and its gate decision.

    `slices` adds the Slices and Fairness sections; `explanations` (or the reason it was
    not computed) the Explanations section; `search` the summary of `model.search`
    (search.SearchResult.summary()), if one ran.

    `data` keys read: train_/holdout_ `rows`, `sha256`, and `window` (a (start, end) pair or
    a string) or `start`/`end`; any other key is listed under Data as is.
    """
    verdict = "PASSED (promote)" if decision.passed else "REJECTED (keep the champion)"
    champion = "none (first model)" if champion_version is None else f"version {champion_version}"
    features = pipeline.features
    out = [
        f"# Model card: {model_name} version {challenger_version}",
        "",
        "## Model",
        f"- pipeline: `{pipeline.name}` ({pipeline.task}) - {pipeline.description or 'n/a'}",
        f"- owner: {pipeline.owner}",
        f"- estimator: `{pipeline.model.estimator}` with params `{pipeline.model.params}`",
        f"- target: `{pipeline.target}`; time column: `{pipeline.time_column}`",
        f"- challenger: version {challenger_version}",
        f"- champion: {champion}",
        "",
        "## Data",
        f"- source: `{pipeline.source.kind}`",
        "",
        *_data_section(data),
        "",
        "## Features",
        f"- numeric: {', '.join(features.numeric) or 'none'}",
        f"- categorical: {', '.join(features.categorical) or 'none'}",
        "",
        *_search_section(search),
        "## Metrics",
        *_metrics_section(pipeline.task, challenger_metrics, champion_metrics, bootstrap),
        "",
        power_statement(bootstrap, pipeline.gates, has_champion=champion_metrics is not None).text,
        "",
        *_evidence_sections(slices, explanations),
        "## Thresholds",
        *_thresholds_section(pipeline.gates),
        "",
        "## Decision",
        f"**{verdict}**",
        "",
        f"Reason: {decision.reason}",
        "",
        *[f"- [{'x' if c.passed else ' '}] `{c.name}`: {c.detail}" for c in decision.checks],
        "",
        "## Limitations",
        *_limitations_section(pipeline, data.get("holdout_rows", "n/a")),
    ]
    return "\n".join(out) + "\n"


def with_final_section(card: str, final: dict[str, Any]) -> str:
    """The card as evaluated, plus what was finally done (a retry replaces, never repeats)."""
    body = card.split(FINAL_HEADING)[0].rstrip()
    lines = [
        FINAL_HEADING,
        f"- decision: **{final['decision']}**" + (" (dry run)" if final["dry_run"] else ""),
        f"- reason: {final['reason']}",
        f"- trigger: {final['trigger']}; Airflow run `{final['airflow_run_id']}`",
    ]
    if final["promoted"]:
        lines.append(f"- replaced champion version: {final['replaced_version'] or 'none'}")
    return body + "\n\n" + "\n".join(lines) + "\n"


__all__ = ["FINAL_HEADING", "render_model_card", "with_final_section"]
