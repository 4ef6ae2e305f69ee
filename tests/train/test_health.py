"""The health monitor, driven by recorded metric sequences shaped exactly like TRL 1.16's GRPO logs."""

from __future__ import annotations

import dataclasses
import importlib.machinery
import logging
import math
import sys
import types

import pytest
from transformers import TrainerControl, TrainerState, TrainingArguments

from rl_math.train.health import (
    CONDITIONS,
    HealthArguments,
    HealthCallback,
    HealthMonitor,
    build_health_callback,
)

REWARDS = ["correctness", "boxed_format", "termination"]


def trl_log(**overrides) -> dict:
    """One logging step of a healthy GRPO run, with every key GRPOTrainer 1.16 logs (beta = 0: no kl).

    Keyword names use `__` for `/`: `completions__clipped_ratio=1.0`.
    """
    log = {
        "loss": 0.0123,
        "grad_norm": 0.84,
        "learning_rate": 1e-6,
        "num_tokens": 51200.0,
        "completions/mean_length": 180.0,
        "completions/min_length": 60.0,
        "completions/max_length": 512.0,
        "completions/clipped_ratio": 0.05,
        "completions/mean_terminated_length": 170.0,
        "completions/min_terminated_length": 60.0,
        "completions/max_terminated_length": 480.0,
        "rewards/correctness/mean": 0.40,
        "rewards/correctness/std": 0.49,
        "rewards/boxed_format/mean": 0.80,
        "rewards/boxed_format/std": 0.40,
        "rewards/termination/mean": 0.95,
        "rewards/termination/std": 0.2,
        "reward": 0.75,
        "reward_std": 0.45,
        "frac_reward_zero_std": 0.25,
        "entropy": 0.62,
        "clip_ratio/low_mean": 0.0,
        "clip_ratio/low_min": 0.0,
        "clip_ratio/high_mean": 0.0,
        "clip_ratio/high_max": 0.0,
        "clip_ratio/region_mean": 0.0,
        "step_time": 3.2,
        "epoch": 0.1,
    }
    log.update({k.replace("__", "/"): v for k, v in overrides.items()})
    return log


def healthy_run(n: int = 20) -> list[dict]:
    """Accuracy and format improve together, entropy wobbles and slowly falls, some groups are decided."""
    return [
        trl_log(
            rewards__correctness__mean=0.30 + 0.02 * i,
            rewards__boxed_format__mean=0.70 + 0.01 * i,
            reward=0.60 + 0.03 * i,
            entropy=0.65 - 0.005 * i + (0.04 if i % 3 == 0 else 0.0),
            frac_reward_zero_std=0.2 + 0.02 * (i % 4),
            loss=0.01 * (-1) ** i,
        )
        for i in range(n)
    ]


def run_monitor(logs: list[dict], reward_names=REWARDS, **health) -> list:
    monitor = HealthMonitor(HealthArguments(**health), reward_names)
    alarms = []
    for step, log in enumerate(logs, start=1):
        alarms += monitor.observe(log, step=step * 10)
    return alarms


def fired(alarms) -> list[tuple[str, int]]:
    return [(a.condition, a.step) for a in alarms]


def hook(callback: HealthCallback, logs: list[dict], tmp_path, **state_fields):
    """Drive the callback as transformers 5.23's Trainer.log does: append a copy, then on_log."""
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[])
    state, control = TrainerState(**state_fields), TrainerControl()
    callback.on_train_begin(args, state, control)
    for log in logs:
        state.global_step += 10
        log = dict(log)
        state.log_history.append({**log, "step": state.global_step})
        control = callback.on_log(args, state, control, logs=log) or control
    return state, control


# ------------------------------------------------------------------------------------------------
# Each condition on a recorded sequence


def test_healthy_run_raises_no_alarm():
    assert run_monitor(healthy_run(30), health_patience=1) == []


def test_reward_trap_fires_after_patience_consecutive_logs():
    # the format-only-credit trap: every completion boxed, none correct, every group identical
    trapped = trl_log(
        frac_reward_zero_std=1.0, reward=0.2, reward_std=0.0, rewards__correctness__mean=0.0, rewards__boxed_format__mean=1.0
    )
    alarms = run_monitor(healthy_run(3) + [trapped] * 3)
    assert fired(alarms) == [("reward_trap", 60)]
    assert alarms[0].evidence["frac_reward_zero_std"] == 1.0
    assert alarms[0].evidence["rewards/correctness/mean"] == 0.0


