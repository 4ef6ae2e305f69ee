"""PreemptionCallback: a real signal sent to this process, the callback driven by hand."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

import pytest
from transformers import TrainerControl, TrainerState

from rl_math.train.preemption import PreemptionCallback


class _Args:
    """The callback only reads `args.device` (for NCCL); no TrainingArguments needed."""

    device = "cpu"


ARGS = _Args()


def _deliver(sig: signal.Signals) -> None:
    """Send `sig` to ourselves and give the interpreter a chance to run the Python handler."""
    os.kill(os.getpid(), sig)
    for _ in range(10):
        time.sleep(0.001)  # the handler runs between bytecodes of the main thread


@pytest.fixture
def state() -> TrainerState:
    s = TrainerState()
    s.global_step = 7
    return s


@pytest.fixture(autouse=True)
def _guard_handlers():
    """Whatever a test does, leave SIGUSR1/SIGTERM as they were."""
    before = {s: signal.getsignal(s) for s in (signal.SIGUSR1, signal.SIGTERM)}
    yield
    for s, h in before.items():
        signal.signal(s, h if h is not None else signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGUSR1, signal.SIGTERM])
def test_signal_sets_save_and_stop_at_next_step_end(sig, state, caplog):
    before = signal.getsignal(sig)
    cb = PreemptionCallback()
    control = TrainerControl()
    cb.on_train_begin(ARGS, state, control)
    assert signal.getsignal(sig) == cb._handle

    _deliver(sig)
    assert cb.received is sig
    # nothing happens until the step ends
    assert not control.should_save and not control.should_training_stop

    control.should_evaluate = True
    with caplog.at_level(logging.WARNING, logger="rl_math.train.preemption"):
        cb.on_step_end(ARGS, state, control)
    assert control.should_save is True
    assert control.should_training_stop is True
    assert control.should_evaluate is False  # the grace period goes to the checkpoint
    assert cb.stopped and cb.stopped_at_step == 7
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        f"received {sig.name}: saving a checkpoint at step 7 and stopping so the job can be requeued"
    ]

    cb.on_train_end(ARGS, state, control)
    assert signal.getsignal(sig) == before


def test_no_signal_leaves_control_alone(state):
    cb = PreemptionCallback()
    control = TrainerControl()
    cb.on_train_begin(ARGS, state, control)
    for step in range(1, 4):
        state.global_step = step
        cb.on_step_end(ARGS, state, control)
    assert control.should_save is False
    assert control.should_training_stop is False
    assert control.should_evaluate is False
    assert cb.received is None and not cb.stopped
    cb.on_train_end(ARGS, state, control)


def test_flags_not_cleared_by_callback_and_set_only_once(state, caplog):
    """A healthy step with save already requested (save_steps) keeps it; a second signal does not re-log."""
    cb = PreemptionCallback()
    control = TrainerControl()
    cb.on_train_begin(ARGS, state, control)
    control.should_save = True  # e.g. DefaultFlowCallback at a save_steps boundary
    cb.on_step_end(ARGS, state, control)
    assert control.should_save is True and control.should_training_stop is False

    _deliver(signal.SIGUSR1)
    _deliver(signal.SIGTERM)
    with caplog.at_level(logging.WARNING, logger="rl_math.train.preemption"):
        cb.on_step_end(ARGS, state, control)
        control.should_save = False  # what Trainer.on_save does after writing the checkpoint
        cb.on_step_end(ARGS, state, control)
    assert cb.received is signal.SIGUSR1  # the first signal wins
    assert len(caplog.records) == 1
    assert control.should_save is False  # not requested a second time
    cb.on_train_end(ARGS, state, control)


def test_previous_handlers_restored_and_chained(state):
    seen: list[int] = []

    def previous(signum, frame):
        seen.append(signum)

    signal.signal(signal.SIGUSR1, previous)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

    cb = PreemptionCallback()
    control = TrainerControl()
    cb.on_train_begin(ARGS, state, control)
    assert signal.getsignal(signal.SIGUSR1) == cb._handle
    assert signal.getsignal(signal.SIGTERM) == cb._handle

    _deliver(signal.SIGUSR1)
    assert seen == [signal.SIGUSR1]  # chained to the Python handler
    _deliver(signal.SIGTERM)  # SIG_IGN is not "called"; the process must survive
    cb.on_step_end(ARGS, state, control)
    assert control.should_training_stop

    cb.on_train_end(ARGS, state, control)
    assert signal.getsignal(signal.SIGUSR1) is previous
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    # after train end a signal goes to the restored handler, the callback no longer sees it
    cb.received = None
    _deliver(signal.SIGUSR1)
    assert seen == [signal.SIGUSR1, signal.SIGUSR1]
    assert cb.received is None


def test_no_chaining_when_disabled(state):
    seen: list[int] = []
    signal.signal(signal.SIGUSR1, lambda s, f: seen.append(s))
    cb = PreemptionCallback(chain=False)
    cb.on_train_begin(ARGS, state, TrainerControl())
    _deliver(signal.SIGUSR1)
    assert cb.received is signal.SIGUSR1 and seen == []
    cb.on_train_end(ARGS, state, TrainerControl())


def test_second_train_resets(state):
    cb = PreemptionCallback()
    control = TrainerControl()
    cb.on_train_begin(ARGS, state, control)
    _deliver(signal.SIGUSR1)
    cb.on_step_end(ARGS, state, control)
    cb.on_train_end(ARGS, state, control)
    assert cb.stopped

    control = TrainerControl()
    cb.on_train_begin(ARGS, state, control)
    assert cb.received is None and not cb.stopped
    cb.on_step_end(ARGS, state, control)
    assert not control.should_training_stop
    cb.on_train_end(ARGS, state, control)


def test_not_main_thread_installs_nothing(state, caplog):
    cb = PreemptionCallback()
    before = signal.getsignal(signal.SIGUSR1)
    with caplog.at_level(logging.WARNING, logger="rl_math.train.preemption"):
        t = threading.Thread(target=cb.on_train_begin, args=(ARGS, state, TrainerControl()))
        t.start()
        t.join()
    assert not cb.installed
    assert signal.getsignal(signal.SIGUSR1) == before
    assert "not in the main thread" in caplog.text


def test_ranks_agree_through_all_reduce(state, tmp_path):
    """With an initialised process group the decision goes through an all-reduce (world of 1 here)."""
    import torch.distributed as dist

    if dist.is_initialized():  # pragma: no cover - another test left a group behind
        pytest.skip("a process group is already initialised")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/pg", rank=0, world_size=1)
    try:
        calls = []
        real = dist.all_reduce

        def spy(tensor, *a, **k):
            calls.append(int(tensor.item()))
            return real(tensor, *a, **k)

        dist.all_reduce = spy
        try:
            # world size 1: no collective needed, local flag used
            cb = PreemptionCallback()
            control = TrainerControl()
            cb.on_train_begin(ARGS, state, control)
            cb.on_step_end(ARGS, state, control)
            assert calls == [] and not control.should_training_stop
            cb.on_train_end(ARGS, state, control)

            # pretend there are 2 ranks: the flag is all-reduced every step end
            orig_ws = dist.get_world_size
            dist.get_world_size = lambda *a, **k: 2
            try:
                cb.on_train_begin(ARGS, state, control)
                cb.on_step_end(ARGS, state, control)
                _deliver(signal.SIGUSR1)
                cb.on_step_end(ARGS, state, control)
                assert calls == [0, 1]
                assert control.should_save and control.should_training_stop
                cb.on_train_end(ARGS, state, control)
            finally:
                dist.get_world_size = orig_ws
        finally:
            dist.all_reduce = real
    finally:
        dist.destroy_process_group()


def test_stop_requested_by_another_rank(state, caplog, monkeypatch):
    """This rank saw no signal but another did: it must stop at the same step."""
    cb = PreemptionCallback()
    monkeypatch.setattr(cb, "_any_rank_signalled", lambda args: True)
    control = TrainerControl()
    cb.on_train_begin(ARGS, state, control)
    with caplog.at_level(logging.WARNING, logger="rl_math.train.preemption"):
        cb.on_step_end(ARGS, state, control)
    assert control.should_save and control.should_training_stop
    assert "on another rank" in caplog.text
    cb.on_train_end(ARGS, state, control)


def test_real_trainer_checkpoints_and_stops(tmp_path, caplog):
    """End to end in one process: SIGUSR1 during step 2 -> checkpoint-2 written, training stops."""
    import json

    import torch
    from datasets import Dataset
    from transformers import Qwen2Config, Qwen2ForCausalLM, Trainer, TrainerCallback, TrainingArguments

    class SignalAtStep2(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 2:
                os.kill(os.getpid(), signal.SIGUSR1)

    torch.manual_seed(0)
    cfg = Qwen2Config(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=32,
    )
    rows = [[(i + j) % 64 for i in range(8)] for j in range(16)]
    ds = Dataset.from_dict({"input_ids": rows, "labels": rows})
    args = TrainingArguments(
        str(tmp_path), per_device_train_batch_size=2, max_steps=50, save_strategy="no",
        report_to=[], use_cpu=True, bf16=False, logging_steps=100, disable_tqdm=True,
        dataloader_pin_memory=False,
    )
    pre = PreemptionCallback()
    before = signal.getsignal(signal.SIGUSR1)
    trainer = Trainer(model=Qwen2ForCausalLM(cfg), args=args, train_dataset=ds, callbacks=[SignalAtStep2, pre])
    with caplog.at_level(logging.WARNING, logger="rl_math.train.preemption"):
        trainer.train()
    assert trainer.state.global_step == 2
    assert pre.stopped and pre.stopped_at_step == 2 and pre.received is signal.SIGUSR1
    ckpt = tmp_path / "checkpoint-2"
    assert (ckpt / "trainer_state.json").is_file() and (ckpt / "optimizer.pt").is_file()
    assert json.loads((ckpt / "trainer_state.json").read_text())["global_step"] == 2
    assert "saving a checkpoint at step 2" in caplog.text
    assert signal.getsignal(signal.SIGUSR1) == before  # restored at train end


# -- nothing hangs on a signal --------------------------------------------------------------------

_SIGTERM_WHILE_A_REWARD_HANGS = """
import os, signal, sys, threading, time
sys.path.insert(0, {fixtures!r})
from transformers import TrainerControl, TrainerState
from rl_math.rewards import get_reward
from rl_math.train.preemption import PreemptionCallback

