"""The topology of docker-compose.yaml as native processes on this machine.

PostgreSQL and Redis are the machine's own (fresh databases with unique names, a Redis database
number and key prefix of the run's own); every other compose service becomes the same command
with the same environment (`compose.NativeMap` translates hosts, ports and paths), started in
`depends_on` order and declared ready by its own compose healthcheck, run natively.

What only the native stack sets is in `NATIVE_ONLY_KEYS`, `WORKER_ARGS` and `LISTEN_ARGS`, each
with its reason; tests/stack/test_compose_parity.py checks that nothing else differs.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.dag_runs import write_pipeline
from tests.servers import free_port
from tests.stack import compose
from tests.stack.compose import ROOT, NativeMap, Service

BIN = Path(sys.executable).parent
ARTIFACTS = ROOT / "test-artifacts" / "stack"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
POSTGRES_PORT = 5432

# Compose services this machine already runs: used as they are, never started by the test.
PROVIDED = {
    "postgres": "the machine's PostgreSQL at 127.0.0.1:5432 (trust auth, user postgres)",
    "redis": "the machine's Redis at 127.0.0.1:6379",
}
WORKER_SERVICE = "airflow-worker"
WORKER_REPLICAS = 2  # `--scale airflow-worker=2`: mapped tasks must be able to spread
# Replicas of a compose service are separate hosts; on one machine Celery needs the node name.
WORKER_ARGS = ["--celery-hostname", "celery@{hostname}"]
# Everything a native process sets that compose does not, with why. Keys only: the parity
# test fails if one of them is also set by docker-compose.yaml (that would be an override).
NATIVE_ONLY_KEYS = {
    "AIRFLOW_HOME": "the image's /opt/airflow; here a folder of the run (logs, config)",
    "AIRFLOW__API__HOST": "bind the test's API server to loopback only",
    "AIRFLOW__API__PORT": "a free port instead of the container's 8080",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": "a free port instead of 8974",
    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": "one free port per worker instead of 8793",
    "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": "a free port instead of 8794",
    "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": "Redis keys of this run only",
    "HOSTNAME": "what Docker sets in each container: one name per process here",
    "PATH": "the venv's bin first: Airflow starts `airflow ...` subprocesses",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": (
        "tests/faults only: a killed worker's task is failed in seconds, not Airflow's 5 minutes"
    ),
}
# What the image has and the compose healthchecks and init scripts call.
MACHINE_TOOLS = ("bash", "curl", "psql")
ENV_PREFIXES_OF_THE_PYTEST_PROCESS = ("AIRFLOW", "_AIRFLOW", "MLFLOW", "CT_", "GX_")
STARTUP_TIMEOUT = 300
HEALTHCHECK_TIMEOUT = 60  # compose says 10 s; 2 cores starting 8 processes need longer
STOP_TIMEOUT = 20


class StackError(RuntimeError):
    """The native stack did not come up or misbehaved; the message holds the logs' tails."""


def fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


