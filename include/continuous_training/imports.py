"""Objects the pipeline YAML names by import path: one resolver, one error shape.

A data source (`source.kind`), a gate check (`gates.extra_checks`) and an estimator
(`model.estimator`) are all named as `package.module.name`. They are resolved here alone,
so every such error reads the same way and names the key and the path::

    <file>: <key>: cannot import '<path>': <why>      (no such module or attribute)
    <file>: <key>: '<path>' <what is wrong with it>   (it imports, but is the wrong kind)

The error is raised as the caller's own `BadInputError` subclass, so each step keeps the
error type its callers (and the error policy) know.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from continuous_training.errors import BadInputError

# What a check returns: None when the object is the right kind, else what is wrong with it,
# worded to follow the quoted path ("is not callable").
Check = Callable[[Any], "str | None"]


def resolve(
    named: Any,
    *,
    key: str,
    error: type[BadInputError] = BadInputError,
    checks: tuple[Check, ...] = (),
    source_file: str | None = None,
) -> Any:
    """The object `named` names (an import path), or `named` itself, after `checks`.

    A string is an import path; anything else is an object already in hand (a class given
    to `check_source` directly) and is only checked. Errors are `error`, naming `key` (the
    YAML key the path came from, after `source_file` when known) and the path.
    """
    where = f"{source_file}: {key}" if source_file else key
    if isinstance(named, str):
        path, obj = named, _imported(named, where, error)
    else:
        path, obj = _path_of(named), named
    for check in checks:
        problem = check(obj)
        if problem:
            raise error(f"{where}: {path!r} {problem}")
    return obj


def _path_of(obj: Any) -> str:
    """Where an object in hand would be imported from, for the error; else its repr."""
    module, name = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    return f"{module}.{name}" if module and name else repr(obj)


def _imported(path: str, where: str, error: type[BadInputError]) -> Any:
    module_name, _, attr = path.rpartition(".")
    try:
        if not module_name or not attr:
            raise ImportError("not a dotted import path like 'my_package.module.name'")
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        # from None: the message says all; the import machinery's traceback adds nothing
        raise error(f"{where}: cannot import {path!r}: {exc}") from None


def is_callable(obj: Any) -> str | None:
    """A check: the object can be called (a function, or a class to instantiate)."""
    return None if callable(obj) else "is not callable"


def subclass_of(base: type) -> Check:
    """A check: the object is a class derived from `base`."""

    def check(obj: Any) -> str | None:
        if isinstance(obj, type) and issubclass(obj, base):
            return None
        return f"is not a subclass of {base.__module__}.{base.__qualname__}"

    return check


__all__ = ["Check", "is_callable", "resolve", "subclass_of"]
