# shellcheck shell=bash
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
# ...so it listens on this machine only (Airflow's default is every interface, 0.0.0.0).
export AIRFLOW__API__HOST="${AIRFLOW__API__HOST:-127.0.0.1}"
# Tasks reach the execution API through this URL; it must follow the port.
export AIRFLOW__API__BASE_URL="${AIRFLOW__API__BASE_URL:-http://127.0.0.1:$AIRFLOW__API__PORT}"
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=True
# Airflow's LocalExecutor forks [core] parallelism worker processes at start (32 by default),
# idle or not: two per core here, at least 2, at most 32.
CPUS="$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)"
PARALLELISM=$((2 * CPUS))
PARALLELISM=$((PARALLELISM < 2 ? 2 : PARALLELISM > 32 ? 32 : PARALLELISM))
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-$PARALLELISM}"
export MLFLOW_PORT="${MLFLOW_PORT:-5000}"
export MLFLOW_TRACKING_URI="${MLFLOW_TRACKING_URI:-http://127.0.0.1:$MLFLOW_PORT}"
export CT_DATA_ROOT="${CT_DATA_ROOT:-$LOCAL/data}"
export CT_GIT_SHA="${CT_GIT_SHA:-$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)}"
mkdir -p "$AIRFLOW_HOME" "$LOCAL/mlflow" "$CT_DATA_ROOT"

# launch_mlflow starts the tracking server in the background (its output to its log file) and
# sets MLFLOW_PID; wait_for_mlflow returns once it answers. start_mlflow does both.
launch_mlflow() {
  MLFLOW_PID=""
  if curl -fsS "$MLFLOW_TRACKING_URI/health" >/dev/null 2>&1; then
    echo "MLflow already answers at $MLFLOW_TRACKING_URI; using it"
    return
  fi
  # Its job runner serves GenAI evaluation jobs, which the project does not use.
  MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
  mlflow server --backend-store-uri "sqlite:///$LOCAL/mlflow/mlflow.db" \
    --artifacts-destination "$LOCAL/mlflow/artifacts" \
    --host 127.0.0.1 --port "$MLFLOW_PORT" --workers 1 >"$LOCAL/mlflow/server.log" 2>&1 &
  MLFLOW_PID=$!
}

# mlflow_ui_command [INDENT]: the command that serves this setup's MLflow database and
# artifacts again, over three lines.
mlflow_ui_command() {
  local indent="${1:-}"
  echo "${indent}MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $ROOT/.venv/bin/mlflow server --workers 1 \\"
  echo "${indent}  --backend-store-uri sqlite:///$LOCAL/mlflow/mlflow.db \\"
  echo "${indent}  --artifacts-destination $LOCAL/mlflow/artifacts --host 127.0.0.1 --port $MLFLOW_PORT"
}

wait_for_mlflow() {
  for _ in $(seq 1 240); do
    curl -fsS "$MLFLOW_TRACKING_URI/health" >/dev/null 2>&1 && return
    if [ -n "$MLFLOW_PID" ] && ! kill -0 "$MLFLOW_PID" 2>/dev/null; then
      echo "MLflow stopped while starting; the end of $LOCAL/mlflow/server.log:" >&2
      tail -20 "$LOCAL/mlflow/server.log" >&2
      return 1
    fi
    sleep 0.5
  done
  echo "MLflow did not answer within 2 minutes; see $LOCAL/mlflow/server.log" >&2
  return 1
}

start_mlflow() {
  launch_mlflow
  wait_for_mlflow
}

# port_in_use PORT: true when something listens on 127.0.0.1:PORT.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
