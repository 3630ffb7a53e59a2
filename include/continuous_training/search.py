"""Hyperparameter search with Optuna: trials on a validation part carved by time, then a refit.

`model.search` in the YAML names a space over the estimator's parameters. Each trial fits
the whole sklearn Pipeline (preprocessing included) on the training part less its newest
`validation_days` and is scored with `gates.primary_metric` on those days. The holdout is
never seen: it stays the one judge of the candidate against the champion. Each trial is a
nested MLflow run under the candidate's run (when a run is active). The caller refits the
best parameters on the whole training part.

The YAML's `model.params` (and the estimator's own defaults for the rest), as far as the
space allows, are the first trial: the best trial is never worse on validation than what
the YAML alone would have trained. The same seed, data and budget give the same trials
(`n_jobs=1`, a seeded sampler, a seeded estimator) unless the timeout cuts the search short.

Core module: no Airflow. Optuna, sklearn and MLflow are imported inside functions.
"""

from __future__ import annotations

import inspect
import logging
import math
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from continuous_training.config import PipelineConfig, SearchConfig, SearchParam
from continuous_training.training import (
    TrainingError,
    build_model,
    estimator_class,
    fit,
    import_estimator,
    predict_scores,
)

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

# An estimator fitted in stages (for `pruner: median`) grows one of these with `warm_start`.
ITERATION_PARAMS = ("max_iter", "n_estimators")
PRUNING_STAGES = 4
HISTORY_PLOT = "search/optimization_history.png"
SUMMARY_PATH = "search/summary.json"
TRIAL_TAG = "ct.search.trial"
STATE_TAG = "ct.search.state"


class _TrialRejected(Exception):
    """The estimator refused one trial's parameters on these data: that trial fails, not all."""


@dataclass(frozen=True)
class ValidationSplit:
    fit_part: pd.DataFrame
    validation: pd.DataFrame
    validation_start: datetime


@dataclass(frozen=True)
class SearchResult:
    """What the search did and found; `summary()` is the small JSON a task hands on."""

    metric: str
    direction: str  # "maximize" | "minimize"
    best_params: dict[str, Any]
    best_score: float
    best_trial: int
    defaults_score: float | None  # trial 0, the YAML's params, if it completed
    trials: int
    complete: int
    pruned: int
    failed: int
    n_trials: int
    timeout_minutes: float
    stopped_by: str  # "n_trials" | "timeout"
    seconds: float
    sampler: str
    pruner: str
    seed: int
    fit_rows: int
    validation_rows: int
    validation_start: str
    history: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("history")
        out["plot"] = HISTORY_PLOT
        return out

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "history": list(self.history)}


# --------------------------------------------------------------------------- checks


def _accepted_params(cls: Any) -> set[str] | None:
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None  # takes anything: let the estimator judge each value
    return {p.name for p in parameters}


def _probe_values(spec: SearchParam) -> list[Any]:
    if spec.type == "categorical":
        return list(spec.choices or [])
    cast = int if spec.type == "int" else float
    return [cast(spec.low), cast(spec.high)]


def check_search(pipeline: PipelineConfig) -> None:
    """The space against the estimator itself: names it takes, values it accepts.

    Needs the estimator imported, so it runs with `training.check_model` in the first task
    of a retrain (the YAML's own shape is checked when it loads). TrainingError names the
    key: `model.search.space.<param>` or `model.search.pruner`.
    """
    search = pipeline.model.search
    if search is None:
        return
    path = pipeline.model.estimator
    cls = estimator_class(pipeline.model.estimator)
    accepted = _accepted_params(cls)
    for name, spec in search.space.items():
        if accepted is not None and name not in accepted:
            raise TrainingError(
                f"model.search.space.{name}: {path} has no parameter {name!r} "
                f"(it takes {', '.join(sorted(accepted - {'self'}))})"
            )
        for value in _probe_values(spec):
            try:
                import_estimator(path, {**pipeline.model.params, name: value}, pipeline.task)
            except TrainingError as exc:
                raise TrainingError(
                    f"model.search.space.{name}: {path} refuses {name}={value!r} "
                    f"from the space: {exc}"
                ) from None
    if search.pruner == "median":
        _iteration_param(pipeline, accepted)


