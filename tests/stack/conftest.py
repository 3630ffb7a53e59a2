"""One native stack (docker-compose.yaml's topology; native.py) for every test in this folder.

The modules run in name order and share the stack's runs: test_stack_api (weekly retraining
over REST, then batch inference is started), test_stack_approval (approvals over REST),
test_stack_auth (requests without a login, to MLflow and Airflow), test_stack_browser (a weekly
run from the UI form, while batch inference runs on the other worker slots; one more approval,
from the Required Actions page), test_stack_workers (batch inference's result, where every task
ran). Each fixture still works when a module runs on its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from tests.stack.airflow_api import AirflowApi
from tests.stack.native import NativeStack, Settings
from tests.stack.runs import (
    BATCH,
    BATCH_DATE,
    STACK_PIPELINES,
    STALL_TIMEOUT,
    TRAINING_DAYS,
    WEEKLY,
    WEEKLY_DATE,
    trigger_then_unpause,
)
from tests.stack.sessions import add_log_tails, api_of, started

_RUNNING: list[NativeStack] = []


@pytest.fixture(scope="package")
def stack() -> Iterator[NativeStack]:
    """Up once for the folder; down (processes, databases, Redis keys) even when tests fail."""
    with started(Settings.create(pipelines=STACK_PIPELINES), _RUNNING) as running:
        yield running


@pytest.fixture(scope="package")
def api(stack: NativeStack) -> Iterator[AirflowApi]:
    with contextlib.closing(api_of(stack)) as client:
        yield client


@pytest.fixture(scope="package")
def weekly_run(api: AirflowApi) -> dict[str, Any]:
    """The weekly retraining, triggered over REST with params, run to its end."""
    run_id = trigger_then_unpause(api, WEEKLY, WEEKLY_DATE, {"training_window_days": TRAINING_DAYS})
    return api.wait_for_run(WEEKLY, run_id, STALL_TIMEOUT)


@pytest.fixture(scope="package")
def batch_run_id(api: AirflowApi, weekly_run: dict[str, Any]) -> str:
    """Batch inference started once the weekly run left a champion (not waited for here)."""
    if BATCH not in api.dag_ids():
        pytest.skip(f"{BATCH} is not in this build's DAGs")
    return trigger_then_unpause(api, BATCH, BATCH_DATE)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome = yield
    add_log_tails(item, outcome.get_result(), _RUNNING)
