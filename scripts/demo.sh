#!/usr/bin/env bash
# make demo: two chapters, headless, every DAG run with `airflow dags test`.
# Chapter 1, input drift, with the shipped churn pipeline: a weekly retrain, batch inference
# before and after the synthetic drift onset (2026-03-01), the drift event, the drift retrain
# that promotes, its debounce, and the new champion serving; then the ledger.
# Chapter 2, ground truth, with churn_concept (a variant of churn.yaml this script writes): a
# concept-drift onset (2026-01-20) that input drift does not see; labels arrive; the champion's
# realized AUC falls; the performance event; the retrain it starts promotes
# (ct.trigger=performance); then the ledger.
set -euo pipefail
# A fresh, separate setup each time, so the story starts with no champion and never
# touches what `make run` keeps in .local/.
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
export CT_LOCAL_DIR="$ROOT/.local/demo"
export MLFLOW_PORT="${CT_DEMO_MLFLOW_PORT:-5001}"
if (exec 3<>"/dev/tcp/127.0.0.1/$MLFLOW_PORT") 2>/dev/null; then
  echo "port $MLFLOW_PORT is in use (an earlier make demo still serving its results?);" \
    "stop it, or choose another port: CT_DEMO_MLFLOW_PORT=5002 make demo" >&2
  exit 1
fi
rm -rf "$CT_LOCAL_DIR"
unset MLFLOW_TRACKING_URI AIRFLOW_HOME CT_DATA_ROOT
# The demo's own pipelines folder: the shipped churn.yaml as it is, and churn_concept.yaml.
export CT_PIPELINES_DIR="$CT_LOCAL_DIR/pipelines"
source "$ROOT/scripts/local_env.sh"
MLFLOW_PID=""
stop_mlflow() {
  [ -n "$MLFLOW_PID" ] || return 0
  kill -TERM -- "-$MLFLOW_PID" 2>/dev/null || true
  for _ in $(seq 1 20); do kill -0 -- "-$MLFLOW_PID" 2>/dev/null || break; sleep 0.5; done
  MLFLOW_PID=""
}
# A step's `airflow dags test` runs in a process group of its own, out of reach of the terminal's
# Ctrl-C (on which it keeps waiting for the task it lost): the script stops it instead.
STEP_PID=""
stop_step() {
  [ -n "$STEP_PID" ] || return 0
  kill -TERM -- "-$STEP_PID" 2>/dev/null || true
  for _ in $(seq 1 10); do kill -0 -- "-$STEP_PID" 2>/dev/null || break; sleep 0.5; done
  kill -KILL -- "-$STEP_PID" 2>/dev/null || true
  STEP_PID=""
}
trap 'stop_step; stop_mlflow' EXIT
trap 'echo; echo "make demo: stopped"; exit 130' INT TERM
# At the end, MLflow keeps serving the results until Ctrl-C when the demo runs in a terminal;
# elsewhere it stops, and the command that serves them again is printed.
# CT_DEMO_KEEP_MLFLOW=1 or 0 decides it either way.
KEEP_MLFLOW=0
if [ -t 0 ] && [ -t 1 ]; then KEEP_MLFLOW=1; fi
KEEP_MLFLOW="${CT_DEMO_KEEP_MLFLOW:-$KEEP_MLFLOW}"
STEP_LOGS="$LOCAL/logs"
START=$SECONDS

# Chapter 2's pipeline: churn.yaml with no input drift, a concept-drift onset on 2026-01-20
# (from that day the label rule changes, the features do not), labels known within 3 days,
# and windows that suit a short timeline (batches of 5 days scored in one partition per day;
# decay judged on the trailing 14 days, with at least 1,400 labelled rows).
mkdir -p "$CT_PIPELINES_DIR"
cp "$ROOT/include/pipelines/churn.yaml" "$CT_PIPELINES_DIR/"
python - "$ROOT/include/pipelines/churn.yaml" "$CT_PIPELINES_DIR/churn_concept.yaml" <<'PY'
import sys
from datetime import date

import yaml