def _iteration_param(pipeline: PipelineConfig, accepted: set[str] | None = None) -> str:
    """The parameter a staged (prunable) fit grows: the estimator needs it and warm_start."""
    if accepted is None:
        accepted = _accepted_params(estimator_class(pipeline.model.estimator)) or set()
    found = [name for name in ITERATION_PARAMS if name in accepted]
    if "warm_start" not in accepted or not found:
        raise TrainingError(
            f"model.search.pruner: median prunes trials fitted in stages, which needs an "
            f"estimator with warm_start and one of {', '.join(ITERATION_PARAMS)}; "
            f"{pipeline.model.estimator} has not: use pruner: none"
        )
    return found[0]


# --------------------------------------------------------------------------- split


def validation_split(
    train: pd.DataFrame, pipeline: PipelineConfig, holdout_start: datetime
) -> ValidationSplit:
    """The newest `validation_days` of the training part score the trials; the rest fits them."""
    search = _config(pipeline)
    start = holdout_start - timedelta(days=search.validation_days)
    times = train[pipeline.time_column]
    fit_part = train[times < start].reset_index(drop=True)
    validation = train[times >= start].reset_index(drop=True)
    where = (
        f"model.search.validation_days={search.validation_days} (validation from "
        f"{start:%Y-%m-%d} to the holdout start {holdout_start:%Y-%m-%d})"
    )
    for name, part in (("fitting", fit_part), ("validation", validation)):
        if part.empty:
            raise TrainingError(f"{where}: the {name} part of the search is empty")
        if pipeline.task == "classification" and part[pipeline.target].nunique() < 2:
            raise TrainingError(
                f"{where}: the {name} part of the search has a single class in target "
                f"{pipeline.target!r}; a longer window or other validation_days is needed"
            )
    return ValidationSplit(fit_part, validation, start)


def _config(pipeline: PipelineConfig) -> SearchConfig:
    if pipeline.model.search is None:
        raise TrainingError("model.search is not set: there is nothing to search")
    return pipeline.model.search


# --------------------------------------------------------------------------- search


def _direction(metric: str) -> str:
    from continuous_training.metrics import metric_direction

    return "maximize" if metric_direction(metric) > 0 else "minimize"


def _suggest(trial: Any, name: str, spec: SearchParam) -> Any:
    if spec.type == "int":
        return trial.suggest_int(name, int(spec.low), int(spec.high), log=spec.log)
    if spec.type == "float":
        return trial.suggest_float(name, float(spec.low), float(spec.high), log=spec.log)
    return trial.suggest_categorical(name, list(spec.choices or []))


def _inside(spec: SearchParam, value: Any) -> bool:
    if spec.type == "categorical":
        return any(value == c and type(value) is type(c) for c in spec.choices or [])
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if spec.type == "int" and not float(value).is_integer():
        return False
    return spec.low <= value <= spec.high


def default_params(pipeline: PipelineConfig) -> dict[str, Any]:
    """The YAML's params (else the estimator's defaults) for the space's names, where inside."""
    search = _config(pipeline)
    estimator = import_estimator(pipeline.model.estimator, pipeline.model.params, pipeline.task)
    current = estimator.get_params(deep=False) if hasattr(estimator, "get_params") else {}
    current = {**current, **pipeline.model.params}
    return {
        name: current[name]
        for name, spec in search.space.items()
        if name in current and _inside(spec, current[name])
    }


def _sampler(search: SearchConfig) -> Any:
    import optuna

    if search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=search.seed)
    return optuna.samplers.TPESampler(seed=search.seed)


def _pruner(search: SearchConfig) -> Any:
    import optuna

    if search.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    return optuna.pruners.NopPruner()


def _score(pipeline: PipelineConfig, model: Any, part: pd.DataFrame) -> float:
    from continuous_training.metrics import metric_value

    scores = predict_scores(model, part[pipeline.features.all], pipeline.task)
    return metric_value(pipeline.gates.primary_metric, part[pipeline.target].to_numpy(), scores)


