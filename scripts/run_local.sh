#!/usr/bin/env bash
# make run: MLflow + Airflow standalone on SQLite, demo DAGs unpaused. Ctrl-C stops both.
# Each UI's address is printed as soon as it answers; the servers' output goes to log files.
# Ports: AIRFLOW__API__PORT (8080) and MLFLOW_PORT (5000); state: CT_LOCAL_DIR (.local/).
set -euo pipefail
# shellcheck source=scripts/local_env.sh
source "$(dirname "$0")/local_env.sh"

START=$SECONDS
say() { printf '[%4ss] %s\n' "$((SECONDS - START))" "$*"; }

MLFLOW_PID=""
AIRFLOW_PID=""
WAITER_PID=""
stop() {
  trap - INT TERM EXIT
  echo
  say "stopping Airflow and MLflow..."
  local groups="$AIRFLOW_PID $MLFLOW_PID $WAITER_PID"
  for pid in $groups; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for _ in $(seq 1 30); do
    local alive=""
    for pid in $groups; do kill -0 -- "-$pid" 2>/dev/null && alive=1; done
    [ -z "$alive" ] && { say "stopped; state kept in $LOCAL"; return 0; }
    sleep 1
  done
  for pid in $groups; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  say "stopped (some processes had to be killed); state kept in $LOCAL"
}
trap stop EXIT
trap 'stop; exit 130' INT TERM
# Each server starts in a process group of its own (set -m around the start alone), so stop()
# reaches all its children; everything else stays in the terminal's group, so Ctrl-C reaches
# this script whatever it is running.

AIRFLOW_URL="http://127.0.0.1:$AIRFLOW__API__PORT"
if port_in_use "$AIRFLOW__API__PORT"; then
  echo "port $AIRFLOW__API__PORT is already in use (another make run?);" \
    "stop it or choose another port: AIRFLOW__API__PORT=8081 make run" >&2
  exit 1
fi
if port_in_use "$MLFLOW_PORT" && ! curl -fsS "$MLFLOW_TRACKING_URI/health" >/dev/null 2>&1; then
  echo "port $MLFLOW_PORT is in use by something that is not MLflow;" \
    "choose another port: MLFLOW_PORT=5002 make run" >&2
  exit 1
fi

echo "make run: MLflow and Airflow standalone on SQLite; state in $LOCAL (Ctrl-C stops both)"
say "starting MLflow on port $MLFLOW_PORT (log: $LOCAL/mlflow/server.log)"
set -m
launch_mlflow
set +m
say "migrating Airflow's database (log: $LOCAL/airflow-migrate.log)"
if ! airflow db migrate >"$LOCAL/airflow-migrate.log" 2>&1; then
  echo "airflow db migrate failed; the end of $LOCAL/airflow-migrate.log:" >&2
  tail -20 "$LOCAL/airflow-migrate.log" >&2
  exit 1
fi
say "starting Airflow: api-server, scheduler with $AIRFLOW__CORE__PARALLELISM LocalExecutor" \
  "workers ($(nproc) CPUs), dag-processor, triggerer (log: $LOCAL/airflow-standalone.log)"
set -m
airflow standalone >"$LOCAL/airflow-standalone.log" 2>&1 &
AIRFLOW_PID=$!
set +m

if [ "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS,,}" = "true" ]; then
  LOGIN="no login: a local single-user setup, every visitor is admin"
else
  LOGIN="user admin, password in $AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
fi

# Print each address as soon as its server answers; fail early if a server dies.
mlflow_up=""
airflow_up=""
[ -z "$MLFLOW_PID" ] && mlflow_up=1  # an MLflow that already answered is being reused
[ -n "$mlflow_up" ] && say "MLflow UI   $MLFLOW_TRACKING_URI"
for i in $(seq 1 600); do
  if [ -z "$mlflow_up" ] && curl -fsS "$MLFLOW_TRACKING_URI/health" >/dev/null 2>&1; then
    mlflow_up=1
    say "MLflow UI   $MLFLOW_TRACKING_URI"
  fi
  if [ -z "$airflow_up" ] && curl -fsS "$AIRFLOW_URL/api/v2/monitor/health" >/dev/null 2>&1; then
    airflow_up=1
    say "Airflow UI  $AIRFLOW_URL   ($LOGIN)"
  fi
  [ -n "$mlflow_up" ] && [ -n "$airflow_up" ] && break
  if [ -z "$mlflow_up" ] && ! kill -0 "$MLFLOW_PID" 2>/dev/null; then
    echo "MLflow stopped while starting; the end of $LOCAL/mlflow/server.log:" >&2
    tail -20 "$LOCAL/mlflow/server.log" >&2
    exit 1
  fi
  if ! kill -0 "$AIRFLOW_PID" 2>/dev/null; then
    echo "Airflow stopped while starting; the end of $LOCAL/airflow-standalone.log:" >&2
    tail -20 "$LOCAL/airflow-standalone.log" >&2
    exit 1
  fi
  if [ $((i % 60)) -eq 0 ]; then
    waiting="$([ -n "$mlflow_up" ] || printf 'MLflow and ')$([ -n "$airflow_up" ] || printf 'Airflow')"
    say "still waiting for ${waiting% and } to answer"
  fi
  sleep 0.5
