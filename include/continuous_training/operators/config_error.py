"""The one task of a pipeline whose YAML does not load: it fails with the file's error."""

from __future__ import annotations

from typing import Any

from continuous_training.config import ConfigError, load_pipeline
from continuous_training.operators.base import PipelineOperator


class ReportConfigError(PipelineOperator):
    """Fails at once with the error of the YAML at `pipeline` (a path), read afresh."""

    def execute(self, context: Any) -> None:
        load_pipeline(self.pipeline)  # raises the ConfigError that names file and key
        raise ConfigError(f"{self.pipeline} loads now: its DAGs replace this one at the next parse")