def test_reward_trap_streak_broken_by_a_healthy_log_does_not_fire():
    trapped = trl_log(frac_reward_zero_std=0.95)
    assert run_monitor([trapped, trapped, trl_log(), trapped, trapped]) == []


def test_all_truncated_fires_on_clipped_ratio():
    # the answer repeated until max_completion_length: nothing terminates
    looping = trl_log(completions__clipped_ratio=1.0, completions__mean_terminated_length=0.0, completions__mean_length=512.0)
    alarms = run_monitor([trl_log()] * 2 + [looping] * 3)
    assert fired(alarms) == [("all_truncated", 50)]
    assert alarms[0].evidence["completions/mean_terminated_length"] == 0.0


def test_zero_loss_fires_when_loss_and_grad_are_both_zero():
    dead = trl_log(loss=0.0, grad_norm=0.0)
    assert fired(run_monitor([dead] * 3)) == [("zero_loss", 30)]


def test_zero_loss_ignores_a_zero_loss_with_a_gradient():
    # GRPO's loss value is ~0 on healthy runs; the gradient is what matters
    assert run_monitor([trl_log(loss=0.0, grad_norm=0.3)] * 5) == []


def test_entropy_blowup_fires_relative_to_its_start():
    start = [trl_log(entropy=e) for e in (0.5, 0.6, 0.55)]
    spiking = [trl_log(entropy=e) for e in (0.9, 1.7, 1.8, 1.9)]  # 3 × 0.55 = 1.65
    alarms = run_monitor(start + spiking)
    assert fired(alarms) == [("entropy_blowup", 70)]
    assert alarms[0].evidence["start"] == pytest.approx(0.55)


def test_entropy_high_from_the_start_is_not_a_blowup():
    assert run_monitor([trl_log(entropy=2.5)] * 10) == []


def test_kl_runaway_fires_above_threshold():
    logs = [trl_log(kl=k) for k in (0.01, 0.05, 1.5, 2.0, 4.0)]
    alarms = run_monitor(logs)
    assert fired(alarms) == [("kl_runaway", 50)]
    assert alarms[0].evidence == {"kl": 4.0, "threshold": 1.0}


def test_format_hacking_fires_when_format_rises_while_correctness_falls():
    logs = [
        trl_log(rewards__boxed_format__mean=0.3 + 0.06 * i, rewards__correctness__mean=0.5 - 0.04 * i)
        for i in range(12)
    ]
    alarms = run_monitor(logs, health_patience=1)
    assert fired(alarms) == [("format_hacking", 100)]  # first log with two full windows of 5
    assert "rewards/boxed_format/mean" in alarms[0].evidence


def test_format_hacking_is_quiet_when_both_rise():
    logs = [
        trl_log(rewards__boxed_format__mean=0.3 + 0.06 * i, rewards__correctness__mean=0.2 + 0.04 * i)
        for i in range(12)
    ]
    assert run_monitor(logs, health_patience=1) == []


def test_format_hacking_watches_think_format_too():
    logs = [
        {"rewards/think_format/mean": 0.1 + 0.08 * i, "rewards/correctness/mean": 0.6 - 0.05 * i}
        for i in range(10)
    ]
    alarms = run_monitor(logs, reward_names=["correctness", "think_format"], health_patience=1)
    assert fired(alarms) == [("format_hacking", 100)]


def test_format_hacking_needs_a_correctness_reward():
    logs = [{"rewards/boxed_format/mean": 0.1 + 0.08 * i} for i in range(12)]
    assert run_monitor(logs, reward_names=["boxed_format"], health_patience=1) == []


def test_non_finite_fires_at_once_and_names_the_metric():
    alarms = run_monitor([trl_log(), trl_log(grad_norm=math.nan, loss=math.inf)])
    assert fired(alarms) == [("non_finite", 20)]
    assert set(alarms[0].evidence) == {"grad_norm", "loss"}


def test_none_reward_metrics_are_not_non_finite():
    # TRL logs None when every reward function abstained for the whole batch
    assert run_monitor([trl_log(rewards__correctness__mean=None, reward=None)] * 5, health_patience=1) == []


