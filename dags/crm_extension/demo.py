"""A demo CRM database, so the example runs without a CRM of your own.

Fills the `customers` table of a SQLite file with the embedded synthetic churn data, times
stored as the CRM stores them (UTC text, `crm_extension.sources.TIME_FORMAT`), plus an
`email` column that the pipeline never selects::

    cd dags && python -m crm_extension.demo /tmp/crm.sqlite --start 2026-01-20 --end 2026-03-01
"""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime
from pathlib import Path


def make_demo_crm(
    db_path: str | Path,
    start: datetime,
    end: datetime,
    *,
    table: str = "customers",
    rows_per_day: int = 300,
    seed: int = 42,
) -> int:
    """Replace `table` in `db_path` with the synthetic customers of `[start, end)`; row count."""
    import sqlite3
    from contextlib import closing

    from continuous_training.config import SourceConfig, load_pipeline
    from continuous_training.sources import Window, fetch_window, make_source
    from crm_extension import PIPELINE_YAML
    from crm_extension.sources import TIME_FORMAT

    crm = load_pipeline(PIPELINE_YAML)
    synthetic = crm.model_copy(
        update={"source": SourceConfig(kind="synthetic", seed=seed, rows_per_day=rows_per_day)}
    )
    frame = fetch_window(make_source(synthetic), synthetic, Window(start, end))
    frame[crm.time_column] = frame[crm.time_column].dt.strftime(TIME_FORMAT)
    frame["email"] = frame["customer_id"].str.lower() + "@example.com"
    with closing(sqlite3.connect(db_path)) as conn, conn:
        conn.execute(f'DROP TABLE IF EXISTS "{table}"')
        frame.to_sql(table, conn, index=False)
        conn.execute(f'CREATE INDEX "{table}_time" ON "{table}" ("{crm.time_column}")')
    return len(frame)


def _utc_day(text: str) -> datetime:
    day = date.fromisoformat(text)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db_path")
    parser.add_argument("--start", type=_utc_day, default=_utc_day("2026-01-20"))
    parser.add_argument("--end", type=_utc_day, default=_utc_day("2026-03-01"))
    args = parser.parse_args(argv)
    rows = make_demo_crm(args.db_path, args.start, args.end)
    print(f"{args.db_path}: {rows} customers from {args.start:%Y-%m-%d} to {args.end:%Y-%m-%d}")


if __name__ == "__main__":
    main()
