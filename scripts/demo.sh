#!/usr/bin/env bash
# make demo: three consecutive weekly retrainings of the churn pipeline, headless,
# the last one after the synthetic drift onset (2026-03-01), then the decisions.
set -euo pipefail
# A fresh, separate setup each time, so the story starts with no champion and never
# touches what `make run` keeps in .local/.
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
export CT_LOCAL_DIR="$ROOT/.local/demo"
rm -rf "$CT_LOCAL_DIR"
export MLFLOW_PORT="${CT_DEMO_MLFLOW_PORT:-5001}"
unset MLFLOW_TRACKING_URI AIRFLOW_HOME CT_DATA_ROOT
source "$ROOT/scripts/local_env.sh"
MLFLOW_PID=""
trap '[ -n "$MLFLOW_PID" ] && kill -TERM -- "-$MLFLOW_PID" 2>/dev/null || true' EXIT
set -m  # the MLflow server gets its own process group, so the trap stops its workers too

start_mlflow
airflow db migrate >"$LOCAL/airflow-migrate.log" 2>&1
WEEKS=${CT_DEMO_WEEKS:-"2026-03-01T02:00:00+00:00 2026-03-08T02:00:00+00:00 2026-03-15T02:00:00+00:00"}
for when in $WEEKS; do
  echo "== churn_weekly_retraining for the week ending $when"
  log="$LOCAL/demo-$(date -d "$when" +%Y%m%d).log"
  if airflow dags test churn_weekly_retraining "$when" >"$log" 2>&1; then
    grep -hoE "(promoted|rejected) version [0-9]+: .*" "$log" | tail -1 | sed 's/ \[airflow\..*$//' || true
  else
    echo "   run failed; log: $log"; tail -20 "$log"; exit 1
  fi
done
echo
python -m continuous_training.cli decisions churn
