"""The one resolver of objects named by import path, and its one error shape."""

from __future__ import annotations

from typing import Any

import pytest

from continuous_training.errors import BadInputError
from continuous_training.gate import GateContext, evaluate_gate
from continuous_training.imports import is_callable, resolve, subclass_of
from continuous_training.metrics import EvaluationError
from continuous_training.sources import SourceError, make_source
from continuous_training.training import TrainingError, import_estimator

NOT_CALLABLE = 42


class Base:
    pass


class Derived(Base):
    pass


def test_resolves_a_dotted_path() -> None:
    assert resolve("collections.OrderedDict", key="k") is __import__("collections").OrderedDict
    assert resolve(f"{__name__}.Derived", key="k", checks=(subclass_of(Base),)) is Derived


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("no_such_package_xyz.thing", "No module named 'no_such_package_xyz'"),
        (f"{__name__}.Missing", "has no attribute 'Missing'"),
        ("plainname", "not a dotted import path"),
        ("trailing.", "not a dotted import path"),
        (".relative", "not a dotted import path"),
    ],
)
def test_an_unimportable_path_names_the_file_key_path_and_why(path: str, why: str) -> None:
    with pytest.raises(SourceError) as info:
        resolve(path, key="source.kind", error=SourceError, source_file="/p/churn.yaml")
    message = str(info.value)
    assert message.startswith(f"/p/churn.yaml: source.kind: cannot import {path!r}: "), message
    assert why in message


@pytest.mark.parametrize(
    ("path", "checks", "problem"),
    [
        (f"{__name__}.NOT_CALLABLE", (is_callable,), "is not callable"),
        (f"{__name__}.NOT_CALLABLE", (subclass_of(Base),), f"is not a subclass of {__name__}.Base"),
        (f"{__name__}.Base", (is_callable, subclass_of(Derived)), "is not a subclass of"),
    ],
)
def test_the_wrong_kind_of_object_names_key_path_and_problem(
    path: str, checks: tuple[Any, ...], problem: str
) -> None:
    with pytest.raises(BadInputError) as info:
        resolve(path, key="gates.extra_checks", checks=checks)
    assert str(info.value).startswith(f"gates.extra_checks: {path!r} {problem}"), info.value


def test_an_object_in_hand_is_checked_and_named_as_its_import_path() -> None:
    assert resolve(Derived, key="k", checks=(subclass_of(Base),)) is Derived
    with pytest.raises(BadInputError) as info:
        resolve(Base, key="source.kind", checks=(subclass_of(Derived),), source_file="/p.yaml")
    assert str(info.value).startswith(f"/p.yaml: source.kind: '{__name__}.Base' is not a subclass")
    with pytest.raises(BadInputError, match=r"^k: '42' is not callable$"):
        resolve(42, key="k", checks=(is_callable,))


def test_the_first_failing_check_is_the_one_reported() -> None:
    calls: list[str] = []

    def first(obj: Any) -> str | None:
        calls.append("first")
        return "fails first"

    def second(obj: Any) -> str | None:
        calls.append("second")
        return "fails second"

    with pytest.raises(BadInputError, match="fails first"):
        resolve("collections.OrderedDict", key="k", checks=(first, second))
    assert calls == ["first"]


def test_sources_checks_and_estimators_say_it_the_same_way(make_config: Any) -> None:
    """The three users of import paths: one shape, each with its own key and error type."""
    path = "no_such_package_xyz.Thing"
    config = make_config(source={"kind": path})
    with pytest.raises(SourceError) as source:
        make_source(config)
    gates = config.gates.model_copy(update={"extra_checks": [path]})
    ctx = GateContext(
        gates=gates, task="classification", challenger_metrics={"roc_auc": 0.9}, holdout_rows=1
    )
    with pytest.raises(EvaluationError) as check:
        evaluate_gate(ctx)
    with pytest.raises(TrainingError) as estimator:
        import_estimator(path, {})
    why = f"cannot import {path!r}: No module named 'no_such_package_xyz'"
    assert str(source.value).endswith(f"source.kind: {why}")
    assert str(check.value) == f"gates.extra_checks: {why}"
    assert str(estimator.value) == f"model.estimator: {why}"


def test_an_estimator_path_that_is_not_callable_is_refused() -> None:
    with pytest.raises(TrainingError, match=r"^model\.estimator: 'math\.pi' is not callable$"):
        import_estimator("math.pi", {})
