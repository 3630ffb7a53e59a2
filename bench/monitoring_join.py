"""Rows 7-8: `monitoring.measure` on 10x the labelled predictions: time ~ 10x, peak RSS flat.

Both sizes publish the same number of prediction dates (four parts each, as
`inference.publish` lays them out) with every prediction labelled, so the larger size has
10x the rows per date. Each size is measured in a fresh interpreter, started through a
launcher as bench/memory.py explains, which reads the labels, calls `measure` and reports
its wall time, `ru_maxrss`, and the peak of `measure` alone: the child resets its VmHWM
(`/proc/self/clear_refs`) after the labels are loaded, so the growth of the peak above the
resident size before the call is what the join itself costs.

    python bench/monitoring_join.py DATA_ROOT LABELS AS_OF     # the child, prints JSON
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fixtures import SCORING_START, churn_config
from harness import (
    Context,
    Row,
    fresh_process_report,
    human_rows,
    mebibytes,
    progress,
    seconds,
)
from memory import vm_hwm

PARTS = 4


def pipeline() -> Any:
    from continuous_training.config import LabelsConfig

    return churn_config().model_copy(update={"labels": LabelsConfig()})


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


def child(data_root: str, labels_path: str, as_of: str) -> dict[str, Any]:
    import resource

    import pandas as pd

    os.environ["CT_DATA_ROOT"] = data_root
    from continuous_training import monitoring

    config = pipeline()
    labels = pd.read_parquet(labels_path)
    before = _rss()
    try:  # reset VmHWM to the current RSS: the peak below is the call's own
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
    except OSError:
        reset = False
    start = time.perf_counter()
    summary = monitoring.measure(config, datetime.fromisoformat(as_of), labels)
    elapsed = time.perf_counter() - start
    return {
        "seconds": elapsed,
        "dates": len(summary["dates"]),
        "predictions": sum(r["predictions"] for r in summary["dates"]),
        "labelled": sum(r["labelled_rows"] for r in summary["dates"]),
        "batch_size": config.monitoring.batch_size,
        "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "vmhwm": vm_hwm(),
        "rss_before": before,
        "hwm_reset": reset,
    }


def publish_fixture(ctx: Context, rows: int) -> tuple[str, str, str]:
    """`rows` labelled predictions over the published dates: (data root, labels, as_of)."""
    import numpy as np
    import pandas as pd

    from continuous_training import inference, storage
    from continuous_training.sources import Window

    config = pipeline()
    dates = ctx.sizes.monitoring_dates
    root = ctx.workdir / f"monitoring-{rows}"
    previous = os.environ.get("CT_DATA_ROOT")
    os.environ["CT_DATA_ROOT"] = str(root)
    progress(f"publishing {human_rows(rows)} predictions over {dates} dates, all labelled")
    rng = np.random.default_rng(rows)
    labels = []
    try:
        for d in range(dates):
            window = Window(
                SCORING_START + timedelta(days=d), SCORING_START + timedelta(days=d + 1)
            )
            n = rows // dates
            y = rng.integers(0, 2, n)
            prob = 1 / (1 + np.exp(-(1.5 * (y - 0.5) + rng.normal(0, 1, n))))
            ids = np.char.add(f"c{d:03d}-", np.arange(n).astype(str)).astype(object)
            frame = pd.DataFrame(
                {
                    "customer_id": ids,
                    "prediction": (prob > 0.5).astype("int64"),
                    "probability": prob,
                    "model_name": config.model_name,
                    "model_version": "1",
                    "airflow_run_id": "bench",
                }
            )
            parts = []
            for k, chunk in enumerate(np.array_split(np.arange(n), PARTS)):
                uri = inference.prediction_uri(config.name, window, f"p{k}", "bench")
                parts.append(storage.write_parquet_atomic(frame.iloc[chunk], uri))
            manifest = {
                "pipeline": config.name,
                "model_name": config.model_name,
                "model_version": "1",
                "window_start": window.start.isoformat(),
                "window_end": window.end.isoformat(),
                "rows": n,
                "set": "bench",
                "uri": inference.set_dir(config.name, window, "bench"),
                "manifest": inference.manifest_uri(config.name, window),
                "parts": parts,
            }
            storage.write_json_atomic(manifest, inference.manifest_uri(config.name, window))
            time_of = pd.Timestamp(window.start + timedelta(hours=6))
            labels.append(
                pd.DataFrame(
                    {
                        "customer_id": ids,
                        config.time_column: time_of,
                        config.target: y,
                        "label_time": time_of + pd.Timedelta(days=3),
                    }
                )
            )
    finally:
        if previous is None:
            os.environ.pop("CT_DATA_ROOT", None)
        else:
            os.environ["CT_DATA_ROOT"] = previous
    labels_path = ctx.workdir / "inputs" / f"labels-{rows}.parquet"
    labels_path.parent.mkdir(parents=True, exist_ok=True)
    pd.concat(labels, ignore_index=True).to_parquet(labels_path, index=False)
    as_of = (SCORING_START + timedelta(days=dates + 1)).isoformat()
    return str(root), str(labels_path), as_of


def measured(ctx: Context, rows: int) -> dict[str, Any]:
    root, labels, as_of = publish_fixture(ctx, rows)
    progress(f"monitoring.measure on {human_rows(rows)} labelled predictions, fresh process")
    report = fresh_process_report(
        ctx, __file__, [root, labels, as_of], f"monitoring child for {rows} rows"
    )
    if report["labelled"] != rows - rows % ctx.sizes.monitoring_dates:
        raise RuntimeError(f"monitoring child joined {report['labelled']} rows, not {rows}")
    ctx.note(
        f"monitoring, {rows:,} labelled predictions in {report['dates']} dates: "
        f"{report['seconds']:.2f} s, ru_maxrss {report['maxrss']:,} KiB, peak of measure "
        f"{report['vmhwm']:,} KiB over {report['rss_before']:,} KiB resident before it "
        f"(VmHWM reset: {report['hwm_reset']}), batch {report['batch_size']:,}"
    )
    return report


def run(ctx: Context) -> list[Row]:
    small, large = ctx.sizes.monitoring_rows
    one, ten = measured(ctx, small), measured(ctx, large)
    label = f"{human_rows(large)} vs {human_rows(small)} labelled predictions"
    rows = [
        Row(
            f"monitoring.measure time, {label}, {ctx.sizes.monitoring_dates} dates, "
            "bootstrap 1000 (primary + guardrail)",
            seconds(ten["seconds"]),
            seconds(one["seconds"]),
            ten["seconds"] / one["seconds"],
            f"<= {large / small:g} (linear)",
        ),
        Row(
            f"monitoring.measure peak RSS, {label}, batch {human_rows(one['batch_size'])}, "
            "fresh process each",
            mebibytes(ten["maxrss"]),
            mebibytes(one["maxrss"]),
            ten["maxrss"] / one["maxrss"],
            "~ 1 (flat)",
        ),
    ]
    if one["hwm_reset"] and ten["hwm_reset"]:
        grow_one = one["vmhwm"] - one["rss_before"]
        grow_ten = ten["vmhwm"] - ten["rss_before"]
        rows.append(
            Row(
                f"monitoring.measure's own peak (VmHWM above RSS before the call), {label}",
                mebibytes(grow_ten),
                mebibytes(grow_one),
                grow_ten / max(grow_one, 1),
                "~ 1 (flat)",
            )
        )
    return rows


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1], sys.argv[2], sys.argv[3])))
