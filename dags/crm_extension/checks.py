"""An extra gate check, named in the YAML under `gates.extra_checks`.

A check is any callable `(GateContext) -> CheckResult`; the gate passes only if every
check, the built-in ones and these, passes. A check that raises or returns something else
fails the gate (nothing is promoted) and the error is recorded as the check's detail.
"""

from __future__ import annotations

from continuous_training.gate import CheckResult, GateContext

# --8<-- [start:check]
MIN_HOLDOUT_ROWS = 1000


def holdout_large_enough(ctx: GateContext) -> CheckResult:
    """Refuse to decide on a small holdout.

    The first model of a pipeline has no champion to be compared with, so no bootstrap
    interval guards it: only the floor does, and a floor met on a few hundred rows is luck.
    """
    ok = ctx.holdout_rows >= MIN_HOLDOUT_ROWS
    op = ">=" if ok else "<"
    return CheckResult(
        "holdout_large_enough",
        ok,
        f"holdout {ctx.holdout_rows} rows {op} minimum {MIN_HOLDOUT_ROWS}",
    )


# --8<-- [end:check]
