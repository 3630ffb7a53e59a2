"""An in-memory MlflowClient for the registry's error paths: aliases, version tags, locks."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, RESOURCE_DOES_NOT_EXIST

from continuous_training import registry


class FakeRegistryClient:
    """The MlflowClient calls apply_decision makes, over in-memory alias and model tables."""

    def __init__(
        self,
        champion: str | None = None,
        *,
        thief: str | None = None,
        tags: dict[str, dict[str, str]] | None = None,
    ) -> None:
        self.aliases: dict[str, str] = {} if champion is None else {registry.CHAMPION: champion}
        self.tags: dict[str, dict[str, str]] = tags or {}
        self.alias_writes: list[tuple[str, str, str]] = []
        self.thief = thief  # a concurrent run that moves champion right after our write
        self.missing_error = RESOURCE_DOES_NOT_EXIST
        self.models: dict[str, dict[str, str]] = {}  # registered models: the champion lock

    def create_registered_model(self, name: str, tags: dict[str, str], description: str) -> None:
        if name in self.models:
            raise MlflowException(f"{name} exists", error_code=RESOURCE_ALREADY_EXISTS)
        self.models[name] = dict(tags)

    def get_registered_model(self, name: str) -> Any:
        if name not in self.models:
            raise MlflowException(f"{name} not found", error_code=RESOURCE_DOES_NOT_EXIST)
        return SimpleNamespace(tags=self.models[name])

    def delete_registered_model(self, name: str) -> None:
        if self.models.pop(name, None) is None:
            raise MlflowException(f"{name} not found", error_code=RESOURCE_DOES_NOT_EXIST)

    def get_model_version_by_alias(self, name: str, alias: str) -> Any:
        if alias not in self.aliases:
            raise MlflowException(
                f"alias {alias} of {name} not found", error_code=self.missing_error
            )
        return SimpleNamespace(version=int(self.aliases[alias]))  # MLflow may hand back ints

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        assert isinstance(value, str)
        self.tags.setdefault(version, {})[key] = value

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        self.alias_writes.append((name, alias, version))
        self.aliases[alias] = self.thief or version

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        self.alias_writes.append((name, alias, ""))
        del self.aliases[alias]

    def get_model_version(self, name: str, version: str) -> Any:
        if version not in self.tags:
            raise MlflowException("no such version", error_code=RESOURCE_DOES_NOT_EXIST)
        return SimpleNamespace(version=version, tags=self.tags[version])
