"""Custom rewards run in a worker process, where a time limit can actually stop them.

A reward from an import path is user code: it may hang, and a catastrophic regex holds the GIL,
so a thread-based time limit never gets to run (the main thread waits forever). Here each
custom reward gets one worker process (started on first use, with ``subprocess`` so that the
recipe's ``__main__`` is not re-imported, and killed with its parent). A call that exceeds the
reward's ``timeout`` kills the worker and scores the batch again one completion at a time (each
within ``timeout``, all within ``RETRY_BUDGET`` timeouts), so only the completions that hang get **None** — which TRL 1.16 turns into
NaN and leaves out of the weighted sum (``nansum``), unlike a 0 that reads as a wrong answer. One
warning per reward name says so; the fraction of completions that timed out is logged as
``rewards/<name>/timeout_fraction`` through TRL's ``log_metric``, and a reward that times out on
more than ``MAX_TIMEOUT_FRACTION`` of its completions (after ``MIN_COMPLETIONS_FOR_STOP``) ends the
run with an error naming it.

TRL's own keyword arguments cannot cross a process boundary as they are: ``log_metric`` and
``log_extra`` are bound methods of the trainer. The worker gets stand-ins that record their calls,
and the calls are replayed on the real functions when the result comes back, so a custom reward
logs exactly as it would in-process. ``trainer_state`` crosses as a copy without its
``log_history`` (which grows every step; a reward reads the step, not the history), and
``environments`` (live objects) is not passed.

The built-in rewards stay in-process: the fuzz tests (tests/rewards/test_builtin_fuzz.py) bound
every one of them on adversarial strings, and a process hop would cost each of them far more than
it scores (BENCHMARKS §1).

>>> none_for_timeouts(3)
[None, None, None]
"""

from __future__ import annotations

import copy
import logging
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from rl_math.errors import RunError, innermost_frame

logger = logging.getLogger(__name__)

MAX_TIMEOUT_FRACTION = 0.1
"""A reward that times out on more than a tenth of its completions is broken, not unlucky: the run stops."""
MIN_COMPLETIONS_FOR_STOP = 32
"""The fraction is judged after this many completions, so one early slow batch does not stop a run."""
RETRY_BUDGET = 2.0
"""After a call timed out, its completions are scored one at a time within this many timeouts in all."""
_LOGGING_ARGUMENTS = ("log_metric", "log_extra")
_NOT_PASSED = ("environments",)


def none_for_timeouts(count: int) -> list[None]:
    """What a reward that ran out of time gives: None for each completion (TRL leaves them out)."""
    return [None] * count


class RewardError(RunError):
    """A custom reward raised: one sentence naming it (the recipe prints it alone, exit 1)."""


class RewardTypeError(RewardError, TypeError):
    """A custom reward returned something that is not one float (or None) per completion."""


class RewardValueError(RewardError, ValueError):
    """A custom reward returned the wrong number of values, or a NaN or infinity."""


class RewardTimeoutRate(RewardError):
    """A custom reward times out too often for its scores to mean anything."""


class _Recorder:
    """Stands in for TRL's `log_metric`/`log_extra` in the worker; the calls are replayed in the trainer."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def __call__(self, *args: Any) -> None:
        self.calls.append(args)


class _Worker:
    """One worker process and the two pipes to it."""

    def __init__(self) -> None:
        parent_in, child_out = os.pipe()
        child_in, parent_out = os.pipe()
        self.process = subprocess.Popen(
            [sys.executable, "-c", "import sys; from rl_math.rewards.isolation import serve; serve(*map(int, sys.argv[1:]))",
             str(child_in), str(child_out)],
            pass_fds=(child_in, child_out),
            env={**os.environ, "PYTHONPATH": os.pathsep.join(p or os.getcwd() for p in sys.path)},
        )
        os.close(child_in)
        os.close(child_out)
        self.inbox = Connection(parent_in, writable=False)
        self.outbox = Connection(parent_out, readable=False)

    def call(self, func: Callable, args: tuple, kwargs: dict, timeout_s: float) -> tuple | None:
        """The worker's reply to one call, or None when it did not come within `timeout_s`."""
        self.outbox.send((func, args, kwargs))
        if not self.inbox.poll(timeout_s):
            return None
        try:
            return self.inbox.recv()
        except EOFError:
            self.process.wait()
            return ("died", self.process.returncode)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self.inbox.close()
        self.outbox.close()


