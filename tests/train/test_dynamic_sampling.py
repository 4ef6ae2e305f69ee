"""Dynamic sampling (DAPO filter and refill) on the synchronous GRPOTrainer."""

import json

import pytest
import torch
import yaml
from recipe_runs import REPO_ROOT, accelerate_launch, log_history, offline_env, ok, run_probe, run_recipe

from rl_math.errors import ConfigError
from rl_math.train.dynamic_sampling import (
    DynamicSamplingArguments,
    check_dynamic_sampling,
    choose_groups,
    informative_groups,
    merge_rows,
)

SMOKE = REPO_ROOT / "configs" / "smoke.yaml"


# -- which groups carry a signal, and which make the batch -------------------------------------


def test_float32_rounding_of_a_weighted_sum_is_not_variance():
    assert informative_groups([1.4, 1.4000000238418579, 1.4, 1.4], group_size=4) == [False]


def test_a_group_with_different_totals_is_informative():
    assert informative_groups([1.2, 1.0, 0.0, 0.0], group_size=2) == [True, False]


def test_unscorable_completions_are_left_out_of_the_variance():
    assert informative_groups([float("nan"), 1.0, 1.0, float("nan"), float("nan"), float("nan")], group_size=3) == [
        False, False]


def test_informative_groups_are_kept_before_any_zero_variance_group():
    chosen, fillers = choose_groups([[False, True, False], [True, True, True]], quota=3)
    assert chosen == [(0, 1), (1, 0), (1, 1)] and fillers == 0


def test_a_batch_short_of_informative_groups_is_filled_with_zero_variance_ones():
    chosen, fillers = choose_groups([[False, False], [False, False]], quota=2)
    assert chosen == [(0, 0), (0, 1)] and fillers == 2


def test_merged_rows_keep_left_padded_prompts_and_right_padded_completions():
    a = {"prompt_ids": torch.tensor([[1, 2, 3]]), "prompt_mask": torch.tensor([[1, 1, 1]]),
         "completion_ids": torch.tensor([[4]]), "completion_mask": torch.tensor([[1]]),
         "old_per_token_logps": torch.tensor([[-0.5]]), "num_items_in_batch": torch.tensor(1)}
    b = {"prompt_ids": torch.tensor([[9]]), "prompt_mask": torch.tensor([[1]]),
         "completion_ids": torch.tensor([[7, 8]]), "completion_mask": torch.tensor([[1, 1]]),
         "old_per_token_logps": torch.tensor([[-1.0, -2.0]]), "num_items_in_batch": torch.tensor(2)}
    merged = merge_rows([a, b], [(0, 0), (1, 0)], pad_token_id=0)
    assert merged["prompt_ids"].tolist() == [[1, 2, 3], [0, 0, 9]]
    assert merged["prompt_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
    assert merged["completion_mask"].tolist() == [[1, 0], [1, 1]]
    assert merged["old_per_token_logps"].tolist() == [[-0.5, 0.0], [-1.0, -2.0]]
    assert "num_items_in_batch" not in merged  # it spans every process: the trainer recomputes it


# -- settings checked before loading -----------------------------------------------------------


def test_max_rounds_below_one_is_a_config_error():
    with pytest.raises(ConfigError, match="dynamic_sampling_max_rounds"):
        DynamicSamplingArguments(dynamic_sampling=True, dynamic_sampling_max_rounds=0)


def test_a_process_batch_splitting_a_group_is_a_config_error():
    values = {"dynamic_sampling": True, "num_generations": 4, "per_device_train_batch_size": 6,
              "gradient_accumulation_steps": 1, "generation_batch_size": None, "steps_per_generation": None}
    with pytest.raises(ConfigError, match="whole number of groups"):
        check_dynamic_sampling(values, set(), world_size=1)


def test_whole_groups_per_process_pass_the_check():
    values = {"dynamic_sampling": True, "num_generations": 4, "per_device_train_batch_size": 6,
              "gradient_accumulation_steps": 2, "generation_batch_size": None, "steps_per_generation": None}
    check_dynamic_sampling(values, set(), world_size=2)


# -- in a real run ---------------------------------------------------------------------------


def _config(tmp_path, reward: str, **overrides) -> str:
    config = yaml.safe_load(SMOKE.read_text())
    config.update(rewards=[{"name": f"scripted_rewards:{reward}", "weight": 1.0}], max_completion_length=8,
                  eval_accuracy_steps=0, save_strategy="no", health_monitor=False, logging_steps=1,
                  dynamic_sampling=True, output_dir=str(tmp_path / "out"), **overrides)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def _step_logs(output_dir):
    return [e for e in log_history(output_dir) if "dynamic_sampling/refill_rounds" in e]


def test_a_batch_of_zero_variance_groups_is_refilled_with_informative_ones(tmp_path):
    ok(run_recipe("grpo", _config(tmp_path, "constant_first_on_rank0", max_steps=2)))
    first, second = _step_logs(tmp_path / "out")
    assert (first["dynamic_sampling/dropped_groups"], first["dynamic_sampling/refill_rounds"],
            first["dynamic_sampling/filler_groups"]) == (1.0, 1.0, 0.0)
    assert first["grad_norm"] > 0  # the refilled groups carry a gradient; the dropped ones had none
    assert (second["dynamic_sampling/dropped_groups"], second["dynamic_sampling/refill_rounds"]) == (0.0, 0.0)


def test_a_batch_that_stays_zero_variance_is_trained_as_it_is_after_the_last_round(tmp_path):
    ok(run_recipe("grpo", _config(tmp_path, "constant", max_steps=1, dynamic_sampling_max_rounds=2)))
    (log,) = _step_logs(tmp_path / "out")
    assert (log["dynamic_sampling/dropped_groups"], log["dynamic_sampling/refill_rounds"],
            log["dynamic_sampling/filler_groups"]) == (1.0, 2.0, 1.0)
    assert log["grad_norm"] == 0  # zero advantages everywhere: the step changes nothing


def test_refilled_batches_split_over_gradient_accumulation_steps(tmp_path):
    # 2 accumulation steps: one generation of 4 groups, refilled, cut into two optimizer micro-batches
    ok(run_recipe("grpo", _config(tmp_path, "constant_first_on_rank0", max_steps=2,
                                   gradient_accumulation_steps=2)))
    logs = _step_logs(tmp_path / "out")
    assert [e["step"] for e in logs] == [1, 2]
    assert logs[0]["dynamic_sampling/refill_rounds"] == 1.0


@pytest.mark.slow
def test_two_processes_refill_together_when_only_one_is_short(tmp_path):
    # process 0's first batch has no variance, process 1's has: both must run the refill round
    # (a collective generation) or the run hangs; both then log the same numbers
    probe = tmp_path / "probe"
    ok(run_probe("grpo", _config(tmp_path, "constant_first_on_rank0", max_steps=2, per_device_train_batch_size=4),
                  launcher=accelerate_launch(2, port=29641), env=offline_env(PROBE_DIR=str(probe)), timeout=300))
    ranks = [json.loads((probe / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[0]["checksum"] == ranks[1]["checksum"]  # one data-parallel model, not two copies
    first = _step_logs(tmp_path / "out")[0]
    assert (first["dynamic_sampling/dropped_groups"], first["dynamic_sampling/refill_rounds"],
            first["dynamic_sampling/filler_groups"]) == (0.5, 1.0, 0.0)