@dataclass
class Settings:
    """Everything that is chosen per run: names, ports, secrets and folders."""

    run_id: str
    workdir: Path
    artifacts: Path
    redis_db: int
    ports: dict[str, int]
    variables: dict[str, str]
    worker_log_ports: list[int] = field(default_factory=list)
    postgres_port: int = POSTGRES_PORT
    # pipeline name -> top-level YAML keys replaced in the shipped churn pipeline
    pipelines: dict[str, dict] = field(default_factory=dict)
    heartbeat_timeout: int | None = None

    @classmethod
    def create(
        cls,
        artifacts: Path = ARTIFACTS,
        redis_db: int | None = None,
        workdir: Path | None = None,
        **options: object,
    ) -> Settings:
        run_id = secrets.token_hex(4)
        workdir = workdir or Path(tempfile.mkdtemp(prefix=f"ct-stack-{run_id}-"))
        db = f"ct_stack_{run_id}"
        redis_db = pick_redis_db() if redis_db is None else redis_db
        ports = {name: free_port() for name in ("api", "mlflow", "scheduler_health", "trigger_log")}
        variables = {
            # The .env of this run: secrets fresh per run, names unique per run.
            "POSTGRES_USER": "postgres",
            "POSTGRES_PASSWORD": secrets.token_hex(16),  # trust auth ignores it; the URL carries it
            "AIRFLOW_DB_NAME": f"{db}_airflow",
            "MLFLOW_DB_NAME": f"{db}_mlflow",
            "REDIS_DB": str(redis_db),
            "AIRFLOW_FERNET_KEY": fernet_key(),
            "AIRFLOW_JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW_API_SECRET_KEY": secrets.token_hex(32),
            "AIRFLOW_ADMIN_USERNAME": "ct-operator",
            "AIRFLOW_ADMIN_PASSWORD": secrets.token_hex(12),
            "MLFLOW_AUTH_DB_NAME": f"{db}_mlflow_auth",
            "MLFLOW_ADMIN_USERNAME": "ct-mlflow-admin",
            "MLFLOW_ADMIN_PASSWORD": secrets.token_hex(16),
            "MLFLOW_FLASK_SECRET_KEY": secrets.token_hex(32),
            "CT_PII_HASH_KEY": secrets.token_hex(32),
            "CT_GIT_SHA": "stack-test",
            # what people would type: here the API server's own loopback port
            "AIRFLOW_BASE_URL": f"http://127.0.0.1:{ports['api']}",
        }
        worker_log_ports = [free_port() for _ in range(WORKER_REPLICAS)]
        return cls(
            run_id, workdir, artifacts, redis_db, ports, variables, worker_log_ports, **options
        )

    @property
    def postgres_admin_url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.postgres_port}/postgres"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['mlflow']}"

    @property
    def redis_prefix(self) -> str:
        return f"ct-stack-{self.run_id}:"

    @property
    def data_root(self) -> Path:
        return self.workdir / "data"

    @property
    def airflow_home(self) -> Path:
        return self.workdir / "airflow"

    @property
    def native_map(self) -> NativeMap:
        return NativeMap(
            ports={
                ("postgres", 5432): self.postgres_port,
                ("redis", 6379): REDIS_PORT,
                ("airflow-apiserver", 8080): self.ports["api"],
                ("airflow-scheduler", 8974): self.ports["scheduler_health"],
                ("mlflow", 5000): self.ports["mlflow"],
            },
            paths={
                "/opt/airflow/dags": ROOT / "dags",
                "/opt/airflow/plugins": ROOT / "plugins",
                "/opt/airflow/pipelines": self.workdir / "pipelines",
                "/opt/airflow/ct-data": self.data_root,
                "/opt/airflow/auth": self.workdir / "auth",
                "/opt/airflow/mlartifacts": self.workdir / "mlartifacts",
                "/opt/airflow/logs": self.airflow_home / "logs",
                "/opt/ct/docker": ROOT / "docker",
            },
        )

    def hostname(self, instance: str) -> str:
        return f"{instance}-{self.run_id}"


@dataclass
class NativeService:
    """One process of the native stack, derived from one compose service."""

    name: str  # instance name: the compose service, or `airflow-worker-1` for replicas
    service: str
    argv: list[str]
    env: dict[str, str]
    healthcheck: list[str]
    depends_on: dict[str, str]
    hostname: str
    restart: str = "no"

    @property
    def one_shot(self) -> bool:
        """Runs to completion (airflow-init) instead of staying up behind a healthcheck."""
        return not self.healthcheck


def pick_redis_db() -> int:
    """An empty Redis database number (1-15): the key prefix isolates the run in any case."""
    import redis

    numbers = list(range(1, 16))
    random.shuffle(numbers)
    for number in numbers:
        client = redis.Redis(REDIS_HOST, REDIS_PORT, db=number)
        try:
            if client.dbsize() == 0:
                return number
        finally:
            client.close()
    return numbers[0]


