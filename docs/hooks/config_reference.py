"""MkDocs hook: the configuration reference, generated from the pydantic models at build time.

The page `configuration/reference.md` holds a marker; every build replaces it with one table
per model of the pipeline YAML, read from `PipelineConfig.model_json_schema()`. A key added,
renamed or given another default in the code therefore shows up in the next build: the
reference cannot drift from what `load_pipeline` accepts.

Descriptions come from the schema (field descriptions, model docstrings). Where a field has no
description, the comments written beside it in the model's source are used instead: they are
what the code's authors wrote about that key.

Only `continuous_training.config` is imported (and the standard library): the docs build must
not need the rest of the package's heavy dependencies.
"""

from __future__ import annotations

import importlib
import inspect
import io
import json
import re
import sys
import textwrap
import tokenize
from collections import deque
from pathlib import Path
from typing import Any

# The checkout being built, not whatever copy of the package the virtualenv points at:
# an editable install may belong to another working copy.
ROOT = Path(__file__).resolve().parents[2]
PAGE = "configuration/reference.md"
MARKER = "<!-- config-reference -->"
ROOT_DEF = "PipelineConfig"


def _config_module() -> Any:
    include = str(ROOT / "include")
    if include not in sys.path:
        sys.path.insert(0, include)
    module = importlib.import_module("continuous_training.config")
    if not Path(module.__file__ or "").resolve().is_relative_to(ROOT):
        raise RuntimeError(f"continuous_training.config came from {module.__file__}, not {ROOT}")
    return module


def _field_comments(cls: type) -> dict[str, str]:
    """Comments beside each field in the class source: on the line above, or trailing it.

    A one-word comment line (`# synthetic`) labels the group of fields below it, up to the
    next blank line or method, as SourceConfig groups its keys by source kind.
    """
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    comments: dict[str, str] = {}
    pending: list[str] = []
    group = ""
    field = re.compile(r"^\s{4}([A-Za-z_]\w*)\s*:")
    lines = source.splitlines()
    trailing: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT and tok.line.strip() != tok.string.strip():
            trailing[tok.start[0]] = tok.string.lstrip("#").strip()
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("def ", "@", '"""')):
            pending, group = [], ""
            continue
        if stripped.startswith("#"):
            text = stripped.lstrip("#").strip()
            if re.fullmatch(r"[A-Za-z_]+", text) and not pending:
                group = text
            else:
                pending.append(text)
            continue
        match = field.match(line)
        if match:
            parts = [*pending, trailing.get(number, "")]
            text = " ".join(p for p in parts if p)
            if group:
                text = f"*{group}*" + (f": {text}" if text else "")
            if text:
                comments[match.group(1)] = text
        pending = []
    return comments


def _anchor(def_name: str) -> str:
    return def_name.lower()


def _ref_name(schema: dict[str, Any]) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if ref else None


def _constraints(schema: dict[str, Any]) -> list[str]:
    shown = {
        "minimum": "≥ {}",
        "exclusiveMinimum": "> {}",
        "maximum": "≤ {}",
        "exclusiveMaximum": "< {}",
        "minLength": "at least {} characters",
        "minItems": "at least {} items",
        "pattern": "matches `{}`",
    }
    return [fmt.format(schema[key]) for key, fmt in shown.items() if key in schema]