def test_an_alarm_fires_once_per_streak_and_rearms_when_cleared():
    trapped = trl_log(frac_reward_zero_std=1.0)
    alarms = run_monitor([trapped] * 6 + [trl_log()] + [trapped] * 3)
    assert fired(alarms) == [("reward_trap", 30), ("reward_trap", 100)]


def test_eval_and_summary_logs_are_ignored():
    trapped = trl_log(frac_reward_zero_std=1.0)
    eval_log = {"eval_loss": 0.0, "eval_frac_reward_zero_std": 0.0, "epoch": 1.0}
    summary = {"train_runtime": 12.0, "train_loss": 0.0, "epoch": 1.0}
    # neither counts as a healthy log that would break the streak
    assert fired(run_monitor([trapped, eval_log, trapped, summary, trapped])) == [("reward_trap", 50)]


# ------------------------------------------------------------------------------------------------
# Actions, the alarm line, log_history


def test_stop_action_sets_save_and_stop(tmp_path):
    callback = HealthCallback(HealthArguments(health_actions={"all_truncated": "stop"}), REWARDS)
    _, control = hook(callback, [trl_log(completions__clipped_ratio=1.0)] * 3, tmp_path)
    assert control.should_save is True
    assert control.should_training_stop is True
    assert callback.stopped


def test_warn_action_leaves_control_alone(tmp_path):
    callback = HealthCallback(HealthArguments(), REWARDS)
    _, control = hook(callback, [trl_log(completions__clipped_ratio=1.0)] * 3, tmp_path)
    assert [a.condition for a in callback.alarms] == ["all_truncated"]
    assert not control.should_save and not control.should_training_stop


def test_off_action_silences_a_condition(tmp_path):
    callback = HealthCallback(HealthArguments(health_action="stop", health_actions={"reward_trap": "off"}), REWARDS)
    _, control = hook(callback, [trl_log(frac_reward_zero_std=1.0)] * 5, tmp_path)
    assert callback.alarms == []
    assert not control.should_training_stop


def test_alarm_line_has_the_values_and_the_cure(tmp_path, caplog):
    callback = HealthCallback(HealthArguments(), REWARDS)
    looping = trl_log(completions__clipped_ratio=0.98, completions__mean_terminated_length=12.5)
    with caplog.at_level(logging.WARNING, logger="rl_math.train.health"):
        hook(callback, [looping] * 3, tmp_path)
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("HEALTH ALARM [all_truncated] step 30 (3 logs in a row): ")
    assert "completions/clipped_ratio=0.98" in line
    assert "completions/mean_terminated_length=12.5" in line
    assert "max_completion_length" in line and "repetition_penalty" in line and "termination" in line


def test_stop_alarm_line_says_it_stops(tmp_path, caplog):
    callback = HealthCallback(HealthArguments(health_action="stop"), REWARDS)
    with caplog.at_level(logging.WARNING, logger="rl_math.train.health"):
        hook(callback, [trl_log(kl=5.0)] * 3, tmp_path)
    (line,) = [r.getMessage() for r in caplog.records]
    assert "kl=5" in line and "raise beta" in line and "Saving a checkpoint and stopping" in line


def test_only_the_main_process_writes_the_alarm_line(tmp_path, caplog):
    callback = HealthCallback(HealthArguments(health_action="stop"), REWARDS)
    with caplog.at_level(logging.WARNING, logger="rl_math.train.health"):
        _, control = hook(callback, [trl_log(kl=5.0)] * 3, tmp_path, is_world_process_zero=False)
    assert caplog.records == []
    assert control.should_training_stop  # every rank stops at the same step


def test_alarm_reaches_log_history_at_its_step(tmp_path):
    callback = HealthCallback(HealthArguments(), REWARDS)
    state, _ = hook(callback, [trl_log()] * 2 + [trl_log(frac_reward_zero_std=1.0)] * 3, tmp_path)
    assert [(e["step"], e.get("health/reward_trap")) for e in state.log_history] == [
        (10, None), (20, None), (30, None), (40, None), (50, 1.0)
    ]
    assert state.log_history[-1]["frac_reward_zero_std"] == 1.0  # the same entry, not a new one


