"""How the live-evidence rule behaves at the demo's volume: power, time to promotion, errors.

    python bench/live_evidence_simulation.py [--runs 2000] [--seed 0]

Each run is a year of shadow scoring: 300 labelled rows a day (the demo's volume), a champion
of ROC AUC 0.80, a challenger of 0.80 + the true improvement, one paired AUC difference a
day, and `sequential.judge` looked at every day (`gates.live_evidence` defaults: 95%
confidence, min_improvement 0.005 as in churn.yaml, min_days 14). It prints

- for a +0.01 challenger (one the holdout gate promotes about 20% of the time): the share
  promoted within 26 and 52 weeks and the median weeks to promotion;
- for a no-better challenger (true +0 and true +min_improvement): the share falsely
  promoted under daily looks within 52 weeks, which should be at most (1 - 0.95) / 2;
- for comparison on the same days, the false-promotion rate of a fixed-sample t-interval
  looked at daily and of the plug-in (asymptotic) confidence sequence.

Stand-alone: needs only the package on the path (run from the repository root).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))

import numpy as np
from scipy import stats

from continuous_training import sequential

ROWS_PER_DAY = 300
BASE_AUC = 0.80
MIN_IMPROVEMENT = 0.005
CONFIDENCE = 0.95
MIN_DAYS = 14
WEEKS = 52


def _alternatives(diffs: np.ndarray) -> dict[str, float]:
    """False promotions of two rules the module does not use, on the same simulated days."""
    n = np.cumsum(~np.isnan(diffs), axis=1)
    x = np.nan_to_num(diffs)
    total = np.cumsum(x, axis=1)
    mean = total / n
    sd = np.sqrt(np.maximum(np.cumsum(x**2, axis=1) - total**2 / n, 0) / np.maximum(n - 1, 1))
    looked = n >= MIN_DAYS
    fixed = mean - stats.t.ppf((1 + CONFIDENCE) / 2, np.maximum(n - 1, 1)) * sd / np.sqrt(n)
    # Waudby-Smith et al. (2024): the normal-mixture boundary with the sample sd plugged in
    r2 = sequential.mixture_variance(CONFIDENCE)
    alpha = 1 - CONFIDENCE
    plug_in = mean - sd * np.sqrt(
        2 * (n * r2 + 1) / (n**2 * r2) * np.log(np.sqrt(n * r2 + 1) / alpha)
    )
    rates = {}
    for name, low in (("fixed t-interval, daily looks", fixed), ("plug-in asymptotic CS", plug_in)):
        crossed = looked & (low > MIN_IMPROVEMENT)
        rates[name] = float(crossed.any(axis=1).mean())
        rates[name + ", first look (day 14) alone"] = float(crossed[:, MIN_DAYS - 1].mean())
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    days = 7 * WEEKS
    common = {
        "rows_per_day": ROWS_PER_DAY,
        "days": days,
        "runs": args.runs,
        "base_auc": BASE_AUC,
        "min_improvement": MIN_IMPROVEMENT,
        "confidence": CONFIDENCE,
        "min_days": MIN_DAYS,
    }
    started = time.perf_counter()
    print(
        f"live evidence at {ROWS_PER_DAY} rows/day, champion AUC {BASE_AUC}, "
        f"min_improvement {MIN_IMPROVEMENT}, {CONFIDENCE:.0%} confidence, min_days {MIN_DAYS}, "
        f"t* {sequential.T_STAR:g} days, {args.runs} runs of {WEEKS} weeks, daily looks"
    )
    better = sequential.simulate_live_promotion(
        0.01, seed=args.seed, checkpoints=(7 * 26, days), **common
    )
    by_day = better["promotion_rate_by_day"]
    median = better["median_days_to_promotion"]
    print(f"daily AUC-difference sd: {better['daily_sd']:.4f}")
    print("true +0.01 challenger:")
    print(f"  promoted within 26 weeks: {by_day[7 * 26]:.1%}")
    print(f"  promoted within 52 weeks: {by_day[days]:.1%}")
    weeks = "never" if median is None else f"{median / 7:.1f} weeks ({median:g} days)"
    print(f"  median time to promotion (promoted runs): {weeks}")
    limit = (1 - CONFIDENCE) / 2
    for true in (0.0, MIN_IMPROVEMENT):
        result = sequential.simulate_live_promotion(true, seed=args.seed + 1, **common)
        rate = result["false_promotion_rate"]
        se = math.sqrt(max(rate * (1 - rate), 1e-12) / args.runs)
        print(
            f"true {true:+g} challenger: false promotions within 52 weeks {rate:.2%} "
            f"(Monte-Carlo se {se:.2%}; nominal at most {limit:.1%})"
        )
    rng = np.random.default_rng(args.seed + 2)
    diffs = sequential.daily_auc_differences(
        rng,
        args.runs,
        days,
        ROWS_PER_DAY,
        BASE_AUC,
        BASE_AUC + MIN_IMPROVEMENT,
        sequential.DEMO_POSITIVE_RATE,
        sequential.DEMO_SCORE_CORRELATION,
    )
    print(f"for comparison, true +{MIN_IMPROVEMENT:g} on the same days ({args.runs} runs):")
    ours = sequential.first_clearing_day(
        diffs, min_improvement=MIN_IMPROVEMENT, confidence=CONFIDENCE, min_days=MIN_DAYS
    )
    first_look = (ours == MIN_DAYS).mean()
    print(
        f"  this module's CS: {(ours > 0).mean():.2%}, first look (day 14) alone {first_look:.2%}"
    )
    for name, rate in _alternatives(diffs).items():
        print(f"  {name}: {rate:.2%}")
    print(f"took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
