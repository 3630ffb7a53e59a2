"""Real parts for end-to-end tests: an MLflow server on 127.0.0.1 and a migrated Airflow DB."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from tests.environment import SESSION_DIR
from tests.servers import BIN, mlflow_server_at


@pytest.fixture(scope="session")
def mlflow_server() -> Iterator[str]:
    """A real MLflow tracking server (SQLite backend, local artifacts) for the whole session."""
    with mlflow_server_at(SESSION_DIR / "mlflow") as uri:
        os.environ["MLFLOW_TRACKING_URI"] = uri
        yield uri


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """`airflow db migrate` on the session's SQLite database, once."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        [str(BIN / "airflow"), "db", "migrate"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.fixture
def client(mlflow_server: str, airflow_db: None):
    """An MLflow client of the session's server, with the Airflow DB ready for dag.test()."""
    from mlflow import MlflowClient

    return MlflowClient(mlflow_server)
