"""docker-compose.yaml and the native stack test must describe the same deployment.

Fast and offline (no Docker, no processes): the native plan is compared with the compose file
service by service. When one of these fails, change docker-compose.yaml and tests/stack/native.py
together, or declare a native-only setting with its reason in native.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.stack import compose, native
from tests.stack.compose import ROOT, ComposeError, NativeMap
from tests.stack.native import NativeService, Settings

DEPLOY_PAGE = "docs/operations/deploy.md"
SECRET_KEY = re.compile(r"(PASSWORD|SECRET|FERNET_KEY|SECRET_KEY|HASH_KEY)$")


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings.create(redis_db=0, workdir=tmp_path_factory.mktemp("stack"))


@pytest.fixture(scope="module")
def services(settings: Settings) -> dict[str, compose.Service]:
    return compose.services(settings.variables)


@pytest.fixture(scope="module")
def planned(settings: Settings) -> list[NativeService]:
    return native.plan(settings)


def _program(path: str) -> str:
    return Path(path).name


# --------------------------------------------------------------------------- services


def test_every_compose_service_is_started_natively_or_provided(
    services: dict[str, compose.Service], planned: list[NativeService]
) -> None:
    started = {spec.service for spec in planned}
    assert started | set(native.PROVIDED) == set(services)
    assert not started & set(native.PROVIDED)


def test_the_topology_is_the_deployments(services: dict[str, compose.Service]) -> None:
    """The services docs/operations/deploy.md lists; a new one needs a native counterpart too."""
    assert set(services) == {
        "postgres",
        "redis",
        "mlflow",
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-worker",
    }


def test_the_deploy_page_describes_every_service(services: dict[str, compose.Service]) -> None:
    """The services table of docs/operations/deploy.md names each compose service, no other."""
    page = (ROOT / DEPLOY_PAGE).read_text(encoding="utf-8")
    first_cells = re.findall(r"^\| (`[^|]+`) \|", page, flags=re.MULTILINE)
    described = {name for cell in first_cells for name in re.findall(r"`([^`]+)`", cell)}
    assert described == set(services), f"{DEPLOY_PAGE} and docker-compose.yaml disagree"


def test_two_celery_workers_with_their_own_names(planned: list[NativeService]) -> None:
    workers = [spec for spec in planned if spec.service == native.WORKER_SERVICE]
    assert len(workers) == native.WORKER_REPLICAS == 2
    assert len({w.hostname for w in workers}) == 2
    for worker in workers:
        assert worker.env["HOSTNAME"] == worker.hostname
        assert f"celery@{worker.hostname}" in worker.argv


def test_the_worker_can_scale() -> None:
    """`--scale` needs replicas without a fixed name or host port."""
    worker = compose.load()["services"][native.WORKER_SERVICE]
    assert "container_name" not in worker
    assert "ports" not in worker


def test_only_one_shot_services_lack_a_healthcheck(services: dict[str, compose.Service]) -> None:
    waited_for = {
        name: condition
        for service in services.values()
        for name, condition in service.depends_on.items()
    }
    for service in services.values():
        if not service.healthcheck:
            assert waited_for.get(service.name) == "service_completed_successfully", service.name


# --------------------------------------------------------------------------- commands


def _expected_argv(service: compose.Service, mapping: NativeMap) -> list[str]:
    """What the image would run: its entrypoint after dumb-init's `--`, else `bash ...`, else
    `airflow ...`."""
    if service.entrypoint:
        entry = service.entrypoint
        argv = [*entry[entry.index("--") + 1 :], *service.command]
    elif service.command[0] == "bash":
        argv = list(service.command)
    else:
        argv = ["airflow", *service.command]
    return [argv[0], *(mapping.value(arg, service.name) for arg in argv[1:])]


def _without_native_args(spec: NativeService) -> list[str]:
    argv = [_program(spec.argv[0]), *spec.argv[1:]]
    if spec.service == native.WORKER_SERVICE:
        extra = [arg.format(hostname=spec.hostname) for arg in native.WORKER_ARGS]
        assert argv[-len(extra) :] == extra
        argv = argv[: -len(extra)]
    return argv


def test_every_process_runs_its_services_command(
    settings: Settings, services: dict[str, compose.Service], planned: list[NativeService]
) -> None:
    listen = native.LISTEN_ARGS
    for spec in planned:
        expected = _expected_argv(services[spec.service], settings.native_map)
        actual = _without_native_args(spec)
        for option, value in listen.get(spec.service, {}).items():
            i = expected.index(option)
            expected[i + 1] = value.format(**settings.ports)
        assert actual == expected, spec.name


def test_every_healthcheck_is_the_services_healthcheck(
    settings: Settings, services: dict[str, compose.Service], planned: list[NativeService]
) -> None:
    for spec in planned:
        test = services[spec.service].healthcheck
        if not test:
            assert spec.healthcheck == [], spec.name
            continue
        kind, *rest = test
        mapped = [settings.native_map.value(arg, spec.service) for arg in rest]
        if kind == "CMD-SHELL":
            assert spec.healthcheck[1:] == ["-c", " ".join(mapped)], spec.name
        else:
            assert [_program(spec.healthcheck[0]), *spec.healthcheck[1:]] == mapped, spec.name


def test_depends_on_is_kept(
    services: dict[str, compose.Service], planned: list[NativeService]
) -> None:
    for spec in planned:
        assert spec.depends_on == services[spec.service].depends_on, spec.name


# --------------------------------------------------------------------------- environment


def test_every_compose_setting_reaches_the_native_process_unchanged(
    settings: Settings, services: dict[str, compose.Service], planned: list[NativeService]
) -> None:
    """Same key, same value up to hosts, ports and paths: no native override of compose."""
    for spec in planned:
        for key, value in services[spec.service].environment.items():
            assert spec.env.get(key) == settings.native_map.value(value, spec.service), (
                f"{spec.name}: {key}"
            )


def test_native_only_settings_are_declared_and_not_in_compose(
    services: dict[str, compose.Service], planned: list[NativeService]
) -> None:
    in_compose = {key for service in services.values() for key in service.environment}
    assert not in_compose & set(native.NATIVE_ONLY_KEYS), "a native-only key overrides compose"
    for spec in planned:
        extra = set(spec.env) - set(services[spec.service].environment)
        assert extra <= set(native.NATIVE_ONLY_KEYS), f"{spec.name}: undeclared {extra}"


def test_the_workers_and_the_scheduler_share_settings_and_data_root(
    settings: Settings, planned: list[NativeService]
) -> None:
    by_name = {spec.name: spec for spec in planned}
    scheduler = by_name["airflow-scheduler"].env
    for worker in (s for s in planned if s.service == native.WORKER_SERVICE):
        for key in ("CT_DATA_ROOT", "CT_PIPELINES_DIR", "MLFLOW_TRACKING_URI"):
            assert worker.env[key] == scheduler[key], key
        # Tasks reach Airflow only through the API server the test started.
        assert worker.env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == (
            f"{settings.api_url}/execution/"
        )
        assert by_name["airflow-apiserver"].env["AIRFLOW__API__PORT"] == str(settings.ports["api"])


def test_no_container_host_or_path_is_left(
    services: dict[str, compose.Service], planned: list[NativeService], settings: Settings
) -> None:
    names = set(services)
    for spec in planned:
        for value in [*spec.env.values(), *spec.argv, *spec.healthcheck]:
            assert settings.native_map.unmapped(value, names) == [], f"{spec.name}: {value}"


def test_the_login_is_the_simple_auth_managers_with_a_password(
    services: dict[str, compose.Service],
) -> None:
    env = services["airflow-apiserver"].environment
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("SimpleAuthManager")
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"].lower() == "false"
    init = services["airflow-init"].environment
    assert {"AIRFLOW_ADMIN_USERNAME", "AIRFLOW_ADMIN_PASSWORD"} <= set(init)


def test_mlflow_serves_artifacts_from_its_own_database(
    services: dict[str, compose.Service],
) -> None:
    command = services["mlflow"].command
    assert "--serve-artifacts" in command
    assert "--allowed-hosts" in command and "--artifacts-destination" in command
    # The URL holds the database password: from the environment, never an argument.
    assert "--backend-store-uri" not in command
    env = services["mlflow"].environment
    backend, auth = env["MLFLOW_BACKEND_STORE_URI"], env["MLFLOW_AUTH_DATABASE_URI"]
    airflow_db = services["airflow-init"].environment["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    databases = [url.rsplit("/", 1)[1] for url in (backend, auth, airflow_db)]
    assert backend.startswith("postgresql") and auth.startswith("postgresql")
    assert len(set(databases)) == 3, databases


def test_mlflow_needs_a_login_and_the_workers_have_it(
    services: dict[str, compose.Service], planned: list[NativeService]
) -> None:
    """Compose and the native stack run MLflow's basic-auth app with the admin login of .env."""
    mlflow = services["mlflow"]
    assert mlflow.command[mlflow.command.index("--app-name") + 1] == "basic-auth"
    assert mlflow.entrypoint[-1] == "/opt/ct/docker/mlflow-server.sh"
    assert mlflow.healthcheck[-1].endswith(":5000/health")  # the one route without a login
    env = mlflow.environment
    for key in ("MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"):
        assert env[key], key
    worker = services[native.WORKER_SERVICE].environment
    assert worker["MLFLOW_TRACKING_USERNAME"] == env["MLFLOW_AUTH_ADMIN_USERNAME"]
    assert worker["MLFLOW_TRACKING_PASSWORD"] == env["MLFLOW_AUTH_ADMIN_PASSWORD"]
    [server] = [spec for spec in planned if spec.service == "mlflow"]
    assert server.argv[:2] == [native.program("bash"), str(ROOT / "docker" / "mlflow-server.sh")]
    assert server.argv[2:5] == ["server", "--app-name", "basic-auth"]
    for spec in planned:
        if spec.service == native.WORKER_SERVICE:
            assert spec.env["MLFLOW_TRACKING_PASSWORD"] == server.env["MLFLOW_AUTH_ADMIN_PASSWORD"]
    raw = compose.load()["services"]
    assert "MLFLOW_TRACKING_PASSWORD" not in raw["airflow-scheduler"].get("environment", {})


