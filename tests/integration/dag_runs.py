"""Run the project's real DAGs with `dag.test()` and read what they left in MLflow."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from tests.environment import ROOT, SESSION_DIR

# The retraining chain, in order.
CHAIN = ["fetch", "validate", "train_candidate", "evaluate_vs_champion", "promote"]
# (dag_id, run_id, task_id) -> the text of the exception each failed attempt ended with
_TASK_ERRORS: dict[tuple[str, str, str], list[str]] = {}


def write_pipeline(name: str, directory: Path | None = None, **overrides: Any) -> Path:
    """A variant of the shipped churn pipeline under its own name (and registered model).

    Mappings given for a top-level key are merged into the shipped one; anything else
    replaces it. Written to the session's CT_PIPELINES_DIR unless `directory` says.
    """
    data = yaml.safe_load((ROOT / "include" / "pipelines" / "churn.yaml").read_text())
    data["name"] = name
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    path = (directory or SESSION_DIR / "pipelines") / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_dag(
    dag_id: str,
    logical_date: datetime,
    conf: dict[str, Any] | None = None,
    run_after: datetime | None = None,
) -> Any:
    """One real DagRun of a factory-built DAG, tasks executed in this process.

    The run id comes from `run_after` (default: now); giving the one of an earlier run
    runs that run again under the same id, as clearing it in Airflow does.
    """
    from continuous_training.config import find_pipeline
    from continuous_training.dag_factory import build_dags

    kinds = ("_weekly_retraining", "_drift_retraining", "_batch_inference", "_rollback")
    kinds += ("_performance_monitoring",)
    pipeline = next(dag_id.removesuffix(k) for k in kinds if dag_id.endswith(k))
    dag = build_dags(find_pipeline(pipeline))[dag_id]
    for key in [k for k in _TASK_ERRORS if k[0] == dag_id]:
        del _TASK_ERRORS[key]  # a run id of an earlier test may come back
    for task in dag.tasks:
        # Keep the retries, not the 5-minute wait between them.
        task.retry_delay = timedelta(seconds=1)
        # Airflow hands each callback the attempt's exception: what the user reads in the log.
        # Added to the DAG's own callbacks (e.g. the failure notification), not replacing them.
        task.on_retry_callback = [*task.on_retry_callback, _record_error]
        task.on_failure_callback = [*task.on_failure_callback, _record_error]
    dag_run = dag.test(logical_date=logical_date, run_conf=conf or {}, run_after=run_after)
    # dag.test() leaves its last change uncommitted (the run's end, and what the listeners
    # wrote then, e.g. the run note); a scheduler commits it.
    from airflow import settings

    settings.Session().commit()
    return dag_run


def _record_error(context: Any) -> None:
    ti = context["ti"]
    _TASK_ERRORS.setdefault((ti.dag_id, ti.run_id, ti.task_id), []).append(
        str(context.get("exception"))
    )


def task_errors(dag_run: Any) -> dict[str, list[str]]:
    """Per task of the run, the exception text of each failed attempt, oldest first."""
    return {
        task_id: errors
        for (dag_id, run_id, task_id), errors in _TASK_ERRORS.items()
        if (dag_id, run_id) == (dag_run.dag_id, dag_run.run_id)
    }


def task_states(dag_run: Any) -> dict[str, str]:
    """State per task; a mapped task shows its instances' states joined, e.g. 'success*4'."""
    states: dict[str, list[str]] = {}
    for ti in dag_run.get_task_instances():
        states.setdefault(ti.task_id, []).append(str(ti.state))
    return {
        task: found[0] if len(found) == 1 else f"{'/'.join(sorted(set(found)))}*{len(found)}"
        for task, found in states.items()
    }


def run_note(dag_run: Any) -> str | None:
    """The run's note as the metadata database holds it (what the UI shows)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        found = session.scalars(
            select(DagRun).where(DagRun.dag_id == dag_run.dag_id, DagRun.run_id == dag_run.run_id)
        ).one()
        return found.note


def asset_events(asset_name: str) -> list[dict[str, Any]]:
    """The extras of every event of an asset, oldest first, from the metadata database."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == asset_name)
            .order_by(AssetEvent.id)
        ).all()
        return [dict(row.extra or {}) for row in rows]


def versions(client: Any, model_name: str) -> list[Any]:
    found = client.search_model_versions(f"name = '{model_name}'")
    return sorted(found, key=lambda v: int(v.version))


def champion(client: Any, model_name: str) -> str | None:
    from continuous_training.registry import CHAMPION, alias_version

    return alias_version(client, model_name, CHAMPION)


def xcom_value(dag_run: Any, task_id: str, key: str = "return_value") -> Any:
    """An XCom of the run, read from the metadata database as the UI and API read it."""
    import json

    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        value = session.scalar(
            select(XComModel.value).where(
                XComModel.dag_id == dag_run.dag_id,
                XComModel.run_id == dag_run.run_id,
                XComModel.task_id == task_id,
                XComModel.key == key,
            )
        )
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value  # extra links are stored as the bare URL


def folder_hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def assert_failed_at(run: Any, task_id: str) -> str:
    """The run failed at `task_id` at its first attempt, after the tasks before it succeeded.

    Returns the message of the exception it failed with (what its log ends with).
    """
    states = task_states(run)
    assert str(run.state) == "failed", states
    at = CHAIN.index(task_id)
    assert all(states[t] == "success" for t in CHAIN[:at]), states
    assert states[task_id] == "failed", states
    assert all(states[t] == "upstream_failed" for t in CHAIN[at + 1 :]), states
    [error] = task_errors(run)[task_id]  # one attempt: bad input is not retried
    return error
