"""Registers the continuous-training operator extra links with Airflow."""

from airflow.plugins_manager import AirflowPlugin

from continuous_training.operators.links import MLflowRunLink


class ContinuousTrainingPlugin(AirflowPlugin):
    name = "continuous_training"
    operator_extra_links = [MLflowRunLink()]
