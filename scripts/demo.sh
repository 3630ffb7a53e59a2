#!/usr/bin/env bash
# make demo: the whole loop of the churn pipeline, headless: a weekly retrain, batch
# inference before and after the synthetic drift onset (2026-03-01), the drift event, the
# drift retrain that promotes, its debounce, and the new champion serving; then the ledger.
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

# Runs one DAG for one date with `airflow dags test` and prints the lines that tell the story.
run() {
  local dag="$1" when="$2" pattern="$3"
  local log="$LOCAL/demo-$dag-$(date -d "$when" +%Y%m%d).log"
  echo "== $dag for $when"
  if airflow dags test "$dag" "$when" >"$log" 2>&1; then
    grep -hoE "$pattern" "$log" | sed 's/ \[airflow\..*$//; s/^/   /' | sort -u || true
  else
    echo "   run failed; log: $log"; tail -20 "$log"; exit 1
  fi
}
DECISION="(promoted|rejected) version [0-9]+: .*"
SCORED="(published [0-9]+ rows at .*|drifted share .*|drift event emitted.*|skipping the drift retrain: .*)"

# 1. A weekly retrain before the drift onset (2026-03-01) makes the first champion.
run churn_weekly_retraining 2026-03-01T02:00:00+00:00 "$DECISION"
# 2. Scoring a day before the onset: predictions, no drift.
run churn_batch_inference 2026-02-26T03:00:00+00:00 "$SCORED"
# 3. Scoring a day two weeks after the onset: drift, so an event on the drift asset.
run churn_batch_inference 2026-03-15T03:00:00+00:00 "$SCORED"
# 4. The drift retrain that event starts (the scheduler would start it by itself; here
#    it is run by hand, and it reads the event from the asset): it trains on the data up
#    to the drifted day and promotes, because the candidate wins on the recent holdout.
run churn_drift_retraining 2026-03-15T03:05:00+00:00 "($DECISION|skipping the drift retrain: .*)"
# 5. The same event again: debounced, the episode was handled.
run churn_drift_retraining 2026-03-15T03:10:00+00:00 "($DECISION|skipping the drift retrain: .*)"
# 6. The next day is scored by the new champion.
run churn_batch_inference 2026-03-16T03:00:00+00:00 "$SCORED|scoring .* with .*"
# 7. That day drifted too, now away from the new champion's data: a new episode, but the
#    champion was trained on data ending within the cooldown, so no retrain.
run churn_drift_retraining 2026-03-16T03:05:00+00:00 "($DECISION|skipping the drift retrain: .*)"
echo
python -m continuous_training.cli decisions churn
