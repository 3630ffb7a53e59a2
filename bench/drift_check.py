"""Row 3: the drift check's time at 100k, 1M and 5M scored rows should stay flat.

The scored parts are real: each size is scored with `inference.score_partition` in as
many parts as a day has partitions in churn.yaml, which writes each part's bounded
`_drift_sample`. Only what the check itself does is timed: `inference.read_sample` over
the parts and `drift.compare` against the scored training sample (the reference).
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from fixtures import (
    SCORING_START,
    churn_config,
    model,
    reference,
    scoring_job,
    tiled,
    write_input,
)
from harness import Context, Row, human_rows, progress, seconds, timed

GOAL = "~ 1 (flat)"


def scored_parts(ctx: Context, rows: int) -> list[dict[str, Any]]:
    """`rows` rows scored in `drift_parts` partitions of one window; the parts' results.

    As in the inference DAG, every partition's job carries the whole window; partition p
    holds the days `[p * days, (p + 1) * days)` of it. Parts start at different rows of the
    generated day, so that at every size the sampled rows are (nearly all) distinct rows.
    """
    from continuous_training import inference
    from continuous_training.sources import Window

    config = churn_config()
    count = ctx.sizes.drift_parts
    sizes = [rows // count + (1 if p < rows % count else 0) for p in range(count)]
    days = timedelta(days=math.ceil(max(sizes) / ctx.sizes.block_rows))
    window = Window(SCORING_START, SCORING_START + count * days)
    progress(f"scoring {human_rows(rows)} rows in {count} parts for the drift check")
    parts = []
    for p, n in enumerate(sizes):
        table, _ = tiled(ctx, n, SCORING_START + p * days, f"d{rows}p{p}-", offset=p * n)
        uri = write_input(table, ctx.workdir / "inputs" / f"drift-{rows}-{p}.parquet")
        job = scoring_job(config, uri, window, f"n{rows}-p{p}")
        parts.append(inference.score_partition(job, model(ctx)))
    return parts


def check_seconds(parts: list[dict[str, Any]], ref: Any) -> float:
    """The timed part of a drift check: merge the parts' samples, compare with Evidently."""
    from continuous_training import drift, inference

    config = churn_config()

    def check() -> None:
        current = inference.read_sample(parts, config.drift.sample_size)
        drift.compare(config, ref, current)

    return timed(check)[0]


def run(ctx: Context) -> list[Row]:
    sizes = ctx.sizes
    ref = reference(ctx)
    parts = {n: scored_parts(ctx, n) for n in sizes.drift_rows}
    progress("drift check warm-up (imports Evidently)")
    check_seconds(parts[sizes.drift_rows[0]], ref)
    times: dict[int, list[float]] = {n: [] for n in sizes.drift_rows}
    for i in range(sizes.drift_repeats):
        progress(f"drift checks, repetition {i + 1}")
        for n in sizes.drift_rows:
            times[n].append(check_seconds(parts[n], ref))
    small, *larger = sizes.drift_rows
    base = min(times[small])
    return [
        Row(
            f"drift check (read_sample + compare), {human_rows(n)} vs {human_rows(small)} "
            f"scored rows, {sizes.drift_parts} parts, best of {sizes.drift_repeats}",
            seconds(min(times[n])),
            seconds(base),
            min(times[n]) / base,
            GOAL,
        )
        for n in larger
    ]
