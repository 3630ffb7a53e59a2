"""The sql source against a real PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth).

Each test module gets a fresh database that is dropped afterwards. If PostgreSQL is not
reachable the tests fail: a skipped integration test proves nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, create_engine, event, text

from continuous_training.config import ConfigError, PipelineConfig
from continuous_training.sources import SourceError, SqlSource, Window, fetch_window, make_source
from tests.integration.postgres import fresh_database

pytestmark = pytest.mark.integration

QUERY = "SELECT * FROM churn_events WHERE event_time >= :window_start AND event_time < :window_end"
MakeConfig = Callable[..., PipelineConfig]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    """Two weeks of synthetic churn rows, the same ones the database holds."""
    from continuous_training.config import DEFAULT_PIPELINES_DIR, load_pipeline

    config = load_pipeline(DEFAULT_PIPELINES_DIR / "churn.yaml")
    window = Window(utc(2026, 2, 20), utc(2026, 3, 6))
    return fetch_window(make_source(config), config, window)


@pytest.fixture(scope="module")
def database_uri(events: pd.DataFrame) -> Iterator[str]:
    """A fresh database holding `churn_events` (timestamptz times); dropped afterwards."""
    with fresh_database({"churn_events": events}) as uri:
        yield uri


@pytest.fixture
def sql_config(make_config: MakeConfig) -> PipelineConfig:
    return make_config(source={"kind": "sql", "conn_id": "churn_db", "query": QUERY})


@pytest.fixture
def statements() -> Iterator[list[tuple[str, Any]]]:
    """Every (SQL text, parameters) sent to any database during the test."""
    seen: list[tuple[str, Any]] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append((statement, parameters))

    event.listen(Engine, "before_cursor_execute", record)
    yield seen
    event.remove(Engine, "before_cursor_execute", record)


def test_column_is_timestamptz(database_uri: str) -> None:
    engine = create_engine(database_uri)
    with engine.connect() as conn:
        kind = conn.execute(
            text(
                "SELECT data_type FROM information_schema.columns "
                "WHERE table_name = 'churn_events' AND column_name = 'event_time'"
            )
        ).scalar_one()
    engine.dispose()
    assert kind == "timestamp with time zone"


def test_sql_source_returns_the_window(
    database_uri: str, sql_config: PipelineConfig, events: pd.DataFrame
) -> None:
    window = Window(utc(2026, 2, 25, 12), utc(2026, 3, 2))
    source = make_source(sql_config, connection_uri=database_uri)
    assert isinstance(source, SqlSource)
    df = fetch_window(source, sql_config, window)
    inside = (events["event_time"] >= window.start) & (events["event_time"] < window.end)
    expected = events[inside].reset_index(drop=True)
    assert len(df) == len(expected) > 0
    assert list(df.columns) == sql_config.columns
    pd.testing.assert_frame_equal(df, expected)


def test_window_travels_as_bound_parameters(
    database_uri: str, sql_config: PipelineConfig, statements: list[tuple[str, Any]]
) -> None:
    window = Window(utc(2026, 3, 1), utc(2026, 3, 2))
    df = make_source(sql_config, connection_uri=database_uri).fetch(window)
    assert len(df) == 300
    sql, params = next((s, p) for s, p in statements if "churn_events" in s)
    assert "2026" not in sql  # the values are not in the SQL text...
    assert "%(window_start)s" in sql and "%(window_end)s" in sql
    assert params == {"window_start": window.start, "window_end": window.end}  # ...but bound


def test_window_values_cannot_be_sql(sql_config: PipelineConfig) -> None:
    """The only way in for a window value is a timezone-aware datetime."""
    with pytest.raises(SourceError, match="must be a datetime"):
        Window("2026-03-01' OR '1'='1", utc(2026, 3, 2))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM churn_events",
        "SELECT * FROM churn_events WHERE event_time >= '{start}' AND event_time < '{end}'",
        "SELECT * FROM churn_events WHERE event_time >= :window_start",
    ],
)
def test_query_without_binds_is_rejected_by_config(make_config: MakeConfig, query: str) -> None:
    with pytest.raises(ConfigError, match=r"source.*bind the window as :window_"):
        make_config(source={"kind": "sql", "conn_id": "churn_db", "query": query})


def test_missing_connection_uri_names_conn_id(sql_config: PipelineConfig) -> None:
    with pytest.raises(SourceError, match=r"source\.conn_id 'churn_db'"):
        make_source(sql_config).fetch(Window(utc(2026, 3, 1), utc(2026, 3, 2)))


def test_bad_query_names_conn_id_and_hides_password(
    database_uri: str, make_config: MakeConfig
) -> None:
    config = make_config(
        source={
            "kind": "sql",
            "conn_id": "churn_db",
            "query": "SELECT * FROM no_such_table WHERE t >= :window_start AND t < :window_end",
        }
    )
    uri = database_uri.replace("postgres@", "postgres:s3cret@")
    with pytest.raises(SourceError, match=r"source\.conn_id 'churn_db'") as err:
        make_source(config, connection_uri=uri).fetch(Window(utc(2026, 3, 1), utc(2026, 3, 2)))
    assert "no_such_table" in str(err.value)
    assert "s3cret" not in str(err.value)


def test_source_params_are_bound_and_an_injection_is_only_a_value(
    database_uri: str,
    make_config: MakeConfig,
    events: pd.DataFrame,
    statements: list[tuple[str, Any]],
) -> None:
    window = Window(utc(2026, 3, 1), utc(2026, 3, 2))

    def fetch(region: str) -> pd.DataFrame:
        source = {"kind": "sql", "conn_id": "churn_db", "query": QUERY + " AND region = :region"}
        config = make_config(source={**source, "params": {"region": region}})
        return make_source(config, connection_uri=database_uri).fetch(window)

    north = fetch("north")
    inside = (events["event_time"] >= window.start) & (events["event_time"] < window.end)
    assert len(north) == ((events["region"] == "north") & inside).sum() > 0
    assert set(north["region"]) == {"north"}

    injection = "x'; DROP TABLE churn_events; --"
    assert fetch(injection).empty
    sql, params = [(s, p) for s, p in statements if "churn_events" in s][-1]
    assert "DROP" not in sql and "%(region)s" in sql  # the value is not in the SQL text...
    assert params["region"] == injection  # ...but a parameter the driver quotes
    engine = create_engine(database_uri)
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM churn_events")).scalar_one()
    engine.dispose()
    assert count == len(events)


def test_an_unreachable_database_is_retried_not_failed_at_once(
    sql_config: PipelineConfig,
) -> None:
    """Connection refused is a fault that passes: not bad input, and the error names it."""
    from continuous_training.errors import is_bad_input
    from continuous_training.sources import SourceUnavailableError
    from tests.servers import free_port

    nowhere = f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/nowhere"
    closed = nowhere.replace("postgres@", "postgres:s3cret@")  # as a connection would hold it
    source = SqlSource(sql_config, connection_uri=closed)
    with pytest.raises(SourceUnavailableError) as err:
        source.fetch(Window(utc(2026, 3, 1), utc(2026, 3, 2)))
    message = str(err.value)
    assert "source.conn_id 'churn_db'" in message and "could not be reached" in message
    assert "s3cret" not in message
    assert not is_bad_input(err.value)
