"""Preflight: the batch arithmetic GRPOTrainer enforces, checked before anything loads."""

import os
import time
from datetime import timedelta

import pytest

from rl_math.errors import ConfigError
from rl_math.preflight import (
    apply_cpu_defaults,
    check_checkpoints_at_generation_boundaries,
    check_grpo_batch,
    check_output_dir,
    check_stale_build_locks,
    check_training_length,
    check_vllm,
    grpo_batch_problems,
    init_cpu_process_group,
)


def test_default_arithmetic_that_fills_whole_groups_passes():
    assert grpo_batch_problems(8, 1, 8, None, None, world_size=1) == []


def test_world_size_counts_toward_the_generation_batch():
    assert grpo_batch_problems(2, 1, 8, None, None, world_size=4) == []
    assert grpo_batch_problems(2, 1, 8, None, None, world_size=1) != []


def test_partial_group_names_the_rule_and_a_fix():
    (problem,) = grpo_batch_problems(4, 1, 8, None, None, world_size=1)
    assert "must be divisible by num_generations 8" in problem
    assert "per_device_train_batch_size 8" in problem


def test_generation_batch_size_must_divide_by_global_batch():
    problems = grpo_batch_problems(4, 1, 4, 6, None, world_size=1)
    assert any("divisible by the global batch" in p for p in problems)


def test_generation_batch_size_and_steps_per_generation_are_exclusive():
    (problem,) = grpo_batch_problems(4, 1, 4, 8, 2, world_size=1)
    assert "set only one" in problem


def test_single_generation_is_rejected():
    (problem,) = grpo_batch_problems(4, 1, 1, None, None, world_size=1)
    assert "at least 2" in problem


def test_check_raises_config_error_with_world_size(monkeypatch):
    values = dict(per_device_train_batch_size=4, gradient_accumulation_steps=1, num_generations=8,
                  generation_batch_size=None, steps_per_generation=None)
    with pytest.raises(ConfigError, match="for 1 process"):
        check_grpo_batch(values, set(), world_size=1)
    check_grpo_batch(values, set(), world_size=2)


def test_vllm_requested_but_missing_says_how_to_install():
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here")
    with pytest.raises(ConfigError, match=r"pip install -e \.\[vllm\]"):
        check_vllm({"use_vllm": True, "vllm_mode": "colocate"}, set())


def test_cpu_turns_off_unrequested_bf16(monkeypatch):
    monkeypatch.setattr("rl_math.preflight.cuda_available", lambda: False)
    values = {"bf16": None}
    apply_cpu_defaults(values, explicit=set())
    assert values["bf16"] is False


def test_cpu_keeps_explicit_bf16(monkeypatch):
    monkeypatch.setattr("rl_math.preflight.cuda_available", lambda: False)
    values = {"bf16": True}
    apply_cpu_defaults(values, explicit={"bf16"})
    assert values["bf16"] is True


