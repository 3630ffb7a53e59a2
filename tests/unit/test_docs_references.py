"""What the documentation names in the repository exists: test ids, files and modules.

`mkdocs build --strict` checks links and snippets; this checks the names written in prose,
such as the failure-mode table's `tests/...py::test_name` and `continuous_training.x`.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md"]
TEST_ID = re.compile(r"(tests/[\w/]+\.py)|::(test_\w+)")
MODULE = re.compile(r"`(continuous_training(?:\.\w+)+)")


def _test_ids(text: str) -> list[tuple[str, str]]:
    """`(file, test)` for each `path::test` and each bare `::test` after a path."""
    ids, current = [], ""
    for path, name in TEST_ID.findall(text):
        if path:
            current = path
            ids.append((path, ""))
        elif current:
            ids.append((current, name))
    return ids


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_test_the_docs_name_exists(page: Path) -> None:
    missing = []
    for path, name in _test_ids(page.read_text()):
        file = ROOT / path
        if not file.is_file():
            missing.append(path)
        elif name and not re.search(rf"^def {name}\b", file.read_text(), re.MULTILINE):
            missing.append(f"{path}::{name}")
    assert not missing, f"{page.name} names tests that do not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_module_the_docs_name_exists(page: Path) -> None:
    missing = []
    for dotted in MODULE.findall(page.read_text()):
        if not _resolves(dotted):
            missing.append(dotted)
    assert not missing, f"{page.name} names modules that do not exist: {missing}"


def _resolves(dotted: str) -> bool:
    """`continuous_training.gate.CheckResult`: a module, then attributes of it."""
    parts = dotted.split(".")
    for n in range(len(parts), 1, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:n]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[n:]:
            found = getattr(found, attribute, None)
        return found is not None
    return False


def test_a_missing_test_or_module_is_noticed() -> None:
    assert _test_ids("see `tests/unit/x.py::test_a`, `::test_b`") == [
        ("tests/unit/x.py", ""),
        ("tests/unit/x.py", "test_a"),
        ("tests/unit/x.py", "test_b"),
    ]
    assert _resolves("continuous_training.gate.CheckResult")
    assert not _resolves("continuous_training.evaluation.CheckResult")
