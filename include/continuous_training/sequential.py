"""Live evidence for a shadow challenger: an always-valid confidence sequence, day by day.

A challenger rejected for want of holdout evidence keeps being scored in shadow. Each complete
prediction date gives ONE observation: the paired difference of the primary metric
(challenger minus champion, signed so that positive = challenger better) on that date's
labelled rows. The decision is looked at every day, so a fixed-sample interval recomputed
daily would promote a no-better challenger far more often than its nominal level: at a
daily look, sooner or later the fixed interval happens to sit above the threshold. A
confidence sequence (CS) covers the true mean at every day at once, so looking daily, or
stopping the moment it clears, costs nothing in error rate.

Which CS, and why
-----------------
The obvious candidate, the asymptotic CS of Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas,
"Time-uniform central limit theory and asymptotic confidence sequences" (Ann. Statist.
2024; arXiv:2103.06476), is the known-variance normal-mixture boundary with the sample
standard deviation plugged in. Its guarantee is asymptotic, and with the few days a
decision may rest on (gates.live_evidence.min_days, 14 by default) a standard deviation
from 14 values is often well below the truth, exactly when the interval then looks
tightest. `bench/live_evidence_simulation.py` runs both on the same simulated days (2,000
years at the demo's volume, a challenger truly at min_improvement, daily looks from day 14):
the plug-in CS promoted 2.65% of them (Monte-Carlo se 0.36%), above its nominal 2.5%; the
one below promoted 1.65%; a fixed-sample t-interval looked at daily promoted 18.55%.

The nonasymptotic bounds for bounded data (Howard, Ramdas, McAuliffe & Sekhon,
"Time-uniform, nonparametric, nonasymptotic confidence sequences", Ann. Statist. 2021)
pay for the whole range an observation could take. A daily AUC difference lies in
[-1, 1] but has a standard deviation of about 0.012 at the demo's volume: a bound scaled
to the range (sub-Gaussian sigma 1 for [-1, 1]) is some 80 times too wide to ever see a
0.005 improvement within a year.

So this module uses the CS for a Gaussian mean with UNKNOWN variance: the sequential
t-test of Lai ("On confidence sequences", Ann. Statist. 4(2), 1976) in the form of Wang &
Ramdas, "Anytime-valid t-tests and confidence sequences for Gaussian means with unknown
variance" (Sequential Analysis, 2025; arXiv:2310.03722): a Gaussian mixture over the
standardized effect delta = (mu' - mu) / sigma and the right-Haar mixture over sigma. The
variance is integrated out, never plugged in, so the interval is exactly valid at every
day count when the daily differences are i.i.d. normal; a daily AUC difference on a few
hundred rows is a U-statistic and close to normal, which the simulation checks.

The closed form (derived here from that construction, so it can be checked line by line):
for observations x_1..x_t, a candidate mean mu, y_i = x_i - mu and u = t * ybar^2 /
sum(y_i^2) (a function of the scale-invariant statistic only), integrating
sigma^-t exp(-sum(y_i - delta sigma)^2 / (2 sigma^2)) over delta ~ N(0, c^2) and over sigma
with d sigma / sigma, and dividing by the same at delta = 0, gives the test martingale

    M_t(mu) = (1 + t c^2)^(-1/2) * (1 - u * t c^2 / (1 + t c^2))^(-t/2)

(in the filtration of the scale-invariant statistics, where Ville's inequality applies:
P(exists t: M_t(mu_true) >= 1/alpha) <= alpha). M_t(mu) < 1/alpha is u < k_t with

    k_t = (1 + t c^2) / (t c^2) * (1 - (alpha^2 / (1 + t c^2))^(1/t)),

and with SS = sum (x_i - xbar)^2 (so sum(y_i^2) = SS + t (xbar - mu)^2) the CS is

    xbar -+ sqrt(k_t * SS / (t * (1 - k_t)))        (all of R while k_t >= 1).

For large t it is xbar -+ s * sqrt(2 log(sqrt(1 + t c^2) / alpha) / t): the normal-mixture
boundary of Howard et al. 2021 (and of the asymptotic CS) with the mixture variance c^2 in
units of sigma, so c^2 is tuned as rho^2 is there: c^2 = (-2 log alpha + log(-2 log alpha +
1)) / t*, the closed-form approximation (used for the asymptotic CS) of the rho^2 that makes
the boundary narrowest at t* observations; numerically it is within 0.01% of the optimum.
The lower bound is one side of a two-sided CS at level alpha = 1 - confidence, so a
no-better challenger clears it with probability at most about alpha / 2 over ALL days:
the error rate the holdout gate has with the lower end of its two-sided bootstrap interval.

T_STAR below is 60 days. A challenger worth promoting on live evidence is one the holdout
could not tell apart, so its daily edge over min_improvement is small next to the day-to-day
noise and it takes weeks to months to show. Simulated at the demo's volume (300 rows a day,
AUC 0.80, 300 runs of a year), the median days to promotion for t* = 30 / 60 / 90 / 180 were
52 / 52 / 54 / 60 for a +0.01 challenger, 14 / 14 / 16 / 20 for +0.02, and the share
promoted within the year of a +0.0075 one 0.84 / 0.87 / 0.88 / 0.88: 60 loses little at
either end, and the choice is not delicate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from continuous_training.errors import BadInputError

if TYPE_CHECKING:
    import numpy as np

# Day count at which the boundary is tightest (the t* of the mixture; see the module doc).
T_STAR = 60.0
# The demo churn data's share of positives: the labels of the simulated days.
DEMO_POSITIVE_RATE = 0.2
# Within-class correlation of the two models' scores in the simulation. Two models of the same
# data rank rows alike; 0.94 gives a daily AUC-difference standard deviation of about 0.012 at
# 300 rows a day, which is what the shipped gate sees: a bootstrap SE of ~0.0045 on the
# ~2,100-row (7-day) holdout is 0.0045 * sqrt(7) ~ 0.012 per 300-row day.
DEMO_SCORE_CORRELATION = 0.94
# Simulated days are built in blocks of at most this many scores per model (~32 MB).
_CHUNK_CELLS = 4_000_000


class LiveEvidenceError(BadInputError):
    """Observations or parameters of the live-evidence judgement are unusable."""


@dataclass(frozen=True)
class LiveEvidence:
    """Where the live evidence for a shadow challenger stands after `days` observations."""

    days: int
    mean: float
    low: float
    high: float
    confidence: float
    min_improvement: float
    min_days: int
    cleared: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        # JSON has no infinity or NaN: an unbounded end (too few days) is written as null
        return {
            key: (None if isinstance(value, float) and not math.isfinite(value) else value)
            for key, value in asdict(self).items()
        }


def mixture_variance(confidence: float, t_star: float = T_STAR) -> float:
    """c^2 that makes the boundary (nearly) narrowest at `t_star` observations."""
    log_term = -2.0 * math.log(1.0 - confidence)
    return (log_term + math.log(log_term + 1.0)) / t_star


def _half_widths(
    t: np.ndarray, ss: np.ndarray, confidence: float, t_star: float = T_STAR
) -> np.ndarray:
    """Half-width of the CS at `t` observations whose squared deviations sum to `ss`.

    Vectorised (any shapes that broadcast) so that the simulation runs the very code that
    `judge` runs. inf where the CS is still all of R (fewer than 2 observations, or k_t >= 1).
    """
    import numpy as np

    alpha = 1.0 - confidence
    c2 = mixture_variance(confidence, t_star)
    t = np.asarray(t, dtype=float)
    ss = np.maximum(np.asarray(ss, dtype=float), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        tc2 = t * c2
        # 1 - (alpha^2 / (1 + t c^2))^(1/t) without cancellation when t is large
        k = -np.expm1((2.0 * math.log(alpha) - np.log1p(tc2)) / t) * (1.0 + tc2) / tc2
        half = np.sqrt(k * ss / (t * (1.0 - k)))
    return np.where((t >= 2) & (k < 1.0), half, np.inf)


def _as_observations(observations: Sequence[float]) -> np.ndarray:
    import numpy as np

    try:
        x = np.asarray(observations, dtype=float).ravel()
    except (TypeError, ValueError) as exc:
        raise LiveEvidenceError(f"daily differences must be numbers: {exc}") from None
    if not np.isfinite(x).all():
        raise LiveEvidenceError("daily differences contain NaN or infinite values")
    return x


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise LiveEvidenceError(f"confidence must be in (0, 1), got {confidence}")


def confidence_sequence(
    observations: Sequence[float], confidence: float, *, t_star: float = T_STAR
) -> tuple[float, float]:
    """The CS for the mean daily difference after all of `observations` (one per day).

    Valid simultaneously at every day count (see the module doc); (-inf, inf) until it has
    at least two observations and a finite boundary.
    """
    import numpy as np

    _check_confidence(confidence)
    x = _as_observations(observations)
    if x.size == 0:
        return -math.inf, math.inf
    mean = float(x.mean())
    half = float(
        _half_widths(np.array(x.size), np.array(((x - mean) ** 2).sum()), confidence, t_star)
    )
    return mean - half, mean + half


def judge(
    observations: Sequence[float],
    *,
    min_improvement: float,
    confidence: float,
    min_days: int,
    t_star: float = T_STAR,
) -> LiveEvidence:
    """Whether the live evidence so far clears `min_improvement`: the daily look.

    Cleared iff there are at least `min_days` observations and the CS's lower bound is
    strictly greater than `min_improvement` (strictly, as the holdout gate: a tie keeps the
    champion).
    """
    if min_days < 1:
        raise LiveEvidenceError(f"min_days must be at least 1, got {min_days}")
    x = _as_observations(observations)
    low, high = confidence_sequence(x, confidence, t_star=t_star)
    days = int(x.size)
    mean = float(x.mean()) if days else math.nan
    interval = f"{confidence:.0%} confidence sequence [{low:.4f}, {high:.4f}]"
    seen = f"mean daily improvement {mean:+.4f} over {days} day(s), {interval}"
    if days < min_days:
        cleared = False
        reason = f"{seen}: fewer than min_days={min_days} days, not judged yet"
    else:
        cleared = low > min_improvement
        verdict = "clears" if cleared else "does not clear"
        reason = f"{seen} {verdict} min_improvement {min_improvement:g}"
    return LiveEvidence(
        days=days,
        mean=mean,
        low=low,
        high=high,
        confidence=confidence,
        min_improvement=min_improvement,
        min_days=min_days,
        cleared=cleared,
        reason=reason,
    )


# --------------------------------------------------------------------------- simulation


def daily_auc_differences(
    rng: np.random.Generator,
    runs: int,
    days: int,
    rows_per_day: int,
    champion_auc: float,
    challenger_auc: float,
    positive_rate: float,
    correlation: float,
) -> np.ndarray:
    """(runs x days) challenger-minus-champion ROC AUC, each on one simulated day's rows.

    Binormal scores: within each class a model's score is N(0, 1) shifted by mu for the
    positives, and AUC = Phi(mu / sqrt(2)), so mu = sqrt(2) Phi^-1(AUC) sets each model's
    true AUC exactly. The challenger's noise is `correlation` times the champion's plus an
    independent part. Days without both classes are NaN (no observation).
    """
    import numpy as np
    from scipy import stats

    mu0 = math.sqrt(2.0) * stats.norm.ppf(champion_auc)
    mu1 = math.sqrt(2.0) * stats.norm.ppf(challenger_auc)
    shape = (runs, days, rows_per_day)
    y = rng.random(shape) < positive_rate
    noise = rng.standard_normal(shape)
    champion = noise + mu0 * y
    challenger = correlation * noise + math.sqrt(1.0 - correlation**2) * rng.standard_normal(shape)
    challenger += mu1 * y
    n1 = y.sum(axis=-1)
    n0 = rows_per_day - n1

    def auc(scores: np.ndarray) -> np.ndarray:
        # Mann-Whitney: the share of (positive, negative) pairs the positive ranks above. One
        # sort per day; the scores are continuous, so there are no ties to half-count.
        ordered = np.take_along_axis(y, np.argsort(scores, axis=-1), axis=-1)
        negatives_below = np.cumsum(~ordered, axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (negatives_below * ordered).sum(axis=-1) / (n1 * n0)

    diff = auc(challenger) - auc(champion)
    return np.where((n1 > 0) & (n0 > 0), diff, np.nan)


def first_clearing_day(
    diffs: np.ndarray,
    *,
    min_improvement: float,
    confidence: float,
    min_days: int,
    t_star: float = T_STAR,
) -> np.ndarray:
    """Per run (row of `diffs`, one column a day, NaN = no observation that day): the first
    day (1-based) at which `judge` on the observations so far would clear; 0 if never.

    The same decision as calling `judge` after every day, computed for all days at once from
    running sums (a unit test checks the two agree).
    """
    import numpy as np

    valid = ~np.isnan(diffs)
    x = np.where(valid, diffs, 0.0)
    n = np.cumsum(valid, axis=1)
    total = np.cumsum(x, axis=1)
    # deviations from each run's first value keep the running sum of squares from cancelling
    shift = np.nanmean(diffs[:, :1], axis=1, keepdims=True)
    shift = np.where(np.isnan(shift), 0.0, shift)
    centred = np.where(valid, diffs - shift, 0.0)
    csum = np.cumsum(centred, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ss = np.cumsum(centred**2, axis=1) - csum**2 / n
        mean = total / n
    low = mean - _half_widths(n, ss, confidence, t_star)
    cleared = (n >= min_days) & (low > min_improvement)
    first = cleared.argmax(axis=1) + 1
    return np.where(cleared.any(axis=1), first, 0)


def simulate_live_promotion(
    true_improvement: float,
    rows_per_day: int,
    days: int,
    runs: int,
    seed: int,
    base_auc: float = 0.80,
    positive_rate: float = DEMO_POSITIVE_RATE,
    min_improvement: float = 0.005,
    confidence: float = 0.95,
    min_days: int = 14,
    correlation: float = DEMO_SCORE_CORRELATION,
    t_star: float = T_STAR,
    checkpoints: Sequence[int] = (),
) -> dict[str, Any]:
    """How often, and how soon, daily looks at the live evidence promote a challenger.

    Each run is `days` days of `rows_per_day` labelled rows scored by a champion of ROC AUC
    `base_auc` and a challenger of `base_auc + true_improvement`; each day's paired AUC
    difference is one observation, and the challenger is promoted on the first day `judge`
    clears. With `true_improvement <= min_improvement` every promotion is a false one.
    `checkpoints` (day counts) add the share promoted by each of those days.
    """
    import numpy as np

    if not 0.5 <= base_auc < 1.0 or not 0.0 < base_auc + true_improvement < 1.0:
        raise LiveEvidenceError(
            f"AUCs {base_auc} and {base_auc + true_improvement} must lie in (0, 1)"
        )
    rng = np.random.default_rng(seed)
    chunk = max(1, min(runs, _CHUNK_CELLS // (days * rows_per_day)))
    firsts, sds = [], []
    for start in range(0, runs, chunk):
        count = min(chunk, runs - start)
        diffs = daily_auc_differences(
            rng,
            count,
            days,
            rows_per_day,
            base_auc,
            base_auc + true_improvement,
            positive_rate,
            correlation,
        )
        sds.append(np.nanstd(diffs, axis=1, ddof=1))
        firsts.append(
            first_clearing_day(
                diffs,
                min_improvement=min_improvement,
                confidence=confidence,
                min_days=min_days,
                t_star=t_star,
            )
        )
    first = np.concatenate(firsts)
    promoted = first > 0
    rate = float(promoted.mean())
    return {
        "true_improvement": true_improvement,
        "rows_per_day": rows_per_day,
        "days": days,
        "runs": runs,
        "promotion_rate": rate,
        "median_days_to_promotion": float(np.median(first[promoted])) if promoted.any() else None,
        "false_promotion_rate": rate if true_improvement <= min_improvement else None,
        "daily_sd": float(np.mean(np.concatenate(sds))),
        "promotion_rate_by_day": {
            int(day): float((promoted & (first <= day)).mean()) for day in checkpoints
        },
    }


__all__ = [
    "LiveEvidence",
    "LiveEvidenceError",
    "confidence_sequence",
    "daily_auc_differences",
    "first_clearing_day",
    "judge",
    "mixture_variance",
    "simulate_live_promotion",
]