class Args:
    device = "cpu"

callback = PreemptionCallback()
callback.on_train_begin(Args(), TrainerState(), TrainerControl())
reward = get_reward("broken_rewards:catastrophic_regex_reward", timeout=600)  # holds its GIL for ages
def terminate():
    time.sleep(2); os.kill(os.getpid(), signal.SIGTERM)   # a first SIGTERM: the run should checkpoint...
    time.sleep({gap}); os.kill(os.getpid(), signal.SIGTERM)  # ...a second one: it must end now
threading.Thread(target=terminate, daemon=True).start()
print("scoring", flush=True)
reward(completions=["a"])
print("reward returned", flush=True)
"""


def _sigterm_while_a_reward_hangs(gap: float):
    import subprocess
    import sys

    from recipe_runs import FIXTURES, REPO_ROOT, offline_env

    code = _SIGTERM_WHILE_A_REWARD_HANGS.format(fixtures=str(FIXTURES), gap=gap)
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env=offline_env(RL_MATH_NO_SUPERVISOR="1"), cwd=REPO_ROOT)
    return result, time.monotonic() - started


def test_a_second_sigterm_ends_the_run_even_while_a_reward_hangs():
    # On main the custom reward ran in a thread holding the GIL: the handler never ran, SIGTERM was swallowed.
    result, elapsed = _sigterm_while_a_reward_hangs(gap=6)
    assert result.returncode == -signal.SIGTERM, result.stderr[-2000:]
    assert "reward returned" not in result.stdout
    assert elapsed < 60


def test_a_sigterm_delivered_twice_at_once_counts_once():
    """SLURM signals every process of a step and torchrun forwards too: one request, two deliveries."""
    cb = PreemptionCallback()
    cb.on_train_begin(ARGS, TrainerState(), TrainerControl())
    _deliver(signal.SIGTERM)
    _deliver(signal.SIGTERM)  # within DUPLICATE_WINDOW_S: the process is still alive, the checkpoint still comes
    assert cb.received is signal.SIGTERM
    cb.on_train_end(ARGS, TrainerState(), TrainerControl())
