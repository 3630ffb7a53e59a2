# Settings of the embedded local setup, sourced by run_local.sh and demo.sh.
# Airflow standalone on SQLite, MLflow on SQLite, data under .local/; override any of them.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="${CT_LOCAL_DIR:-$ROOT/.local}"
export PATH="$ROOT/.venv/bin:$PATH"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$LOCAL/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$ROOT/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
# A local single-user setup: every visitor of 127.0.0.1:8080 is admin, no password to find.
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS:-True}"
export AIRFLOW__API__PORT="${AIRFLOW__API__PORT:-8080}"
# Tasks reach the execution API through this URL; it must follow the port.
export AIRFLOW__API__BASE_URL="${AIRFLOW__API__BASE_URL:-http://127.0.0.1:$AIRFLOW__API__PORT}"
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=True
export MLFLOW_PORT="${MLFLOW_PORT:-5000}"
export MLFLOW_TRACKING_URI="${MLFLOW_TRACKING_URI:-http://127.0.0.1:$MLFLOW_PORT}"
export CT_DATA_ROOT="${CT_DATA_ROOT:-$LOCAL/data}"
export CT_GIT_SHA="${CT_GIT_SHA:-$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)}"
mkdir -p "$AIRFLOW_HOME" "$LOCAL/mlflow" "$CT_DATA_ROOT"

start_mlflow() {
  if curl -fsS "$MLFLOW_TRACKING_URI/health" >/dev/null 2>&1; then
    echo "MLflow already answers at $MLFLOW_TRACKING_URI"
    return
  fi
  # Its job runner serves GenAI evaluation jobs, which the project does not use.
  MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
  mlflow server --backend-store-uri "sqlite:///$LOCAL/mlflow/mlflow.db" \
    --artifacts-destination "$LOCAL/mlflow/artifacts" \
    --host 127.0.0.1 --port "$MLFLOW_PORT" --workers 1 >"$LOCAL/mlflow/server.log" 2>&1 &
  MLFLOW_PID=$!
  for _ in $(seq 1 120); do
    curl -fsS "$MLFLOW_TRACKING_URI/health" >/dev/null 2>&1 && return
    kill -0 "$MLFLOW_PID" 2>/dev/null || { cat "$LOCAL/mlflow/server.log"; return 1; }
    sleep 0.5
  done
  echo "MLflow did not start; see $LOCAL/mlflow/server.log" >&2
  return 1
}
