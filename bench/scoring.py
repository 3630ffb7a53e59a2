"""Row 1: one partition through `inference.score_partition` against a bare `model.predict(X)`.

Both score the same rows with the same model. The partition streams them from parquet in
record batches, keeps the drift sample and writes predictions; the bare call has the
DataFrame in memory already and writes nothing. The bare call runs under the same
thread limit as the partition (`inference.threads_per_task`): the ratio measures our
overhead, not the number of cores.
"""

from __future__ import annotations

from fixtures import SCORING_START, churn_config, model, scoring_job, tiled, write_input
from harness import Context, Row, human_rows, progress, rate, timed

GOAL = 0.8


def run(ctx: Context) -> list[Row]:
    import pyarrow.parquet as pq
    from threadpoolctl import threadpool_limits

    from continuous_training import inference

    sizes = ctx.sizes
    config = churn_config()
    fitted = model(ctx)
    table, window = tiled(ctx, sizes.score_rows, SCORING_START, "s")
    uri = write_input(table, ctx.workdir / "inputs" / "scoring.parquet")
    X = pq.read_table(uri).to_pandas()[config.features.all]
    job = scoring_job(config, uri, window, "scoring")
    threads = config.inference.threads_per_task

    def bare() -> None:
        with threadpool_limits(limits=threads):
            fitted.predict(X)

    ours_times, bare_times = [], []
    for i in range(sizes.repeats):
        progress(f"scoring {human_rows(sizes.score_rows)} rows, repetition {i + 1}")
        bare_times.append(timed(bare)[0])
        elapsed, result = timed(lambda: inference.score_partition(job, fitted))
        ours_times.append(elapsed)
        if result["rows"] != sizes.score_rows:
            raise RuntimeError(
                f"score_partition scored {result['rows']} rows, not {sizes.score_rows}"
            )
    n = sizes.score_rows
    unlimited = timed(lambda: fitted.predict(X))[0]
    ctx.note(
        f"scoring: bare model.predict(X) without a thread limit, once: {rate(n, unlimited)} "
        f"(the row's baseline runs with threads_per_task={threads}, as score_partition does)"
    )
    ours, baseline = n / min(ours_times), n / min(bare_times)
    return [
        Row(
            f"scoring throughput, {human_rows(n)} rows: score_partition vs bare "
            f"model.predict(X), {threads} thread, best of {sizes.repeats}",
            rate(n, min(ours_times)),
            rate(n, min(bare_times)),
            ours / baseline,
            f">= {GOAL}",
        )
    ]
