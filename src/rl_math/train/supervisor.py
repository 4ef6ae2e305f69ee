"""The process that watches a training process and gives a hang its own exit status (4, stalled).

A rank that hangs while holding the GIL (a runaway regex in a callback, a stuck C call) runs no
Python thread and no Python signal handler again: nothing inside it can choose its exit status.
So every recipe started as a script runs as a child of this small supervisor (stdlib only, a few
MB): the recipe's first statement, :func:`run_under_supervisor`, re-runs the same command as a
child with ``RL_MATH_HEARTBEAT_FILE`` set, forwards SIGTERM/SIGUSR1/SIGUSR2 to it and exits with
its status. Under ``accelerate launch``/``torchrun`` each rank gets its own supervisor (the
launcher starts the recipe script), so the launcher's process tree is unchanged but one level deep.

The child's watchdog (`rl_math.train.watchdog`) writes its `step_timeout_s` into the heartbeat
file when it arms and touches the file's mtime at every sign of progress. The child's own
C-level `faulthandler` timer dumps the stacks of all its threads at the deadline and ``_exit(1)``s;
the supervisor then reports STALLED (4) instead of 1. Should the child still be alive
``GRACE_S`` after its deadline (a process in uninterruptible I/O), the supervisor kills it.

A launcher collapses its workers' statuses into its own (torchrun exits 1 whatever killed a
worker), so the supervisor also touches ``$RL_MATH_STALL_MARKER`` when it set status 4: the
sbatch script reads that file to tell a hang from a crash under every launcher.

>>> stalled(armed_timeout_s=60.0, last_progress=1000.0, now=1059.0), stalled(60.0, 1000.0, 1061.0)
(False, True)
>>> stalled(None, 1000.0, 99999.0)  # not armed (before training, evaluation, step_timeout_s 0)
False
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time

from rl_math.exit_status import STALLED

ENV_HEARTBEAT = "RL_MATH_HEARTBEAT_FILE"
"""Set in the child: the file whose mtime is its last progress and whose text is its step_timeout_s."""
ENV_SUPERVISOR_PID = "RL_MATH_SUPERVISOR_PID"
ENV_STALL_MARKER = "RL_MATH_STALL_MARKER"
"""Optional: a path the supervisor creates when it ends a run as stalled (read by slurm/train.sbatch)."""
ENV_NO_SUPERVISOR = "RL_MATH_NO_SUPERVISOR"
"""Set to 1 to run a recipe without a supervisor (a hang then ends with status 1, stacks still logged)."""
GRACE_S = 10.0
"""How long after its deadline a child may still be dumping its stacks before it is killed."""
FORWARDED = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)
POLL_S = 0.5


def stalled(armed_timeout_s: float | None, last_progress: float, now: float) -> bool:
    """Whether a child armed with `armed_timeout_s` and last seen at `last_progress` is past its deadline."""
    return armed_timeout_s is not None and now > last_progress + armed_timeout_s


def read_heartbeat(path: str) -> tuple[float | None, float]:
    """(step_timeout_s if armed else None, time of the last progress) from a heartbeat file.

    >>> import tempfile, os
    >>> with tempfile.NamedTemporaryFile("w", delete=False) as f:
    ...     _ = f.write("30.0\\n")
    >>> os.utime(f.name, (1000.0, 1000.0)); read_heartbeat(f.name)
    (30.0, 1000.0)
    >>> os.remove(f.name); read_heartbeat(f.name)
    (None, 0.0)
    """
    try:
        with open(path) as file:
            text = file.read().strip()
        last = os.stat(path).st_mtime
    except OSError:
        return None, 0.0
    try:
        timeout = float(text.split()[0]) if text else 0.0
    except ValueError:
        return None, last
    return (timeout if timeout > 0 else None), last


def _shell_status(returncode: int) -> int:
    """Popen's -N for "killed by signal N" as a shell would report it (128 + N)."""
    return 128 - returncode if returncode < 0 else returncode


def _log(message: str) -> None:
    print(f"rl-math watchdog: {message}", file=sys.stderr, flush=True)


def _mark_stalled() -> None:
    marker = os.environ.get(ENV_STALL_MARKER)
    if marker:
        try:
            with open(marker, "a") as file:
                file.write(f"{os.getpid()} {time.time():.0f}\n")
        except OSError as err:
            _log(f"could not write the stall marker {marker}: {err}")


def supervise(command: list[str]) -> int:
    """Run `command` as a watched child; its exit status, or STALLED (4) when it hung."""
    fd, heartbeat = tempfile.mkstemp(prefix="rl-math-heartbeat-")
    os.close(fd)
    env = {**os.environ, ENV_HEARTBEAT: heartbeat, ENV_SUPERVISOR_PID: str(os.getpid())}
    child = subprocess.Popen(command, env=env)

    def forward(signum, frame):  # the child decides what a signal means (checkpoint and stop)
        try:
            child.send_signal(signum)
        except ProcessLookupError:
            pass

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    # the terminal sends Ctrl-C to the whole foreground group, child included: do not send it twice
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        status = _watch(child, heartbeat)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        try:
            os.remove(heartbeat)
        except OSError:
            pass
    return status


def _watch(child: subprocess.Popen, heartbeat: str) -> int:
    while True:
        try:
            returncode = child.wait(timeout=POLL_S)
        except subprocess.TimeoutExpired:
            timeout, last = read_heartbeat(heartbeat)
            if stalled(timeout, last + GRACE_S, time.time()):
                _log(f"pid {child.pid} is still alive {GRACE_S:g} s after its deadline; killing it")
                child.kill()
                child.wait()
                return _report_stall(timeout, last)
            continue
        timeout, last = read_heartbeat(heartbeat)
        # faulthandler's timer fires at the deadline and exits 1: the clock may read a hair earlier here
        if returncode != 0 and stalled(timeout, last - 1.0, time.time()):
            return _report_stall(timeout, last)
        return _shell_status(returncode)


def _report_stall(timeout: float | None, last: float) -> int:
    _log(
        f"no training progress for {time.time() - last:.0f} s (step_timeout_s {timeout:g}): the run hung; "
        f"the stacks of every thread are above (\"Timeout\" / \"Thread\"). Exiting with status {STALLED} "
        "(stalled); a SLURM job is requeued"
    )
    _mark_stalled()
    return STALLED


def run_under_supervisor() -> None:
    """A recipe's first statement: unless already supervised, supervise a copy of this command and exit.

    Called before the recipe's heavy imports, so the supervisor costs one bare interpreter start.
    """
    if supervised_heartbeat() or os.environ.get(ENV_NO_SUPERVISOR) == "1":
        return
    sys.exit(supervise([sys.executable, *sys.orig_argv[1:]]))


def supervised_heartbeat() -> str | None:
    """This process's heartbeat file when its parent is its supervisor, else None.

    The parent's pid travels with the path: a recipe started from inside a supervised one (a
    subprocess inherits the environment) is not mistaken for the supervised child.
    """
    path = os.environ.get(ENV_HEARTBEAT)
    if path and os.environ.get(ENV_SUPERVISOR_PID) == str(os.getppid()):
        return path
    return None
