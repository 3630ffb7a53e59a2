"""One native stack (docker-compose.yaml's topology; native.py) for every test in this folder."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.stack.airflow_api import AirflowApi
from tests.stack.native import NativeStack, Settings

_RUNNING: list[NativeStack] = []


@pytest.fixture(scope="package")
def stack() -> Iterator[NativeStack]:
    """Up once for the folder; down (processes, databases, Redis keys) even when tests fail."""
    with NativeStack(Settings.create()) as running:
        _RUNNING.append(running)
        try:
            yield running
        finally:
            _RUNNING.remove(running)


@pytest.fixture(scope="package")
def api(stack: NativeStack) -> Iterator[AirflowApi]:
    """The REST API, logged in with the user and password the stack was configured with."""
    variables = stack.settings.variables
    client = AirflowApi(
        stack.settings.api_url,
        variables["AIRFLOW_ADMIN_USERNAME"],
        variables["AIRFLOW_ADMIN_PASSWORD"],
    )
    try:
        yield client
    finally:
        client.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    """A failing stack test shows the tail of every process's log (full logs: test-artifacts/)."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and _RUNNING and "stack" in getattr(item, "fixturenames", ()):
        running = _RUNNING[-1]
        report.sections.append(
            (f"native stack logs (tails; all in {running.settings.artifacts})", running.log_tails())
        )
