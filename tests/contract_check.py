"""Check a step's output against its contract (a TypedDict of `continuous_training.contracts`)."""

from __future__ import annotations

import types
import typing
from typing import Any, get_args, get_origin, get_type_hints, is_typeddict


def assert_conforms(payload: Any, contract: Any, *, extra_keys: bool = False, at: str = "") -> None:
    """`payload` has every required key of `contract` and, unless `extra_keys`, no other.

    Nested TypedDicts (a key's value, the items of a list, an optional value) are checked too.
    """
    where = at or contract.__name__
    assert isinstance(payload, dict), f"{where}: {type(payload).__name__}, not a dict"
    keys = set(payload)
    missing = contract.__required_keys__ - keys
    assert not missing, f"{where}: missing {sorted(missing)}"
    if not extra_keys:
        unknown = keys - set(contract.__annotations__)
        assert not unknown, f"{where}: keys the contract does not declare: {sorted(unknown)}"
    hints = get_type_hints(contract)
    for key in keys & set(hints):
        _check_value(payload[key], hints[key], f"{where}.{key}")


def _check_value(value: Any, hint: Any, where: str) -> None:
    if is_typeddict(hint):
        assert_conforms(value, hint, at=where)
        return
    origin, args = get_origin(hint), get_args(hint)
    if origin in (typing.Union, types.UnionType):
        nested = [a for a in args if is_typeddict(a)]
        if value is not None and nested:
            assert_conforms(value, nested[0], at=where)
    elif origin is list and args and is_typeddict(args[0]):
        for i, item in enumerate(value):
            assert_conforms(item, args[0], at=f"{where}[{i}]")
