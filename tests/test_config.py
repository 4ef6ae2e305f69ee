"""Config loading: positional YAML, --config, overrides, and every error raised before a model loads."""

import dataclasses
import os

import pytest
from trl import GRPOConfig, ModelConfig

from rl_math.config import RecipeArguments, parse_config, split_config_path, to_yaml_dict
from rl_math.errors import ConfigError

TYPES = [RecipeArguments, GRPOConfig, ModelConfig]


@pytest.fixture
def config_file(tmp_path):
    def write(text: str):
        path = tmp_path / "run.yaml"
        path.write_text(text)
        return str(path)

    return write


BASE = "output_dir: /tmp/rl-math-test\nbf16: false\nnum_generations: 4\nper_device_train_batch_size: 4\n"


def test_positional_yaml_sets_fields(config_file):
    path = config_file(BASE + "learning_rate: 3.0e-6\nprompt_format: think_boxed\n")
    script, training, model = parse_config(TYPES, [path]).instances
    assert training.learning_rate == 3e-6
    assert script.prompt_format == "think_boxed"


def test_config_flag_works_like_positional(config_file):
    path = config_file(BASE + "learning_rate: 3.0e-6\n")
    _, training, _ = parse_config(TYPES, ["--config", path]).instances
    assert training.learning_rate == 3e-6


def test_command_line_overrides_yaml(config_file):
    path = config_file(BASE + "learning_rate: 3.0e-6\n")
    _, training, _ = parse_config(TYPES, [path, "--learning_rate", "1e-6"]).instances
    assert training.learning_rate == 1e-6


def test_override_may_come_before_the_yaml(config_file):
    path = config_file(BASE)
    _, training, _ = parse_config(TYPES, ["--max_steps", "7", path]).instances
    assert training.max_steps == 7


def test_yaml_exponent_without_dot_is_a_float(config_file):
    # YAML 1.1 reads `1e-6` as a string; users mean a float.
    path = config_file(BASE + "learning_rate: 1e-6\n")
    _, training, _ = parse_config(TYPES, [path]).instances
    assert training.learning_rate == 1e-6


def test_boolean_flag_without_value_is_true(config_file):
    path = config_file(BASE)
    _, _, model = parse_config(TYPES, [path, "--use_peft"]).instances
    assert model.use_peft is True


def test_rewards_override_on_command_line_is_yaml_text(config_file):
    path = config_file(BASE)
    script, _, _ = parse_config(TYPES, [path, "--rewards", "[{name: correctness, weight: 2.0}]"]).instances
    assert script.rewards[0]["name"] == "correctness"
    assert script.rewards[0]["weight"] == 2.0


def test_explicit_fields_are_reported(config_file):
    path = config_file(BASE)
    parsed = parse_config(TYPES, [path, "--seed", "3"])
    assert {"seed", "bf16", "output_dir"} <= parsed.explicit
    assert "learning_rate" not in parsed.explicit


def test_unknown_yaml_key_names_the_nearest_valid_key(config_file):
    path = config_file(BASE + "learnin_rate: 1.0e-6\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'learnin_rate'.*did you mean 'learning_rate'"):
        parse_config(TYPES, [path])


def test_unknown_command_line_flag_names_the_nearest_valid_key(config_file):
    path = config_file(BASE)
    with pytest.raises(ConfigError, match=r"'num_generation'.*on the command line.*did you mean 'num_generations'"):
        parse_config(TYPES, [path, "--num_generation", "8"])


def test_max_prompt_length_points_at_rl_math_replacement(config_file):
    # TRL 1.16 removed max_prompt_length; rl-math's own budget is the nearest key.
    path = config_file(BASE + "max_prompt_length: 256\n")
    with pytest.raises(ConfigError, match="did you mean 'max_prompt_tokens'"):
        parse_config(TYPES, [path])


def test_wrong_type_names_field_and_expected_type(config_file):
    path = config_file(BASE + "seed: many\n")
    with pytest.raises(ConfigError, match=r"'seed'.*expects int.*'many'"):
        parse_config(TYPES, [path])


def test_wrong_type_on_command_line_is_one_clear_line(config_file):
    path = config_file(BASE)
    with pytest.raises(ConfigError, match=r"--num_generations.*invalid int value: 'x'"):
        parse_config(TYPES, [path, "--num_generations", "x"])


def test_choice_field_lists_the_allowed_values(config_file):
    path = config_file(BASE + "lr_scheduler_type: cosinus\n")
    with pytest.raises(ConfigError, match=r"'lr_scheduler_type'.*one of.*'cosine'"):
        parse_config(TYPES, [path])


def test_unknown_prompt_format_lists_known_ones(config_file):
    path = config_file(BASE + "prompt_format: latex\n")
    with pytest.raises(ConfigError, match=r"unknown prompt_format 'latex'.*boxed, r1, think_boxed"):
        parse_config(TYPES, [path])


def test_unknown_reward_lists_known_ones(config_file):
    path = config_file(BASE + "rewards:\n  - {name: corectness}\n")
    with pytest.raises(ConfigError, match=r"rewards:.*corectness.*correctness"):
        parse_config(TYPES, [path])


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        parse_config(TYPES, [str(tmp_path / "nope.yaml")])


