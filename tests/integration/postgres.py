"""Fresh PostgreSQL databases for tests: created per use, dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd
from sqlalchemy import create_engine, text

SERVER = "postgresql+psycopg2://postgres@127.0.0.1:5432"


@contextmanager
def fresh_database(tables: dict[str, pd.DataFrame]) -> Iterator[str]:
    """A new database holding `tables` (rows shuffled); yields its SQLAlchemy URI."""
    name = f"ct_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    uri = f"{SERVER}/{name}"
    try:
        engine = create_engine(uri)
        for table, frame in tables.items():
            # shuffled, so that a stable order has to come from the code under test
            frame.sample(frac=1, random_state=0).to_sql(table, engine, index=False)
        engine.dispose()
        yield uri
    finally:
        with admin.connect() as conn:
            drop_database(conn, name)
        admin.dispose()


def drop_database(conn: Any, name: str) -> None:
    """Drop `name` on an AUTOCOMMIT connection, ending whatever sessions still use it."""
    conn.execute(
        text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = :name AND pid <> pg_backend_pid()"
        ),
        {"name": name},
    )
    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
