"""The stack's MLflow registry as the tests read it: a logged-in client, champions, versions."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from tests.stack.native import NativeStack

CREDENTIALS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


@contextlib.contextmanager
def mlflow_client(stack: NativeStack) -> Iterator[Any]:
    """A client with the stack's MLflow login (the basic-auth app); the environment restored."""
    from mlflow import MlflowClient

    variables = stack.settings.variables
    saved = {key: os.environ.get(key) for key in CREDENTIALS}
    os.environ["MLFLOW_TRACKING_USERNAME"] = variables["MLFLOW_ADMIN_USERNAME"]
    os.environ["MLFLOW_TRACKING_PASSWORD"] = variables["MLFLOW_ADMIN_PASSWORD"]
    try:
        yield MlflowClient(stack.settings.mlflow_url)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def champion(client: Any, model: str) -> str | None:
    """The version the `champion` alias points at; None before the first promotion."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(model, "champion").version)
    except MlflowException:
        return None


def version_of_run(client: Any, model: str, run_id: str) -> Any:
    """The model version that the Airflow run `run_id` registered (exactly one)."""
    (version,) = [
        v
        for v in client.search_model_versions(f"name = '{model}'")
        if v.tags.get("ct.airflow_run_id") == run_id
    ]
    return version
