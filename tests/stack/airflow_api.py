"""Airflow's public REST API (v2) as a user scripts it: a token from /auth/token, then Bearer."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import requests

FINISHED = {"success", "failed"}


class AirflowApiError(AssertionError):
    """An unexpected answer of the API; the message has the method, path, status and body."""


class AirflowApi:
    def __init__(self, base_url: str, username: str, password: str):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        # Uvicorn's graceful shutdown waits for open keep-alive connections: close each one.
        self.session.headers["Connection"] = "close"
        token = self.login(username, password)
        self.session.headers["Authorization"] = f"Bearer {token}"

    def login(self, username: str, password: str) -> str:
        """The simple auth manager's token endpoint: JSON credentials in, a JWT out."""
        response = self.session.post(
            f"{self.base_url}/auth/token",
            json={"username": username, "password": password},
            timeout=30,
        )
        if response.status_code != 201:
            raise AirflowApiError(f"POST /auth/token -> {response.status_code}: {response.text}")
        return response.json()["access_token"]

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.base_url}{path}", timeout=30, **kwargs)
        if response.status_code >= 400:
            raise AirflowApiError(
                f"{method} {path} -> {response.status_code}: {response.text[:2000]}"
            )
        return response.json() if response.content else None

    def close(self) -> None:
        self.session.close()

    # ------------------------------------------------------------------ DAGs and runs

    def dag_ids(self) -> set[str]:
        return {dag["dag_id"] for dag in self.request("GET", "/api/v2/dags?limit=100")["dags"]}

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        """The DAG processor has parsed and stored it (the API lists only stored DAGs)."""
        deadline = time.monotonic() + timeout
        while dag_id not in self.dag_ids():
            if time.monotonic() > deadline:
                raise AirflowApiError(f"{dag_id} not listed after {timeout}s: {self.dag_ids()}")
            time.sleep(2)

    def dag(self, dag_id: str) -> dict[str, Any]:
        return self.request("GET", f"/api/v2/dags/{dag_id}")

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})

    def trigger(
        self,
        dag_id: str,
        logical_date: str,
        conf: dict[str, Any] | None = None,
        run_after: str | None = None,
    ) -> str:
        """A manual run; `run_after` (default: now) orders it among queued runs of the DAG."""
        body: dict[str, Any] = {"logical_date": logical_date, "conf": conf or {}}
        if run_after:
            body["run_after"] = run_after
        run = self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)
        return run["dag_run_id"]

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100")["dag_runs"]

    def mark_run(self, dag_id: str, run_id: str, state: str, note: str) -> None:
        """What the UI's "Mark as ..." does; the note says why on the run's page."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}"
        self.request("PATCH", path, json={"state": state, "note": note})

    def wait_for_run(self, dag_id: str, run_id: str, stall_timeout: float) -> dict[str, Any]:
        """Poll until the run finishes; the run as the API shows it at the end.

        The wait follows the work, not a clock: it gives up only when no task of the run has
        changed state or attempt for `stall_timeout` seconds, so a busy machine that runs
        slowly still finishes while a run that is stuck fails the wait, naming each task.
        """
        progress: tuple = ()
        last_change = time.monotonic()
        while True:
            run = self.run(dag_id, run_id)
            if run["state"] in FINISHED:
                return run
            tasks = self.task_instances(dag_id, run_id)
            now = _progress_of(tasks)
            if now != progress:
                progress, last_change = now, time.monotonic()
            elif time.monotonic() - last_change > stall_timeout:
                states = {ti["task_id"]: ti["state"] for ti in tasks}
                raise AirflowApiError(
                    f"{dag_id} {run_id} still {run['state']}, no task moved for "
                    f"{stall_timeout}s; tasks: {states}"
                )
            time.sleep(3)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances?limit=100"
        return self.request("GET", path)["task_instances"]

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1
    ) -> list[dict[str, Any] | str]:
        """One attempt's whole log as the UI reads it: its events (dicts with `event`, `level`,
        `logger`...), or plain lines where Airflow could not parse them."""
        path = (
            f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/"
            f"{task_id}/logs/{try_number}?full_content=true&map_index={map_index}"
        )
        content = self.request("GET", path, headers={"Accept": "application/json"})["content"]
        return [line if isinstance(line, str) else dict(line) for line in content]

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        path = (
            f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/"
            f"{task_id}/xcomEntries/{key}?deserialize=true&stringify=false"
        )
        return self.request("GET", path)["value"]

    # ------------------------------------------------------------------ human in the loop

    def task_state(self, dag_id: str, run_id: str, task_id: str) -> str | None:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}"
        return self.request("GET", path)["state"]

    def wait_for_task(
        self, dag_id: str, run_id: str, task_id: str, states: set[str], stall_timeout: float
    ) -> str:
        """Poll until the task is in one of `states` (or the run ends); the state it reached."""
        progress: tuple = ()
        last_change = time.monotonic()
        while True:
            state = self.task_state(dag_id, run_id, task_id)
            if state in states:
                return state
            run = self.run(dag_id, run_id)
            if run["state"] in FINISHED:
                raise AirflowApiError(f"{dag_id} {run_id} ended {run['state']}; {task_id}: {state}")
            now = _progress_of(self.task_instances(dag_id, run_id))
            if now != progress:
                progress, last_change = now, time.monotonic()
            elif time.monotonic() - last_change > stall_timeout:
                raise AirflowApiError(f"{task_id} of {dag_id} {run_id} stuck in {state}")
            time.sleep(2)

    def hitl_path(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
        run = quote(run_id, safe="")
        return (
            f"/api/v2/dags/{dag_id}/dagRuns/{run}/taskInstances/{task_id}/{map_index}/hitlDetails"
        )

    def hitl_detail(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        """The question a human-in-the-loop task asks, and its answer once given."""
        return self.request("GET", self.hitl_path(dag_id, run_id, task_id))

    def respond(
        self, dag_id: str, run_id: str, task_id: str, option: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        """What the Required Actions page sends: the chosen option and the form's fields."""
        body = {"chosen_options": [option], "params_input": params}
        return self.request("PATCH", self.hitl_path(dag_id, run_id, task_id), json=body)


def _progress_of(task_instances: list[dict[str, Any]]) -> tuple:
    """Where a run stands: each task instance's state and attempt."""
    return tuple(
        sorted(
            (ti["task_id"], ti.get("map_index", -1), str(ti["state"]), ti.get("try_number", 0))
            for ti in task_instances
        )
    )