def serve(inbox_fd: int, outbox_fd: int) -> None:
    """The worker's loop: receive (func, args, kwargs), call, send back the values and the logging calls."""
    _die_with_parent()
    _leave_signals_to_the_trainer()
    inbox, outbox = Connection(inbox_fd, writable=False), Connection(outbox_fd, readable=False)
    while True:
        try:
            func, args, kwargs = inbox.recv()
        except (EOFError, OSError):
            return
        recorders = {name: _Recorder() for name in _LOGGING_ARGUMENTS if name in kwargs}
        kwargs.update(recorders)
        torch = sys.modules.get("torch")  # a reward never needs gradients (the trainer scores under no_grad too)
        if torch is not None:
            torch.set_grad_enabled(False)
        try:
            values = func(*args, **kwargs)
            values = list(values) if hasattr(values, "__len__") and not isinstance(values, (str, bytes)) else values
            reply: tuple = ("ok", values, {name: r.calls for name, r in recorders.items()})
        except BaseException as error:  # noqa: BLE001 - sent back and raised in the trainer, named after the reward
            reply = ("error", type(error).__name__, str(error), innermost_frame(error))
        try:
            outbox.send(reply)
        except (pickle.PicklingError, TypeError, AttributeError) as error:
            outbox.send(("error", type(error).__name__, f"its result cannot be sent back: {error}"))


