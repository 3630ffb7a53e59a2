"""The compose topology refuses requests without a login: MLflow (basic-auth) and Airflow.

The weekly run of test_stack_api registered and promoted `churn` through this login (the
workers hold MLFLOW_TRACKING_USERNAME/PASSWORD of .env), so every client call the tasks make
works under auth; here the server refuses everyone else.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.stack.native import NativeStack

pytestmark = pytest.mark.stack

REGISTRY_API = "/api/2.0/mlflow/registered-models/search"


def get(stack: NativeStack, path: str, auth: tuple[str, str] | None = None) -> requests.Response:
    return requests.get(
        f"{stack.settings.mlflow_url}{path}",
        auth=auth,
        headers={"Connection": "close"},
        timeout=30,
    )


def login(stack: NativeStack) -> tuple[str, str]:
    variables = stack.settings.variables
    return variables["MLFLOW_ADMIN_USERNAME"], variables["MLFLOW_ADMIN_PASSWORD"]


def test_the_registry_refuses_a_request_without_a_login(stack: NativeStack) -> None:
    response = get(stack, REGISTRY_API)
    assert response.status_code == 401, response.text
    assert get(stack, "/").status_code == 401  # the UI too


def test_the_registry_refuses_a_wrong_password(stack: NativeStack) -> None:
    user, _ = login(stack)
    assert get(stack, REGISTRY_API, auth=(user, "not-the-password")).status_code == 401


def test_the_health_route_needs_no_login(stack: NativeStack) -> None:
    """What the compose healthcheck (and registry.check_reachable) calls."""
    assert get(stack, "/health").status_code == 200


def test_the_login_of_env_reads_what_the_workers_registered(
    stack: NativeStack, weekly_run: dict[str, Any]
) -> None:
    response = get(stack, REGISTRY_API, auth=login(stack))
    assert response.status_code == 200, response.text
    assert "churn" in {model["name"] for model in response.json()["registered_models"]}


@pytest.fixture
def global_tracking_uri() -> Iterator[None]:
    """`registry.make_client` sets MLflow's process-wide URI: the tests after these keep theirs."""
    import mlflow

    before = mlflow.get_tracking_uri()
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)


@pytest.mark.usefixtures("global_tracking_uri")
def test_our_client_names_the_server_and_user_it_was_refused_as(
    stack: NativeStack, weekly_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from continuous_training import registry

    url = stack.settings.mlflow_url
    user, password = login(stack)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "not-the-password")
    with pytest.raises(registry.RegistryError, match=f"at {url} refused the password of user"):
        registry.make_client(url)
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    with pytest.raises(registry.RegistryError, match="refused a request without a login"):
        registry.make_client(url)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
    client = registry.make_client(url)
    assert registry.alias_version(client, "churn", registry.CHAMPION) is not None


@pytest.mark.parametrize(
    "path",
    [
        "/api/v2/connections",  # the public API: a token from /auth/token
        "/execution/connections/mlflow_default",  # what tasks read secrets by: a task's JWT
        "/execution/variables/ct_any",
    ],
)
def test_airflow_serves_no_secret_without_a_token(stack: NativeStack, path: str) -> None:
    """The simple auth manager guards the REST API; the JWT secret guards the task API."""
    response = requests.get(
        f"{stack.settings.api_url}{path}", headers={"Connection": "close"}, timeout=30
    )
    assert response.status_code in (401, 403), (path, response.status_code, response.text)