def clean_environ() -> dict[str, str]:
    """os.environ without the pytest process's own Airflow/MLflow/project settings."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(ENV_PREFIXES_OF_THE_PYTEST_PROCESS)
    }


def native_only_env(
    settings: Settings, instance: str, replica: int | None, airflow: bool
) -> dict[str, str]:
    env = {
        "HOSTNAME": settings.hostname(instance),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    if not airflow:
        return env
    env |= {
        "AIRFLOW_HOME": str(settings.airflow_home),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(settings.ports["api"]),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(
            settings.ports["scheduler_health"]
        ),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(settings.ports["trigger_log"]),
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": settings.redis_prefix,
    }
    if replica is not None:
        env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(settings.worker_log_ports[replica])
    if settings.heartbeat_timeout is not None:
        timeout = str(settings.heartbeat_timeout)
        env["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"] = timeout
    return env


def program(name: str) -> str:
    """A program of the venv (airflow, mlflow, celery), else from PATH (bash, curl)."""
    local = BIN / name
    return str(local) if local.exists() else (shutil.which(name) or name)


def native_argv(service: Service) -> list[str]:
    """The command the image's entrypoint would run for this service, as argv on this host.

    The official image runs `bash`/`python` commands as they are and anything else as
    `airflow <command>`; a service with its own entrypoint (`dumb-init -- mlflow`) runs that.
    """
    if service.entrypoint:
        entry = service.entrypoint
        entry = entry[entry.index("--") + 1 :] if "--" in entry else entry
        return [program(entry[0]), *entry[1:], *service.command]
    if service.command and service.command[0] in ("bash", "python"):
        return [program(service.command[0]), *service.command[1:]]
    return [program("airflow"), *service.command]


def native_healthcheck(test: list[str]) -> list[str]:
    if not test or test[0] == "NONE":
        return []
    if test[0] == "CMD-SHELL":
        return [program("bash"), "-c", " ".join(test[1:])]
    if test[0] == "CMD":
        return [program(test[1]), *test[2:]]
    return [program("bash"), "-c", " ".join(test)]


def plan(settings: Settings) -> list[NativeService]:
    """The processes of the native stack, each with its argv, environment and healthcheck."""
    planned = []
    for service in compose.services(settings.variables).values():
        if service.name in PROVIDED:
            continue
        replicas = WORKER_REPLICAS if service.name == WORKER_SERVICE else 1
        if replicas == 1:
            planned.append(_native_service(settings, service, service.name, None))
            continue
        for replica in range(replicas):
            instance = f"{service.name}-{replica + 1}"
            planned.append(_native_service(settings, service, instance, replica))
    return planned


def _native_service(
    settings: Settings, service: Service, instance: str, replica: int | None
) -> NativeService:
    mapping = settings.native_map
    hostname = settings.hostname(instance)
    env = {key: mapping.value(value, service.name) for key, value in service.environment.items()}
    airflow = any(key.startswith("AIRFLOW__") for key in service.environment)
    env.update(native_only_env(settings, instance, replica, airflow))
    argv = [mapping.value(arg, service.name) for arg in native_argv(service)]
    if service.name == WORKER_SERVICE:
        argv += [arg.format(hostname=hostname) for arg in WORKER_ARGS]
    argv = _native_listen_args(argv, settings, service.name)
    health = [mapping.value(arg, service.name) for arg in native_healthcheck(service.healthcheck)]
    return NativeService(
        name=instance,
        service=service.name,
        argv=argv,
        env=env,
        healthcheck=health,
        depends_on=service.depends_on,
        hostname=hostname,
        restart=service.restart,
    )


# A server's own listen address comes from its argv: loopback and a free port natively.
LISTEN_ARGS = {"mlflow": {"--host": "127.0.0.1", "--port": "{mlflow}"}}


def _native_listen_args(argv: list[str], settings: Settings, service: str) -> list[str]:
    overrides = LISTEN_ARGS.get(service, {})
    result = list(argv)
    for i, arg in enumerate(result[:-1]):
        if arg in overrides:
            result[i + 1] = overrides[arg].format(**settings.ports)
    return result


# --------------------------------------------------------------------------- running it


@dataclass
class Running:
    spec: NativeService
    process: subprocess.Popen
    log: Path
    healthy: bool = False
    check: subprocess.Popen | None = None
    last_check: float = 0.0


class NativeStack:
    """Starts the plan in `depends_on` order, waits for every healthcheck, tears down always."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.services = plan(settings)
        self.running: dict[str, Running] = {}
        self.databases_created: list[str] = []
        self.restarts: list[str] = []  # instances started again by their restart policy
        self._keeper_stop = threading.Event()
        self._keeper: threading.Thread | None = None

    # ---------------------------------------------------------------- lifecycle

    def __enter__(self) -> NativeStack:
        try:
            self.up()
        except BaseException:
            try:
                self.down()
            except StackError as teardown:  # the startup failure is the story; keep it on top
                print(teardown, file=sys.stderr)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def up(self) -> None:
        missing = [tool for tool in MACHINE_TOOLS if shutil.which(tool) is None]
        if missing:
            raise StackError(f"not on PATH: {missing} (the healthchecks and init scripts use them)")
        if self.settings.artifacts.exists():
            shutil.rmtree(self.settings.artifacts)
        self.settings.artifacts.mkdir(parents=True)
        self._prepare_folders()
        self._create_databases()
        self._start_in_order()
        self._keeper = threading.Thread(target=self._keep_restarting, daemon=True)
        self._keeper.start()

    def down(self) -> None:
        """Stop every process group, keep the logs, drop the databases, delete the Redis keys."""
        errors = []
        self._keeper_stop.set()
        if self._keeper is not None:
            self._keeper.join(timeout=10)
        steps = (self._stop_all, self._keep_airflow_logs, self._drop_databases, self._clean_redis)
        for step in steps:
            try:
                step()
            except Exception as error:  # every step runs, whatever failed before it
                errors.append(f"{step.__name__}: {error!r}")
        shutil.rmtree(self.settings.workdir, ignore_errors=True)
        if errors:
            raise StackError("teardown incomplete:\n" + "\n".join(errors))

    # ---------------------------------------------------------------- preparation

    def _prepare_folders(self) -> None:
        for path in self.settings.native_map.paths.values():
            if not str(path).startswith(str(ROOT)):
                path.mkdir(parents=True, exist_ok=True)
        self.settings.airflow_home.mkdir(parents=True, exist_ok=True)
        for shipped in (ROOT / "include" / "pipelines").glob("*.yaml"):
            shutil.copy(shipped, self.settings.workdir / "pipelines" / shipped.name)
        for name, overrides in self.settings.pipelines.items():
            write_pipeline(name, self.settings.workdir / "pipelines", **overrides)

    def _create_databases(self) -> None:
        """What the postgres image does on a new volume: POSTGRES_DB, then its init script."""
        from sqlalchemy import create_engine, text

        variables = self.settings.variables
        admin = create_engine(self.settings.postgres_admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{variables["AIRFLOW_DB_NAME"]}"'))
            self.databases_created.append(variables["AIRFLOW_DB_NAME"])
        finally:
            admin.dispose()
        postgres = compose.services(variables)["postgres"]
        env = {
            **clean_environ(),
            **postgres.environment,
            "PGHOST": "127.0.0.1",
            "PGPORT": str(self.settings.postgres_port),
        }
        self.databases_created += [variables["MLFLOW_DB_NAME"], variables["MLFLOW_AUTH_DB_NAME"]]
        result = subprocess.run(
            ["bash", str(ROOT / "docker" / "postgres-init.sh")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            raise StackError(f"docker/postgres-init.sh failed:\n{result.stdout}{result.stderr}")

    # ---------------------------------------------------------------- starting

    def _start_in_order(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            for spec in self.services:
                if spec.name not in self.running and self._dependencies_met(spec):
                    self._start(spec)
            self._poll()
            if all(r.healthy for r in self.running.values()) and len(self.running) == len(
                self.services
            ):
                return
            if time.monotonic() > deadline:
                waiting = [s.name for s in self.services if not self._is_healthy(s.name)]
                raise StackError(
                    f"not healthy after {STARTUP_TIMEOUT}s: {waiting}\n{self.log_tails()}"
                )
            time.sleep(0.5)

    def _instances(self, service: str) -> list[NativeService]:
        return [spec for spec in self.services if spec.service == service]

    def _is_healthy(self, instance: str) -> bool:
        running = self.running.get(instance)
        return bool(running and running.healthy)

    def _dependencies_met(self, spec: NativeService) -> bool:
        for dependency, condition in spec.depends_on.items():
            if dependency in PROVIDED:
                continue  # the machine's service, up before the test (and checked by it)
            instances = self._instances(dependency)
            if condition == "service_started":
                met = all(i.name in self.running for i in instances)
            else:  # service_healthy, service_completed_successfully
                met = all(self._is_healthy(i.name) for i in instances)
            if not met:
                return False
        return True

    def _start(self, spec: NativeService) -> None:
        log = self.settings.artifacts / f"{spec.name}.log"
        with log.open("a") as out:
            out.write(f"$ {' '.join(spec.argv)}\n")
            out.flush()
            process = subprocess.Popen(
                spec.argv,
                env={**clean_environ(), **spec.env},
                cwd=self.settings.workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stopped as a whole
            )
        self.running[spec.name] = Running(spec, process, log)

    def _poll(self) -> None:
        for running in self.running.values():
            if running.healthy:
                continue
            code = running.process.poll()
            if running.spec.one_shot:
                if code == 0:
                    running.healthy = True  # service_completed_successfully
                elif code is not None:
                    raise StackError(f"{running.spec.name} exited with {code}\n{self.log_tails()}")
                continue
            if code is not None:
                raise StackError(f"{running.spec.name} exited with {code}\n{self.log_tails()}")
            self._healthcheck(running)

    def _healthcheck(self, running: Running) -> None:
        """The service's compose healthcheck, run natively; one attempt in flight at a time."""
        if running.check is not None:
            code = running.check.poll()
            if code is None:
                if time.monotonic() - running.last_check > HEALTHCHECK_TIMEOUT:
                    running.check.kill()
                    running.check.wait()
                    running.check = None
                return
            running.check = None
            running.healthy = code == 0
            return
        if time.monotonic() - running.last_check < 2:
            return
        running.last_check = time.monotonic()
        with (self.settings.artifacts / f"{running.spec.name}.health.log").open("a") as out:
            running.check = subprocess.Popen(
                running.spec.healthcheck,
                env={**clean_environ(), **running.spec.env},
                cwd=self.settings.workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    # ---------------------------------------------------------------- faults and restarts

    def kill(self, instance: str) -> None:
        """SIGKILL an instance's whole process tree, as a lost host or the OOM killer would."""
        running = self.running[instance]
        tree = list(_descendants(running.process.pid))
        _signal_group(running.process, signal.SIGKILL)
        for process in tree:
            with contextlib.suppress(Exception):
                process.kill()
        running.process.wait(timeout=10)

    def _keep_restarting(self) -> None:
        """Compose's `restart: always`: a service whose process exits is started again."""
        while not self._keeper_stop.wait(1.0):
            for name, running in list(self.running.items()):
                code = running.process.poll()
                if code is None or running.spec.one_shot or self._keeper_stop.is_set():
                    continue
                if running.spec.restart in ("always", "unless-stopped") or (
                    running.spec.restart == "on-failure" and code != 0
                ):
                    with running.log.open("a") as out:
                        out.write(f"\n----- exited with {code}; restart: {running.spec.restart}\n")
                    self.restarts.append(name)
                    self._start(running.spec)

    # ---------------------------------------------------------------- teardown

    def _stop_all(self) -> None:
        """SIGTERM to every process group at once (each exits within seconds when idle, a
        Celery worker after its running tasks), SIGKILL for whatever outlives the grace period."""
        for running in self.running.values():
            if running.check is not None:
                _signal_group(running.check, signal.SIGKILL)
        alive = [r.process for r in self.running.values() if r.process.poll() is None]
        # Task processes may leave their worker's group: reach them through the process tree.
        strays = [child for process in alive for child in _descendants(process.pid)]
        for process in alive:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in alive:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for process in alive:
            _signal_group(process, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        for child in strays:
            with contextlib.suppress(Exception):
                child.kill()

    def _keep_airflow_logs(self) -> None:
        logs = self.settings.airflow_home / "logs"
        if logs.is_dir():
            shutil.copytree(logs, self.settings.artifacts / "airflow-logs", dirs_exist_ok=True)

    def _drop_databases(self) -> None:
        from sqlalchemy import create_engine

        from tests.integration.postgres import drop_database

        admin = create_engine(self.settings.postgres_admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                for name in self.databases_created:
                    drop_database(conn, name)
        finally:
            admin.dispose()

    def redis_keys(self) -> list[str]:
        import redis

        client = redis.Redis(REDIS_HOST, REDIS_PORT, db=self.settings.redis_db)
        try:
            pattern = f"{self.settings.redis_prefix}*"
            return [key.decode() for key in client.scan_iter(match=pattern, count=500)]
        finally:
            client.close()

    def _clean_redis(self) -> None:
        import redis

        keys = self.redis_keys()
        if not keys:
            return
        client = redis.Redis(REDIS_HOST, REDIS_PORT, db=self.settings.redis_db)
        try:
            client.delete(*keys)
        finally:
            client.close()

    # ---------------------------------------------------------------- reporting

    def log_tails(self, lines: int = 40, health: bool = True) -> str:
        """The end of every process's log (and of its healthchecks' output, if asked)."""
        parts = []
        for path in sorted(self.settings.artifacts.glob("*.log")):
            if not health and path.name.endswith(".health.log"):
                continue
            text = path.read_text(errors="replace").splitlines()
            parts.append(f"----- {path.name} (last {lines} lines) -----")
            parts.extend(text[-lines:])
        return "\n".join(parts)

    def workers(self) -> list[NativeService]:
        return self._instances(WORKER_SERVICE)


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def _descendants(pid: int) -> Iterator:
    import psutil

    with contextlib.suppress(psutil.Error):
        yield from psutil.Process(pid).children(recursive=True)
