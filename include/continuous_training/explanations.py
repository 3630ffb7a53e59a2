"""Permutation importance of both models on the holdout, and the plot of it.

scikit-learn's `permutation_importance` on the registered pipelines (raw feature columns in,
so a categorical feature is permuted as one column), scored with the primary metric as this
project defines it (`metrics.metric_value`), signed so that a positive importance always
means "shuffling this feature makes the model worse". Rows are a seeded sample of at most
`gates.explanations.max_rows`, so the cost is bounded whatever the holdout's size.

Evidence for the card only: it never decides. No Airflow, no MLflow.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from continuous_training.metrics import EvaluationError, metric_direction, metric_value

if TYPE_CHECKING:
    import pandas as pd

    from continuous_training.config import ExplanationsConfig

PLOT_PATH = "evaluation/permutation_importance.png"
TOP_CHANGES = 5


@dataclass(frozen=True)
class FeatureImportance:
    feature: str
    mean: float
    std: float


@dataclass(frozen=True)
class ImportanceChange:
    feature: str
    champion: float
    challenger: float
    change: float  # challenger - champion


@dataclass(frozen=True)
class Explanations:
    metric: str
    rows: int
    n_repeats: int
    seed: int
    challenger: list[FeatureImportance]  # most important first
    champion: list[FeatureImportance] | None
    changes: list[ImportanceChange]  # largest absolute change first

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _scorer(metric: str, task: str) -> Any:
    from continuous_training.training import predict_scores

    direction = metric_direction(metric)

    def score(estimator: Any, X: Any, y: Any) -> float:
        return direction * metric_value(metric, y, predict_scores(estimator, X, task))

    return score


def permutation_importances(
    model: Any,
    X: pd.DataFrame,
    y: Any,
    *,
    metric: str,
    task: str,
    n_repeats: int,
    seed: int,
) -> list[FeatureImportance]:
    """Mean and std of the drop in `metric` when each column of `X` is shuffled."""
    from sklearn.inspection import permutation_importance
    from threadpoolctl import threadpool_limits

    # one thread, as for latency: OpenMP pools on a busy worker make many small predicts
    # far slower than one thread doing them in turn
    with threadpool_limits(limits=1):
        result = permutation_importance(
            model, X, y, scoring=_scorer(metric, task), n_repeats=n_repeats, random_state=seed
        )
    found = [
        FeatureImportance(str(name), float(mean), float(std))
        for name, mean, std in zip(
            X.columns, result.importances_mean, result.importances_std, strict=True
        )
    ]
    return sorted(found, key=lambda f: (-f.mean, f.feature))


def explain(
    config: ExplanationsConfig,
    *,
    metric: str,
    task: str,
    X: pd.DataFrame,
    y: Any,
    challenger_model: Any,
    champion_model: Any | None,
) -> Explanations:
    """Permutation importance of both models on the same seeded sample of the holdout."""
    import numpy as np

    y = np.asarray(y)
    if len(X) != y.size:
        raise EvaluationError(f"explanations: {len(X)} feature rows but {y.size} labels")
    if len(X) > config.max_rows:
        keep = np.sort(np.random.default_rng(config.seed).permutation(len(X))[: config.max_rows])
        X, y = X.iloc[keep], y[keep]
    kwargs = {"metric": metric, "task": task, "n_repeats": config.n_repeats, "seed": config.seed}
    new = permutation_importances(challenger_model, X, y, **kwargs)
    old = None
    if champion_model is not None:
        old = permutation_importances(champion_model, X, y, **kwargs)
    changes: list[ImportanceChange] = []
    if old is not None:
        before = {f.feature: f.mean for f in old}
        changes = [
            ImportanceChange(f.feature, before[f.feature], f.mean, f.mean - before[f.feature])
            for f in new
        ]
        changes.sort(key=lambda c: (-abs(c.change), c.feature))
    return Explanations(
        metric=metric,
        rows=len(X),
        n_repeats=config.n_repeats,
        seed=config.seed,
        challenger=new,
        champion=old,
        changes=changes,
    )


def plot_importance(explanations: Explanations, path: str | Path) -> None:
    """Horizontal bars of mean +- std importance, challenger beside champion, to a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # headless workers have no display
    import matplotlib.pyplot as plt
    import numpy as np

    features = [f.feature for f in reversed(explanations.challenger)]  # top at the top
    models = [("challenger", explanations.challenger)]
    if explanations.champion is not None:
        models.append(("champion", explanations.champion))
    height = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.45 * len(features) * len(models)))
    try:
        positions = np.arange(len(features))
        for i, (name, found) in enumerate(models):
            by_name = {f.feature: f for f in found}
            ax.barh(
                positions + (i - (len(models) - 1) / 2) * height,
                [by_name[f].mean for f in features],
                height=height,
                xerr=[by_name[f].std for f in features],
                label=name,
                capsize=2,
            )
        ax.set_yticks(positions, features)
        ax.axvline(0.0, color="grey", linewidth=0.8)
        ax.set(
            title=f"Permutation importance on the holdout ({explanations.rows} rows)",
            xlabel=f"drop in {explanations.metric} when shuffled (mean +- std, "
            f"{explanations.n_repeats} repeats)",
        )
        ax.legend(loc="lower right")
        fig.tight_layout()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", dpi=100)
    finally:
        plt.close(fig)  # workers are long-lived: never leak figures


__all__ = [
    "PLOT_PATH",
    "Explanations",
    "FeatureImportance",
    "ImportanceChange",
    "explain",
    "permutation_importances",
    "plot_importance",
]
