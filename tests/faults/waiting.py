"""Waiting on a running stack: for a task to run, for a file to appear, for a run to end."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from tests.stack.airflow_api import AirflowApi
from tests.stack.native import NativeStack

T = TypeVar("T")


def until(what: str, probe: Callable[[], T | None], timeout: float, every: float = 0.1) -> T:
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout}s for {what}")
        time.sleep(every)


def running(api: AirflowApi, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
    """The instances of a task (mapped ones too) running now, with the host they run on."""
    return [
        ti
        for ti in api.task_instances(dag_id, run_id)
        if ti["task_id"] == task_id and ti["state"] == "running" and ti["hostname"]
    ]


def instances(api: AirflowApi, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
    return [ti for ti in api.task_instances(dag_id, run_id) if ti["task_id"] == task_id]


def worker_on(stack: NativeStack, hostname: str) -> str:
    """The native instance (e.g. `airflow-worker-2`) that a task instance's hostname names."""
    [name] = [w.name for w in stack.workers() if w.hostname == hostname]
    return name


def run_folder(stack: NativeStack, pipeline: str, run_id: str) -> Path:
    from continuous_training.storage import safe_token

    return stack.settings.data_root / pipeline / "runs" / safe_token(run_id)
