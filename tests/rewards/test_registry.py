"""The registry: names and import paths → rewards; custom rewards checked, named and bounded; the columns a reward reads."""

import doctest
import functools
import pickle

import pytest
from trl.trainer.utils import get_callable_name, is_async_callable

from rl_math.rewards import (
    available_rewards,
    correctness,
    get_reward,
    repetition_penalty,
    required_columns,
)
from rl_math.rewards import registry as registry_module


def test_bound_reward_is_a_partial_that_trl_names_and_pickles():
    reward = get_reward("repetition_penalty", ngram_size=5, max_penalty=-0.5)
    assert isinstance(reward, functools.partial)
    assert reward.__name__ == get_callable_name(reward) == "repetition_penalty"
    restored = pickle.loads(pickle.dumps(reward))
    assert restored.__name__ == "repetition_penalty"
    assert restored(["a b c d e a b c d e"]) == reward(["a b c d e a b c d e"])


def test_bound_reward_keeps_the_docstring():
    assert get_reward("repetition_penalty", ngram_size=5).__doc__ == repetition_penalty.__doc__


def test_get_reward_without_parameters_returns_the_function_itself():
    assert get_reward("correctness") is correctness


def test_custom_reward_by_colon_import_path(custom_module):
    reward = get_reward(f"{custom_module}:length_bonus", target=3)
    assert reward(["abc", "abcd"]) == [1.0, 0.0]


def test_custom_reward_by_dotted_import_path(custom_module):
    assert get_reward(f"{custom_module}.length_bonus")(["abc"]) == [1.0]


def test_custom_reward_is_named_by_its_function_name(custom_module):
    unbound = get_reward(f"{custom_module}:length_bonus")
    bound = get_reward(f"{custom_module}:length_bonus", target=3)
    assert unbound.__name__ == bound.__name__ == "length_bonus"
    assert get_callable_name(unbound) == get_callable_name(bound) == "length_bonus"


def test_async_custom_reward_stays_async_for_trl(custom_module):
    assert is_async_callable(get_reward(f"{custom_module}:async_bonus", value=2.0))


def test_custom_reward_unknown_parameter_is_rejected(custom_module):
    with pytest.raises(ValueError, match=r"has no parameter 'targt'.*Did you mean 'target'"):
        get_reward(f"{custom_module}:length_bonus", targt=3)


def test_custom_reward_that_fails_to_import_names_the_import_error():
    with pytest.raises(ValueError, match=r"cannot import module 'no_such_pkg_xyz\.mod'.*ModuleNotFoundError"):
        get_reward("no_such_pkg_xyz.mod:fn")


def test_custom_reward_missing_attribute_is_reported(custom_module):
    with pytest.raises(ValueError, match="has no attribute 'nope'"):
        get_reward(f"{custom_module}:nope")


def test_custom_reward_must_be_callable(custom_module):
    with pytest.raises(ValueError, match="not callable"):
        get_reward(f"{custom_module}:NOT_CALLABLE")


def test_unknown_reward_names_the_nearest_and_every_known_reward():
    with pytest.raises(ValueError) as error:
        get_reward("corectness")
    message = str(error.value)
    assert "'corectness'" in message
    assert "Did you mean 'correctness'?" in message
    assert all(name in message for name in available_rewards())


def test_unknown_parameter_names_the_reward_the_parameter_and_the_nearest():
    with pytest.raises(ValueError) as error:
        get_reward("repetition_penalty", ngram_sze=5)
    message = str(error.value)
    assert "'repetition_penalty'" in message
    assert "'ngram_sze'" in message
    assert "Did you mean 'ngram_size'?" in message


def test_reward_names_suggest_only_what_a_config_key_would():
    from rl_math.errors import nearest_key

    assert nearest_key("corr", available_rewards()) is None  # too far for the config's matcher
    with pytest.raises(ValueError) as error:
        get_reward("corr")
    assert "Did you mean" not in str(error.value)


def test_parameter_for_a_reward_without_parameters_is_rejected():
    with pytest.raises(ValueError, match="'correctness' has no parameter 'weight_x'"):
        get_reward("correctness", weight_x=1)


def test_correctness_requires_the_answer_column():
    assert required_columns(get_reward("correctness")) == {"answer"}


@pytest.mark.parametrize("name", ["boxed_format", "think_format", "repetition_penalty", "termination"])
def test_other_builtin_rewards_require_no_dataset_column(name):
    assert required_columns(get_reward(name)) == set()


def test_custom_reward_requires_its_arguments_without_default(custom_module):
    assert required_columns(get_reward(f"{custom_module}:uses_difficulty")) == {"difficulty"}
    assert required_columns(get_reward(f"{custom_module}:length_bonus", target=3)) == set()


@pytest.mark.parametrize(
    "reward, message",
    [
        ("nan_reward", r"reward 'nan_reward' returned nan for completion 0; return a finite float"),
        ("string_reward", r"reward 'string_reward' returned '1.0' \(str\) for completion 0"),
        ("short_reward", r"reward 'short_reward' returned 1 values for 2 completions"),
        ("none_reward", r"reward 'none_reward' returned NoneType"),
        ("raising_reward", r"reward 'raising_reward' raised KeyError: 'b'"),
    ],
)
def test_a_failing_custom_reward_is_named_in_the_error(reward, message):
    func = get_reward(f"fixtures.broken_rewards:{reward}")
    with pytest.raises(Exception, match=message):
        func(completions=["a", "b"])


def test_a_custom_reward_that_never_returns_scores_none_at_its_timeout(caplog):
    func = get_reward("fixtures.broken_rewards:hanging_reward", timeout=0.2)
    with caplog.at_level("WARNING"):
        assert func(completions=["a"]) == [None]  # more in tests/rewards/test_isolation.py
    assert "reward 'hanging_reward' did not return within 0.2 s" in caplog.text


def test_a_working_custom_reward_passes_through_named_and_picklable():
    func = get_reward("fixtures.broken_rewards:good_reward")
    assert func(completions=["a", "b"]) == [0.5, None]
    assert get_callable_name(func) == "good_reward" and pickle.loads(pickle.dumps(func))(completions=["a"]) == [0.5]


def test_reward_call_has_one_entry_per_completion_as_grpo_passes_them():
    from rl_math.rewards import reward_call

    call = reward_call(["q1", "q2"], ["a", "b"], ["1", "2"], completion_ids=[(5,), (6, 7)])
    assert call == {
        "prompts": ["q1", "q2"],
        "completions": [[{"role": "assistant", "content": "a"}], [{"role": "assistant", "content": "b"}]],
        "answer": ["1", "2"],
        "completion_ids": [[5], [6, 7]],
    }


def test_reward_call_leaves_out_unknown_completion_ids():
    from rl_math.rewards import reward_call

    assert "completion_ids" not in reward_call(["q"], ["a"], ["1"])


def test_docstring_examples_hold():
    result = doctest.testmod(registry_module)
    assert result.failed == 0 and result.attempted > 0
