"""Shared fixtures: the shipped churn pipeline as a dict, and a builder for variants of it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from continuous_training.config import DEFAULT_PIPELINES_DIR, PipelineConfig, parse_pipeline

CHURN_YAML = DEFAULT_PIPELINES_DIR / "churn.yaml"


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge `overrides` into a copy of `base` (mappings merge, the rest replaces)."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@pytest.fixture
def churn_config() -> dict[str, Any]:
    """The shipped `include/pipelines/churn.yaml`, loaded fresh for each test."""
    return yaml.safe_load(CHURN_YAML.read_text())


@pytest.fixture
def make_config(churn_config: dict[str, Any]) -> Callable[..., PipelineConfig]:
    """`make_config(**overrides)` -> a validated PipelineConfig based on churn.yaml.

    Overrides merge into the churn dict key by key, e.g.
    `make_config(source={"kind": "file", "path": "/data/x.parquet"})` keeps the rest of
    `source`; pass a non-dict value to replace a key outright.
    """

    def build(**overrides: Any) -> PipelineConfig:
        return parse_pipeline(_merge(churn_config, overrides))

    return build


# Parallel workers (`make test` runs pytest-xdist with `--dist loadgroup`): what shares a worker.
NATIVE_STACKS = ("tests/stack/", "tests/faults/")
# Groups that start first: the longest ones, so that none is left running alone at the end.
START_ORDER = ("native-stacks", "tests/integration/")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each module's tests stay on one worker, as their module fixtures expect; the two
    native stacks share one worker, one stack at a time (the fault tests kill workers and
    restart a PostgreSQL on heartbeat timeouts of seconds); the long groups start first."""
    for item in items:
        item.add_marker(pytest.mark.xdist_group(_group_of(item)))
    items.sort(key=_start_rank)  # stable: the order inside a group stays the collection's


def _group_of(item: pytest.Item) -> str:
    path = item.nodeid.split("::", 1)[0]
    return "native-stacks" if path.startswith(NATIVE_STACKS) else path


def _start_rank(item: pytest.Item) -> int:
    group = _group_of(item)
    return next((i for i, p in enumerate(START_ORDER) if group.startswith(p)), len(START_ORDER))
