"""Last in the folder: batch inference's mapped tasks, and where every task of every run ran."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.stack.airflow_api import AirflowApi
from tests.stack.native import NativeStack
from tests.stack.runs import BATCH, STALL_TIMEOUT, WEEKLY, worker_hostnames

pytestmark = pytest.mark.stack

MAPPED_TASK = "score_partition"


def test_batch_inference_scores_partitions_on_the_celery_workers(
    stack: NativeStack, api: AirflowApi, batch_run_id: str
) -> None:
    run = api.wait_for_run(BATCH, batch_run_id, STALL_TIMEOUT)
    tis = api.task_instances(BATCH, batch_run_id)
    assert run["state"] == "success", {(t["task_id"], t["map_index"]): t["state"] for t in tis}
    mapped = [ti for ti in tis if ti["task_id"] == MAPPED_TASK and ti["map_index"] >= 0]
    assert mapped, f"no mapped {MAPPED_TASK} instances: {[t['task_id'] for t in tis]}"
    assert {ti["state"] for ti in mapped} == {"success"}
    hosts = {ti["map_index"]: ti["hostname"] for ti in mapped}
    assert set(hosts.values()) <= worker_hostnames(stack), hosts


def task_instances_of_every_run(api: AirflowApi) -> list[dict[str, Any]]:
    return [
        {key: ti[key] for key in ("dag_id", "dag_run_id", "task_id", "map_index", "state")}
        | {"hostname": ti["hostname"], "duration": ti["duration"]}
        for dag_id in sorted({WEEKLY, BATCH} & api.dag_ids())
        for run in api.runs(dag_id)
        for ti in api.task_instances(dag_id, run["dag_run_id"])
    ]


def test_both_workers_took_tasks(
    stack: NativeStack, api: AirflowApi, weekly_run: dict[str, Any]
) -> None:
    """Celery spreads the tasks: over the folder's runs, each worker ran at least one."""
    tis = task_instances_of_every_run(api)
    (stack.settings.artifacts / "task-instances.json").write_text(json.dumps(tis, indent=1))
    assert {ti["hostname"] for ti in tis if ti["hostname"]} == worker_hostnames(stack)


def task_log_events(stack: NativeStack) -> dict[str, list[dict[str, Any]]]:
    """Each task attempt's log (JSON lines, as the workers wrote them), by its path."""
    logs = stack.settings.airflow_home / "logs"
    return {
        str(path.relative_to(logs)): [_event(line) for line in path.read_text().splitlines()]
        for path in sorted(logs.glob("dag_id=*/**/attempt=*.log"))
    }


def _event(line: str) -> dict[str, Any]:
    try:
        return json.loads(line)
    except ValueError:  # a line a library printed past the log handler
        return {"event": line}


def is_noise(event: dict[str, Any]) -> bool:
    """Lines of the libraries' imports, not of the task: what the toolkit silences."""
    if event.get("logger") == "py.warnings":  # skops' module scan meeting Airflow's shims
        return event.get("category") == "DeprecatedImportWarning"
    return event.get("logger") == "great_expectations._docs_decorators"


def test_task_logs_hold_what_the_tasks_did_not_import_noise(
    stack: NativeStack, api: AirflowApi, weekly_run: dict[str, Any], batch_run_id: str
) -> None:
    api.wait_for_run(BATCH, batch_run_id, STALL_TIMEOUT)
    logs = task_log_events(stack)
    # the tasks that save, load and validate models and data all left a log
    for task in ("validate", "train_candidate", "evaluate_vs_champion", "score_partition"):
        assert any(f"task_id={task}/" in path for path in logs), (task, sorted(logs))
    noise = {
        path: [event["event"] for event in events if is_noise(event)][:3]
        for path, events in logs.items()
    }
    assert {path: lines for path, lines in noise.items() if lines} == {}


def test_the_broker_keys_carry_the_runs_prefix(stack: NativeStack) -> None:
    """What teardown deletes: Celery's keys under this run's prefix in its Redis database."""
    assert stack.redis_keys(), f"no key under {stack.settings.redis_prefix!r}"
