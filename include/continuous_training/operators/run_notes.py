"""Writes each run's outcome as its note, where the Runs list and the run's page show it.

Airflow 3's task API cannot set a run's note, so tasks hand theirs over as an XCom
(`PipelineOperator.write_note`) and this listener, registered by the project's plugin, copies
the newest onto the run when the run ends. Listeners run where runs change state (the
scheduler; `dag.test()` in-process), which holds the metadata database session. A note a
person wrote (e.g. in the trigger form) is kept above ours.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.listeners import hookimpl
from sqlalchemy import select

from continuous_training import run_notes

log = logging.getLogger(__name__)
TAG = "continuous-training"


@hookimpl
def on_dag_run_success(dag_run: Any, msg: str) -> None:
    _write(dag_run, failed=False)


@hookimpl
def on_dag_run_failed(dag_run: Any, msg: str) -> None:
    _write(dag_run, failed=True)


def _write(dag_run: Any, failed: bool) -> None:
    # A listener's error must never reach the scheduler's loop.
    try:
        _write_in_session(dag_run, failed)
    except Exception:
        log.exception("could not write the run note of %s %s", dag_run.dag_id, dag_run.run_id)


def _write_in_session(dag_run: Any, failed: bool) -> None:
    """In the session that holds the run (the scheduler's: it has the run's row locked), or,
    for a run no session holds (`dag.test()`), in a session of our own."""
    from sqlalchemy.orm import object_session

    session = object_session(dag_run)
    if session is not None:
        _annotate(dag_run, dag_run, session, failed)
        return
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as own:
        stored = own.scalars(
            select(DagRun).where(DagRun.dag_id == dag_run.dag_id, DagRun.run_id == dag_run.run_id)
        ).one()
        _annotate(dag_run, stored, own, failed)


def _annotate(dag_run: Any, stored: Any, session: Any, failed: bool) -> None:
    note = _note_of(dag_run, session, failed)
    if note:
        stored.note = _merged(stored.note, note)


def _note_of(dag_run: Any, session: Any, failed: bool) -> str | None:
    from airflow.models.xcom import XComModel

    query = (
        select(XComModel)
        .where(
            XComModel.dag_id == dag_run.dag_id,
            XComModel.run_id == dag_run.run_id,
            XComModel.key == run_notes.NOTE_KEY,
        )
        .order_by(XComModel.timestamp.desc())
        .limit(1)
    )
    row = session.scalars(query).first()
    if row is not None and not failed:
        return str(XComModel.deserialize_value(row))
    if failed and _is_ours(dag_run):
        return run_notes.failed(_failed_tasks(dag_run, session))
    return None


def _is_ours(dag_run: Any) -> bool:
    dag = getattr(dag_run, "dag", None)
    return bool(dag is not None and TAG in (getattr(dag, "tags", None) or ()))


def _failed_tasks(dag_run: Any, session: Any) -> list[str]:
    from airflow.utils.state import TaskInstanceState

    tis = dag_run.get_task_instances(state=[TaskInstanceState.FAILED], session=session)
    return sorted({ti.task_id for ti in tis})


def _merged(existing: str | None, ours: str) -> str:
    """A person's note stays first; ours replaces an earlier note of ours (a re-run)."""
    if not existing or existing.startswith(run_notes.MARKS):
        return ours
    human = existing.split(run_notes.SEPARATOR, 1)[0]
    return run_notes.clip(f"{human}{run_notes.SEPARATOR}{ours}")
