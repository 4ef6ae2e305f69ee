"""Custom rewards run in a worker process: a time limit stops even a reward that holds the GIL."""

from __future__ import annotations

import logging
import os
import signal
import time

import pytest

from rl_math.rewards import get_reward, isolation
from rl_math.rewards.isolation import IsolatedReward, RewardTimeoutRate

BROKEN = "fixtures.broken_rewards"


def test_a_reward_that_holds_the_gil_is_stopped_at_its_timeout_and_scores_none(caplog):
    # On main the thread-based limit never fired here: the regex holds the GIL, the caller waits forever.
    func = get_reward(f"{BROKEN}:catastrophic_regex_reward", timeout=1)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="rl_math.rewards.isolation"):
        values = func(completions=["a", "b"])
    assert values == [None, None]  # TRL leaves None out of the reward sum; 0 would read as a wrong answer
    assert time.monotonic() - started < 10  # 1 s for the batch, 1 s for the completions one by one, two spawns
    assert [r.getMessage() for r in caplog.records if "did not return within 1 s" in r.getMessage()]


def test_only_the_completion_that_hangs_gets_none_with_one_warning_per_reward(caplog):
    func = get_reward(f"{BROKEN}:hangs_on_marker_reward", timeout=1.5)
    with caplog.at_level(logging.WARNING, logger="rl_math.rewards.isolation"):
        assert func(completions=["fine", "HANG", "fine too"]) == [1.0, None, 1.0]
        assert func(completions=["HANG", "ok"]) == [None, 1.0]
    warnings = [r for r in caplog.records if "hangs_on_marker_reward" in r.getMessage()]
    assert len(warnings) == 1


def test_the_timeout_fraction_is_logged_and_too_many_timeouts_stop_the_run(monkeypatch):
    monkeypatch.setattr(isolation, "MIN_COMPLETIONS_FOR_STOP", 4)
    logged = []
    func = get_reward(f"{BROKEN}:hangs_on_marker_reward", timeout=1)
    assert func(completions=["a", "b", "c", "d"], log_metric=lambda name, value: logged.append((name, value))) == [1.0] * 4
    with pytest.raises(RewardTimeoutRate, match=r"reward 'hangs_on_marker_reward' timed out on 1 of 6 completions \(17%"):
        func(completions=["HANG", "e"], log_metric=lambda name, value: logged.append((name, value)))
    assert logged == [("rewards/hangs_on_marker_reward/timeout_fraction", 0.0),
                      ("rewards/hangs_on_marker_reward/timeout_fraction", 0.5)]


def test_log_metric_and_log_extra_calls_in_the_worker_reach_the_trainer():
    metrics, extras = [], []
    func = get_reward(f"{BROKEN}:logging_reward")
    values = func(completions=["ab", "c"], log_metric=lambda *a: metrics.append(a), log_extra=lambda *a: extras.append(a))
    assert values == [0.0, 0.0]
    assert ("custom/length", 3.0) in metrics
    assert extras == [("custom_column", ["AB", "C"])]


def test_the_trainer_state_crosses_without_its_growing_log_history():
    from transformers import TrainerState

    state = TrainerState(global_step=5)
    state.log_history = [{"loss": 1.0}] * 1000
    func = get_reward(f"{BROKEN}:logging_reward")
    assert func(completions=["a"], trainer_state=state, log_metric=lambda *a: None, log_extra=lambda *a: None) == [0.0]
    assert len(state.log_history) == 1000  # the caller's state is untouched


def test_a_reward_runs_without_gradients_in_its_worker():
    assert get_reward("fixtures.torch_rewards:grad_mode_reward")(completions=["a"]) == [0.0]


def test_a_worker_that_dies_is_named_and_replaced():
    func = IsolatedReward(_exit_reward, "exits", 5)
    with pytest.raises(RuntimeError, match=r"reward 'exits': its worker process died"):
        func(completions=["a"])
    func.close()


def _exit_reward(completions, **kwargs):
    import os

    os._exit(7)


@pytest.mark.parametrize("signum", [signal.SIGUSR1, signal.SIGTERM, signal.SIGINT])
def test_the_worker_outlives_the_signals_slurm_and_ctrl_c_send_the_whole_process_group(signum):
    # the trainer handles them (checkpoint, stop); a worker killed by SLURM's SIGUSR1 failed the preempted step
    func = IsolatedReward(_length_reward, "length", 5)
    assert func(completions=["ab"]) == [2.0]
    os.kill(func._worker.process.pid, signum)
    time.sleep(0.2)
    assert func(completions=["abc"]) == [3.0]
    func.close()


def _length_reward(completions, **kwargs):
    return [float(len(text)) for text in completions]
