"""Continuous training for Apache Airflow.

The core modules here never import Airflow; `continuous_training.operators` and
`continuous_training.dag_factory` are the only Airflow-facing parts.
"""

__version__ = "0.1.0"