shipped, target = sys.argv[1:]
data = yaml.safe_load(open(shipped, encoding="utf-8"))
data["name"] = "churn_concept"
data["description"] = "churn with concept drift and no input drift (make demo, chapter 2)"
synthetic = {"drift_onset": None, "concept_drift_onset": date(2026, 1, 20)}
data["source"].update(synthetic)
data["inference"]["source"].update(synthetic)
data["inference"].update(window_days=5, partition_hours=24)
data["labels"]["delay_days"] = 3
data["monitoring"].update(lookback_days=21, window_days=14, min_labelled_rows=1400)
with open(target, "w", encoding="utf-8") as out:
    out.write("# Written by scripts/demo.sh from include/pipelines/churn.yaml (chapter 2).\n")
    yaml.safe_dump(data, out, sort_keys=False)
PY

echo "make demo: continuous training in two chapters, fourteen DAG runs with \`airflow dags test\`"
echo "   (5 to 10 minutes). Everything it writes goes to a fresh ${LOCAL#"$ROOT/"}/."
mkdir -p "$STEP_LOGS"
set -m  # the MLflow server alone gets a process group of its own: stop_mlflow stops its workers
launch_mlflow  # too, and Ctrl-C reaches this script and the step it runs
set +m
if ! airflow db migrate >"$LOCAL/airflow-migrate.log" 2>&1; then
  echo "airflow db migrate failed; the end of $LOCAL/airflow-migrate.log:"; tail -20 "$LOCAL/airflow-migrate.log"
  exit 1
fi
wait_for_mlflow
echo "   MLflow serves it at $MLFLOW_TRACKING_URI (log: ${LOCAL#"$ROOT/"}/mlflow/server.log)."

# step N "what it shows" DAG WHEN PATTERN: runs one DAG for one date with `airflow dags test`
# into its own log file, and prints the log lines that tell the story, in the order written.
CHAPTER=0
step() {
  local n="$1" caption="$2" dag="$3" when="$4" pattern="$5"
  local log started=$SECONDS
  log="$STEP_LOGS/$CHAPTER.$n-$dag-$(date -u -d "$when" +%Y-%m-%dT%H%M).log"
  echo
  echo "  $CHAPTER.$n  $caption"
  echo "       $dag for $(date -u -d "$when" '+%Y-%m-%d %H:%M')..."
  set -m
  airflow dags test "$dag" "$when" >"$log" 2>&1 &
  STEP_PID=$!
  set +m
  if wait "$STEP_PID"; then
    STEP_PID=""
    python "$ROOT/scripts/demo_story.py" "$log" "$pattern"
    echo "       ($((SECONDS - started)) s; log: ${log#"$ROOT/"})"
  else
    echo "       the run failed after $((SECONDS - started)) s; the end of its log, $log:"
    tail -20 "$log"
    exit 1
  fi
}
chapter() {
  CHAPTER="$1"
  echo
  echo "Chapter $1 of 2: $2"
}
ledger() {
  echo
  echo "  The registry's ledger: every version, its decision and why (as recorded in its tags)"
  python -W ignore -m continuous_training.cli decisions "$1" | sed 's/^/  /'
}
DECISION="(promoted|rejected) version [0-9]+ \(ct\.trigger=[a-z_]+\): [^;]*|roc_auc improvement [^;]*"
DEBOUNCE="\] retraining: (drift|performance) episode .*|skipping the drift retrain: .*"
SCORED="scoring [^ ]+ to [^ ]+ with [^ ]+ version [0-9]+|published [0-9,]+ rows"
SCORED="$SCORED|no drift: drifted share [0-9.]+ is below [0-9.]+|drift event emitted: .*"
MEASURED="[0-9]{4}-[0-9]{2}-[0-9]{2}( to [0-9-]{10})?: version [0-9]+ realized .*"
MEASURED="$MEASURED|\] (no verdict|no decay|decay): .*|performance event emitted: .*"

chapter 1 "input drift, and the retrain it starts"
echo "   Pipeline churn, include/pipelines/churn.yaml as shipped. Its synthetic data drifts on"
echo "   2026-03-01: the features shift, and the label rule with them."
step 1 "the first champion, trained before the drift onset" \
  churn_weekly_retraining 2026-03-01T02:00:00+00:00 "$DECISION"
step 2 "a day before the onset: predictions, no drift" \
  churn_batch_inference 2026-02-26T03:00:00+00:00 "$SCORED"
