"""`CrmSource`: the churn rows of the CRM's `customers` table, kept in a SQLite file.

A `continuous_training.sources.DataSource` of your own. Use it from the YAML alone::

    source:
      kind: crm_extension.sources.CrmSource
      options: {db_path: /data/crm.sqlite, table: customers}   # both optional

or through the `ExportCustomersFromCrm` operator. The database file is found in this order:
the `db_path` argument (the operator's), `source.options.db_path`, the `CRM_DB_PATH`
environment variable.

The CRM stores times as UTC text in one fixed-width format (`TIME_FORMAT`), so text order is
time order and the window is a plain bound-parameter range query on the time column.
Only the pipeline's columns are selected: the rest of the CRM table never leaves it.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from continuous_training.sources import DataSource, SourceError, Window

if TYPE_CHECKING:
    import pandas as pd

    from continuous_training.config import PipelineConfig

DB_PATH_ENV = "CRM_DB_PATH"
DEFAULT_TABLE = "customers"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"  # e.g. 2026-02-01 13:05:09.123000, always UTC


def crm_timestamp(value: datetime) -> str:
    """A timezone-aware time as the CRM stores it: UTC text in `TIME_FORMAT`."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise SourceError(f"CRM times must be timezone-aware, got {value!r}")
    return value.astimezone(UTC).strftime(TIME_FORMAT)


def _quote(identifier: str) -> str:
    """An SQL identifier in backticks: SQLite reads an unknown "name" as a string literal."""
    return "`" + identifier.replace("`", "``") + "`"


# --8<-- [start:crm-source]
class CrmSource(DataSource):
    """The rows of `[window.start, window.end)` from the CRM's SQLite database."""

    def __init__(
        self,
        pipeline: PipelineConfig,
        *,
        connection_uri: str | None = None,
        db_path: str | None = None,
    ) -> None:
        super().__init__(pipeline, connection_uri=connection_uri)
        self.db_path = db_path

    def database_path(self) -> Path:
        """The SQLite file: the `db_path` argument, `source.options.db_path`, `$CRM_DB_PATH`."""
        path = self.db_path or self.options.get("db_path") or os.environ.get(DB_PATH_ENV)
        if not path:
            raise SourceError(
                f"{self.pipeline.source_file or self.pipeline.name}: no CRM database given: "
                f"set source.options.db_path or the {DB_PATH_ENV} environment variable"
            )
        return Path(path).expanduser().resolve()

    def table(self) -> str:
        return str(self.options.get("table") or DEFAULT_TABLE)

    def query(self) -> str:
        """The window query; the window is bound as `:window_start` and `:window_end`."""
        time = _quote(self.pipeline.time_column)
        return (
            f"SELECT {', '.join(_quote(c) for c in self.pipeline.columns)} "
            f"FROM {_quote(self.table())} "
            f"WHERE {time} >= :window_start AND {time} < :window_end"
        )

    def fetch(self, window: Window) -> pd.DataFrame:
        import sqlite3
        from contextlib import closing

        import pandas as pd

        path = self.database_path()
        if not path.is_file():
            # sqlite3 would silently create an empty database here
            raise SourceError(
                f"CRM database {path} does not exist (source.options.db_path or ${DB_PATH_ENV})"
            )
        params = {
            "window_start": crm_timestamp(window.start),
            "window_end": crm_timestamp(window.end),
        }
        try:
            with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as conn:
                self._check_columns(conn, path)
                df = pd.read_sql_query(self.query(), conn, params=params)
        except (sqlite3.Error, pd.errors.DatabaseError) as exc:
            raise SourceError(f"CRM database {path}: {exc}") from exc
        column = self.pipeline.time_column
        try:
            times = pd.to_datetime(df[column], format=TIME_FORMAT, utc=True)
        except (ValueError, TypeError) as exc:
            raise SourceError(
                f"CRM database {path}: column {column!r} is not UTC text in the format "
                f"{TIME_FORMAT!r}: {str(exc).splitlines()[0]}"
            ) from exc
        return df.assign(**{column: times})

    # --8<-- [end:crm-source]
    def _check_columns(self, conn: Any, path: Path) -> None:
        """Name the table or the columns the CRM lacks, before querying."""
        table = self.table()
        have = {row[0] for row in conn.execute("SELECT name FROM pragma_table_info(?)", (table,))}
        if not have:
            raise SourceError(f"CRM database {path} has no table {table!r} (source.options.table)")
        missing = [c for c in self.pipeline.columns if c not in have]
        if missing:
            raise SourceError(
                f"CRM database {path}: table {table!r} has no columns {missing} "
                f"(has {sorted(have)})"
            )
