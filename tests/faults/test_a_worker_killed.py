"""A Celery worker killed with SIGKILL in the middle of training and in the middle of scoring.

The scheduler notices the silent task (heartbeat timeout), Airflow retries it on a live worker
(compose's `restart: always` also brings the killed one back), and the result is the same as
an undisturbed run of the same data: the same snapshot hashes, the same model, the same rows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from continuous_training.storage import sha256_of
from tests.faults.conftest import RUN_TIMEOUT, SCORED_ROWS_PER_DAY, WEEKLY
from tests.faults.waiting import instances, run_folder, running, until, worker_on
from tests.stack.airflow_api import AirflowApi
from tests.stack.native import NativeStack
from tests.stack.runs import trigger_then_unpause

pytestmark = pytest.mark.stack

SAME_WINDOW_AS_V1 = "2026-03-01T05:00:00Z"  # the data window ends at midnight, as v1's
BATCH = "churn_batch_inference"
BATCH_DATE = "2026-03-03T03:00:00Z"
BATCH_AGAIN = "2026-03-03T04:00:00Z"  # the same day scored again
HOLDOUT_METRICS = ("holdout_roc_auc", "holdout_log_loss", "holdout_brier")


def test_worker_killed_while_training(
    stack: NativeStack, api: AirflowApi, mlflow: Any, champion_v1: dict[str, Any]
) -> None:
    run_id = api.trigger(WEEKLY, SAME_WINDOW_AS_V1)
    # The split is written right before the fit starts.
    split = run_folder(stack, "churn", run_id) / "train.parquet"
    until("the training split", split.exists, RUN_TIMEOUT)
    [task] = until(
        "train_candidate running", lambda: running(api, WEEKLY, run_id, "train_candidate"), 60
    )
    killed_split = sha256_of(str(split))
    stack.kill(worker_on(stack, task["hostname"]))

    run = api.wait_for_run(WEEKLY, run_id, RUN_TIMEOUT)
    [train] = instances(api, WEEKLY, run_id, "train_candidate")
    assert run["state"] == "success", api.task_instances(WEEKLY, run_id)
    assert train["try_number"] >= 2, train
    candidate = api.xcom(WEEKLY, run_id, "train_candidate")
    v1 = champion_v1["version"]
    assert candidate["train"]["sha256"] == killed_split == v1.tags["ct.train_data_sha256"]
    version = mlflow.get_model_version("churn", candidate["model_version"])
    assert version.tags["ct.holdout_sha256"] == v1.tags["ct.holdout_sha256"]
    retried, undisturbed = (mlflow.get_run(v.run_id).data.metrics for v in (version, v1))
    assert {m: retried[m] for m in HOLDOUT_METRICS} == {m: undisturbed[m] for m in HOLDOUT_METRICS}
    same_run = mlflow.search_model_versions(
        f"name = 'churn' and tags.`ct.airflow_run_id` = '{run_id}'"
    )
    assert len(same_run) == 1


def _predictions(stack: NativeStack) -> dict[str, pd.DataFrame]:
    """The published parts of every date, as a reader finds them: through the manifest."""
    folder = stack.settings.data_root / "churn" / "predictions"
    frames = {}
    for manifest in sorted(folder.glob("dt=*/_manifest.json")):
        for part in json.loads(manifest.read_text())["parts"]:
            path = Path(part["uri"])
            frames[f"{manifest.parent.name}/{path.name}"] = pd.read_parquet(path)
    return frames


def test_worker_killed_while_scoring(
    stack: NativeStack, api: AirflowApi, champion_v1: dict[str, Any]
) -> None:
    first = trigger_then_unpause(api, BATCH, BATCH_DATE)
    assert api.wait_for_run(BATCH, first, RUN_TIMEOUT)["state"] == "success"
    undisturbed = _predictions(stack)
    assert undisturbed and sum(len(f) for f in undisturbed.values()) == SCORED_ROWS_PER_DAY

    again = api.trigger(BATCH, BATCH_AGAIN)
    folder = stack.settings.data_root / "churn" / "predictions"
    until("a part being written", lambda: any(folder.rglob(".part-*.tmp-*")), RUN_TIMEOUT, 0.05)
    scoring = running(api, BATCH, again, "score_partition")
    assert scoring, "no score_partition running while a part was written"
    killed = {worker_on(stack, ti["hostname"]) for ti in scoring}
    for worker in killed:
        stack.kill(worker)

    run = api.wait_for_run(BATCH, again, RUN_TIMEOUT)
    assert run["state"] == "success", api.task_instances(BATCH, again)
    tries = {
        ti["map_index"]: ti["try_number"] for ti in instances(api, BATCH, again, "score_partition")
    }
    assert all(tries[ti["map_index"]] >= 2 for ti in scoring), tries
    rescored = _predictions(stack)
    assert rescored.keys() == undisturbed.keys()
    for part, frame in undisturbed.items():
        assert set(rescored[part].pop("airflow_run_id")) == {again}
        assert set(frame.pop("airflow_run_id")) == {first}
        pd.testing.assert_frame_equal(rescored[part], frame, check_exact=True, obj=part)
