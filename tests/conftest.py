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


# Parallel workers (`make test` runs pytest-xdist, `-n auto`): what shares a worker.
NATIVE_STACKS = ("tests/stack/", "tests/faults/")
# Groups that start first: the longest ones, so that none is left running alone at the end.
START_ORDER = ("native-stacks", "tests/integration/")


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Each module's tests stay on one worker, as their module fixtures expect; the two
    native stacks share one worker, one stack at a time (the fault tests kill workers and
    restart a PostgreSQL on heartbeat timeouts of seconds); groups start in collection order.

    A scheduler of its own rather than `--dist loadgroup`: that mode reads `xdist_group`
    marks by renaming node ids, which pytest 9 no longer lets it do.
    """
    if config.getvalue("dist") != "load":
        return None  # a mode asked for by name on the command line wins
    from xdist.scheduler import LoadScopeScheduling

    class ByGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)

    config.option.loadscopereorder = False
    return ByGroup(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The long groups first, so that none is left running alone at the end."""
    items.sort(key=lambda item: _start_rank(group_of(item.nodeid)))  # stable within a group


def group_of(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    return "native-stacks" if path.startswith(NATIVE_STACKS) else path


def _start_rank(group: str) -> int:
    return next((i for i, p in enumerate(START_ORDER) if group.startswith(p)), len(START_ORDER))
