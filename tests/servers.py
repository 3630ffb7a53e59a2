"""Real servers on loopback ports, for the tests and the benchmarks alike.

A free port, a health poll that gives up with the server's log, an MLflow tracking server
(SQLite backend, local artifacts, one worker) and the stop of a server's whole process
group. `bench/` imports this module too, so both start their servers the same way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    """Poll `url` until it answers 200; fail with the log's tail if the server exits or stalls."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text()[-3000:]
            raise RuntimeError(f"server exited with {process.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} not healthy after {timeout}s:\n{log.read_text()[-3000:]}")


def start_mlflow_server(
    directory: Path, port: int, env: Mapping[str, str] | None = None
) -> subprocess.Popen:
    """`mlflow server` on 127.0.0.1:`port`, its store and artifacts under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / "server.log"
    command = [
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
    ]
    with log.open("w") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            # its own session: the workers and job runners it forks stop with it
            start_new_session=True,
            # Its job runner serves GenAI evaluation jobs, which the project does not use.
            env={**(env or os.environ), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
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


@contextlib.contextmanager
def mlflow_server_at(directory: Path, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """A server on a free port for the `with` block: its URI; always stopped at the end."""
    port = free_port()
    process = start_mlflow_server(directory, port, env)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process_group(process)
