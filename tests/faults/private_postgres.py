"""A PostgreSQL server of the test's own, so that restarting it disturbs nobody else.

The same server as the machine's (its binaries, trust auth, user postgres), in a folder of
the run and on a free port. initdb and the server refuse to run as root: as root, they run
as the `postgres` user that the server's package created.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.servers import free_port

TIMEOUT = 120


class PrivatePostgres:
    def __init__(self) -> None:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        if not found:
            raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql")
        self.bin = found[-1].parent
        self.folder = Path(tempfile.mkdtemp(prefix="ct-postgres-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.port = free_port()

    def start(self) -> None:
        self.folder.chmod(0o755)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self._pg_ctl("start")

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: every connection is cut, as `docker compose restart`."""
        self._pg_ctl("restart", "-m", "fast")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
            "-c max_connections=300 -c fsync=off"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", str(TIMEOUT),
            "-o", options, action, *extra,
        )  # fmt: skip

    def _run(self, program: str, *args: str) -> None:
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        result = subprocess.run(
            [*as_postgres, str(self.bin / program), *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        if result.returncode != 0:
            tail = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise subprocess.CalledProcessError(
                result.returncode, program, result.stdout, result.stderr + tail
            )
