"""The DAGs of every pipeline YAML in CT_PIPELINES_DIR (default: include/pipelines/).

No logic here: one call into the factory. A YAML that does not load costs only its own
pipeline: a `<name>_invalid_config` DAG stands in for its DAGs and shows the error, naming
the file and the key, while every other pipeline's DAGs are built as usual.

(Airflow's safe mode parses only files that mention both "airflow" and "dag": this one does.)
"""

from continuous_training.dag_factory import build_all_dags

globals().update(build_all_dags())