def test_postgres_creates_the_mlflow_databases_on_first_start() -> None:
    postgres = compose.load()["services"]["postgres"]
    assert (
        "./docker/postgres-init.sh:/docker-entrypoint-initdb.d/10-mlflow-db.sh:ro"
        in (postgres["volumes"])
    )
    assert {"MLFLOW_DB_NAME", "MLFLOW_AUTH_DB_NAME"} <= set(postgres["environment"])


# --------------------------------------------------------------------------- secrets


def _env_example() -> dict[str, str | None]:
    """Names in .env.example: assigned (value) or only mentioned in a comment (None)."""
    names: dict[str, str | None] = {}
    for line in compose.ENV_EXAMPLE.read_text().splitlines():
        assigned = re.match(r"^([A-Z_][A-Z0-9_]*)=(.*)$", line)
        commented = re.match(r"^#\s*([A-Z_][A-Z0-9_]*)=", line)
        if assigned:
            names[assigned.group(1)] = assigned.group(2)
        elif commented:
            names.setdefault(commented.group(1), None)
    return names


def test_env_example_names_every_variable_of_the_compose_file() -> None:
    assert compose.variables_used() <= set(_env_example())


def test_env_example_sets_every_required_variable_and_no_secret() -> None:
    required = compose.variables_used(required_only=True)
    example = _env_example()
    assert {"POSTGRES_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET"} <= required
    for name in required:
        assert name in example and example[name] is not None, f"{name} not set in .env.example"
        assert example[name] == "", f"{name} has a value in .env.example: secrets go in .env"


