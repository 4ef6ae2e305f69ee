"""The YAML reward list: checked at parse time with one-line errors, then TRL's reward_funcs and weights."""

import doctest

import pytest
from trl.trainer.utils import get_callable_name

from rl_math.rewards import (
    boxed_format,
    build_rewards,
    correctness,
    validate_reward_specs,
)
from rl_math.rewards import mix as mix_module


def test_validate_accepts_the_documented_example(custom_module):
    specs = [
        {"name": "correctness", "weight": 1.0},
        {"name": "think_format", "weight": 0.2},
        {"name": "repetition_penalty", "weight": 1.0, "ngram_size": 5, "max_penalty": -1.0},
        {"name": f"{custom_module}:length_bonus", "weight": 0.1},
    ]
    assert validate_reward_specs(specs) == specs


def test_validate_accepts_a_bare_string_as_weight_one():
    assert validate_reward_specs(["correctness"]) == [{"name": "correctness", "weight": 1.0}]


def test_validate_defaults_a_missing_weight_to_one():
    assert validate_reward_specs([{"name": "boxed_format"}]) == [{"name": "boxed_format", "weight": 1.0}]


def test_validate_converts_integer_weights_to_float():
    assert validate_reward_specs([{"name": "correctness", "weight": 2}])[0]["weight"] == 2.0


@pytest.mark.parametrize("weight", ["1.0", None, True, [1], float("inf")])
def test_validate_requires_a_numeric_weight(weight):
    with pytest.raises(ValueError, match="weight must be a number"):
        validate_reward_specs([{"name": "correctness", "weight": weight}])


@pytest.mark.parametrize("spec", [3, ["correctness"], None])
def test_validate_requires_each_spec_to_be_a_mapping(spec):
    with pytest.raises(ValueError, match=r"rewards\[0\]: expected a mapping"):
        validate_reward_specs([spec])


def test_validate_requires_a_name():
    with pytest.raises(ValueError, match="missing 'name'"):
        validate_reward_specs([{"weight": 1.0}])


@pytest.mark.parametrize("specs", [{"name": "correctness"}, "correctness", None, 3])
def test_validate_requires_a_list(specs):
    with pytest.raises(ValueError, match="expected a list of rewards"):
        validate_reward_specs(specs)


def test_validate_refuses_an_empty_list():
    with pytest.raises(ValueError, match="empty"):
        validate_reward_specs([])


def test_validate_refuses_a_reward_listed_twice():
    with pytest.raises(ValueError, match="more than once: correctness"):
        validate_reward_specs(["correctness", {"name": "correctness", "weight": 0.5}])


def test_validate_reports_the_position_and_the_reward_error():
    with pytest.raises(ValueError, match=r"rewards\[1\]: unknown reward 'thinkformat'.*'think_format'"):
        validate_reward_specs(["correctness", "thinkformat"])


def test_validate_checks_parameter_values():
    with pytest.raises(ValueError, match="max_penalty"):
        validate_reward_specs([{"name": "repetition_penalty", "max_penalty": 1.0}])


def test_build_rewards_returns_trl_reward_funcs_and_weights():
    funcs, weights = build_rewards(
        [{"name": "correctness", "weight": 1.0}, {"name": "think_format", "weight": 0.2}, "boxed_format"]
    )
    assert [get_callable_name(func) for func in funcs] == ["correctness", "think_format", "boxed_format"]
    assert weights == [1.0, 0.2, 1.0]


def test_build_rewards_binds_yaml_parameters():
    [reward], _ = build_rewards([{"name": "repetition_penalty", "ngram_size": 2}])
    assert reward.keywords == {"ngram_size": 2}


def test_build_rewards_injects_context_into_rewards_that_accept_it():
    context = {"eos_token_ids": [2], "max_completion_length": 3}
    funcs, _ = build_rewards(["termination", "correctness"], context=context)
    assert funcs[0].keywords == context
    assert funcs[0](["a", "b"], completion_ids=[[1, 2], [1, 1, 1]]) == [1.0, -1.0]
    assert funcs[1] is correctness  # correctness accepts neither


def test_build_rewards_yaml_parameters_win_over_context():
    [reward], _ = build_rewards(
        [{"name": "termination", "max_completion_length": 10}],
        context={"eos_token_ids": [2], "max_completion_length": 3},
    )
    assert reward.keywords == {"max_completion_length": 10, "eos_token_ids": [2]}


def test_build_rewards_skips_none_context_values():
    [reward], _ = build_rewards(["termination"], context={"eos_token_ids": [2], "max_completion_length": None})
    assert reward.keywords == {"eos_token_ids": [2]}


def test_build_rewards_injects_context_into_custom_rewards_by_signature(custom_module):
    funcs, _ = build_rewards([f"{custom_module}:length_bonus", "boxed_format"], context={"target": 1, "other": 5})
    assert funcs[0].func.keywords == {"target": 1}  # the custom reward, bound, inside its CheckedReward
    assert funcs[1] is boxed_format


def test_build_rewards_validates_context_values():
    with pytest.raises(ValueError, match="eos_token_ids"):
        build_rewards(["termination"], context={"eos_token_ids": "</s>"})


@pytest.mark.parametrize(
    ("spec", "message"),
    [({"name": "boxed_format", "gate": "sometimes"}, "gate must be one of correct"),
     ({"name": "correctness", "gate": "correct"}, "takes no gate")],
)
def test_a_bad_gate_is_named(spec, message):
    with pytest.raises(ValueError, match=message):
        validate_reward_specs([spec])


def test_docstring_examples_hold():
    result = doctest.testmod(mix_module)
    assert result.failed == 0 and result.attempted > 0