step 3 "two weeks after the onset: drift, so an event on ct.churn.drift" \
  churn_batch_inference 2026-03-15T03:00:00+00:00 "$SCORED"
# The scheduler would start the drift retrain on that event by itself; here it is run by hand,
# and it reads the event from the asset.
step 4 "started by the event: trains on the data up to the drifted day" \
  churn_drift_retraining 2026-03-15T03:05:00+00:00 "$DECISION|$DEBOUNCE"
step 5 "the same event again: debounced, the episode was handled" \
  churn_drift_retraining 2026-03-15T03:10:00+00:00 "$DECISION|$DEBOUNCE"
step 6 "the next day, scored by the new champion" \
  churn_batch_inference 2026-03-16T03:00:00+00:00 "$SCORED"
step 7 "that day drifted away from v2's data too, but v2's data ends within the cooldown" \
  churn_drift_retraining 2026-03-16T03:05:00+00:00 "$DECISION|$DEBOUNCE"
ledger churn

chapter 2 "ground truth closes the loop"
echo "   Pipeline churn_concept, written by the demo to ${CT_PIPELINES_DIR#"$ROOT/"}/churn_concept.yaml:"
echo "   churn.yaml with drift_onset: null and concept_drift_onset: 2026-01-20. From that day the"
echo "   same-looking customers churn by another rule, which input drift cannot see and only the"
echo "   labels show. Labels arrive within 3 days; batches of 5 days; decay is judged on the"
echo "   trailing 14 days."
step 1 "the first champion, trained on data up to 2026-01-11, before the onset" \
  churn_concept_weekly_retraining 2026-01-11T02:00:00+00:00 "$DECISION"
step 2 "scores 2026-01-11 to 2026-01-16, before the onset" \
  churn_concept_batch_inference 2026-01-16T03:00:00+00:00 "$SCORED"
step 3 "scores 2026-02-05 to 2026-02-10, after the onset: the inputs look the same" \
  churn_concept_batch_inference 2026-02-10T03:00:00+00:00 "$SCORED"
step 4 "labels known by 2026-01-17: too few to judge, which is never evidence of decay" \
  churn_concept_performance_monitoring 2026-01-17T05:00:00+00:00 "$MEASURED"
step 5 "every label of the first batch is in: realized AUC as expected" \
  churn_concept_performance_monitoring 2026-01-20T05:00:00+00:00 "$MEASURED"
step 6 "every label of the second batch is in: the realized AUC has fallen" \
  churn_concept_performance_monitoring 2026-02-14T05:00:00+00:00 "$MEASURED"
# As in chapter 1, the scheduler would start it on the event; here it is run by hand.
step 7 "started by the performance event: trains on the data up to 2026-02-14" \
  churn_concept_drift_retraining 2026-02-14T05:10:00+00:00 "$DECISION|$DEBOUNCE"
ledger churn_concept

echo
ELAPSED=$((SECONDS - START))
echo "The end ($((ELAPSED / 60)) min $((ELAPSED % 60)) s). What the demo wrote stays in ${LOCAL#"$ROOT/"}/ until the next make demo:"
echo "   step logs   ${STEP_LOGS#"$ROOT/"}/: one file per DAG run, named by its step, with every"
echo "               task's log lines (\`airflow dags test\` writes no other task logs)"
echo "   data        ${CT_DATA_ROOT#"$ROOT/"}/: predictions, monitoring/dt=<date>/metrics.json"
echo "   MLflow      ${LOCAL#"$ROOT/"}/mlflow/: runs, drift and performance reports, model cards, the registry"
if [ "$KEEP_MLFLOW" = 1 ]; then
  echo
  echo "Browse the results: MLflow keeps serving them at $MLFLOW_TRACKING_URI until Ctrl-C."
  trap 'stop_mlflow; echo; echo "MLflow stopped. Serve the results again with:"; mlflow_ui_command "   "; exit 0' INT TERM
  wait "$MLFLOW_PID" || true
else
  stop_mlflow
  echo
  echo "Browse the results: the demo's MLflow server has stopped; serve them again with"
  mlflow_ui_command "   "
  echo "and open http://127.0.0.1:$MLFLOW_PORT"
fi
