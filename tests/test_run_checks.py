"""What cannot train is refused, and a run never resumes or overwrites another recipe's or another run's output_dir."""

from __future__ import annotations

import json
import types

import pytest
import yaml
from recipe_runs import run_recipe

from rl_math import run_checks
from rl_math.config import parse_config
from rl_math.errors import ConfigError
from rl_math.methods import available_methods, get_method, recipe_dataclasses

SMOKE = {"grpo": "configs/smoke.yaml", "rloo": "configs/smoke_rloo.yaml", "sft": "configs/sft_smoke.yaml",
         "expert_iteration": "configs/ei_smoke.yaml", "evaluate": "configs/eval_smoke.yaml"}


def _parse(recipe: str, config: str, *args: str, checks=()):
    return parse_config(recipe_dataclasses(recipe), [config, *args], checks=list(checks))


# -- what cannot train -------------------------------------------------------------------------


def test_grpo_with_fewer_prompts_than_one_step_exits_2_before_the_model_loads(tmp_path):
    result = run_recipe("grpo", "configs/smoke.yaml", "--max_train_samples", "1", "--output_dir", str(tmp_path / "run"))
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "max_train_samples 1 holds 1 prompt(s) but one step needs 2" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "run" / "model.safetensors").exists()


def test_a_training_set_smaller_than_one_step_after_loading_is_refused():
    args = types.SimpleNamespace(per_device_train_batch_size=8, gradient_accumulation_steps=2, generation_batch_size=16,
                                 steps_per_generation=2, num_generations=4, world_size=1)
    run_checks.check_dataset_fills_a_step(4, args)  # 16 completions / 4 per prompt = 4 prompts
    with pytest.raises(ConfigError, match="the training set holds 3 prompt.* needs 4 .* train 0 steps"):
        run_checks.check_dataset_fills_a_step(3, args)


def _before_output_dir(method: str) -> list:
    """The method's checks that look at the values only (not output_dir, not the process group)."""
    return [c for c in get_method(method).CHECKS if "output_dir" not in c.__name__ and "process_group" not in c.__name__]


@pytest.mark.parametrize("method", ["grpo", "rloo"])
def test_every_online_rl_method_refuses_what_cannot_train(method):
    with pytest.raises(ConfigError, match="every reward has weight 0"):
        _parse(method, SMOKE[method], "--rewards", '[{name: correctness, weight: 0}]',
               checks=_before_output_dir(method))
    with pytest.raises(ConfigError, match="max_train_samples 1 holds 1 prompt"):
        _parse(method, SMOKE[method], "--max_train_samples", "1", checks=_before_output_dir(method))


def test_all_reward_weights_zero_is_refused():
    with pytest.raises(ConfigError, match="every reward has weight 0"):
        run_checks.check_some_reward_weight({"rewards": [{"name": "correctness", "weight": 0},
                                                         {"name": "boxed_format", "weight": 0.0}]}, set())
    run_checks.check_some_reward_weight({"rewards": [{"name": "correctness", "weight": 0}, "boxed_format"]}, set())
    run_checks.check_some_reward_weight({"rewards": None}, set())


# -- ownership of an output_dir ----------------------------------------------------------------


def _claim(recipe: str, config: str, output_dir, *args: str) -> None:
    _parse(recipe, config, "--output_dir", str(output_dir), *args, checks=[run_checks.ownership_record(recipe)])


def test_grpo_resume_true_into_an_sft_run_is_refused(tmp_path):
    _claim("sft", "configs/sft_smoke.yaml", tmp_path)
    with pytest.raises(ConfigError, match=f"{tmp_path} holds a sft run, and this grpo run would resume or overwrite it"):
        _parse("grpo", "configs/smoke.yaml", "--output_dir", str(tmp_path), "--resume_from_checkpoint", "true",
               checks=[run_checks.ownership_check("grpo")])


