"""Row 5: one weekly retraining through `airflow dags test` against the core called directly.

Both sides run in a fresh process against the same real MLflow server and fetch the same
synthetic rows (churn.yaml with `source.rows_per_day` raised): Airflow runs
`churn_weekly_retraining` on SQLite, the baseline calls fetch -> validate -> train ->
evaluate -> promote in sequence, with the arguments the operators pass, under another
pipeline (and so registered model) name, so both start with no champion. The wall time
of each process is timed; `airflow db migrate` and the server start are not.

    python bench/retraining.py PIPELINE_YAML TRACKING_URI WINDOW_END   # the baseline child
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from harness import BIN, CHURN_YAML, PYTHON, Context, Row, human_rows, progress, seconds
from servers import mlflow_server

GOAL = 1.25
DAG_ID = "churn_weekly_retraining"
LOGICAL_DATE = "2026-03-01T02:00:00+00:00"  # the demo's first week; data ends 2026-03-01
WINDOW_END = "2026-03-01T00:00:00+00:00"
BASELINE_NAME = "churn_inprocess"
WARM_IMPORTS = "import airflow.sdk, evidently, great_expectations, mlflow, pandas, sklearn"


# --------------------------------------------------------------------------- the baseline


def in_process(pipeline_yaml: str, tracking_uri: str, window_end: str) -> dict[str, Any]:
    """Run the five steps as the operators do, in this process; return what they decided."""
    from continuous_training import retraining, sources, storage, training, validation
    from continuous_training.config import load_pipeline

    config = load_pipeline(pipeline_yaml)
    end = datetime.fromisoformat(window_end)
    run_id = f"bench__{LOGICAL_DATE}"
    run = training.RunInfo(airflow_run_id=run_id, trigger="schedule", window_end=end)
    steps: dict[str, float] = {}

    def step(name: str, started: float) -> None:
        steps[name] = round(time.perf_counter() - started, 2)

    started = time.perf_counter()
    windows = config.windows
    window = sources.Window(end - timedelta(days=windows.training_days + windows.holdout_days), end)
    frame = sources.fetch_window(sources.make_source(config), config, window)
    snapshot = storage.write_parquet_atomic(frame, storage.snapshot_uri(config.name, run_id))
    snapshot |= {"window_start": window.start.isoformat(), "window_end": window.end.isoformat()}
    del frame
    step("fetch", started)

    started = time.perf_counter()
    report = validation.validate(storage.read_parquet(snapshot["uri"]), config)
    report_uri = storage.snapshot_uri(config.name, run_id, "validation.json")
    storage.write_json_atomic(report.to_json(), report_uri)
    if not report.success:
        raise RuntimeError(f"validation failed: {report_uri}")
    snapshot = {**snapshot, "validation_report": report_uri}
    step("validate", started)

    started = time.perf_counter()
    candidate = training.train_candidate(config, snapshot, run, tracking_uri)
    step("train_candidate", started)
    started = time.perf_counter()
    evaluated = retraining.evaluate_candidate(config, candidate, tracking_uri)
    step("evaluate_vs_champion", started)
    started = time.perf_counter()
    outcome = retraining.promote_candidate(
        config, evaluated, retraining.RunOptions(), run, tracking_uri
    )
    step("promote", started)
    return {"rows": snapshot["rows"], "decision": outcome["decision"], "steps": steps}


# --------------------------------------------------------------------------- setup


def pipeline_yaml(folder: Path, name: str, rows_per_day: int) -> Path:
    """A copy of churn.yaml named `name`, its training source at `rows_per_day`."""
    import yaml

    data = yaml.safe_load(CHURN_YAML.read_text())
    data["name"] = name
    data["source"]["rows_per_day"] = rows_per_day
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def fetched_days() -> int:
    import yaml

    windows = yaml.safe_load(CHURN_YAML.read_text())["windows"]
    return int(windows["training_days"]) + int(windows["holdout_days"])


def run_checked(command: list[str], env: dict[str, str], log: Path) -> float:
    """Run `command` with its output in `log`; its wall time; fail loudly with the log's tail."""
    started = time.perf_counter()
    with log.open("w") as out:
        code = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    elapsed = time.perf_counter() - started
    if code != 0:
        raise RuntimeError(f"{' '.join(command[:4])} exited {code}:\n{log.read_text()[-4000:]}")
    return elapsed