done
if [ -z "$mlflow_up" ] || [ -z "$airflow_up" ]; then
  echo "the servers did not answer within 5 minutes; see the logs named above" >&2
  exit 1
fi

# Unpause the retraining and monitoring DAGs as soon as Airflow has parsed them (one listing
# per round); batch inference waits for a champion, below.
say "waiting for Airflow to parse the DAGs, then unpausing them"
PENDING=()
INFERENCE_DAGS=()
for dag_id in $(python -W ignore -c "
from continuous_training.dag_factory import build_all_dags
print(' '.join(build_all_dags()))"); do
  case "$dag_id" in
    *_batch_inference) INFERENCE_DAGS+=("$dag_id") ;;
    *_invalid_config) say "$dag_id: a pipeline YAML does not load; see the DAG in the UI" ;;
    *) PENDING+=("$dag_id") ;;
  esac
done
UNPAUSE_BY=$((SECONDS + 300))
while [ "${#PENDING[@]}" -gt 0 ] && [ "$SECONDS" -lt "$UNPAUSE_BY" ]; do
  listed="$(airflow dags list -o plain 2>/dev/null || true)"
  found=()
  left=()
  for dag_id in "${PENDING[@]}"; do
    if grep -q "^$dag_id " <<<"$listed"; then found+=("$dag_id"); else left+=("$dag_id"); fi
  done
  if [ "${#found[@]}" -gt 0 ]; then
    pattern="^($(IFS='|'; echo "${found[*]}"))\$"
    if airflow dags unpause --treat-dag-id-as-regex -y "$pattern" >/dev/null 2>&1; then
      say "unpaused ${found[*]}"
    else
      left+=("${found[@]}")
    fi
  fi
  PENDING=("${left[@]+"${left[@]}"}")
  [ "${#PENDING[@]}" -eq 0 ] || sleep 2
done
[ "${#PENDING[@]}" -eq 0 ] || say "not parsed after 5 minutes: ${PENDING[*]}; see the UI's import errors"

# Batch inference has nothing to serve before the first champion: unpause it once the
# first weekly retrain has promoted one, in the background.
set -m
(
  for dag_id in "${INFERENCE_DAGS[@]+"${INFERENCE_DAGS[@]}"}"; do
    pipeline="${dag_id%_batch_inference}"
    until python -c "
import sys
from continuous_training import registry
from continuous_training.config import find_pipeline
client = registry.make_client('$MLFLOW_TRACKING_URI')
sys.exit(registry.alias_version(client, find_pipeline('$pipeline').model_name, 'champion') is None)
" 2>/dev/null; do sleep 10; done
    airflow dags unpause "$dag_id" >/dev/null 2>&1 && say "unpaused $dag_id (a champion exists)"
  done
) &
WAITER_PID=$!
set +m

cat <<MSG

  Airflow UI:  $AIRFLOW_URL   ($LOGIN)
  MLflow UI:   $MLFLOW_TRACKING_URI
  Data root:   $CT_DATA_ROOT
  Logs:        $LOCAL/airflow-standalone.log, $LOCAL/mlflow/server.log;
               each task's log in $AIRFLOW_HOME/logs/

  churn_weekly_retraining runs now; churn_batch_inference is unpaused once it has promoted
  a champion, and churn_drift_retraining runs by itself when batch inference sees drift.
  Trigger any of them from the Airflow UI (the "Trigger" button opens the form).
  Ctrl-C stops both.

MSG
wait "$AIRFLOW_PID"