def test_multi_process_cpu_gets_a_real_process_group(monkeypatch):
    monkeypatch.setattr("rl_math.preflight.cuda_available", lambda: False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED", raising=False)
    values = {"bf16": None, "use_cpu": False, "ddp_backend": None}
    apply_cpu_defaults(values, explicit=set())
    assert values["use_cpu"] is True and values["ddp_backend"] == "gloo"


def test_deepspeed_on_cpu_keeps_deepspeed(monkeypatch):
    # use_cpu would silently replace DeepSpeed by plain DDP
    monkeypatch.setattr("rl_math.preflight.cuda_available", lambda: False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    values = {"bf16": None, "use_cpu": False, "ddp_backend": None}
    apply_cpu_defaults(values, explicit=set())
    assert values["use_cpu"] is False and values["ddp_backend"] == "gloo"


def test_trl_reward_weights_point_to_the_rewards_list():
    from rl_math.preflight import check_no_reward_weights

    with pytest.raises(ConfigError, match=r"weight from the rewards list"):
        check_no_reward_weights({"reward_weights": [1.0]}, explicit={"reward_weights"})


def test_bf16_weights_without_deepspeed_get_a_warning(monkeypatch, caplog):
    from rl_math.preflight import warn_pure_bf16_training

    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED", raising=False)
    monkeypatch.delenv("ACCELERATE_DEEPSPEED_CONFIG_FILE", raising=False)
    warn_pure_bf16_training({"dtype": "bfloat16", "use_peft": False}, set())
    assert "no fp32 master copy" in caplog.text


def test_bf16_weights_under_deepspeed_are_fine(monkeypatch, caplog):
    from rl_math.preflight import warn_pure_bf16_training

    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    warn_pure_bf16_training({"dtype": "bfloat16", "use_peft": False}, set())
    assert "master copy" not in caplog.text


LENGTH = {"max_steps": 20, "num_train_epochs": 3.0, "save_strategy": "steps", "save_steps": 10}


@pytest.mark.parametrize("max_steps", [0, -5])
def test_max_steps_that_is_not_a_step_count_is_rejected(max_steps):
    with pytest.raises(ConfigError, match=f"max_steps is {max_steps}; give a positive number .* or -1"):
        check_training_length({**LENGTH, "max_steps": max_steps}, set())


def test_epoch_based_run_with_no_epochs_is_rejected():
    with pytest.raises(ConfigError, match="nothing would be trained"):
        check_training_length({**LENGTH, "max_steps": -1, "num_train_epochs": 0.0}, set())


def test_save_steps_zero_is_rejected():
    with pytest.raises(ConfigError, match="save_steps is 0, so no checkpoint would ever be written"):
        check_training_length({**LENGTH, "save_steps": 0}, set())


def test_sensible_training_length_passes():
    check_training_length(LENGTH, set())
    check_training_length({**LENGTH, "max_steps": -1, "save_strategy": "no", "save_steps": 0}, set())


def _earlier_run(tmp_path):
    (tmp_path / "checkpoint-10").mkdir()
    return {"output_dir": str(tmp_path), "resume_from_checkpoint": None, "overwrite_output_dir": False}


def test_a_new_run_in_an_output_dir_with_another_run_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"already holds a run \(checkpoint-10\); pass --resume_from_checkpoint true"):
        check_output_dir(_earlier_run(tmp_path), set())


def test_resuming_in_an_output_dir_with_a_run_is_allowed(tmp_path):
    check_output_dir({**_earlier_run(tmp_path), "resume_from_checkpoint": "true"}, set())
    assert (tmp_path / "checkpoint-10").is_dir()


def test_overwrite_output_dir_deletes_the_earlier_checkpoints(tmp_path):
    check_output_dir({**_earlier_run(tmp_path), "overwrite_output_dir": True}, set())
    assert not (tmp_path / "checkpoint-10").exists()


def _deepspeed_extensions(monkeypatch, tmp_path, lock_age_s: float):
    lock = tmp_path / "py311_cpu" / "deepspeed_shm_comm" / "lock"
    lock.parent.mkdir(parents=True)
    lock.touch()
    os.utime(lock, (time.time() - lock_age_s,) * 2)
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    return lock


def test_a_stale_deepspeed_build_lock_is_named_with_the_command_to_delete_it(monkeypatch, tmp_path):
    lock = _deepspeed_extensions(monkeypatch, tmp_path, lock_age_s=3600)
    with pytest.raises(ConfigError, match=f"would make this DeepSpeed launch wait forever; delete them \\(rm {lock}\\)"):
        check_stale_build_locks({}, set())


def test_a_build_lock_being_written_now_only_warns(monkeypatch, tmp_path, caplog):
    _deepspeed_extensions(monkeypatch, tmp_path, lock_age_s=0)
    check_stale_build_locks({}, set())
    assert "is being built" in caplog.text


def test_the_cpu_process_group_gets_the_configured_timeout(monkeypatch):
    import torch.distributed as dist

    formed = {}
    monkeypatch.setattr(dist, "init_process_group", lambda **kwargs: formed.update(kwargs))
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    for name, value in {"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}.items():
        monkeypatch.setenv(name, value)
    init_cpu_process_group({"use_cpu": True, "ddp_backend": "gloo", "ddp_timeout": 77}, set())
    assert formed == {"backend": "gloo", "timeout": timedelta(seconds=77)}


GENERATION = {"save_strategy": "steps", "gradient_accumulation_steps": 1, "steps_per_generation": 4,
              "generation_batch_size": None, "per_device_train_batch_size": 8, "num_iterations": 1, "max_steps": 20}


def test_checkpoints_inside_a_buffered_generation_are_refused():
    with pytest.raises(ConfigError, match="save_steps 5 puts checkpoints inside a generation .* a multiple of 4"):
        check_checkpoints_at_generation_boundaries({**GENERATION, "save_steps": 5}, set(), world_size=1)


def test_checkpoints_on_generation_boundaries_pass():
    check_checkpoints_at_generation_boundaries({**GENERATION, "save_steps": 8}, set(), world_size=1)


def test_num_iterations_counts_toward_the_generation_span():
    values = {**GENERATION, "steps_per_generation": None, "gradient_accumulation_steps": 2, "num_iterations": 2}
    with pytest.raises(ConfigError, match="a multiple of 2"):
        check_checkpoints_at_generation_boundaries({**values, "save_steps": 3}, set(), world_size=1)


def test_resuming_a_checkpoint_inside_a_generation_warns(caplog):
    from types import SimpleNamespace

    from rl_math.preflight import warn_resume_inside_generation

    args = SimpleNamespace(steps_per_generation=4, num_iterations=1, gradient_accumulation_steps=1)
    warn_resume_inside_generation(args, "out/checkpoint-8")
    assert not caplog.text
    warn_resume_inside_generation(args, "out/checkpoint-7")
    assert "checkpoint-7 was written inside a generation" in caplog.text


def test_a_negative_correctness_weight_is_warned_unless_marked_as_meant(caplog):
    from rl_math.preflight import warn_negative_correctness

    with caplog.at_level("WARNING"):
        warn_negative_correctness({"rewards": [{"name": "correctness", "weight": -1.0}]}, set())
    assert "answer WRONG" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        warn_negative_correctness({"rewards": [{"name": "correctness", "weight": -1.0, "negative_weight_ok": True}]}, set())
    assert caplog.text == ""
