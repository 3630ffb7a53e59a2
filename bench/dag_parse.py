"""Parse time of the dags/ folder against importing `airflow.sdk` alone, fresh interpreters.

Each figure is the median of several cold starts of `python -c ...`; the ratio is what
the "parse fast" rule promises: DAG files cost little beyond the SDK they must import.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 5

SDK_ONLY = (
    "import time; t = time.perf_counter(); import airflow.sdk; print(time.perf_counter() - t)"
)
DAGS_FOLDER = """
import glob, runpy, sys, time
sys.path[:0] = ["dags", "plugins"]
t = time.perf_counter()
for f in sorted(glob.glob("dags/*.py")):
    runpy.run_path(f)
print(time.perf_counter() - t)
"""


def cold_seconds(code: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def median_seconds(code: str) -> float:
    return statistics.median(cold_seconds(code) for _ in range(REPEATS))


def main() -> None:
    sdk = median_seconds(SDK_ONLY)
    dags = median_seconds(DAGS_FOLDER)
    print(f"{'benchmark':<44}{'baseline':>12}{'measured':>12}{'ratio':>8}")
    name = "dags/ parse vs import airflow.sdk (cold)"
    print(f"{name:<44}{sdk:>11.3f}s{dags:>11.3f}s{dags / sdk:>8.2f}")


if __name__ == "__main__":
    main()
