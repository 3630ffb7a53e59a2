"""docker-compose.yaml, read the way `docker compose` reads it, and mapped onto this machine.

The native stack test takes every setting from here instead of repeating it, so the compose
file and the test cannot drift apart: the environment of each service, its command, its
healthcheck and its `depends_on`. Only three things change on the way, all in `NativeMap`:

- `${VAR}` is interpolated with the test's values (fresh secrets, unique database names);
- `<service>:<container port>` and `localhost:<port>` become `127.0.0.1:<free port>`;
- container paths (`/opt/airflow/dags`, the volumes) become folders of the repo or of the run.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"

# $$, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, $VAR
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
# host:port where a URL, a user@host or a comma-separated list puts a host.
_HOST_PORT = re.compile(r"(?P<pre>^|[/@,])(?P<host>[A-Za-z0-9.-]+):(?P<port>\d+)(?=$|[/,?#\s\"'])")


class ComposeError(ValueError):
    """The compose file asks for something the native stack cannot give; names the key."""


def load(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The compose file as YAML (anchors and `<<` merge keys resolved by PyYAML)."""
    return yaml.safe_load(path.read_text())


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)


def variables_used(path: Path = COMPOSE_FILE, required_only: bool = False) -> set[str]:
    """Every `${VAR}`/`$VAR` the compose file interpolates (only `${VAR:?...}` if asked)."""
    names = set()
    for text in _strings(load(path)):
        for match in _VARIABLE.finditer(text):
            if match.group("escaped"):
                continue
            if required_only and not (match.group("op") or "").endswith("?"):
                continue
            names.add(match.group("braced") or match.group("bare"))
    return names


def interpolate(value: str, variables: Mapping[str, str]) -> str:
    """Compose's interpolation: defaults with `-`/`:-`, required with `?`/`:?`, `$$` is `$`."""

    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("braced") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        current = variables.get(name)
        unset = current is None or (op is not None and op.startswith(":") and current == "")
        if op in ("-", ":-") and unset:
            return arg
        if op in ("?", ":?") and unset:
            raise ComposeError(f"${{{name}}} is required: {arg}")
        return current or ""

    return _VARIABLE.sub(replace, value)


def _interpolated(node: Any, variables: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, variables)
    if isinstance(node, list):
        return [_interpolated(item, variables) for item in node]
    if isinstance(node, dict):
        return {key: _interpolated(value, variables) for key, value in node.items()}
    return node


def _argv(node: Any) -> list[str]:
    """A compose command or entrypoint: a list as it is, a string split like a shell would."""
    if node is None:
        return []
    if isinstance(node, str):
        return shlex.split(node)
    return [str(item) for item in node]


def _environment(node: Any) -> dict[str, str]:
    if isinstance(node, list):  # ["KEY=value", ...]
        return dict(item.split("=", 1) for item in node)
    return {key: "" if value is None else str(value) for key, value in (node or {}).items()}


def _depends_on(node: Any) -> dict[str, str]:
    if isinstance(node, list):
        return {name: "service_started" for name in node}
    return {name: spec.get("condition", "service_started") for name, spec in (node or {}).items()}


@dataclass(frozen=True)
class Service:
    """One compose service after interpolation."""

    name: str
    command: list[str]
    entrypoint: list[str]
    environment: dict[str, str]
    healthcheck: list[str]
    depends_on: dict[str, str]
    image: str | None = None
    restart: str = "no"


def services(variables: Mapping[str, str], path: Path = COMPOSE_FILE) -> dict[str, Service]:
    """Every service of the compose file, `${VAR}` interpolated with `variables`."""
    compose = load(path)
    found = {}
    for name, spec in compose["services"].items():
        spec = _interpolated(spec, variables)
        health = (spec.get("healthcheck") or {}).get("test") or []
        found[name] = Service(
            name=name,
            command=_argv(spec.get("command")),
            entrypoint=_argv(spec.get("entrypoint")),
            environment=_environment(spec.get("environment")),
            healthcheck=[health] if isinstance(health, str) else [str(x) for x in health],
            depends_on=_depends_on(spec.get("depends_on")),
            image=spec.get("image"),
            restart=str(spec.get("restart", "no")),
        )
    return found


@dataclass
class NativeMap:
    """How the containers' names for things translate to this machine."""

    # (service, container port) -> port on 127.0.0.1
    ports: dict[tuple[str, int], int] = field(default_factory=dict)
    # container path -> local path (longest prefix wins)
    paths: dict[str, Path] = field(default_factory=dict)

    def value(self, value: str, service: str) -> str:
        """One setting or argument of `service`, as the native process must see it."""
        return self._paths(self._hosts(value, service))

    def _hosts(self, value: str, service: str) -> str:
        def replace(match: re.Match[str]) -> str:
            host, port = match.group("host"), int(match.group("port"))
            owner = service if host in ("localhost", "127.0.0.1") else host
            if (owner, port) not in self.ports:
                return match.group(0)
            return f"{match.group('pre')}127.0.0.1:{self.ports[(owner, port)]}"

        return _HOST_PORT.sub(replace, value)

    def _paths(self, value: str) -> str:
        for container in sorted(self.paths, key=len, reverse=True):
            value = re.sub(
                rf"(?<![\w/]){re.escape(container)}(?=$|[/\s,:;\"'])",
                str(self.paths[container]),
                value,
            )
        return value

    def unmapped(self, value: str, services: set[str]) -> list[str]:
        """Container hosts or paths left in an already mapped value (empty when all mapped)."""
        left = [
            match.group(0).lstrip("/@,")
            for match in _HOST_PORT.finditer(value)
            if match.group("host") in services or match.group("host") == "localhost"
        ]
        left += re.findall(r"(?<![\w/])/opt/(?:airflow|ct)\b[^\s,:;\"']*", value)
        return left
