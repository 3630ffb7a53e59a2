"""Unit tests of the plots: real PNGs of the comparison (each task, with and without a champion)
and of the champion's metric over time (with changes of champion, and before any)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from continuous_training.plots import plot_champion_metric, plot_comparison
from tests.unit.holdouts import classification as _classification
from tests.unit.holdouts import regression as _regression

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_plot_comparison_writes_png(tmp_path: Path) -> None:
    y, strong, weak = _classification(1000)
    targets = {
        "cls.png": ("classification", y, strong, weak),
        "cls_alone.png": ("classification", y, strong, None),
        "reg.png": ("regression", *_regression(1000)),
    }
    for name, (task, truth, new, old) in targets.items():
        path = tmp_path / "plots" / name
        plot_comparison(task, truth, new, old, path)
        content = path.read_bytes()
        assert content.startswith(PNG_MAGIC) and len(content) > 5000, name


def test_plot_champion_metric_writes_png(tmp_path: Path) -> None:
    points = [
        (datetime(2026, 3, 1, 2, tzinfo=UTC), 0.80, "1"),
        (datetime(2026, 3, 15, 3, tzinfo=UTC), 0.84, "2"),
        (datetime(2026, 3, 16, 9, tzinfo=UTC), 0.80, "1"),  # a rollback
    ]
    for name, shown in {"over_time.png": points, "none_yet.png": []}.items():
        path = tmp_path / "ledger" / name
        plot_champion_metric(shown, "roc_auc", "churn: the champion's holdout roc_auc", path)
        content = path.read_bytes()
        assert content.startswith(PNG_MAGIC) and len(content) > 5000, name
