"""The DAGs of every pipeline YAML in CT_PIPELINES_DIR (default: include/pipelines/).

No logic here: one call into the factory per pipeline. A malformed YAML fails this file's
import loudly in the Airflow UI, naming the file and the key.
"""

from continuous_training.config import load_all_pipelines
from continuous_training.dag_factory import build_dags

for _config in load_all_pipelines():
    globals().update(build_dags(_config))
