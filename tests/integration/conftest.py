"""Real parts for end-to-end tests: an MLflow server on 127.0.0.1 and a migrated Airflow DB."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.environment import SESSION_DIR

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"server exited with {process.returncode}:\n{log.read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} not healthy after {timeout}s:\n{log.read_text()[-3000:]}")


def start_mlflow_server(directory: Path, port: int) -> subprocess.Popen:
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / "server.log"
    process = subprocess.Popen(
        [
            str(BIN / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{directory / 'mlflow.db'}",
            "--artifacts-destination",
            str(directory / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        # Its job runner serves GenAI evaluation jobs, which the project does not use.
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )
    wait_healthy(f"http://127.0.0.1:{port}/health", process, log)
    return process


def stop_process_group(process: subprocess.Popen) -> None:
    """The server's workers and job runners live in its session: stop them all."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=5)


@pytest.fixture(scope="session")
def mlflow_server() -> Iterator[str]:
    """A real MLflow tracking server (SQLite backend, local artifacts) for the whole session."""
    port = free_port()
    process = start_mlflow_server(SESSION_DIR / "mlflow", port)
    uri = f"http://127.0.0.1:{port}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        yield uri
    finally:
        stop_process_group(process)


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
