"""Pytest plugin loaded first (`-p tests.environment`): an isolated Airflow and data root.

Airflow reads its configuration when first imported, so the environment is set here,
before any test module can import it. Nothing touches ~/airflow or the user's data.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SESSION_DIR = Path(tempfile.mkdtemp(prefix="ct-tests-"))

os.environ.update(
    {
        "AIRFLOW_HOME": str(SESSION_DIR / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{SESSION_DIR}/airflow/airflow.db",
        "CT_DATA_ROOT": str(SESSION_DIR / "data"),
        "CT_PIPELINES_DIR": str(SESSION_DIR / "pipelines"),
        "CT_GIT_SHA": "test-sha",
        "GX_ANALYTICS_ENABLED": "False",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
        "PYTHONWARNINGS": "ignore::DeprecationWarning",
    }
)
(SESSION_DIR / "airflow").mkdir()
(SESSION_DIR / "pipelines").mkdir()
# The shipped pipelines are always there; tests add their own variants beside them.
for shipped in (ROOT / "include" / "pipelines").glob("*.yaml"):
    (SESSION_DIR / "pipelines" / shipped.name).write_text(shipped.read_text())


def pytest_unconfigure(config: object) -> None:
    """Remove the session's folder (set CT_KEEP_TEST_DIR=1 to look at it afterwards)."""
    if not os.environ.get("CT_KEEP_TEST_DIR"):
        shutil.rmtree(SESSION_DIR, ignore_errors=True)
