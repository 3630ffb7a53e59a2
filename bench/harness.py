"""What every benchmark shares: the sizes, the result row, timing and the isolated environment.

A benchmark is a function `(Context) -> list[Row]`; each row is a ratio of two figures
measured in the same run of the bench, so a slower or busier machine moves both sides.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
PYTHON = sys.executable
BIN = Path(PYTHON).parent
CHURN_YAML = ROOT / "include" / "pipelines" / "churn.yaml"
# The benchmarks start their servers with the tests' helpers (tests/servers.py).
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

# Variables of the caller's shell that would point the bench at someone else's setup.
FOREIGN_PREFIXES = ("AIRFLOW", "MLFLOW_", "CT_")


@dataclass(frozen=True)
class Sizes:
    """Row counts of every benchmark; `QUICK` is a smoke test of the same code paths."""

    score_rows: int = 1_000_000
    rss_rows: tuple[int, int] = (200_000, 2_000_000)
    drift_rows: tuple[int, ...] = (100_000, 1_000_000, 5_000_000)
    drift_parts: int = 4
    retrain_rows: int = 1_000_000
    repeats: int = 3
    drift_repeats: int = 7
    block_rows: int = 250_000
    train_days: int = 28
    train_rows_per_day: int = 3_000
    parse_repeats: int = 5
    monitoring_rows: tuple[int, int] = (100_000, 1_000_000)
    monitoring_dates: int = 10


FULL = Sizes()
QUICK = Sizes(
    score_rows=100_000,
    rss_rows=(20_000, 200_000),
    drift_rows=(100_000, 200_000, 400_000),
    retrain_rows=30_000,
    repeats=2,
    drift_repeats=2,
    block_rows=50_000,
    train_days=28,
    train_rows_per_day=1_000,
    parse_repeats=2,
    monitoring_rows=(10_000, 100_000),
)


@dataclass(frozen=True)
class Row:
    """One line of the table: `measured / baseline`, both taken in this run."""

    benchmark: str
    measured: str
    baseline: str
    ratio: float
    goal: str


@dataclass
class Context:
    """The run's sizes, its scratch folder and whatever fixtures benchmarks share."""

    sizes: Sizes
    workdir: Path
    cache: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        """A detail worth keeping beside the table (results.md), also shown as progress."""
        self.notes.append(text)
        progress(text)

    def shared(self, key: str, build: Callable[[], Any]) -> Any:
        if key not in self.cache:
            self.cache[key] = build()
        return self.cache[key]


def isolated_environment(workdir: Path) -> dict[str, str]:
    """This process's environment, cleaned of the caller's Airflow/MLflow/CT settings.

    Nothing the bench runs may read ~/airflow, the user's data root or their MLflow.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_PREFIXES)}
    airflow_home = workdir / "airflow"
    airflow_home.mkdir(parents=True, exist_ok=True)
    env.update(
        {
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home}/airflow.db",
            "CT_DATA_ROOT": str(workdir / "data"),
            "CT_GIT_SHA": "bench",
            "GX_ANALYTICS_ENABLED": "False",
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
            "PYTHONWARNINGS": "ignore::DeprecationWarning",
        }
    )
    return env


def make_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="ct-bench-"))


def best_of(repeats: int, fn: Callable[[], Any]) -> float:
    """The fastest of `repeats` timed calls: the run least disturbed by the rest of the host."""
    return min(timed(fn)[0] for _ in range(repeats))


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def median(values: list[float]) -> float:
    return statistics.median(values)


def progress(message: str) -> None:
    """Progress goes to stderr so that stdout ends with the table alone."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def human_rows(n: int) -> str:
    """1000000 -> '1M', 999992 -> '1M', 2500000 -> '2.5M', 250000 -> '250k'."""
    if n >= 950_000:
        return f"{n / 1_000_000:.1f}".removesuffix(".0") + "M"
    if n >= 1_000:
        return f"{n / 1_000:.0f}k"
    return str(n)


def rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds / 1000:,.0f}k rows/s"


def seconds(value: float) -> str:
    return f"{value:.2f} s" if value < 100 else f"{value:.0f} s"


def mebibytes(kib: int) -> str:
    return f"{kib / 1024:,.0f} MiB"


def markdown_table(rows: list[Row]) -> str:
    header = ["benchmark", "measured", "baseline", "ratio", "goal"]
    body = [[r.benchmark, r.measured, r.baseline, _ratio(r.ratio), r.goal] for r in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(cells) for cells in body)])


def _ratio(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}"


# Runs a script through a tiny launcher, so the child's peak RSS is its own, not the parent's
# (a fork would inherit the parent's pages).
LAUNCHER = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"


def fresh_process_report(ctx: Context, script: str, args: list[str], what: str) -> dict[str, Any]:
    """Run `script args` in a fresh interpreter; the JSON object its last stdout line prints."""
    import json
    import subprocess

    out = subprocess.run(
        [PYTHON, "-c", LAUNCHER, PYTHON, script, *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ctx.workdir,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
