"""Synthetic inputs, a trained model and scoring jobs, built once per run and outside timings.

Big inputs are tiles of one generated day: `SyntheticSource` builds its customer ids in
Python, one f-string per row, which would cost more than the benchmarks themselves at
millions of rows. Each tile is moved to its own day and its ids get their own prefix, so
every row of an input has a distinct id and a time inside the input's window.
"""

from __future__ import annotations

import math
import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import CHURN_YAML, Context, progress

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from continuous_training.config import PipelineConfig
    from continuous_training.inference import ScoringJob
    from continuous_training.sources import Window

# Training data ends where the scored data starts; everything is before the drift onset.
SCORING_START = datetime(2026, 2, 1, tzinfo=UTC)
ID_COLUMN = "customer_id"
TIME_COLUMN = "event_time"


def churn_config(**source: Any) -> PipelineConfig:
    """The shipped churn pipeline, shadow off, with `source` keys overridden."""
    from continuous_training.config import load_pipeline

    config = load_pipeline(CHURN_YAML)
    inference = config.inference.model_copy(update={"shadow": False})
    return config.model_copy(
        update={"source": config.source.model_copy(update=source), "inference": inference}
    )


def synthetic_frame(config: PipelineConfig, window: Window) -> pd.DataFrame:
    from continuous_training import sources

    return sources.fetch_window(sources.make_source(config), config, window)


def block(ctx: Context) -> pa.Table:
    """One generated day of `block_rows` rows, the tile every big input is made of."""

    def build() -> pa.Table:
        import pyarrow as pa

        from continuous_training.sources import Window

        rows = ctx.sizes.block_rows
        progress(f"generating one synthetic day of {rows:,} rows")
        config = churn_config(rows_per_day=rows)
        day = Window(SCORING_START, SCORING_START + timedelta(days=1))
        return pa.Table.from_pandas(synthetic_frame(config, day), preserve_index=False)

    return ctx.shared("block", build)


def tiled(
    ctx: Context, rows: int, first_day: datetime, tag: str, offset: int = 0
) -> tuple[pa.Table, Window]:
    """`rows` rows of tiles of `block`, tile k on day `first_day + k`, ids prefixed per tile.

    `offset` rotates the block first, so inputs smaller than a block can hold different
    rows (the drift check's small parts must not all be the same rows).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from continuous_training.sources import Window

    base = block(ctx)
    if offset % base.num_rows:
        cut = offset % base.num_rows
        base = pa.concat_tables([base.slice(cut), base.slice(0, cut)]).combine_chunks()
    tiles = math.ceil(rows / base.num_rows)
    parts = []
    for k in range(tiles):
        shift = pa.scalar(first_day - SCORING_START + timedelta(days=k), pa.duration("ns"))
        ids = pc.binary_join_element_wise(f"{tag}{k:04d}-", base[ID_COLUMN], "")
        times = pc.add(base[TIME_COLUMN], shift)
        tile = base.set_column(base.schema.get_field_index(ID_COLUMN), ID_COLUMN, ids)
        tile = tile.set_column(tile.schema.get_field_index(TIME_COLUMN), TIME_COLUMN, times)
        parts.append(tile)
    table = pa.concat_tables(parts).slice(0, rows).combine_chunks()
    return table, Window(first_day, first_day + timedelta(days=tiles))


def write_input(table: pa.Table, path: Path) -> str:
    """As the pipeline writes its inference inputs: `pq.write_table` with its defaults."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return str(path)


def training_frame(ctx: Context) -> pd.DataFrame:
    def build() -> pd.DataFrame:
        from continuous_training.sources import Window

        sizes = ctx.sizes
        config = churn_config(rows_per_day=sizes.train_rows_per_day)
        window = Window(SCORING_START - timedelta(days=sizes.train_days), SCORING_START)
        progress(f"generating {sizes.train_days} training days of {sizes.train_rows_per_day:,}")
        return synthetic_frame(config, window)

    return ctx.shared("training_frame", build)


def model(ctx: Context) -> Any:
    """`training.build_model(config)` fitted on synthetic days before the scored ones."""

    def build() -> Any:
        from continuous_training import training

        config = churn_config()
        train = training_frame(ctx)
        progress(f"fitting {config.model.estimator} on {len(train):,} rows")
        fitted = training.build_model(config)
        fitted.fit(train[config.features.all], train[config.target])
        return fitted

    return ctx.shared("model", build)


def model_file(ctx: Context) -> Path:
    """The model pickled for child processes (what MLflow's sklearn flavour stores, too)."""

    def build() -> Path:
        path = ctx.workdir / "model.pkl"
        path.write_bytes(pickle.dumps(model(ctx)))
        return path

    return ctx.shared("model_file", build)


def reference(ctx: Context) -> pd.DataFrame:
    """The drift reference as at training time: a bounded sample of the training data, scored."""

    def build() -> pd.DataFrame:
        from continuous_training import drift

        config = churn_config()
        train = training_frame(ctx)
        n = min(len(train), config.drift.sample_size)
        sample = train.sample(n=n, random_state=0) if n < len(train) else train
        return drift.score_reference(model(ctx), config, sample)

    return ctx.shared("reference", build)


def scoring_job(
    config: PipelineConfig, input_uri: str, window: Window, key: str, run_id: str = "bench"
) -> ScoringJob:
    """The job a ScorePartition task would build for one partition of `window`."""
    from continuous_training import inference

    return inference.ScoringJob(
        pipeline=config,
        input_uri=input_uri,
        output_uri=inference.prediction_uri(config.name, window, key),
        sample_uri=inference.sample_uri(config.name, window, key),
        window=window,
        model_version="1",
        airflow_run_id=run_id,
        sample_seed=inference.sample_seed(config.name, window, key),
    )