def _die_with_parent() -> None:
    """Linux: the kernel kills this worker when the trainer dies, even mid-regex (prctl PR_SET_PDEATHSIG)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


def _leave_signals_to_the_trainer() -> None:
    """SLURM's preemption warning (SIGUSR1), its SIGTERM and Ctrl-C reach the whole process group:
    the trainer checkpoints and stops the worker itself (and the kernel kills it if the trainer
    dies), so the worker must not die of them first -- SIGUSR1's default action would kill it
    mid-step and fail the run that should have checkpointed."""
    for signum in (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_IGN)


def _picklable_kwargs(kwargs: dict) -> dict:
    sent = {key: value for key, value in kwargs.items() if key not in _NOT_PASSED}
    for name in _LOGGING_ARGUMENTS:
        if name in sent:
            sent[name] = None  # the worker puts a recorder in its place
    state = sent.get("trainer_state")
    if state is not None and getattr(state, "log_history", None):
        state = copy.copy(state)
        state.log_history = []
        sent["trainer_state"] = state
    return sent


def _one_completion(args: tuple, kwargs: dict, index: int, count: int) -> tuple[tuple, dict]:
    """The call's arguments for completion `index` alone: per-completion lists cut to one item.

    >>> _one_completion((["a", "b"],), {"answer": ["1", "2"], "k": 3}, 1, 2)
    ((['b'],), {'answer': ['2'], 'k': 3})
    """

    def cut(value: Any) -> Any:
        return [value[index]] if isinstance(value, list) and len(value) == count else value

    return tuple(cut(value) for value in args), {key: cut(value) for key, value in kwargs.items()}


class IsolatedReward:
    """Call `func` (TRL's reward calling convention) in its worker process, within `timeout_s` per call."""

    def __init__(self, func: Callable, name: str, timeout_s: float) -> None:
        self.func = func
        self.name = name
        self.timeout_s = timeout_s
        self.completions_seen = 0
        self.completions_timed_out = 0
        self._worker: _Worker | None = None
        self._warned = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        completions = kwargs.get("completions", args[0] if args else None)
        count = len(completions) if isinstance(completions, list) else 0
        sent = _picklable_kwargs(kwargs)
        reply = self._call(args, sent, self.timeout_s)
        if reply is None:
            values, timed_out = self._one_at_a_time(args, sent, count)
        else:
            values, timed_out = self._unpack(reply, kwargs), 0
        self._count(count, timed_out, kwargs.get("log_metric"))
        return values

    def _call(self, args: tuple, kwargs: dict, timeout_s: float) -> tuple | None:
        if self._worker is None:
            self._worker = _Worker()
        reply = self._worker.call(self.func, args, kwargs, timeout_s)
        if reply is None:
            self._worker.kill()  # a hung reward may hold its GIL forever: only its process can be stopped
            self._worker = None
        return reply

    def _one_at_a_time(self, args: tuple, kwargs: dict, count: int) -> tuple[list, int]:
        """After a batch timed out: each completion alone within `timeout_s`, all within `2 × timeout_s`.

        The completions that hang (or that the budget no longer reaches) get None. Returns the
        values and how many completions timed out. A call thus ends within 3 × `timeout_s` plus
        the worker restarts.
        """
        deadline = time.monotonic() + RETRY_BUDGET * self.timeout_s
        values: list = none_for_timeouts(count)
        timed_out = 0
        for index in range(count):
            left = min(self.timeout_s, deadline - time.monotonic())
            reply = self._call(*_one_completion(args, kwargs, index, count), left) if left > 0 else None
            if reply is None:
                timed_out += 1
                continue
            single = self._unpack(reply, kwargs)
            values[index] = single[0] if isinstance(single, list) and len(single) == 1 else single
        if not self._warned:
            self._warned = True
            logger.warning(
                "reward %r did not return within %g s on a batch; completions it cannot score in time get None "
                "(left out of the reward sum, not counted as wrong). Speed it up or raise its limit with "
                "{name: ..., timeout: SECONDS} in rewards",
                self.name, self.timeout_s,
            )
        return values, timed_out

    def _unpack(self, reply: tuple, kwargs: dict) -> Any:
        kind = reply[0]
        if kind == "died":
            self._worker = None
            raise RewardError(f"reward {self.name!r}: its worker process died (exit status {reply[1]})")
        if kind == "error":
            error = RewardError(f"reward {self.name!r} raised {reply[1]}: {reply[2]}")
            error.where = reply[3] if len(reply) > 3 else None  # in the worker: where the reward's code failed
            raise error
        _, values, logged = reply
        for name, calls in logged.items():
            target = kwargs.get(name)
            for args in calls if callable(target) else ():
                target(*args)
        return values

    def _count(self, count: int, timed_out: int, log_metric: Callable | None) -> None:
        self.completions_seen += count
        self.completions_timed_out += timed_out
        if callable(log_metric):
            log_metric(f"rewards/{self.name}/timeout_fraction", timed_out / count if count else 0.0)
        fraction = self.completions_timed_out / max(self.completions_seen, 1)
        if self.completions_seen >= MIN_COMPLETIONS_FOR_STOP and fraction > MAX_TIMEOUT_FRACTION:
            raise RewardTimeoutRate(
                f"reward {self.name!r} timed out on {self.completions_timed_out} of {self.completions_seen} completions "
                f"({fraction:.0%}, more than {MAX_TIMEOUT_FRACTION:.0%}): its scores no longer mean anything; fix it or "
                "raise its limit with {name: ..., timeout: SECONDS} in rewards"
            )

    def close(self) -> None:
        if self._worker is not None:
            self._worker.kill()
            self._worker = None

    def __getstate__(self) -> dict:  # a copy (deepcopy of the trainer's args, pickling) gets its own worker
        return {**self.__dict__, "_worker": None}

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown: the worker dies with us anyway
            pass
