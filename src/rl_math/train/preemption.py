"""Checkpoint-and-stop on SIGUSR1/SIGTERM, for preemptible and time-limited (SLURM) jobs.

`slurm/train.sbatch` asks SLURM for ``--signal=B:USR1@180``: 180 s before the time limit the
batch script receives SIGUSR1 and forwards it to the training step. torchrun (the launcher inside
``accelerate launch``) is told to pass SIGUSR1 on to its workers (``PET_SIGNALS_TO_HANDLE``), so
**every rank on every node receives the signal**; a preempting SLURM sends SIGTERM to every
process of the step directly. Either way each rank's :class:`PreemptionCallback` only records the
signal in its handler (nothing else is safe there) and acts on it at the next ``on_step_end``:

* it sets ``control.should_save = True`` (the Trainer then writes ``checkpoint-N`` with optimizer,
  scheduler and RNG state, whatever ``save_strategy`` says) and ``control.should_training_stop =
  True``; a pending evaluation for that step is skipped, to spend the grace period on the save;
* under multi-process training the ranks first agree with one tiny all-reduce (MAX) per optimizer
  step, so that all of them stop at the **same** step even when the signal reaches them on
  different sides of a step boundary, or reaches only some of them. Saving a ZeRO-3 checkpoint is
  a collective operation: ranks disagreeing on the step would hang.

The batch script then requeues the job and the new run passes ``--resume_from_checkpoint true``.

A recipe uses it like this::

    preemption = PreemptionCallback()
    trainer = GRPOTrainer(..., callbacks=[preemption])
    trainer.train(resume_from_checkpoint=...)
    if preemption.stopped:          # checkpoint written, job is about to be requeued:
        return                      # skip the final save/eval/push

Nothing hangs on a signal: a first signal also freezes the step watchdog (`rl_math.train.watchdog`),
so the run ends within `step_timeout_s` of its last progress even if it never reaches a step end
(a hung collective, a rank holding the GIL); a **second SIGTERM**, ``DUPLICATE_WINDOW_S`` or more
after the first, ends the process at once with the default action (SLURM and torchrun may each
deliver one SIGTERM, so one arriving within the window is the same request).

Signal handlers can only be installed from the main thread; in any other thread the callback logs
a warning and does nothing. Handlers that were installed before ``on_train_begin`` are restored
at ``on_train_end``, and a previous *Python* handler is also called (chained) when a signal
arrives; ``SIG_DFL``/``SIG_IGN`` are not chained (that would kill the process or drop nothing).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from rl_math.train import watchdog

logger = logging.getLogger(__name__)

DEFAULT_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGUSR1, signal.SIGTERM)
DUPLICATE_WINDOW_S = 5.0
"""A SIGTERM this soon after the first is the same request delivered twice (by SLURM and by torchrun)."""

_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class PreemptionCallback(TrainerCallback):
    """Save a checkpoint and stop training at the next step end after SIGUSR1 or SIGTERM.

    Args:
        signals: the signals to handle (default: SIGUSR1 and SIGTERM).
        sync_ranks: when ``torch.distributed`` is initialised with more than one process,
            all-reduce the "signal received" flag at every step end so all ranks stop together.
        chain: also call a previously installed Python-level handler when a signal arrives.
    """

    def __init__(
        self,
        signals: Iterable[int] = DEFAULT_SIGNALS,
        *,
        sync_ranks: bool = True,
        chain: bool = True,
    ) -> None:
        self.signals: tuple[signal.Signals, ...] = tuple(signal.Signals(s) for s in signals)
        self.sync_ranks = sync_ranks
        self.chain = chain
        self.received: signal.Signals | None = None  # first signal seen by this process
        self._first_sigterm_at: float | None = None
        self.stopped = False  # True once this callback asked the Trainer to save and stop
        self.stopped_at_step: int | None = None
        self._previous: dict[signal.Signals, _Handler] = {}

    # ------------------------------------------------------------------ handlers
    @property
    def installed(self) -> bool:
        return bool(self._previous)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        # Runs between two bytecodes of the main thread: only record, never do I/O or collectives.
        sig = signal.Signals(signum)
        if sig is signal.SIGTERM:
            now = time.monotonic()
            if self._first_sigterm_at is None:
                self._first_sigterm_at = now
            elif now - self._first_sigterm_at >= DUPLICATE_WINDOW_S:
                self._die_now(signum)
        if self.received is None:
            self.received = sig
            watchdog.freeze()  # from now on the run must end: progress no longer postpones the deadline
        previous = self._previous.get(sig)
        if self.chain and callable(previous) and previous is not self._handle:
            previous(signum, frame)

    @staticmethod
    def _die_now(signum: int) -> None:
        """A second SIGTERM: the user or the scheduler insists. Take the default action (termination)."""
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    def install(self) -> bool:
        """Install the handlers (idempotent). Returns False outside the main thread."""
        if self.installed:
            return True
        if threading.current_thread() is not threading.main_thread():
            logger.warning(
                "PreemptionCallback: not in the main thread, cannot install signal handlers; "
                "preemption will not produce a checkpoint"
            )
            return False
        for sig in self.signals:
            self._previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self._handle)
        return True

    def restore(self) -> None:
        """Put back the handlers that were active before :meth:`install`."""
        if not self.installed or threading.current_thread() is not threading.main_thread():
            return
        for sig, previous in self._previous.items():
            # getsignal() returns None for handlers not installed from Python; fall back to default.
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()

    # ------------------------------------------------------------------ rank agreement
    def _any_rank_signalled(self, args: TrainingArguments | None) -> bool:
        local = self.received is not None
        if not self.sync_ranks:
            return local
        try:
            import torch
            import torch.distributed as dist
        except ImportError:  # pragma: no cover - torch is a hard dependency of transformers' Trainer
            return local
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() <= 1:
            return local
        device = torch.device("cpu")
        if dist.get_backend() != "gloo" and args is not None:
            device = args.device  # NCCL needs the rank's GPU
        flag = torch.tensor([1 if local else 0], dtype=torch.int32, device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    # ------------------------------------------------------------------ TrainerCallback API
    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.received = None
        self._first_sigterm_at = None
        self.stopped = False
        self.stopped_at_step = None
        self.install()

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self.stopped or not self._any_rank_signalled(args):
            return
        control.should_save = True
        control.should_training_stop = True
        control.should_evaluate = False
        self.stopped = True
        self.stopped_at_step = state.global_step
        name = self.received.name if self.received is not None else "a preemption signal (on another rank)"
        if state.is_world_process_zero:
            logger.warning(
                "received %s: saving a checkpoint at step %d and stopping so the job can be requeued",
                name,
                state.global_step,
            )

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.restore()
