"""The suite's own machinery: waits on an Airflow run follow the work; workers share groups.

`tests/stack/airflow_api.py` is what the browser, REST and fault tests wait with; here its
clock is a fake that each poll moves on, and the run a script of task states.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.stack import airflow_api
from tests.stack.airflow_api import AirflowApi, AirflowApiError


class ScriptedRun(AirflowApi):
    """The API of one run that passes through `steps` (task states), one step per poll."""

    def __init__(self, steps: list[dict[str, str]], final: str) -> None:  # no login
        self.steps, self.final, self.polls = steps, final, 0

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        done = self.polls >= len(self.steps)
        return {"state": self.final if done else "running"}

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        states = self.steps[min(self.polls, len(self.steps) - 1)]
        self.polls += 1
        return [{"task_id": t, "state": s, "try_number": 1} for t, s in states.items()]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """`time` of the module as a list: each sleep moves it on, nothing really waits."""
    now = [0.0]
    monkeypatch.setattr(airflow_api.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(airflow_api.time, "sleep", lambda s: now.__setitem__(0, now[0] + s))
    return now


def test_a_run_that_keeps_moving_is_waited_for_past_the_stall_timeout(clock: list[float]) -> None:
    chain = ["fetch", "validate", "train", "evaluate", "promote"]
    steps = [
        {t: ("success" if j < i else "running") for j, t in enumerate(chain)} for i in range(5)
    ]
    api = ScriptedRun(steps, final="success")
    assert api.wait_for_run("d", "r", stall_timeout=5)["state"] == "success"
    assert clock[0] > 5  # longer than the stall timeout in all, never that long without progress


def test_a_stuck_run_fails_the_wait_naming_each_task(clock: list[float]) -> None:
    stuck = [{"fetch": "success", "train": "running"}] * 100
    api = ScriptedRun(stuck, final="success")
    with pytest.raises(AirflowApiError, match=r"no task moved for 10s.*'train': 'running'"):
        api.wait_for_run("d", "r", stall_timeout=10)
    assert 10 < clock[0] < 20


def test_both_native_stacks_share_a_worker_and_each_module_keeps_its_own() -> None:
    from tests.conftest import group_of

    stack, faults = "tests/stack/test_stack_api.py::t", "tests/faults/test_c_concurrency.py::t[1]"
    assert group_of(stack) == group_of(faults)
    assert group_of("tests/integration/test_steps.py::t") == "tests/integration/test_steps.py"
    assert group_of("tests/unit/test_gate.py::t[a::b]") == "tests/unit/test_gate.py"
