"""MLflow's console output in a task: into logging at its level, nothing on stderr.

Airflow logs a task's stderr as ERROR; tests/stack/test_stack_logs.py checks the real logs.
Each case runs in a fresh interpreter: the routing changes process-wide state (sys.meta_path,
MLflow's loggers, the environment), and whether mlflow was imported first is the point.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

SCRIPT = """
import json, logging, sys
if {import_first}:
    import mlflow
from continuous_training.task_output import route_library_output
route_library_output()
route_library_output()  # once per task; a second call changes nothing
records = []
class Keep(logging.Handler):
    def emit(self, record):
        records.append([record.name, record.levelname, record.getMessage()])
logging.basicConfig(level=logging.INFO, handlers=[Keep()])
import mlflow
from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR
from mlflow.utils.logging_utils import eprint
eprint("Created version '1' of model 'churn'.")
logging.getLogger("mlflow.tracking.fluent").info("Experiment 'ct/x' does not exist.")
logging.getLogger("mlflow.store").warning("a real warning")
print(json.dumps({{"records": records, "bar": MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.get()}}))
"""


@pytest.mark.parametrize("import_first", [False, True], ids=["before-import", "after-import"])
def test_mlflow_output_is_logged_at_its_level_not_printed_to_stderr(import_first: bool) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(import_first=import_first)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    assert done.stderr == ""
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["bar"] is False
    assert result["records"] == [
        ["mlflow", "INFO", "Created version '1' of model 'churn'."],
        ["mlflow.tracking.fluent", "INFO", "Experiment 'ct/x' does not exist."],
        ["mlflow.store", "WARNING", "a real warning"],
    ]
