# The image of every Airflow component and of MLflow in docker-compose.yaml: Airflow's official
# image (slim: no providers we do not pin), the pinned environment of requirements.txt and the
# project's package, DAGs, plugins and pipelines baked in, so every worker runs the same code.
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
FROM apache/airflow:slim-${AIRFLOW_VERSION}-python${PYTHON_VERSION}
ARG AIRFLOW_VERSION

# requirements.txt pins the whole closure, Airflow included, to what `make test` runs.
COPY --chown=airflow:0 requirements.txt /opt/ct/requirements.txt
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /opt/ct/requirements.txt

COPY --chown=airflow:0 pyproject.toml README.md /opt/ct/
COPY --chown=airflow:0 include/continuous_training /opt/ct/include/continuous_training
RUN pip install --no-cache-dir --no-deps /opt/ct

COPY --chown=airflow:0 docker /opt/ct/docker
COPY --chown=airflow:0 include/pipelines /opt/airflow/pipelines
COPY --chown=airflow:0 dags /opt/airflow/dags
COPY --chown=airflow:0 plugins /opt/airflow/plugins
# Mount points of the named volumes: a new volume takes the owner of the folder it covers.
RUN mkdir -p /opt/airflow/auth /opt/airflow/ct-data /opt/airflow/mlartifacts
