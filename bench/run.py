"""`make bench`: every benchmark as a ratio against a baseline measured in the same run.

    python bench/run.py                      # all of them; the table also goes to results.md
    python bench/run.py --only scoring       # one (repeatable: --only drift --only memory)
    python bench/run.py --quick              # small sizes: a smoke test of the same code

Progress goes to stderr; stdout is the markdown table alone. The run works in a fresh
temporary folder with its own Airflow home, data root and MLflow server, removed at the
end unless --keep is given.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable

import dag_parse
import drift_check
import memory
import monitoring_join
import retraining
import scoring
import search
from harness import (
    BENCH,
    FULL,
    QUICK,
    Context,
    Row,
    isolated_environment,
    make_workdir,
    markdown_table,
    median,
    progress,
    seconds,
)

RESULTS = BENCH / "results.md"


def parse_rows(ctx: Context) -> list[Row]:
    """Row 4: bench/dag_parse.py's cold-start measurement, median of its repeats.

    The two kinds of cold start alternate instead of running in two blocks, so that a
    change in the machine's load during the row moves both medians alike.
    """
    repeats = ctx.sizes.parse_repeats
    progress(f"parse of dags/ and import of airflow.sdk, {repeats} cold starts each")
    sdk, dags = [], []
    for _ in range(repeats):
        sdk.append(dag_parse.cold_seconds(dag_parse.SDK_ONLY))
        dags.append(dag_parse.cold_seconds(dag_parse.DAGS_FOLDER))
    ctx.note(f"parse: import airflow.sdk {_list(sdk)} s; dags/ {_list(dags)} s")
    return [
        Row(
            f"dags/ parse vs import airflow.sdk alone, cold, median of {repeats}",
            seconds(median(dags)),
            seconds(median(sdk)),
            median(dags) / median(sdk),
            "~ 1 (parse fast)",
        )
    ]


def _list(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


BENCHMARKS: dict[str, Callable[[Context], list[Row]]] = {
    "scoring": scoring.run,
    "memory": memory.run,
    "drift": drift_check.run,
    "dag_parse": parse_rows,
    "retraining": retraining.run,
    "monitoring": monitoring_join.run,
    "search": search.run,
}


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", action="append", choices=sorted(BENCHMARKS), help="run only this benchmark"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke test")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    return parser.parse_args(argv)


def write_results(table: str, notes: list[str], wall: float) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    details = "".join(f"- {note}\n" for note in notes)
    RESULTS.write_text(
        f"# make bench\n\n{table}\n\nMeasured {stamp} on {os.cpu_count()} cores; "
        f"the whole run took {wall:.0f} s. Each ratio is measured / baseline, both "
        f"taken in that run.\n\nDetails of the run:\n\n{details}"
    )


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    ctx = Context(sizes=QUICK if args.quick else FULL, workdir=make_workdir())
    environment = isolated_environment(ctx.workdir)
    os.environ.clear()
    os.environ.update(environment)
    progress(f"scratch folder {ctx.workdir}")
    started = time.perf_counter()
    rows: list[Row] = []
    failed = []
    try:
        for name in args.only or list(BENCHMARKS):
            try:
                rows.extend(BENCHMARKS[name](ctx))
            except Exception:  # one broken benchmark must not hide the others' rows
                progress(f"{name} failed:\n{traceback.format_exc()}")
                failed.append(name)
                rows.append(Row(f"{name}: FAILED, see the log above", "-", "-", math.nan, "-"))
    finally:
        if not args.keep:
            shutil.rmtree(ctx.workdir, ignore_errors=True)
    wall = time.perf_counter() - started
    table = markdown_table(rows)
    print(table)
    if failed:
        progress(f"failed: {', '.join(failed)}; {RESULTS.name} left as it was")
        return 1
    if args.only or args.quick:
        progress(f"partial or quick run ({wall:.0f} s): {RESULTS.name} left as it was")
    else:
        write_results(table, ctx.notes, wall)
        progress(f"done in {wall:.0f} s; table written to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
