#!/usr/bin/env bash
# mlflow (docker-compose.yaml; tests/stack runs the same file natively): `mlflow "$@"` with
# MLflow's basic-auth app configured from the environment.
#
# The app reads its settings from an ini file (MLFLOW_AUTH_CONFIG_PATH) that cannot refer to
# environment variables, and its database URL holds the PostgreSQL password: so the file is
# written here, readable by this user only, into a fresh temporary file, and never committed.
# The admin login comes from MLFLOW_AUTH_ADMIN_USERNAME/PASSWORD, which MLflow reads itself
# (used on the first start only, to create the admin user).
set -euo pipefail
: "${MLFLOW_AUTH_DATABASE_URI:?set MLFLOW_AUTH_DATABASE_URI}"
: "${MLFLOW_AUTH_ADMIN_USERNAME:?set MLFLOW_AUTH_ADMIN_USERNAME}"
: "${MLFLOW_AUTH_ADMIN_PASSWORD:?set MLFLOW_AUTH_ADMIN_PASSWORD}"
: "${MLFLOW_FLASK_SERVER_SECRET_KEY:?set MLFLOW_FLASK_SERVER_SECRET_KEY}"

MLFLOW_AUTH_CONFIG_PATH="$(mktemp --suffix=.ini)"  # mode 0600
export MLFLOW_AUTH_CONFIG_PATH
# configparser reads "%" as interpolation: double it in the URL.
cat >"$MLFLOW_AUTH_CONFIG_PATH" <<INI
[mlflow]
# Every logged-in user may read every experiment and model; only the admin (and users given
# more by the admin) may write. There are no anonymous users.
default_permission = READ
database_uri = ${MLFLOW_AUTH_DATABASE_URI//%/%%}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
INI

exec mlflow "$@"
