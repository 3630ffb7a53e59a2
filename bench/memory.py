"""Row 2: peak RSS of scoring 1x against 10x the rows, same batch size, fresh processes.

Each size is scored in a new interpreter that loads the pickled model, scores one
partition with `inference.score_partition` and prints its own `ru_maxrss`, so a peak
reached while building the inputs or in an earlier run can never count.

The child is started through a small launcher process, not by this one: on Linux,
`ru_maxrss` survives `execve`, and a process forked (or vforked) from the bench starts
out with the bench's own peak RSS as its `ru_maxrss`, whatever it does itself. A launcher
is a fresh, small interpreter, so the peak its child inherits is the launcher's few MiB.
The child also reports `VmHWM` (the peak of its own address space) as a cross-check.

    python bench/memory.py MODEL INPUT FIRST_DAY DAYS   # the child, prints JSON
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from pathlib import Path

from fixtures import SCORING_START, churn_config, model_file, scoring_job, tiled, write_input
from harness import Context, Row, fresh_process_report, human_rows, mebibytes, progress

GOAL = 1.15


def child(model_path: str, input_uri: str, first_day: str, days: int) -> dict[str, int]:
    """Score one partition in this process; report rows and this process's peak RSS (KiB)."""
    import pickle
    import resource

    from continuous_training import inference
    from continuous_training.sources import Window

    fitted = pickle.loads(Path(model_path).read_bytes())
    start = datetime.fromisoformat(first_day)
    window = Window(start, start + timedelta(days=days))
    config = churn_config()
    key = f"rss-{Path(input_uri).stem}"
    result = inference.score_partition(scoring_job(config, input_uri, window, key), fitted)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "rows": result["rows"],
        "batch_size": config.inference.batch_size,
        "maxrss": peak,
        "vmhwm": vm_hwm(),
    }


def vm_hwm() -> int:
    """This address space's peak resident set (KiB), from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return -1


def peak_rss(ctx: Context, rows: int) -> dict[str, int]:
    table, window = tiled(ctx, rows, SCORING_START, "m")
    uri = write_input(table, ctx.workdir / "inputs" / f"rss-{rows}.parquet")
    days = round((window.end - window.start) / timedelta(days=1))
    args = [str(model_file(ctx)), uri, window.start.isoformat(), str(days)]
    progress(f"scoring {human_rows(rows)} rows in a fresh process for its peak RSS")
    report = fresh_process_report(ctx, __file__, args, f"RSS child for {rows} rows")
    if report["rows"] != rows:
        raise RuntimeError(f"RSS child scored {report['rows']} rows, not {rows}")
    ctx.note(
        f"RSS, {rows:,} rows: ru_maxrss {report['maxrss']:,} KiB, VmHWM {report['vmhwm']:,} KiB"
    )
    return report


def run(ctx: Context) -> list[Row]:
    small, large = ctx.sizes.rss_rows
    one, ten = peak_rss(ctx, small), peak_rss(ctx, large)
    batch = one["batch_size"]
    return [
        Row(
            f"peak RSS scoring {human_rows(large)} vs {human_rows(small)} rows, batch "
            f"{human_rows(batch)}, fresh process each",
            mebibytes(ten["maxrss"]),
            mebibytes(one["maxrss"]),
            ten["maxrss"] / one["maxrss"],
            f"<= {GOAL}",
        )
    ]


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))))
