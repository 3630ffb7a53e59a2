"""Unit tests of the comparison plot: a real PNG for each task, with and without a champion."""

from __future__ import annotations

from pathlib import Path

from continuous_training.plots import plot_comparison
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