def _fit_and_score(
    pipeline: PipelineConfig, params: dict[str, Any], split: ValidationSplit, trial: Any
) -> float:
    """One trial: fit on the fitting part, score on validation; in stages when pruning."""
    import optuna

    try:
        model = build_model(pipeline, params)
    except TrainingError as exc:
        raise _TrialRejected(str(exc)) from exc
    X, y = split.fit_part[pipeline.features.all], split.fit_part[pipeline.target]
    if _config(pipeline).pruner != "median":
        try:
            model.fit(X, y)
        except (ValueError, TypeError) as exc:
            raise _TrialRejected(f"{type(exc).__name__}: {exc}") from exc
        return _score(pipeline, model, split.validation)
    iteration = _iteration_param(pipeline)
    estimator = model.named_steps["estimator"]
    total = int(estimator.get_params()[iteration])
    try:
        prepared = model[:-1].fit_transform(X, y)
        for stage in range(1, PRUNING_STAGES + 1):
            estimator.set_params(warm_start=True, **{iteration: max(1, total * stage // 4)})
            estimator.fit(prepared, y)
            value = _score(pipeline, model, split.validation)
            trial.report(value, stage)
            if stage < PRUNING_STAGES and trial.should_prune():
                raise optuna.TrialPruned(f"pruned at stage {stage}: {value:.5f}")
    except (ValueError, TypeError) as exc:
        raise _TrialRejected(f"{type(exc).__name__}: {exc}") from exc
    return value


def _trial_run(pipeline: PipelineConfig, number: int, log_trials: bool) -> AbstractContextManager:
    if not log_trials:
        return nullcontext()
    import mlflow

    return mlflow.start_run(
        run_name=f"{pipeline.name} trial {number}",
        nested=True,
        tags={TRIAL_TAG: str(number), "ct.pipeline": pipeline.name},
    )


def run_search(
    pipeline: PipelineConfig,
    train: pd.DataFrame,
    holdout_start: datetime,
    *,
    log_trials: bool = True,
) -> SearchResult:
    """Optimise the primary metric on the validation part of `train`; trials as nested runs.

    `log_trials`: each trial is a nested MLflow run of the active run (there must be one).
    Raises TrainingError when no trial completes (every parameter set refused).
    """
    import optuna

    search = _config(pipeline)
    split = validation_split(train, pipeline, holdout_start)
    metric = pipeline.gates.primary_metric
    direction = _direction(metric)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction=direction, sampler=_sampler(search), pruner=_pruner(search)
    )
    defaults = default_params(pipeline)
    study.enqueue_trial(defaults, user_attrs={"yaml_defaults": True})
    failures: list[str] = []

    def objective(trial: Any) -> float:
        params = {name: _suggest(trial, name, spec) for name, spec in search.space.items()}
        with _trial_run(pipeline, trial.number, log_trials):
            started = time.perf_counter()
            state, value = "COMPLETE", math.nan
            try:
                value = _fit_and_score(pipeline, {**pipeline.model.params, **params}, split, trial)
            except optuna.TrialPruned:
                state = "PRUNED"
                raise
            except _TrialRejected as exc:
                state = "FAIL"
                failures.append(f"trial {trial.number} {params}: {exc}")
                raise
            finally:
                _log_trial(log_trials, params, metric, value, state, time.perf_counter() - started)
        log.info("trial %d %s: validation %s %.5f", trial.number, params, metric, value)
        return value

    started = time.perf_counter()
    study.optimize(
        objective,
        n_trials=search.n_trials,
        timeout=search.timeout_minutes * 60,
        n_jobs=1,
        catch=(_TrialRejected,),
    )
    seconds = time.perf_counter() - started
    states = [t.state.name for t in study.trials]
    if "COMPLETE" not in states:
        raise TrainingError(
            f"model.search: none of {len(states)} trials of {pipeline.model.estimator} "
            f"completed; first refusal: {failures[0] if failures else 'none'}"
        )
    best = study.best_trial
    first = study.trials[0]
    result = SearchResult(
        metric=metric,
        direction=direction,
        best_params=dict(best.params),
        best_score=float(best.value),
        best_trial=best.number,
        defaults_score=float(first.value) if first.state.name == "COMPLETE" else None,
        trials=len(states),
        complete=states.count("COMPLETE"),
        pruned=states.count("PRUNED"),
        failed=states.count("FAIL"),
        n_trials=search.n_trials,
        timeout_minutes=search.timeout_minutes,
        # optimize() returns before n_trials only when the timeout passed (no stop() here)
        stopped_by="n_trials" if len(states) >= search.n_trials else "timeout",
        seconds=seconds,
        sampler=search.sampler,
        pruner=search.pruner,
        seed=search.seed,
        fit_rows=len(split.fit_part),
        validation_rows=len(split.validation),
        validation_start=split.validation_start.isoformat(),
        history=[
            {"number": t.number, "state": t.state.name, "value": t.value, "params": t.params}
            for t in study.trials
        ],
    )
    log.info(
        "search: %d trials (%s) in %.1fs, stopped by %s; best %s %.5f with %s",
        result.trials,
        f"{result.complete} complete, {result.pruned} pruned, {result.failed} failed",
        seconds,
        result.stopped_by,
        metric,
        result.best_score,
        result.best_params,
    )
    return result


def _log_trial(
    log_trials: bool, params: dict[str, Any], metric: str, value: float, state: str, secs: float
) -> None:
    if not log_trials:
        return
    import mlflow

    mlflow.log_params(params)
    mlflow.set_tag(STATE_TAG, state)
    metrics = {"fit_seconds": secs}
    if not math.isnan(value):
        metrics[f"validation_{metric}"] = value
    mlflow.log_metrics(metrics)


def refit_params(pipeline: PipelineConfig, result: SearchResult) -> dict[str, Any]:
    """What the candidate is refitted with: the YAML's params, the best trial's on top."""
    return {**pipeline.model.params, **result.best_params}


def refit(pipeline: PipelineConfig, result: SearchResult, train: pd.DataFrame, source: str) -> Any:
    """The best parameters fitted on the whole training part (fitting + validation days)."""
    params = refit_params(pipeline, result)
    model = build_model(pipeline, params)
    fit(model, pipeline, train, source, params)
    return model


# --------------------------------------------------------------------------- evidence


def plot_history(result: SearchResult, path: str | Path) -> None:
    """Each trial's validation score and the best so far, by trial number (a PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [h for h in result.history if h["state"] == "COMPLETE"]
    numbers = [h["number"] for h in done]
    values = [h["value"] for h in done]
    pick = max if result.direction == "maximize" else min
    best_so_far = [pick(values[: i + 1]) for i in range(len(values))]
    fig, ax = plt.subplots(figsize=(7, 4))
    try:
        ax.scatter(numbers, values, s=18, label="trial", color="tab:blue")
        ax.step(numbers, best_so_far, where="post", label="best so far", color="tab:red")
        if result.defaults_score is not None:
            ax.axhline(
                result.defaults_score, linestyle="--", color="grey", linewidth=0.8,
                label="YAML params (trial 0)",
            )  # fmt: skip
        ax.set(
            title=f"Optimisation history ({result.trials} trials, stopped by {result.stopped_by})",
            xlabel="trial",
            ylabel=f"validation {result.metric}",
        )
        ax.legend(loc="best")
        fig.tight_layout()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", dpi=100)
    finally:
        plt.close(fig)


def log_search(result: SearchResult) -> None:
    """On the active (candidate) run: best params and score, the summary, the history plot."""
    import tempfile

    import mlflow

    mlflow.log_params({f"search.best.{k}": v for k, v in result.best_params.items()})
    mlflow.log_params(
        {
            "search.trials": result.trials,
            "search.stopped_by": result.stopped_by,
            "search.sampler": result.sampler,
            "search.seed": result.seed,
        }
    )
    metrics = {f"search_best_{result.metric}": result.best_score}
    if result.defaults_score is not None:
        metrics[f"search_defaults_{result.metric}"] = result.defaults_score
    mlflow.log_metrics(metrics)
    mlflow.log_dict(result.to_dict(), SUMMARY_PATH)
    with tempfile.TemporaryDirectory() as tmp:
        plot = Path(tmp) / Path(HISTORY_PLOT).name
        plot_history(result, plot)
        mlflow.log_artifact(str(plot), artifact_path=str(Path(HISTORY_PLOT).parent))


def load_summary(run_id: str) -> dict[str, Any] | None:
    """The summary a candidate run logged (a retry reusing a registered version needs it)."""
    import mlflow

    try:
        full = mlflow.artifacts.load_dict(f"runs:/{run_id}/{SUMMARY_PATH}")
    except Exception:  # no summary: a run from before the search, or a failed log
        return None
    full.pop("history", None)
    return full
