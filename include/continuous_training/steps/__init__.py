"""The work of every task, as one plain function: `(config, run context, inputs) -> contract`.

No Airflow here. An operator (`continuous_training.operators`) builds the `RunContext` from
its task's context, calls its step and returns what the step returned; tests call the steps
directly against real parts. One module per DAG kind:

- `retraining`: fetch, validate, train_candidate, evaluate, promote, and debounce (the first
  step of a drift retrain);
- `inference`: pin_champion, list_partitions, score_partition, publish_predictions,
  check_drift, emit_drift_event;
- `monitoring`: measure_performance, check_decay, emit_performance_event, judge_live_evidence;
- `rollback`: rollback.

What the steps hand each other is typed in `continuous_training.contracts`. A step that has
nothing to do raises `errors.StepSkipped`; bad input raises a `BadInputError`.
"""