def test_the_compose_file_holds_no_secret(services: dict[str, compose.Service]) -> None:
    raw = compose.load()
    environments = [raw["x-airflow-common"]["environment"]] + [
        spec.get("environment") or {} for spec in raw["services"].values()
    ]
    for environment in environments:
        for key, value in environment.items():
            if SECRET_KEY.search(key):
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]*\}", str(value)), key
            if "@postgres:" in str(value):  # a database URL: its password from .env
                assert "${POSTGRES_PASSWORD:?" in str(value), key


def test_env_is_ignored_by_git() -> None:
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()


# --------------------------------------------------------------------------- the image


def test_the_image_is_the_pinned_airflow_and_python() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    pinned = re.search(r"^apache-airflow==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert pinned, "apache-airflow is not pinned in requirements.txt"
    assert f"ARG AIRFLOW_VERSION={pinned.group(1)}" in dockerfile
    assert "ARG PYTHON_VERSION=3.11" in dockerfile
    assert re.search(r"^FROM apache/airflow:\S*\$\{AIRFLOW_VERSION\}", dockerfile, re.M)
    assert "-r /opt/ct/requirements.txt" in dockerfile


def test_the_image_holds_every_container_path_the_compose_file_uses(
    settings: Settings,
) -> None:
    """Each container path the native map knows is created or copied by the Dockerfile."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    for path in settings.native_map.paths:
        if path == "/opt/airflow/logs":
            continue  # the base image's own
        assert path in dockerfile, path


# --------------------------------------------------------------------------- the parser itself


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${A}", "a"),
        ("${MISSING}", ""),
        ("${MISSING:-d}", "d"),
        ("${EMPTY:-d}", "d"),
        ("${EMPTY-d}", ""),
        ("${A:-d}", "a"),
        ("$$HOSTNAME and $${X}", "$HOSTNAME and ${X}"),
        ("pre-$A-post", "pre-a-post"),
    ],
)
def test_interpolation_follows_compose(text: str, expected: str) -> None:
    assert compose.interpolate(text, {"A": "a", "EMPTY": ""}) == expected


@pytest.mark.parametrize("text", ["${MISSING:?say why}", "${EMPTY:?say why}", "${MISSING?why}"])
def test_a_required_variable_stops_interpolation(text: str) -> None:
    with pytest.raises(ComposeError, match="required"):
        compose.interpolate(text, {"EMPTY": ""})


def test_the_map_rewrites_service_hosts_localhost_and_paths(tmp_path: Path) -> None:
    mapping = NativeMap(
        ports={("db", 5432): 5432, ("api", 8080): 41000}, paths={"/opt/airflow/dags": tmp_path}
    )
    assert mapping.value("postgresql://u:p@db:5432/x", "api") == "postgresql://u:p@127.0.0.1:5432/x"
    assert mapping.value("http://localhost:8080/health", "api") == "http://127.0.0.1:41000/health"
    assert mapping.value("http://localhost:8080/", "db") == "http://localhost:8080/"
    assert mapping.value("a,api:8080,b", "x") == "a,127.0.0.1:41000,b"
    assert mapping.value("/opt/airflow/dags/x.py", "api") == f"{tmp_path}/x.py"
    assert mapping.value("/opt/airflow/dagsfoo", "api") == "/opt/airflow/dagsfoo"
    assert mapping.unmapped("http://db:1/", {"db"}) == ["db:1"]
    assert mapping.unmapped("/opt/airflow/else", set()) == ["/opt/airflow/else"]
