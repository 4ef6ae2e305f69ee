"""The step watchdog: a run that makes no progress for `step_timeout_s` logs every stack and ends.

The most-reported failure of multi-GPU RL jobs is a silent hang: a collective one rank never
joins, a weight sync to vLLM that never returns, a reward that never ends. The watchdog turns it
into stacks in the log and exit status 4 (`exit_status.STALLED`), which `slurm/train.sbatch`
requeues a bounded number of times.

How, when a hung rank may hold the GIL (then no Python thread or signal handler of its own runs):

* each rank arms :func:`faulthandler.dump_traceback_later` — a C thread that needs no GIL — with
  ``exit=True``: at the deadline it writes the Python stack of every thread to stderr and ends
  the process (status 1). Every sign of progress re-arms it (:func:`progress`);
* the rank's supervisor (`rl_math.train.supervisor`, its parent process) sees the heartbeat
  file go stale and turns that status into 4, or kills a rank that did not end.

Progress is an optimizer step, a gradient-accumulation micro-step, a log, a save or an
evaluation (:class:`StepWatchdog`, a TrainerCallback), or anything else that calls
:func:`progress`, such as an asynchronous sampler's wait loop or a long evaluation between steps.
The watchdog is armed between ``on_train_begin`` and ``on_train_end``; model loading before and
the final save after are not watched.

After a preemption signal (SIGTERM/SIGUSR1) the run must end: :func:`freeze` stops progress from
re-arming the timer, so a run that cannot reach its checkpoint still ends within
`step_timeout_s` of its last progress.

>>> watchdog = StepWatchdog(0)  # step_timeout_s 0: off, every call does nothing
>>> watchdog.enabled
False
"""

from __future__ import annotations

import faulthandler
import logging
import os
import sys
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from rl_math.train.supervisor import supervised_heartbeat

logger = logging.getLogger(__name__)

class _Armed:
    """The one faulthandler timer of this process (faulthandler has one per process)."""

    timeout_s: float = 0.0
    frozen: bool = False
    heartbeat: str | None = None


def _stream():
    # faulthandler writes to a file descriptor from C; pytest's captured sys.stderr has none
    return sys.__stderr__ if sys.__stderr__ is not None else sys.stderr


def arm(timeout_s: float) -> None:
    """Start watching this process: without progress for `timeout_s` seconds it dumps its stacks and ends."""
    if timeout_s <= 0:
        return
    _Armed.timeout_s = float(timeout_s)
    _Armed.frozen = False
    _Armed.heartbeat = supervised_heartbeat()
    if _Armed.heartbeat:
        try:
            with open(_Armed.heartbeat, "w") as file:
                file.write(f"{_Armed.timeout_s:g}\n")
        except OSError as err:  # the timer below still ends a hung run, with status 1
            logger.warning("watchdog: cannot write the heartbeat file %s (%s)", _Armed.heartbeat, err)
            _Armed.heartbeat = None
    progress()


def progress() -> None:
    """Record progress: the run has `step_timeout_s` from now. Cheap (two system calls); safe unarmed.

    Call it from any loop that waits for something legitimately slow between optimizer steps
    (rollouts from an asynchronous sampler, a long evaluation); not from a signal handler.
    """
    if _Armed.timeout_s <= 0 or _Armed.frozen:
        return
    faulthandler.dump_traceback_later(_Armed.timeout_s, repeat=False, file=_stream(), exit=True)
    if _Armed.heartbeat:
        try:
            os.utime(_Armed.heartbeat)
        except OSError:
            pass


heartbeat = progress
"""Another name for :func:`progress`."""


def freeze() -> None:
    """Stop re-arming: the run now has at most `step_timeout_s` from its last progress to end (after SIGTERM)."""
    _Armed.frozen = True


def disarm() -> None:
    """Stop watching (training ended); the heartbeat file says so to the supervisor."""
    if _Armed.timeout_s <= 0:
        return
    faulthandler.cancel_dump_traceback_later()
    if _Armed.heartbeat:
        try:
            with open(_Armed.heartbeat, "w") as file:
                file.write("0\n")
        except OSError:
            pass
    _Armed.timeout_s = 0.0
    _Armed.frozen = False


class StepWatchdog(TrainerCallback):
    """Arms the watchdog for `trainer.train()` and re-arms it at every step, micro-step, log, save and evaluation."""

    def __init__(self, step_timeout_s: float) -> None:
        self.step_timeout_s = float(step_timeout_s)

    @property
    def enabled(self) -> bool:
        return self.step_timeout_s > 0

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        if self.enabled:
            arm(self.step_timeout_s)

    def _progress(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        progress()

    on_step_end = on_substep_end = on_log = on_save = on_evaluate = on_prediction_step = _progress

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        disarm()
