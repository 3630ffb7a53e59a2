"""The task logs of `dag.test()` runs, captured whatever pytest does with stdout.

`dag.test()` runs tasks in this process and logs them to the stream Airflow's logging was
configured with when it was first imported: a capture stream of whichever test came first.
So the logs are taken at their sources instead: structlog's events (Airflow's own lines,
"Task failed with exception" with the exception's text) and every stdlib logging record
(operators' and the core's loggers).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


class _Records(logging.Handler):
    """Stdlib records into the same list as structlog's events, in the order they happen."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.sink: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        event = {"event": record.getMessage(), "logger": record.name, "level": record.levelname}
        if record.exc_info:
            event["exception"] = logging.Formatter().formatException(record.exc_info)
        self.sink.append(event)


@dataclass
class TaskLogs:
    events: list[dict[str, Any]] = field(default_factory=list)

    def text(self) -> str:
        """Everything logged, one JSON line per event or record, exceptions formatted."""
        return "\n".join(json.dumps(event, default=str) for event in self.events)

    def task(self, task_id: str) -> str:
        """What was logged between the start and the end of one task's attempts."""
        lines, inside = [], False
        for event in self.events:
            message = str(event.get("event", ""))
            if message.startswith(f"[DAG TEST] starting task_id={task_id} "):
                inside = True
            if inside:
                lines.append(json.dumps(event, default=str))
            if message.startswith(f"[DAG TEST] end task task_id={task_id} "):
                inside = False
        return "\n".join(lines)


@contextmanager
def captured() -> Iterator[TaskLogs]:
    """Capture the task logs of the runs made inside the block."""
    import airflow  # noqa: F401  configures logging on first import: not inside the block
    import structlog

    handler = _Records()
    root = logging.getLogger()
    processors = [
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.format_exc_info,  # inside the except block: the exception's text
    ]
    with structlog.testing.capture_logs(processors=processors) as events:
        handler.sink = events
        root.addHandler(handler)
        try:
            yield TaskLogs(events)
        finally:
            root.removeHandler(handler)
