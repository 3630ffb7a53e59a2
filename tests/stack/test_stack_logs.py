"""The logs of successful tasks, as the UI shows them: no line at error level.

A person reading a green run's log must not meet ERROR lines: they hide the real ones. The
task supervisor logs whatever a task writes to stderr as an error, so libraries' progress bars
and notices printed there (MLflow's downloads, its registry messages) would show up red.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.stack.airflow_api import AirflowApi
from tests.stack.runs import BATCH, STALL_TIMEOUT, WEEKLY

pytestmark = pytest.mark.stack

ERROR_LEVELS = {"error", "critical", "fatal", "exception"}


def error_lines(api: AirflowApi, dag_id: str, run_id: str) -> dict[str, list[str]]:
    """The error-level lines of each task's last attempt, by `task[map_index]`.

    Earlier attempts, if any, failed: their errors are real and stay in their logs. A task
    skipped without running (try 0) has no log.
    """
    found: dict[str, list[str]] = {}
    for ti in api.task_instances(dag_id, run_id):
        name = f"{ti['task_id']}[{ti['map_index']}]"
        assert ti["state"] in {"success", "skipped"}, (dag_id, name, ti["state"])
        if ti["try_number"] == 0:
            continue
        log = api.task_log(dag_id, run_id, ti["task_id"], ti["try_number"], ti["map_index"])
        assert log, f"{dag_id} {name}: an empty log"
        if errors := [_shown(line) for line in log if _is_error(line)]:
            found[name] = errors
    return found


def _shown(line: dict[str, Any]) -> str:
    """Where the line came from and its start (a progress bar is one very long line)."""
    return f"{line.get('logger', '?')}: {str(line.get('event', ''))[:300]}"


def _is_error(line: dict[str, Any] | str) -> bool:
    if isinstance(line, str):  # a line Airflow could not parse as an event: it has no level
        return False
    return str(line.get("level", "")).lower() in ERROR_LEVELS


def test_successful_runs_log_no_error_line(
    api: AirflowApi, weekly_run: dict[str, Any], batch_run_id: str
) -> None:
    batch_run = api.wait_for_run(BATCH, batch_run_id, STALL_TIMEOUT)
    assert weekly_run["state"] == batch_run["state"] == "success", (weekly_run, batch_run)
    errors = {
        dag_id: error_lines(api, dag_id, run_id)
        for dag_id, run_id in ((WEEKLY, weekly_run["dag_run_id"]), (BATCH, batch_run_id))
    }
    assert errors == {WEEKLY: {}, BATCH: {}}, json.dumps(errors, indent=1, default=str)
