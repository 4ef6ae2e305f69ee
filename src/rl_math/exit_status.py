"""The exit statuses of every rl-math recipe: one table, so job scripts can tell outcomes apart.

Recipes, the step watchdog and the asynchronous sampler all exit with these; `slurm/train.sbatch`
requeues on the ones marked *requeue* below (a bounded number of times). The README's "When
something goes wrong" lists them for users.

>>> CONFIG_ERROR, HEALTH_STOP, STALLED
(2, 3, 4)
>>> describe(STALLED)
'stalled: no training progress (step, collective, weight sync or rollouts) within step_timeout_s; stacks are in the log (requeue)'
"""

from __future__ import annotations

OK = 0
"""Finished, or checkpointed on a preemption signal (the requeued job resumes)."""
FAILED = 1
"""An unexpected error (Python's own status for an uncaught exception), or a RunError said in one line."""
CONFIG_ERROR = 2
"""Bad input, named in one sentence before any model loaded."""
HEALTH_STOP = 3
"""A health alarm (or the in-run accuracy guard) with action `stop` ended the run early."""
STALLED = 4
"""The watchdog found no progress within `step_timeout_s` (a hang), or a helper process died."""

MEANINGS: dict[int, str] = {
    OK: "finished, or checkpointed on a preemption signal",
    FAILED: "an unexpected error (a traceback is in the log), or a run-time error one line explains "
    "(a custom reward that raised or returned a bad value: the line names it and where)",
    CONFIG_ERROR: "bad input, named in one sentence before any model loaded",
    HEALTH_STOP: "a health alarm or the accuracy guard stopped the run (stop_reason in final_metrics.json)",
    STALLED: "stalled: no training progress (step, collective, weight sync or rollouts) within step_timeout_s; "
    "stacks are in the log (requeue)",
}


def describe(status: int) -> str:
    """What an exit status means (`describe(2)` → 'bad input, ...'); unknown statuses say so."""
    return MEANINGS.get(status, f"unknown exit status {status}")
