"""The run notes: what each kind of run says, and how a person's note is kept."""

from __future__ import annotations

from continuous_training import run_notes
from continuous_training.operators.run_notes import _merged

EVALUATION = {"primary_metric": "roc_auc", "challenger_metric": 0.8123, "champion_metric": 0.8001}


def outcome(**changes: object) -> dict[str, object]:
    return {
        "decision": "promoted",
        "reason": "passed: roc_auc 0.81 >= 0.65",
        "trigger": "schedule",
        "promoted": True,
        "replaced_version": "4",
        "dry_run": False,
        "model_version": "5",
        "champion_version": "5",
        **changes,
    }


def test_a_promotion_names_both_versions_the_metric_the_window_and_the_reason() -> None:
    note = run_notes.retraining(outcome(), EVALUATION, "2026-02-01 to 2026-03-01")
    assert note == (
        "**PROMOTED** version 5 (replaces version 4)\n\n"
        "roc_auc 0.8123 vs champion 0.8001 on the same holdout. "
        "Data 2026-02-01 to 2026-03-01; trigger schedule\n\n"
        "Reason: passed: roc_auc 0.81 >= 0.65"
    )


def test_a_rejection_says_the_champion_stays() -> None:
    rejected = outcome(promoted=False, replaced_version=None, champion_version="4")
    note = run_notes.retraining(rejected, EVALUATION, "w")
    assert note.startswith("**REJECTED** version 5 (champion stays version 4)")
    dry = run_notes.retraining(outcome(promoted=False, dry_run=True), EVALUATION, "w")
    assert dry.startswith("**DRY RUN** version 5")


def test_a_long_reason_is_cut_to_what_airflow_keeps() -> None:
    note = run_notes.retraining(outcome(reason="x" * 5000), EVALUATION, "w")
    assert len(note) == run_notes.MAX_NOTE and note.endswith("…")


def test_batch_inference_names_rows_version_interval_and_drift() -> None:
    pinned = {
        "champion_version": "3",
        "window_start": "2026-03-14T00:00:00+00:00",
        "window_end": "2026-03-15T00:00:00+00:00",
    }
    summary = {"breach": True, "drifted_share": 0.43, "threshold": 0.3, "drifted_columns": ["a"]}
    note = run_notes.inference(pinned, {"rows": 12345}, summary)
    assert note == (
        "**SCORED** 12,345 rows with version 3, 2026-03-14T00:00 to 2026-03-15T00:00\n\n"
        "Drift: 43% of the features drifted (threshold 30%): a drift event follows; a"
    )
    empty = run_notes.inference(pinned, {"rows": 0}, {"breach": False, "skipped": "no rows"})
    assert empty.endswith("Drift: not measured (no rows)")


def test_a_persons_note_stays_above_ours_and_ours_is_replaced_on_a_rerun() -> None:
    ours = "**REJECTED** version 2 (champion stays version 1)"
    assert _merged(None, ours) == ours
    assert _merged("**PROMOTED** version 2 (replaces version 1)", ours) == ours
    kept = _merged("checking the new features", ours)
    assert kept == f"checking the new features{run_notes.SEPARATOR}{ours}"
    again = _merged(kept, "**PROMOTED** version 3 (replaces version 1)")
    assert again.startswith(f"checking the new features{run_notes.SEPARATOR}**PROMOTED**")
