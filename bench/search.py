"""`model.search`: the cost of one trial against one plain fit of the same estimator.

The shipped churn pipeline's estimator (HistGradientBoosting, its YAML params) searches
`learning_rate` and `max_leaf_nodes` on the bench's synthetic training days. Two rows:

- a trial without MLflow against a plain `build_model(config).fit` on the same rows a
  trial fits on (the training part less its validation days): what Optuna, scoring the
  validation part and the Pipeline's preprocessing add to a fit;
- a trial logged as a nested MLflow run (params, score, state) against the same plain fit:
  what the evidence of each trial costs on a real tracking server.

The baseline of each trial is a plain fit with that trial's params (trials differ in cost
with their params); each side is the median over the `TRIALS` trials of one seeded search,
in this process, with one BLAS/OpenMP thread on both sides.
"""

from __future__ import annotations

import itertools
import time
from datetime import timedelta
from typing import Any

from fixtures import SCORING_START, churn_config, training_frame
from harness import Context, Row, median, progress, seconds

from tests.servers import mlflow_server_at

TRIALS = 8
VALIDATION_DAYS = 7
GOAL = "~ 1 (a trial is a fit)"


def _pipeline() -> Any:
    from continuous_training.config import SearchConfig

    config = churn_config()
    search = SearchConfig.model_validate(
        {
            "space": {
                "learning_rate": {"type": "float", "low": 0.02, "high": 0.3, "log": True},
                "max_leaf_nodes": {"type": "int", "low": 7, "high": 63},
            },
            "n_trials": TRIALS,
            "timeout_minutes": 60,
            "validation_days": VALIDATION_DAYS,
            "seed": 0,
        }
    )
    return config.model_copy(update={"model": config.model.model_copy(update={"search": search})})


def _trial_seconds(config: Any, train: Any, log_trials: bool) -> tuple[list[float], Any]:
    """Per-trial wall times (from each trial's start to the next's) of one search."""
    from continuous_training import search

    starts: list[float] = []
    original = search._fit_and_score

    def timed(*args: Any, **kwargs: Any) -> float:
        starts.append(time.perf_counter())
        return original(*args, **kwargs)

    search._fit_and_score = timed
    try:
        started = time.perf_counter()
        result = search.run_search(config, train, SCORING_START, log_trials=log_trials)
        ended = time.perf_counter()
    finally:
        search._fit_and_score = original
    # each trial: its fit and score plus everything until the next trial starts (Optuna's
    # sampling, the nested run); the first trial also pays the study's creation
    edges = [started, *starts[1:], ended]
    return [b - a for a, b in itertools.pairwise(edges)], result


def run(ctx: Context) -> list[Row]:
    import os

    import mlflow
    from threadpoolctl import threadpool_limits

    from continuous_training import search, training

    config = _pipeline()
    frame = training_frame(ctx)
    train = frame[frame[config.time_column] < SCORING_START].reset_index(drop=True)
    split = search.validation_split(train, config, SCORING_START)
    X, y = split.fit_part[config.features.all], split.fit_part[config.target]
    threadpool_limits(1)  # one core per side: a loaded host's OpenMP threads add only noise
    progress(f"search: {TRIALS} trials without MLflow")
    bare, result = _trial_seconds(config, train, log_trials=False)
    # the baseline of each trial: a plain fit with that trial's params on the same rows
    progress(f"search: a plain fit of {config.model.estimator} per trial on {len(X):,} rows")
    plain = []
    for trial in result.history:
        model = training.build_model(config, {**config.model.params, **trial["params"]})
        started = time.perf_counter()
        model.fit(X, y)
        plain.append(time.perf_counter() - started)
    fit_s = median(plain)
    ctx.note(
        f"search: {result.trials} trials on {result.fit_rows:,} fitting / "
        f"{result.validation_rows:,} validation rows (validation from "
        f"{SCORING_START - timedelta(days=VALIDATION_DAYS):%Y-%m-%d}); trials "
        f"{', '.join(f'{s:.2f}' for s in bare)} s; plain fits "
        f"{', '.join(f'{s:.2f}' for s in plain)} s; best roc_auc {result.best_score:.4f} "
        f"vs the YAML's params {result.defaults_score:.4f}"
    )
    rows = [
        Row(
            f"search: one trial vs a plain fit of its params on the same {len(X):,} rows, median",
            seconds(median(bare)),
            seconds(fit_s),
            median(bare) / fit_s,
            GOAL,
        )
    ]
    with mlflow_server_at(ctx.workdir / "mlflow-search", dict(os.environ)) as uri:
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment("bench-search")
        progress(f"search: {TRIALS} trials as nested MLflow runs")
        with mlflow.start_run(run_name="bench search"):
            logged, _ = _trial_seconds(config, train, log_trials=True)
    ctx.note(f"search with nested runs: trials {', '.join(f'{s:.2f}' for s in logged)} s")
    rows.append(
        Row(
            "search: one trial logged as a nested MLflow run vs one plain fit, median",
            seconds(median(logged)),
            seconds(fit_s),
            median(logged) / fit_s,
            GOAL,
        )
    )
    return rows
