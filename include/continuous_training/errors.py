"""The error policy of every task, in one place: what fails at once and what is retried.

Bad data and bad config do not get better on retry: they raise a `BadInputError` (or a
subclass) whose message names the file, column or key, and the operators fail the task at
once with that message. Everything else (a server restarting, the network, a killed
worker) is left to Airflow's retries.

A library's own error that means "this input is bad" (pyarrow reading a truncated file,
sklearn refusing an infinite value) is turned into a `BadInputError` where the core reads
or uses the input, so that the message can say which file and which column.
"""

from __future__ import annotations


class BadInputError(ValueError):
    """Bad data or bad config: fails the task at once, never retried."""


def is_bad_input(exc: BaseException) -> bool:
    """Whether `exc` (or an exception it was raised from) is bad input."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, BadInputError):
            return True
        seen.add(id(current))
        current = current.__cause__
    return False


class StepSkipped(Exception):  # a decision, not an error: the task is skipped
    """A step has nothing to do this run (no drift, no decay, an event already handled).

    The message says why; the operators turn it into a skipped task, so downstream tasks
    (and the asset events they would emit) do not run.
    """
