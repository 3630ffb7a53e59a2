#!/usr/bin/env bash
# make run: MLflow + Airflow standalone on SQLite, demo DAGs unpaused. Ctrl-C stops both.
set -euo pipefail
source "$(dirname "$0")/local_env.sh"

MLFLOW_PID=""
AIRFLOW_PID=""
WAITER_PID=""
stop() {
  trap - INT TERM EXIT
  echo "stopping Airflow and MLflow..."
  local groups="$AIRFLOW_PID $MLFLOW_PID $WAITER_PID"
  for pid in $groups; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for _ in $(seq 1 30); do
    local alive=""
    for pid in $groups; do kill -0 -- "-$pid" 2>/dev/null && alive=1; done
    [ -z "$alive" ] && return 0
    sleep 1
  done
  for pid in $groups; do kill -KILL -- "-$pid" 2>/dev/null || true; done
}
trap stop INT TERM EXIT
set -m  # each background job gets its own process group, so stop() reaches all its children

start_mlflow
airflow db migrate >"$LOCAL/airflow-migrate.log" 2>&1
airflow standalone >"$LOCAL/airflow-standalone.log" 2>&1 &
AIRFLOW_PID=$!

echo "waiting for Airflow to start and parse the DAGs (log: $LOCAL/airflow-standalone.log)..."
for dag_id in $(python -W ignore -c "
from continuous_training.dag_factory import build_all_dags
print(' '.join(build_all_dags()))"); do
  case "$dag_id" in
    *_batch_inference) INFERENCE_DAGS="${INFERENCE_DAGS:-} $dag_id"; continue ;;
    *_invalid_config) echo "$dag_id: a pipeline YAML does not load; see the DAG in the UI"; continue ;;
  esac
  for _ in $(seq 1 120); do
    if airflow dags list -o plain 2>/dev/null | grep -q "^$dag_id "; then
      airflow dags unpause "$dag_id" >/dev/null 2>&1 && echo "unpaused $dag_id"
      break
    fi
    sleep 2
  done
done

# Batch inference has nothing to serve before the first champion: unpause it once the
# first weekly retrain has promoted one, in the background.
(
  for dag_id in ${INFERENCE_DAGS:-}; do
    pipeline="${dag_id%_batch_inference}"
    until python -c "
import sys
from continuous_training import registry
from continuous_training.config import find_pipeline
client = registry.make_client('$MLFLOW_TRACKING_URI')
sys.exit(registry.alias_version(client, find_pipeline('$pipeline').model_name, 'champion') is None)
" 2>/dev/null; do sleep 10; done
    airflow dags unpause "$dag_id" >/dev/null 2>&1 && echo "unpaused $dag_id (a champion exists)"
  done
) &
WAITER_PID=$!

cat <<MSG

  Airflow UI:  http://127.0.0.1:$AIRFLOW__API__PORT   (local admin, no login needed)
  MLflow UI:   $MLFLOW_TRACKING_URI
  Data root:   $CT_DATA_ROOT

  churn_weekly_retraining runs now; churn_batch_inference is unpaused once it has promoted
  a champion, and churn_drift_retraining runs by itself when batch inference sees drift.
  Trigger any of them from the Airflow UI (the "Trigger" button opens the form).
  Ctrl-C stops both.
MSG
wait "$AIRFLOW_PID"
