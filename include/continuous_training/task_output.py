"""What MLflow prints during a task reaches the task log at its own level, not as an error.

Airflow's task supervisor logs every line a task writes to stderr at ERROR level, so a
successful task's log would show red lines that are no errors: MLflow's artifact download
progress bars (tqdm), the records of its loggers (MLflow gives them a handler of its own that
writes to stderr) and its console notices ("Created version '3' of model 'churn'."). A person
reading a green run then learns to ignore ERROR lines, and misses the real ones.

`route_library_output` is called once per task, before its step (the operators' base class):
- MLflow's own switches: no progress bar (`MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR`, a default:
  a value set by hand is kept), no handler of its own on its loggers
  (`MLFLOW_CONFIGURE_LOGGING`, read when mlflow is imported; always off, as that handler
  would write into the stream below and so back into its own logger), so their records
  propagate to the task's logging and keep their level;
- MLflow 3 has no switch for its notices (`mlflow.utils.logging_utils.eprint`), so the stream
  they are printed to becomes a writer into the `mlflow` logger at INFO.
If mlflow is already imported, its loggers are rerouted at once; otherwise right after it is
(importing it here would cost seconds of CPU in every task that never uses it).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import logging
import os
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
CONFIGURE_LOGGING = "MLFLOW_CONFIGURE_LOGGING"
MLFLOW_LOGGING = "mlflow.utils.logging_utils"
# The loggers mlflow's import configures with its stderr handler (`_configure_mlflow_loggers`).
MLFLOW_CONFIGURED_LOGGERS = ("mlflow", "sqlalchemy.engine", "alembic", "huey")


def route_library_output() -> None:
    """MLflow's console output into the task's logging, each line at its own level."""
    os.environ.setdefault(PROGRESS_BAR, "false")
    os.environ[CONFIGURE_LOGGING] = "false"
    module = sys.modules.get(MLFLOW_LOGGING)
    if module is not None:
        route_mlflow(module)
    elif not any(isinstance(finder, _AfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport(MLFLOW_LOGGING, route_mlflow))


def route_mlflow(logging_utils: ModuleType) -> None:
    """Drop MLflow's stderr handlers (records propagate) and log its notices at INFO."""
    console = logging_utils.MLFLOW_LOGGING_STREAM
    for name in MLFLOW_CONFIGURED_LOGGERS:
        logger = logging.getLogger(name)
        ours = [h for h in logger.handlers if getattr(h, "stream", None) is console]
        for handler in ours:
            logger.removeHandler(handler)
        if ours:
            logger.propagate = True
    if not isinstance(console, LineLogger):
        # `eprint` looks the stream up in its module at each call
        logging_utils.MLFLOW_LOGGING_STREAM = LineLogger(logging.getLogger("mlflow"))


class LineLogger:
    """A text stream that logs each complete line it is given, at INFO."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.pending = ""

    def write(self, text: str) -> int:
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            if line.strip():
                self.logger.info("%s", line)
        return len(text)

    def flush(self) -> None:
        if self.pending.strip():
            self.logger.info("%s", self.pending)
        self.pending = ""


class _AfterImport(importlib.abc.MetaPathFinder):
    """Calls `then(module)` once the module `name` is imported, before anything else uses it."""

    def __init__(self, name: str, then: Callable[[ModuleType], None]) -> None:
        self.name = name
        self.then = then

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # once: the usual finders find the module itself
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _ThenLoader(spec.loader, self.then)
        return spec


class _ThenLoader(importlib.abc.Loader):
    def __init__(self, loader: Any, then: Callable[[ModuleType], None]) -> None:
        self.loader = loader
        self.then = then

    def create_module(self, spec: Any) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        self.then(module)

    def __getattr__(self, name: str) -> Any:  # get_source etc., for tracebacks
        return getattr(self.loader, name)
