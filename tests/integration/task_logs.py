"""Task logs of `dag.test()` runs: it logs every task to this process's stdout, not to files."""

from __future__ import annotations

import re


def task_log(output: str, task_id: str) -> str:
    """The lines `dag.test()` logged between the start and the end of one task's attempts."""
    start = re.escape(f"[DAG TEST] starting task_id={task_id} ")
    end = re.escape(f"[DAG TEST] end task task_id={task_id} ")
    sections = re.findall(rf"{start}.*?(?:{end}|\Z)", output, flags=re.S)
    return "\n".join(sections)