def test_alarm_reaches_log_history_through_the_real_trainer_log(tmp_path):
    """transformers' own Trainer.log (copy appended before on_log) and its control handling."""
    import torch
    from transformers import Trainer

    callback = HealthCallback(HealthArguments(health_patience=1, health_action="stop"), REWARDS)
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True)
    trainer = Trainer(model=torch.nn.Linear(1, 1), args=args, callbacks=[callback])
    trainer.state.global_step = 7
    trainer.log(trl_log(frac_reward_zero_std=1.0))
    assert trainer.state.log_history[-1]["health/reward_trap"] == 1.0
    assert trainer.state.log_history[-1]["step"] == 7
    assert trainer.control.should_save and trainer.control.should_training_stop
    trainer.state.save_to_json(str(tmp_path / "trainer_state.json"))
    assert '"health/reward_trap": 1.0' in (tmp_path / "trainer_state.json").read_text()


def test_alarm_is_sent_to_wandb_when_it_reports_there(tmp_path, monkeypatch):
    sent = []
    fake = types.ModuleType("wandb")  # a stand-in W&B with an active run, found by transformers' is_wandb_available
    fake.__spec__ = importlib.machinery.ModuleSpec("wandb", None)
    fake.run, fake.log = object(), sent.append
    monkeypatch.setitem(sys.modules, "wandb", fake)
    callback = HealthCallback(HealthArguments(health_patience=1), REWARDS)
    args = TrainingArguments(output_dir=str(tmp_path), report_to=["wandb"])
    state = TrainerState(global_step=12)
    callback.on_log(args, state, TrainerControl(), logs=trl_log(kl=9.0))
    assert sent == [{"train/health/kl_runaway": 1.0, "train/global_step": 12}]


def test_alarm_is_not_sent_to_wandb_without_an_active_run(tmp_path, monkeypatch):
    sent = []
    fake = types.ModuleType("wandb")
    fake.__spec__ = importlib.machinery.ModuleSpec("wandb", None)
    fake.run, fake.log = None, sent.append
    monkeypatch.setitem(sys.modules, "wandb", fake)
    callback = HealthCallback(HealthArguments(health_patience=1), REWARDS)
    args = TrainingArguments(output_dir=str(tmp_path), report_to=["wandb"])
    callback.on_log(args, TrainerState(global_step=12), TrainerControl(), logs=trl_log(kl=9.0))
    assert sent == []


def test_resume_keeps_the_entropy_baseline_from_log_history(tmp_path):
    before = [trl_log(entropy=0.5)] * 3 + [trl_log(entropy=0.6)] * 2
    history = [{**log, "step": 10 * i} for i, log in enumerate(before, start=1)]
    callback = HealthCallback(HealthArguments(), REWARDS)
    # resumed at step 50: 1.8 is 3.6 × the first run's start (0.5), though not 3 × the resumed 0.6
    state, _ = hook(callback, [trl_log(entropy=1.8)] * 3, tmp_path, global_step=50, log_history=history)
    assert [(a.condition, a.step) for a in callback.alarms] == [("entropy_blowup", 80)]


def test_resume_restarts_streaks(tmp_path):
    history = [{**trl_log(frac_reward_zero_std=1.0), "step": s} for s in (10, 20, 30, 40)]
    callback = HealthCallback(HealthArguments(health_action="stop"), REWARDS)
    _, control = hook(callback, [trl_log(frac_reward_zero_std=1.0)] * 2, tmp_path, global_step=40, log_history=history)
    assert callback.alarms == []  # the resumed run gets `patience` logs to show its fix works
    assert not control.should_training_stop


# ------------------------------------------------------------------------------------------------
# Configuration and the entry point


def test_build_health_callback_uses_reward_names():
    def correctness(completions, **kwargs): ...

    def think_format(completions, **kwargs): ...

    (callback,) = build_health_callback(HealthArguments(), [correctness, think_format])
    assert callback.monitor.reward_names == ["correctness", "think_format"]
    assert callback.monitor.format_rewards == ["think_format"]


