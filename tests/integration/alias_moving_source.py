"""A synthetic source that promotes another version while batch inference is running.

Named by import path in a test pipeline's `inference.source.kind`: fetching the partition
that starts at 06:00 moves `champion` to `options.move_to`, exactly as a retrain's
promotion landing between two mapped scoring tasks would.
"""

from __future__ import annotations

import os
from typing import Any

from continuous_training.sources import SyntheticSource, Window


class AliasMovingSource(SyntheticSource):
    def fetch(self, window: Window) -> Any:
        if window.start.hour == 6:
            from mlflow import MlflowClient

            client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
            client.set_registered_model_alias(
                self.pipeline.model_name, "champion", str(self.options["move_to"])
            )
        return super().fetch(window)