def test_yaml_that_is_not_a_mapping_is_rejected(config_file):
    path = config_file("- a\n- b\n")
    with pytest.raises(ConfigError, match="must hold a YAML mapping"):
        parse_config(TYPES, [path])


def test_a_key_given_twice_in_the_yaml_is_rejected(config_file):
    path = config_file(BASE + "learning_rate: 1.0e-6\nlearning_rate: 1.0e-5\n")
    with pytest.raises(ConfigError, match="sets 'learning_rate' \\(line 6\\) twice"):
        parse_config(TYPES, [path])


def test_two_config_files_are_rejected():
    with pytest.raises(ConfigError, match="several config files"):
        split_config_path(["a.yaml", "--config", "b.yaml"])


def test_env_mapping_sets_environment_variables(config_file, monkeypatch):
    monkeypatch.delenv("RL_MATH_TEST_VAR", raising=False)
    path = config_file(BASE + "env:\n  RL_MATH_TEST_VAR: hello\n")
    parse_config(TYPES, [path])
    assert os.environ["RL_MATH_TEST_VAR"] == "hello"


def test_env_mapping_refuses_secrets(config_file):
    path = config_file(BASE + "env:\n  WANDB_API_KEY: abc123\n")
    with pytest.raises(ConfigError, match="secrets come from the environment"):
        parse_config(TYPES, [path])


def test_checks_see_merged_values_before_dataclasses_are_built(config_file):
    seen = {}

    def check(values, explicit):
        seen.update(values)
        raise ConfigError("stop here")

    path = config_file(BASE + "learning_rate: 2.0e-6\n")
    with pytest.raises(ConfigError, match="stop here"):
        parse_config(TYPES, [path, "--seed", "5"], checks=[check])
    assert seen["learning_rate"] == 2e-6 and seen["seed"] == 5


def test_resolved_config_leaves_out_credentials(config_file, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    path = config_file(BASE + "hub_token: secret-value\n")
    resolved = to_yaml_dict(*parse_config(TYPES, [path]).instances)
    assert "secret-value" not in str(resolved) and "hub_token" not in resolved


def test_resolved_config_keeps_fields_named_after_tokens(config_file):
    resolved = to_yaml_dict(*parse_config(TYPES, [config_file(BASE + "max_prompt_tokens: 300\n")]).instances)
    assert resolved["max_prompt_tokens"] == 300
    assert resolved["average_tokens_across_devices"] is True


def test_hub_token_reaches_the_hub_through_the_environment_not_the_trainer_arguments(config_file, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    _, training_args, _ = parse_config(TYPES, [config_file(BASE), "--hub_token", "hf_secret"]).instances
    assert training_args.hub_token is None  # the Trainer pickles its arguments into training_args.bin
    assert os.environ["HF_TOKEN"] == "hf_secret"


def test_credential_names_are_one_list_for_env_and_saved_config():
    from rl_math.errors import is_credential

    assert all(map(is_credential, ["hub_token", "HF_TOKEN", "WANDB_API_KEY", "AWS_SECRET_ACCESS_KEY", "db_password"]))
    assert not any(map(is_credential, ["max_prompt_tokens", "eos_token", "pad_token", "max_new_tokens",
                                       "include_num_input_tokens_seen", "average_tokens_across_devices"]))


def test_single_value_for_a_list_field_is_a_list_of_one(config_file):
    path = config_file(BASE + "lora_target_modules: q_proj\n")
    assert parse_config(TYPES, [path]).values["lora_target_modules"] == ["q_proj"]


def test_help_lists_every_field_and_exits_cleanly(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_config(TYPES, ["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--prompt_format" in out and "--num_generations" in out and "--lora_r" in out


def _recipe_config_types():
    from rl_math.methods import recipe_dataclasses

    return {
        "smoke.yaml": recipe_dataclasses("grpo"),
        "sft_smoke.yaml": recipe_dataclasses("sft"),
        "ei_smoke.yaml": recipe_dataclasses("expert_iteration"),
        "eval_smoke.yaml": recipe_dataclasses("evaluate"),
    }


@pytest.mark.parametrize("config", ["smoke.yaml", "sft_smoke.yaml", "ei_smoke.yaml", "eval_smoke.yaml"])
def test_saved_config_of_every_recipe_reruns_to_the_same_values(config, tmp_path):
    import yaml
    from recipe_runs import REPO_ROOT

    types = _recipe_config_types()[config]
    args = [str(REPO_ROOT / "configs" / config), "--output_dir", str(tmp_path / "out")]
    original = parse_config(types, args)
    resolved = to_yaml_dict(*original.instances)
    saved = tmp_path / "rl_math_config.yaml"
    saved.write_text(yaml.safe_dump(resolved, sort_keys=True))  # as the recipes write it
    rerun = parse_config(types, [str(saved)])
    assert to_yaml_dict(*rerun.instances) == resolved
    for before, after in zip(original.instances, rerun.instances):  # every field as the trainers see it
        assert {f.name: getattr(after, f.name) for f in dataclasses.fields(after)} == {
            f.name: getattr(before, f.name) for f in dataclasses.fields(before)
        }