def test_build_health_callback_is_empty_when_disabled():
    assert build_health_callback(HealthArguments(health_monitor=False), []) == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("health_action", "halt", "health_action must be one of warn, stop"),
        ("health_actions", {"reward_trap": "explode"}, "health_actions['reward_trap'] must be one of warn, stop, off"),
        ("health_actions", {"kl_runaway": False}, "write 'off' in quotes"),
        ("health_actions", {"reward_trapp": "stop"}, "unknown condition 'reward_trapp'"),
        ("health_patience", 0, "health_patience must be an integer ≥ 1"),
        ("health_zero_std_threshold", 1.5, "health_zero_std_threshold must be a fraction in (0, 1]"),
        ("health_entropy_blowup_factor", 0.5, "health_entropy_blowup_factor must be a number > 1"),
    ],
)
def test_invalid_values_name_the_field_and_the_allowed_values(field, value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        HealthArguments(**{field: value})


def test_every_condition_has_a_check():
    assert list(HealthMonitor(HealthArguments()).checks) == list(CONDITIONS)


def test_field_names_do_not_clash_with_the_trainer_configs():
    from trl import GRPOConfig, ModelConfig

    from rl_math.config import RecipeArguments

    ours = {f.name for f in dataclasses.fields(HealthArguments)}
    for other in (GRPOConfig, ModelConfig, RecipeArguments):
        assert ours.isdisjoint(f.name for f in dataclasses.fields(other)), other.__name__


def test_yaml_and_command_line_reach_health_arguments(tmp_path):
    from rl_math.config import parse_config

    config = tmp_path / "run.yaml"
    config.write_text("health_patience: 5\nhealth_actions: {reward_trap: stop, kl_runaway: 'off'}\n")
    parsed = parse_config([HealthArguments], [str(config), "--health_zero_std_threshold", "0.8"])
    (health,) = parsed.instances
    assert health.health_patience == 5
    assert health.health_actions == {"reward_trap": "stop", "kl_runaway": "off"}
    assert health.health_zero_std_threshold == 0.8
    (overridden,) = parse_config([HealthArguments], [str(config), "--health_actions", "{all_truncated: stop}"]).instances
    assert overridden.health_actions == {"all_truncated": "stop"}


# -- accuracy_drop: held-out accuracy from the in-run evaluation ---------------------------------


def _accuracy_alarms(accuracies, **args) -> list[int]:
    monitor = HealthMonitor(HealthArguments(health_patience=2, **args), reward_names=REWARDS)
    steps = []
    for step, accuracy in enumerate(accuracies):
        steps += [step for a in monitor.observe({"eval_accuracy": accuracy}, step=step) if a.condition == "accuracy_drop"]
    return steps


def test_accuracy_drop_fires_when_held_out_accuracy_stays_below_the_start():
    assert _accuracy_alarms([0.50, 0.40, 0.30]) == [2]


def test_accuracy_drop_ignores_a_drop_within_the_threshold():
    assert _accuracy_alarms([0.50, 0.46, 0.46, 0.46]) == []


def test_accuracy_drop_needs_patience_evaluations_in_a_row():
    assert _accuracy_alarms([0.50, 0.40, 0.55, 0.40, 0.60]) == []


def test_accuracy_drop_baseline_survives_a_resume():
    monitor = HealthMonitor(HealthArguments(health_patience=1), reward_names=REWARDS)
    monitor.replay([{"eval_accuracy": 0.5, "step": 0}, {"eval_accuracy": 0.6, "step": 10}])
    assert [a.condition for a in monitor.observe({"eval_accuracy": 0.3}, step=20)] == ["accuracy_drop"]


def test_training_logs_never_judge_accuracy():
    monitor = HealthMonitor(HealthArguments(health_patience=1), reward_names=REWARDS)
    monitor.observe({"eval_accuracy": 0.5}, step=0)
    assert monitor.observe(trl_log(), step=1) == []


def test_reward_trap_reads_the_robust_no_signal_share_over_trls():
    monitor = HealthMonitor(HealthArguments(health_patience=1), reward_names=REWARDS)
    alarms = monitor.observe(trl_log(frac_reward_zero_std=0.3, groups__no_signal=0.95), step=1)
    assert [a.condition for a in alarms] == ["reward_trap"]
    assert alarms[0].evidence["groups/no_signal"] == 0.95


def test_shape_only_fires_when_most_groups_train_format_alone():
    monitor = HealthMonitor(HealthArguments(health_patience=2), reward_names=REWARDS)
    fired = [a.condition for step in (1, 2) for a in monitor.observe(trl_log(groups__shape_only=0.7), step=step)]
    assert fired == ["shape_only"]


def test_shape_only_stays_quiet_when_answers_drive_the_signal():
    monitor = HealthMonitor(HealthArguments(health_patience=1), reward_names=REWARDS)
    assert monitor.observe(trl_log(groups__shape_only=0.1), step=1) == []
