#!/usr/bin/env bash
# Run once by the postgres image on an empty data volume (/docker-entrypoint-initdb.d):
# MLflow's tracking and registry store gets a database of its own beside Airflow's, and so do
# the users and permissions of MLflow's basic-auth app.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  --set db="${MLFLOW_DB_NAME:-mlflow}" --set auth_db="${MLFLOW_AUTH_DB_NAME:-mlflow_auth}" \
  --set owner="$POSTGRES_USER" <<'SQL'
CREATE DATABASE :"db" OWNER :"owner";
CREATE DATABASE :"auth_db" OWNER :"owner";
SQL
