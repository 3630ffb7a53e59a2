"""Operator extra links: the "MLflow run" button on training and evaluation tasks."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperatorLink


class MLflowRunLink(BaseOperatorLink):
    """Links a task to the MLflow run it logged to.

    Airflow 3 calls `get_link` in the worker when the task finishes and stores the URL in
    XCom; the task's return value carries `mlflow_run_url`, so no extra lookup is needed.
    """

    name = "MLflow run"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        value = XCom.get_value(ti_key=ti_key, key="return_value")
        if isinstance(value, dict):
            return str(value.get("mlflow_run_url") or "")
        return ""
