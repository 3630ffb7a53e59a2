"""Registers the continuous-training parts Airflow loads as a plugin.

The "MLflow run" extra link of training and evaluation tasks, and the listener that writes
each run's outcome as its note when the run ends.
"""

from airflow.plugins_manager import AirflowPlugin

from continuous_training.operators import run_notes
from continuous_training.operators.links import MLflowRunLink


class ContinuousTrainingPlugin(AirflowPlugin):
    name = "continuous_training"
    operator_extra_links = [MLflowRunLink()]
    listeners = [run_notes]