def warm_server(uri: str) -> None:
    """One request, so that neither side pays for the server's first one."""
    url = f"{uri}/api/2.0/mlflow/experiments/search?max_results=1"
    with urllib.request.urlopen(url, timeout=30) as response:
        response.read()


def task_durations(airflow_db: Path) -> dict[str, float]:
    """Per task of the Airflow run, seconds from start to end as recorded in the metadata DB."""
    with sqlite3.connect(airflow_db) as db:
        rows = db.execute(
            "SELECT task_id, (julianday(end_date) - julianday(start_date)) * 86400 "
            "FROM task_instance WHERE dag_id = ?",
            (DAG_ID,),
        ).fetchall()
    return {task: round(float(s or 0.0), 2) for task, s in rows}


def decision_of(log: Path) -> str:
    text = log.read_text()
    for word in ("promoted", "rejected"):
        if f"{word} version" in text:
            return word
    return "unknown"


# --------------------------------------------------------------------------- the row


def run(ctx: Context) -> list[Row]:
    work = ctx.workdir / "retraining"
    days = fetched_days()
    rows_per_day = round(ctx.sizes.retrain_rows / days)
    airflow_yaml = pipeline_yaml(work / "pipelines", "churn", rows_per_day)
    baseline_yaml = pipeline_yaml(work / "baseline", BASELINE_NAME, rows_per_day)
    env = {**os.environ, "CT_PIPELINES_DIR": str(airflow_yaml.parent)}
    airflow = str(BIN / "airflow")

    progress("starting MLflow and migrating the Airflow DB (not timed)")
    migrate_log = work / "airflow-migrate.log"
    with migrate_log.open("w") as out:
        migrate = subprocess.Popen(
            [airflow, "db", "migrate"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    with mlflow_server(work / "mlflow", env) as uri:
        if migrate.wait() != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{migrate_log.read_text()[-3000:]}")
        env["MLFLOW_TRACKING_URI"] = uri
        warm_server(uri)
        run_checked([PYTHON, "-c", WARM_IMPORTS], env, work / "warm.log")

        progress(f"in-process retraining on {rows_per_day * days:,} rows")
        baseline_log = work / "baseline.log"
        child = [PYTHON, __file__, str(baseline_yaml), uri, WINDOW_END]
        baseline = run_checked(child, env, baseline_log)
        inside = json.loads(baseline_log.read_text().strip().splitlines()[-1])

        progress(f"airflow dags test {DAG_ID} on {rows_per_day * days:,} rows")
        dags_log = work / "dags-test.log"
        measured = run_checked([airflow, "dags", "test", DAG_ID, LOGICAL_DATE], env, dags_log)

    tasks = task_durations(Path(env["AIRFLOW_HOME"]) / "airflow.db")
    ctx.cache["retraining_detail"] = {
        "in_process_steps": inside["steps"],
        "airflow_tasks": tasks,
        "decisions": {"in_process": inside["decision"], "airflow": decision_of(dags_log)},
        "logs": str(work),
    }
    progress(f"retraining detail: {json.dumps(ctx.cache['retraining_detail'])}")
    return [
        Row(
            f"weekly retraining on {human_rows(rows_per_day * days)} rows: airflow dags test vs "
            "the same core calls in one process (wall time of a fresh process each)",
            seconds(measured),
            seconds(baseline),
            measured / baseline,
            f"<= {GOAL}",
        )
    ]


if __name__ == "__main__":
    result = in_process(sys.argv[1], sys.argv[2], sys.argv[3])
    print(json.dumps(result, default=str))