def _type(schema: dict[str, Any]) -> tuple[str, list[str]]:
    """The type as a reader writes it in YAML, and its constraints."""
    if name := _ref_name(schema):
        return f"[{name}](#{_anchor(name)})", []
    if "anyOf" in schema:
        parts = [_type(option) for option in schema["anyOf"]]
        return " or ".join(t for t, _ in parts), [c for _, cs in parts for c in cs]
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`", []
    if "enum" in schema:
        return " or ".join(f"`{json.dumps(v)}`" for v in schema["enum"]), []
    kind = schema.get("type")
    constraints = _constraints(schema)
    if kind == "array":
        items, item_constraints = _type(schema.get("items", {}))
        return f"list of {items or 'any'}", constraints + item_constraints
    if kind == "object":
        values = schema.get("additionalProperties")
        if isinstance(values, dict) and values:
            value_type, value_constraints = _type(values)
            return f"map of name to {value_type}", constraints + value_constraints
        return "map", constraints
    if kind is None:
        return "", constraints
    names = {"integer": "integer", "number": "number", "string": "text", "boolean": "boolean"}
    if schema.get("format") in {"date", "date-time"}:
        return f"{schema['format']} (ISO 8601)", constraints
    return names.get(kind, kind), constraints


def _default(name: str, prop: dict[str, Any], required: set[str]) -> str:
    if "default" in prop:
        return f"`{json.dumps(prop['default'])}`"
    if name in required:
        return "**required**"
    # A default_factory is not in the JSON schema: say what it builds.
    if _ref_name(prop):
        return "its own defaults"
    return {"array": "`[]`", "object": "`{}`"}.get(prop.get("type", ""), "")


def _cell(text: str) -> str:
    """One table cell: one line, pipes escaped, and `<name>` outside code shown, not parsed."""
    parts = " ".join(text.split()).replace("|", "\\|").split("`")
    for i in range(0, len(parts), 2):  # even parts lie outside code spans
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts)


def render(module: Any) -> str:
    schema = module.PipelineConfig.model_json_schema()
    defs: dict[str, dict[str, Any]] = {**schema.get("$defs", {}), ROOT_DEF: schema}
    # Breadth-first from the root, so sections come in the order a YAML file reads,
    # and each model is rendered once, listing every key path that uses it.
    paths: dict[str, list[str]] = {ROOT_DEF: [""]}
    order: list[str] = []
    queue: deque[str] = deque([ROOT_DEF])
    while queue:
        def_name = queue.popleft()
        order.append(def_name)
        for key, prop in defs[def_name].get("properties", {}).items():
            for ref in re.findall(r'"\$ref": "#/\$defs/(\w+)"', json.dumps(prop)):
                is_map = prop.get("type") == "object" and not _ref_name(prop)
                for base in paths[def_name]:
                    path = f"{base}.{key}" if base else key
                    paths.setdefault(ref, []).append(f"{path}.<name>" if is_map else path)
                if ref not in order and ref not in queue:
                    queue.append(ref)
    missing = set(defs) - set(order)
    if missing:
        raise RuntimeError(f"models of the schema not reached from {ROOT_DEF}: {sorted(missing)}")

    out: list[str] = []
    for def_name in order:
        definition = defs[def_name]
        where = paths[def_name]
        title = "Top level" if def_name == ROOT_DEF else ", ".join(f"`{p}`" for p in where)
        out.append(f"## {title} {{#{_anchor(def_name)}}}\n")
        out.append(f"Model `{def_name}`.\n")
        cls = getattr(module, def_name, None)
        # The model's own docstring only (pydantic puts it in the schema); never BaseModel's.
        description = definition.get("description", "")
        if description and def_name != ROOT_DEF:
            out.append(description.strip() + "\n")
        comments = _field_comments(cls) if isinstance(cls, type) else {}
        required = set(definition.get("required", []))
        out.append("| key | type | default | notes |\n|---|---|---|---|")
        for key, prop in definition.get("properties", {}).items():
            kind, constraints = _type(prop)
            described = (prop.get("description") or comments.get(key, "")).rstrip(".")
            notes = [described, *constraints]
            note_text = "; ".join(n for n in notes if n)
            out.append(
                f"| `{key}` | {_cell(kind)} | {_cell(_default(key, prop, required))} "
                f"| {_cell(note_text)} |"
            )
        out.append("")
    return "\n".join(out)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise RuntimeError(f"{PAGE} lost its marker {MARKER}: the reference would be empty")
    return markdown.replace(MARKER, render(_config_module()))
