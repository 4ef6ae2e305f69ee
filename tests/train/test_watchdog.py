"""The step watchdog: a run without progress for step_timeout_s logs every stack and exits 4 (stalled)."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import time

import pytest
import yaml
from recipe_runs import REPO_ROOT, offline_env, run_recipe

from rl_math.exit_status import STALLED
from rl_math.train import supervisor

# A rank stuck in a regex holds the GIL: no Python thread, no Python signal handler of its own runs again.
STUCK_HOLDING_THE_GIL = """
import re, sys
from rl_math.train.supervisor import run_under_supervisor
run_under_supervisor()
from rl_math.train import watchdog
watchdog.arm({timeout})
for _ in range(3):
    watchdog.progress()
print("armed", flush=True)
re.match(r"(a+)+$", "a" * 64 + "b")  # backtracks for ages
"""


def _run(code: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    script = textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout,
                          env=offline_env(**env), cwd=REPO_ROOT)


def test_a_process_holding_the_gil_dumps_its_stacks_and_exits_stalled(tmp_path):
    marker = tmp_path / "stalled"
    started = time.monotonic()
    result = _run(STUCK_HOLDING_THE_GIL.format(timeout=3), RL_MATH_STALL_MARKER=str(marker))
    elapsed = time.monotonic() - started
    assert result.returncode == STALLED, result.stderr[-2000:]
    assert "Timeout (0:00:03)!" in result.stderr  # faulthandler's C timer: it needs no GIL
    assert re.search(r're/__init__.py", line \d+ in match\n  File "<string>", line 10 in <module>', result.stderr)
    assert "no training progress for" in result.stderr and "Exiting with status 4 (stalled)" in result.stderr
    assert marker.exists()  # what slurm/train.sbatch reads under a launcher that hides the status
    assert elapsed < 3 + 30


def test_without_a_supervisor_a_hang_still_ends_with_its_stacks(tmp_path):
    result = _run(STUCK_HOLDING_THE_GIL.format(timeout=2), RL_MATH_NO_SUPERVISOR="1")
    assert result.returncode == 1 and "Timeout (0:00:02)!" in result.stderr


def test_a_run_that_progresses_is_never_stopped():
    result = _run("""
        import time
        from rl_math.train.supervisor import run_under_supervisor
        run_under_supervisor()
        from rl_math.train import watchdog
        watchdog.arm(1.5)
        for _ in range(8):
            time.sleep(0.5)
            watchdog.progress()
        watchdog.disarm()
        time.sleep(2)  # after training (final save, evaluation) nothing is watched
        raise SystemExit(0)
    """)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Timeout" not in result.stderr


def test_the_supervisor_passes_the_childs_status_and_signals_through(tmp_path):
    # a plain failure stays 1 (not stalled), and SIGTERM reaches the child, whose handler decides
    result = _run("""
        import os, signal, sys, time
        from rl_math.train.supervisor import run_under_supervisor
        run_under_supervisor()
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(5))
        os.kill(os.getppid(), signal.SIGTERM)   # to the supervisor, which forwards it
        time.sleep(30)
    """)
    assert result.returncode == 5, result.stderr[-2000:]


def test_after_a_preemption_signal_progress_no_longer_postpones_the_deadline():
    result = _run("""
        import time
        from rl_math.train.supervisor import run_under_supervisor
        run_under_supervisor()
        from rl_math.train import watchdog
        watchdog.arm(2)
        watchdog.freeze()          # what PreemptionCallback does on SIGTERM/SIGUSR1
        for _ in range(20):
            time.sleep(0.5)
            watchdog.progress()   # a run that keeps stepping but never reaches its checkpoint
    """)
    assert result.returncode == STALLED


@pytest.mark.parametrize("value", [-1, "-5", float("nan")])
def test_a_negative_step_timeout_is_one_sentence(value, tmp_path):
    from rl_math.config import RecipeArguments
    from rl_math.errors import ConfigError

    with pytest.raises(ConfigError, match=r"step_timeout_s must be 0 \(off\) or a positive number of seconds"):
        RecipeArguments(step_timeout_s=float(value))


def test_the_supervisor_reads_the_heartbeat_file(tmp_path):
    assert supervisor.read_heartbeat(str(tmp_path / "missing")) == (None, 0.0)
    beat = tmp_path / "beat"
    beat.write_text("0\n")
    assert supervisor.read_heartbeat(str(beat))[0] is None  # disarmed


@pytest.mark.slow
@pytest.mark.parametrize("recipe, config_name", [("grpo", "smoke.yaml"), ("rloo", "smoke_rloo.yaml")])
def test_a_stuck_step_ends_the_run_with_stacks_and_status_stalled(recipe, config_name, tmp_path):
    """The tiny model's GRPO (and RLOO) run, its reward stuck: stacks in the log and status 4 within step_timeout_s + 30 s."""
    config = yaml.safe_load((REPO_ROOT / "configs" / config_name).read_text())
    config.update(output_dir=str(tmp_path / "run"), max_steps=3, eval_accuracy_steps=0, save_strategy="no",
                  rewards=[{"name": "correctness"}, {"name": "broken_rewards:hanging_reward", "timeout": 1000}])
    (tmp_path / "stuck.yaml").write_text(yaml.safe_dump(config))
    step_timeout_s = 15
    result = run_recipe(recipe, str(tmp_path / "stuck.yaml"), "--step_timeout_s", str(step_timeout_s), timeout=300)
    assert result.returncode == STALLED, result.stderr[-3000:]
    assert f"Timeout (0:00:{step_timeout_s})!" in result.stderr
    assert "isolation.py" in result.stderr  # the main thread's stack shows where it waits: the reward
    waited = float(re.search(r"no training progress for (\d+) s", result.stderr).group(1))
    assert step_timeout_s <= waited <= step_timeout_s + 30


def test_a_training_that_raises_leaves_no_timer_armed():
    """on_train_end is not called when train() raises; a live exit=True timer would later kill the process."""
    from rl_math.train import lifecycle, watchdog

    class Trainer:
        args = type("Args", (), {"output_dir": "."})()

        def add_callback(self, callback):
            pass

        callback_handler = type("Handler", (), {"callbacks": []})()

        def train(self, resume_from_checkpoint=None):
            watchdog.arm(1800)
            raise ValueError("a failing step")

    with pytest.raises(ValueError):
        lifecycle.run_training(Trainer(), None)
    assert watchdog._Armed.timeout_s == 0
