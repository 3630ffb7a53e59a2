#!/usr/bin/env bash
# make demo: three consecutive weekly retrainings of the churn pipeline, headless,
# the last one after the synthetic drift onset (2026-03-01), then the decisions.
set -euo pipefail
source "$(dirname "$0")/local_env.sh"
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
    grep -hoE "(promoted|rejected) version [0-9]+: .*" "$log" | tail -1 || true
  else
    echo "   run failed; log: $log"; tail -20 "$log"; exit 1
  fi
done
echo
python -m continuous_training.cli decisions churn
