"""Stands for your own code, living next to your DAGs: a CRM source, operator and gate check.

Airflow puts the dags folder on `sys.path`, so this package imports as `crm_extension`;
`dags/.airflowignore` keeps the DAG processor from parsing its files as DAG files.

Every module here is light at import time (stdlib, `airflow.sdk` and the light parts of
`continuous_training`): pandas and friends are imported inside the functions that use them,
so the DAG file that imports this package still parses fast.
"""

from pathlib import Path

# The example's pipeline config. It lives here, not in include/pipelines/, so the DAG factory
# does not build the standard DAGs for it; operators accept a YAML path as `pipeline=`.
PIPELINE_YAML = str(Path(__file__).resolve().with_name("churn_crm.yaml"))
