"""Holdouts and gate settings shared by the tests of metrics, bootstrap, gate, card and plots.

Real numbers on synthetic arrays: labels with a strong and a weak model scored on the same
rows, so every test compares two models as the evaluate step does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from continuous_training.bootstrap import BootstrapResult
from continuous_training.config import GatesConfig


def classification(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, a strong challenger and a weak champion (same rows)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    signal = np.where(y == 1, 1.0, -1.0)
    strong = 1 / (1 + np.exp(-(1.5 * signal + rng.normal(0, 1, n))))
    weak = 1 / (1 + np.exp(-(0.6 * signal + rng.normal(0, 1, n))))
    return y, strong, weak


def regression(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.normal(10, 3, n)
    return y, y + rng.normal(0, 1, n), y + rng.normal(0, 2, n)


def demo_holdout(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two strongly correlated models, AUC 0.81 vs 0.80, as the demo's retrains."""
    from scipy import stats

    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.2).astype(int)
    noise = rng.standard_normal(rows)
    mu_old, mu_new = (np.sqrt(2) * stats.norm.ppf(a) for a in (0.80, 0.81))
    other = rng.standard_normal(rows)
    new = 0.94 * noise + np.sqrt(1 - 0.94**2) * other + mu_new * y
    old = noise + mu_old * y
    # squash to probabilities: AUC is rank-based, so this changes nothing it measures
    return y, 1 / (1 + np.exp(-new)), 1 / (1 + np.exp(-old))


def gates(**overrides: object) -> GatesConfig:
    base: dict[str, object] = {
        "primary_metric": "roc_auc",
        "floor": 0.65,
        "min_improvement": 0.005,
        "guardrails": {"log_loss": {"tolerance": 0.02}},
        "max_latency_ms_per_1k": 500,
    }
    return GatesConfig(**{**base, **overrides})


def bootstrap_result(low: float, high: float, observed: float | None = None) -> BootstrapResult:
    mid = (low + high) / 2 if observed is None else observed
    return BootstrapResult("roc_auc", mid, low, high, 0.95, 1000)


def fitted_pipeline(
    task: str, informative: float, seed: int = 0
) -> tuple[Any, pd.DataFrame, np.ndarray]:
    """A real sklearn pipeline on raw columns: `x_signal` carries the label, `x_noise` not."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(seed)
    n = 3000
    X = pd.DataFrame(
        {
            "x_signal": rng.normal(0, 1, n),
            "x_noise": rng.normal(0, 1, n),
            "region": rng.choice(["north", "south"], n),
        }
    )
    latent = informative * X["x_signal"].to_numpy() + rng.normal(0, 1, n)
    if task == "classification":
        y = (latent > 0).astype(int)
        estimator: Any = LogisticRegression()
    else:
        y = latent
        estimator = LinearRegression()
    pre = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore"), ["region"])], remainder="passthrough"
    )
    model = Pipeline([("pre", pre), ("est", estimator)]).fit(X, y)
    return model, X, y
