"""What every package that runs a native stack needs: a logged-in API, logs on failure."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from tests.stack.airflow_api import AirflowApi
from tests.stack.native import NativeStack, Settings


@contextlib.contextmanager
def started(settings: Settings, running: list[NativeStack]) -> Iterator[NativeStack]:
    """Up for the block, listed in `running` (for add_log_tails); down even when tests fail."""
    with NativeStack(settings) as stack:
        running.append(stack)
        try:
            yield stack
        finally:
            running.remove(stack)


def api_of(stack: NativeStack) -> AirflowApi:
    """The REST API, logged in with the user and password the stack was configured with."""
    variables = stack.settings.variables
    return AirflowApi(
        stack.settings.api_url,
        variables["AIRFLOW_ADMIN_USERNAME"],
        variables["AIRFLOW_ADMIN_PASSWORD"],
    )


def add_log_tails(item: pytest.Item, report: Any, running: list[NativeStack]) -> None:
    """A failing test that used the stack shows the tail of every process's log."""
    if report.failed and running and "stack" in getattr(item, "fixturenames", ()):
        stack = running[-1]
        report.sections.append(
            (
                f"native stack logs (tails; all in {stack.settings.artifacts})",
                stack.log_tails(health=False),
            )
        )