def test_resuming_another_recipes_checkpoint_by_path_is_refused(tmp_path):
    _claim("sft", "configs/sft_smoke.yaml", tmp_path / "sft")
    (tmp_path / "sft" / "checkpoint-10").mkdir()
    with pytest.raises(ConfigError, match="holds a sft run, and this grpo run would resume from it"):
        _parse("grpo", "configs/smoke.yaml", "--output_dir", str(tmp_path / "grpo"),
               "--resume_from_checkpoint", str(tmp_path / "sft" / "checkpoint-10"), checks=[run_checks.ownership_check("grpo")])


def test_expert_iteration_into_a_finished_grpo_run_is_refused(tmp_path):
    saved = yaml.safe_load(open("configs/smoke.yaml")) | {"num_generations": 4}  # a GRPO run's rl_math_config.yaml
    (tmp_path / "rl_math_config.yaml").write_text(yaml.safe_dump(saved))
    with pytest.raises(ConfigError, match="holds a grpo run, and this expert_iteration run"):
        _parse("expert_iteration", "configs/ei_smoke.yaml", "--output_dir", str(tmp_path),
               checks=[run_checks.ownership_check("expert_iteration")])


def test_a_resume_that_trains_something_else_names_the_fields_but_max_steps_may_change(tmp_path):
    _claim("grpo", "configs/smoke.yaml", tmp_path)
    check = [run_checks.ownership_check("grpo")]
    _parse("grpo", "configs/smoke.yaml", "--output_dir", str(tmp_path), "--resume_from_checkpoint", "true",
           "--max_steps", "40", checks=check)
    with pytest.raises(ConfigError, match="trains something else .*dataset_name: 'rl-math:synthetic' → "):
        _parse("grpo", "configs/smoke.yaml", "--output_dir", str(tmp_path), "--resume_from_checkpoint", "true",
               "--dataset_name", "rl-math:arithmetic?operations=add", checks=check)
    _parse("grpo", "configs/smoke.yaml", "--output_dir", str(tmp_path), "--overwrite_output_dir", "true",
           "--dataset_name", "rl-math:arithmetic?operations=add", checks=check)  # replacing it is asked for


@pytest.mark.parametrize("method", available_methods())
def test_every_method_refuses_another_recipes_output_dir(tmp_path, method):
    other = "sft" if method != "sft" else "grpo"
    _claim(other, SMOKE[other], tmp_path)
    with pytest.raises(ConfigError, match=f"holds a {other} run, and this {method} run would resume or overwrite it"):
        parse_config(recipe_dataclasses(method), [SMOKE[method], "--output_dir", str(tmp_path)],
                     checks=get_method(method).CHECKS)


def test_an_rloo_run_from_before_the_owner_record_is_told_from_grpo(tmp_path):
    saved = yaml.safe_load(open("configs/smoke_rloo.yaml")) | {"num_generations": 4, "reward_clip_range": None}
    (tmp_path / "rl_math_config.yaml").write_text(yaml.safe_dump(saved))
    assert run_checks.recorded_owner(tmp_path)[0] == "rloo"


def test_the_owner_record_names_the_recipe_and_what_is_trained(tmp_path):
    _claim("grpo", "configs/smoke.yaml", tmp_path)
    record = json.loads((tmp_path / run_checks.OWNER_FILE).read_text())
    assert record["recipe"] == "grpo" and record["identity"]["model_name_or_path"] == "rl-math:tiny-qwen2"
    assert [r["name"] for r in record["identity"]["rewards"]] == ["correctness", "boxed_format", "termination",
                                                                  "repetition_penalty"]


def test_evaluate_never_overwrites_an_earlier_evaluation(tmp_path):
    (tmp_path / "metrics.json").write_text("{}")
    result = run_recipe("evaluate", "configs/eval_smoke.yaml", "--output_dir", str(tmp_path))
    assert result.returncode == 2 and "already holds an evaluation (metrics.json)" in result.stderr
    assert (tmp_path / "metrics.json").read_text() == "{}"
