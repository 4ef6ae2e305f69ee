"""The rewards, their registry and the YAML list → TRL arguments."""

import doctest
import functools
import pickle
import sys
import textwrap
import warnings

import pytest
from trl.trainer.utils import get_callable_name, is_async_callable

from rl_math.grading import batch
from rl_math.rewards import (
    REWARDS,
    available_rewards,
    boxed_format,
    build_rewards,
    completion_text,
    correctness,
    get_reward,
    repetition_penalty,
    required_columns,
    termination,
    think_format,
    validate_reward_specs,
)
from rl_math.rewards import functions as rewards
from rl_math.tasks.formats import PROMPT_FORMATS, build_prompt

REASONING = "Janet's ducks lay 16 eggs, she eats 3 and bakes 4, so she sells 9 eggs at $2: 9 * 2 = 18."


def as_messages(text):
    return [{"role": "assistant", "content": text}]


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    """Each test sees the one-time warnings as if the process had just started."""
    monkeypatch.setattr(batch, "_warned", set())


@pytest.fixture
def custom_module(tmp_path, monkeypatch):
    """An importable module `my_rewards_pkg.my_rewards` with custom rewards."""
    package = tmp_path / "my_rewards_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "my_rewards.py").write_text(
        textwrap.dedent(
            """
            def length_bonus(completions, *, target=10, **kwargs):
                return [1.0 if len(str(c)) <= target else 0.0 for c in completions]

            def uses_difficulty(completions, difficulty, **kwargs):
                return [float(d) for d in difficulty]

            async def async_bonus(completions, *, value=1.0, **kwargs):
                return [value for _ in completions]

            NOT_CALLABLE = 3
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_rewards_pkg.my_rewards"
    for name in ("my_rewards_pkg.my_rewards", "my_rewards_pkg"):
        sys.modules.pop(name, None)


def trl_call(func, completions, **columns):
    """Call a reward the way GRPOTrainer._calculate_rewards does."""
    return func(
        prompts=[build_prompt("q?", None)] * len(completions),
        completions=completions,
        completion_ids=[[1, 2]] * len(completions),
        trainer_state=object(),
        log_extra=lambda column, values: None,
        log_metric=lambda name, value: None,
        **columns,
    )


# --------------------------------------------------------------------------------------------
# correctness


def test_correctness_scores_one_for_the_gold_answer():
    assert correctness([r"so \boxed{18}"], answer=["18"]) == [1.0]


def test_correctness_scores_zero_for_a_wrong_answer():
    assert correctness([r"so \boxed{19}"], answer=["18"]) == [0.0]


def test_correctness_accepts_a_full_gsm8k_solution_as_gold():
    assert correctness([r"\boxed{1,080}"], answer=["9 * 120 = <<9*120=1080>>1080\n#### 1080"]) == [1.0]


def test_correctness_is_mathematical_not_textual():
    completions = [r"\boxed{\$1,080.00}", r"\boxed{\frac{2160}{2}}", r"\boxed{1080 \text{ dollars}}"]
    assert correctness(completions, answer=["1080"] * 3) == [1.0, 1.0, 1.0]


def test_correctness_scores_a_hedge_zero():
    assert correctness([r"\boxed{18} or \boxed{19}"], answer=["18"]) == [0.0]


def test_correctness_ignores_boxes_inside_think():
    assert correctness([r"<think>\boxed{18}</think> no idea"], answer=["18"]) == [0.0]


def test_correctness_reads_the_r1_answer_block():
    assert correctness(["<think>9 * 2 = 18</think><answer>18</answer>"], answer=["18"]) == [1.0]


def test_correctness_is_none_when_the_gold_cannot_be_parsed():
    with pytest.warns(RuntimeWarning, match="cannot read the gold answer"):
        assert correctness([r"\boxed{18}", r"\boxed{18}"], answer=["no gold", "18"]) == [None, 1.0]


def test_correctness_warns_once_per_process_about_unparseable_gold():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        correctness([r"\boxed{1}"], answer=["no gold"])
        correctness([r"\boxed{1}"], answer=["still no gold"])
    assert len([w for w in caught if "cannot read the gold" in str(w.message)]) == 1


def test_correctness_without_answer_column_is_none():
    with pytest.warns(RuntimeWarning, match="no 'answer' column"):
        assert correctness([r"\boxed{1}", r"\boxed{2}"]) == [None, None]


def test_correctness_with_a_short_answer_column_scores_the_rest_none():
    with pytest.warns(RuntimeWarning):
        result = correctness([r"\boxed{1}", r"\boxed{2}"], answer=["1"])
    assert result == [1.0, None]


# --------------------------------------------------------------------------------------------
# boxed_format


def test_boxed_format_pays_one_boxed_answer():
    assert boxed_format([r"so \boxed{18}."]) == [1.0]


def test_boxed_format_refuses_several_boxes_even_equal():
    assert boxed_format([r"\boxed{18} and \boxed{18}"]) == [0.0]


def test_boxed_format_refuses_an_empty_box():
    assert boxed_format([r"\boxed{}", r"\boxed{  }"]) == [0.0, 0.0]


def test_boxed_format_refuses_an_unbalanced_box():
    assert boxed_format([r"\boxed{18"]) == [0.0]


def test_boxed_format_refuses_no_box():
    assert boxed_format(["18"]) == [0.0]


def test_boxed_format_refuses_a_box_only_inside_think():
    assert boxed_format([r"<think>\boxed{18}</think> 18"]) == [0.0]


def test_boxed_format_pays_a_box_after_think():
    assert boxed_format([rf"<think>{REASONING}</think> \boxed{{18}}"]) == [1.0]


# --------------------------------------------------------------------------------------------
# think_format


def test_think_format_pays_reasoning_then_a_boxed_answer():
    assert think_format([rf"<think>{REASONING}</think> The answer is \boxed{{18}}."]) == [1.0]


def test_think_format_pays_reasoning_then_an_answer_block():
    assert think_format([f"<think>{REASONING}</think><answer>18</answer>"]) == [1.0]


def test_think_format_allows_leading_whitespace():
    assert think_format([f"  \n\t<think>{REASONING}</think> \\boxed{{18}}"]) == [1.0]


def test_think_format_requires_the_completion_to_open_with_think():
    assert think_format([rf"Sure. <think>{REASONING}</think> \boxed{{18}}"]) == [0.0]


@pytest.mark.parametrize("think", ["", "   ", "...!?", "ok so yes"])
def test_think_format_refuses_empty_or_too_short_reasoning(think):
    assert think_format([rf"<think>{think}</think> \boxed{{18}}"]) == [0.0]


def test_think_format_min_words_is_a_parameter():
    reward = get_reward("think_format", min_words=3)
    assert reward([r"<think>ok so yes</think> \boxed{18}"]) == [1.0]


@pytest.mark.parametrize(
    "think", ["reasoning process here", "Reasoning process here... reasoning process here!", "your reasoning here"]
)
def test_think_format_refuses_known_placeholder_wording(think):
    assert think_format([rf"<think>{think}</think> \boxed{{18}}"]) == [0.0]


def test_think_format_refuses_a_copy_of_the_system_prompt():
    system_prompt = "Think inside the tags, like <think> I first work out the eggs, then the money </think>."
    prompt = build_prompt("How much does Janet make?", system_prompt)
    completion = r"<think>I first work out the eggs, then the money.</think> \boxed{18}"
    assert think_format([completion], prompts=[prompt]) == [0.0]
    assert think_format([completion]) == [1.0]  # without the prompt it reads as reasoning


def test_think_format_refuses_a_copy_of_a_string_prompt():
    prompt = "Example: <think>add the two numbers and then double the result</think>"
    completion = r"<think>Add the two numbers, and then double the result!</think> \boxed{18}"
    assert think_format([completion], prompts=[prompt]) == [0.0]


@pytest.mark.parametrize("name", ["think_boxed", "r1"])
def test_think_format_refuses_the_shipped_system_prompt_placeholders(name):
    prompt = build_prompt("q?", PROMPT_FORMATS[name].system_prompt)
    completion = r"<think> reasoning process here </think><answer> answer here </answer> \boxed{18}"
    assert think_format([completion], prompts=[prompt]) == [0.0]


def test_think_format_refuses_tags_without_an_answer():
    assert think_format([f"<think>{REASONING}</think> so that is it"]) == [0.0]


@pytest.mark.parametrize(
    "answer",
    [r"\boxed{18} \boxed{18}", r"\boxed{18} or \boxed{19}", "<answer>18</answer><answer>18</answer>"],
    ids=["repeated-box", "hedged-boxes", "repeated-answer-block"],
)
def test_think_format_requires_exactly_one_final_answer(answer):
    assert think_format([f"<think>{REASONING}</think> {answer}"]) == [0.0]


def test_think_format_refuses_an_empty_answer():
    assert think_format([rf"<think>{REASONING}</think> \boxed{{}}"]) == [0.0]


def test_think_format_refuses_an_unclosed_think():
    assert think_format([rf"<think>{REASONING} \boxed{{18}}"]) == [0.0]


@pytest.mark.parametrize(
    "completion",
    [
        rf"<think><think>{REASONING}</think></think> \boxed{{18}}",
        rf"<think>{REASONING}</think><think>{REASONING}</think> \boxed{{18}}",
        rf"<think>{REASONING}</think> \boxed{{18}} </think>",
    ],
    ids=["nested", "two-blocks", "extra-close"],
)
def test_think_format_refuses_nested_or_extra_think_tags(completion):
    assert think_format([completion]) == [0.0]


# --------------------------------------------------------------------------------------------
# repetition_penalty


def test_repetition_penalty_is_zero_without_repeats():
    assert repetition_penalty(["the cat sat on the mat today"]) == [0.0]


def test_repetition_penalty_is_the_share_of_repeated_ngrams_times_max_penalty():
    # 5 words, 3 trigrams, 1 unique: (1 - 1/3) * -1.0
    assert repetition_penalty(["go go go go go"]) == [pytest.approx(-2 / 3)]


def test_repetition_penalty_approaches_max_penalty_for_degenerate_text():
    [penalty] = get_reward("repetition_penalty", max_penalty=-0.5)(["again " * 1000])
    assert -0.5 <= penalty < -0.49


def test_repetition_penalty_ngram_size_is_a_parameter():
    reward = get_reward("repetition_penalty", ngram_size=2, max_penalty=-1.0)
    assert reward(["a b a b a b"]) == [pytest.approx(-(1 - 2 / 5))]


def test_repetition_penalty_is_zero_for_texts_shorter_than_the_ngram():
    assert get_reward("repetition_penalty", ngram_size=5)(["one two three four"]) == [0.0]


def test_repetition_penalty_stays_within_max_penalty_and_zero():
    texts = ["a a b b a a b b", "x " * 50, "completely distinct words here", ""]
    assert all(-1.0 <= value <= 0.0 for value in repetition_penalty(texts))


@pytest.mark.parametrize("max_penalty", [0.5, "big", True, float("nan")])
def test_repetition_penalty_rejects_invalid_max_penalty_at_construction(max_penalty):
    with pytest.raises(ValueError, match="max_penalty"):
        get_reward("repetition_penalty", max_penalty=max_penalty)


@pytest.mark.parametrize("ngram_size", [0, -1, 2.5, "3"])
def test_repetition_penalty_rejects_invalid_ngram_size(ngram_size):
    with pytest.raises(ValueError, match="ngram_size"):
        get_reward("repetition_penalty", ngram_size=ngram_size)


# --------------------------------------------------------------------------------------------
# termination

EOS = [151645, 151643]


def test_termination_rewards_a_completion_ending_with_eos():
    reward = get_reward("termination", eos_token_ids=EOS, max_completion_length=4)
    assert reward(["a"], completion_ids=[[5, 6, 151645]]) == [1.0]


def test_termination_penalises_a_completion_cut_at_max_length():
    reward = get_reward("termination", eos_token_ids=EOS, max_completion_length=4)
    assert reward(["a"], completion_ids=[[5, 6, 7, 8]]) == [-1.0]


def test_termination_is_neutral_for_a_short_completion_without_eos():
    reward = get_reward("termination", eos_token_ids=EOS, max_completion_length=4)
    assert reward(["a"], completion_ids=[[5, 6]]) == [0.0]


def test_termination_rewards_are_parameters():
    reward = get_reward(
        "termination", eos_token_ids=[2], max_completion_length=2, terminated_reward=0.5, truncated_penalty=-2.0
    )
    assert reward(["a", "b"], completion_ids=[[1, 2], [1, 1]]) == [0.5, -2.0]


def test_termination_accepts_a_single_eos_id():
    reward = get_reward("termination", eos_token_ids=2, max_completion_length=4)
    assert reward(["a"], completion_ids=[[1, 2]]) == [1.0]


def test_termination_without_max_length_scores_missing_eos_neutral():
    with pytest.warns(RuntimeWarning, match="max_completion_length"):
        assert get_reward("termination", eos_token_ids=[2])(["a"], completion_ids=[[1] * 100]) == [0.0]


def test_termination_without_completion_ids_is_none():
    reward = get_reward("termination", eos_token_ids=EOS, max_completion_length=4)
    with pytest.warns(RuntimeWarning, match="completion_ids"):
        assert reward(["a", "b"]) == [None, None]


def test_termination_without_eos_ids_is_none():
    with pytest.warns(RuntimeWarning, match="eos_token_ids"):
        assert termination(["a"], completion_ids=[[1, 2]]) == [None]


def test_termination_without_eos_ids_warns_once():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        termination(["a"], completion_ids=[[1]])
        termination(["a"], completion_ids=[[1]])
    assert len(caught) == 1


def test_termination_reads_tensors():
    torch = pytest.importorskip("torch")
    reward = get_reward("termination", eos_token_ids=EOS, max_completion_length=3)
    assert reward(["a", "b"], completion_ids=[torch.tensor([1, 151643]), torch.tensor([1, 2, 3])]) == [1.0, -1.0]


@pytest.mark.parametrize(
    "params",
    [{"eos_token_ids": "2"}, {"eos_token_ids": [2, "x"]}, {"max_completion_length": 0}, {"truncated_penalty": "-1"}],
)
def test_termination_rejects_invalid_parameters(params):
    with pytest.raises(ValueError, match="termination"):
        get_reward("termination", **params)


# --------------------------------------------------------------------------------------------
# TRL's calling convention and names

ALL_BUILT = {
    "correctness": get_reward("correctness"),
    "boxed_format": get_reward("boxed_format"),
    "think_format": get_reward("think_format"),
    "repetition_penalty": get_reward("repetition_penalty", ngram_size=5),
    "termination": get_reward("termination", eos_token_ids=[2], max_completion_length=2),
    "coin_flip": get_reward("coin_flip", seed=1),
    "xml_format": get_reward("xml_format"),
}


def test_every_registered_reward_is_exercised():
    assert sorted(ALL_BUILT) == available_rewards() == sorted(REWARDS)


@pytest.mark.parametrize("name", sorted(ALL_BUILT))
def test_reward_accepts_plain_string_completions(name):
    result = trl_call(ALL_BUILT[name], [rf"<think>{REASONING}</think> \boxed{{18}}", "nothing"], answer=["18", "18"])
    assert len(result) == 2
    assert all(value is None or isinstance(value, float) for value in result)


@pytest.mark.parametrize("name", sorted(ALL_BUILT))
def test_reward_scores_conversational_completions_like_strings(name):
    texts = [rf"<think>{REASONING}</think> \boxed{{18}}", r"\boxed{17} \boxed{17}", "go go go go go go go"]
    as_strings = trl_call(ALL_BUILT[name], texts, answer=["18"] * 3)
    as_conversations = trl_call(ALL_BUILT[name], [as_messages(text) for text in texts], answer=["18"] * 3)
    assert as_strings == as_conversations


@pytest.mark.parametrize("name", sorted(ALL_BUILT))
def test_reward_ignores_unknown_keyword_arguments(name):
    assert len(trl_call(ALL_BUILT[name], ["x"], answer=["1"], question=["q"], some_column=[3])) == 1


@pytest.mark.parametrize("name", sorted(ALL_BUILT))
def test_reward_is_named_by_its_registry_name(name):
    assert ALL_BUILT[name].__name__ == name
    assert get_callable_name(ALL_BUILT[name]) == name
    assert get_reward(name).__name__ == name


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


def test_completion_text_is_reexported():
    assert completion_text(as_messages("hi")) == "hi"


# --------------------------------------------------------------------------------------------
# Custom rewards by import path


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


# --------------------------------------------------------------------------------------------
# Registry errors and spec validation


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


# --------------------------------------------------------------------------------------------
# build_rewards


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


# --------------------------------------------------------------------------------------------
# required_columns


def test_correctness_requires_the_answer_column():
    assert required_columns(get_reward("correctness")) == {"answer"}


@pytest.mark.parametrize("name", ["boxed_format", "think_format", "repetition_penalty", "termination"])
def test_other_builtin_rewards_require_no_dataset_column(name):
    assert required_columns(ALL_BUILT[name]) == set()


def test_custom_reward_requires_its_arguments_without_default(custom_module):
    assert required_columns(get_reward(f"{custom_module}:uses_difficulty")) == {"difficulty"}
    assert required_columns(get_reward(f"{custom_module}:length_bonus", target=3)) == set()


# --------------------------------------------------------------------------------------------


def test_docstring_examples_hold():
    result = doctest.testmod(rewards)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize("box", [r"\boxed{answer here}", r"\boxed{\text{answer here}}", r"\boxed{your answer}", r"\boxed{...}"])
def test_boxed_format_refuses_a_copied_template_placeholder(box):
    assert boxed_format([f"The answer is {box}."]) == [0.0]


def test_boxed_format_accepts_a_letter_answer():
    assert boxed_format([r"so \boxed{x}"]) == [1.0]


# --------------------------------------------------------------------------------------------
# A custom reward's failures name it


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


# -- gate: correct ------------------------------------------------------------------------------


def _gated_mix():
    return build_rewards(
        [{"name": "correctness"}, {"name": "boxed_format", "weight": 0.2, "gate": "correct"},
         {"name": "termination", "weight": 0.2, "gate": "correct"}],
        context={"eos_token_ids": [2], "max_completion_length": 4},
    )


def test_a_gated_shaping_reward_pays_nothing_on_a_wrong_answer():
    funcs, _ = _gated_mix()
    assert funcs[1](completions=["\\boxed{5}"], answer=["4"]) == [0.0]


def test_a_gated_shaping_reward_still_ranks_correct_answers():
    funcs, _ = _gated_mix()
    assert funcs[1](completions=["\\boxed{4}"], answer=["4"]) == [1.0]


def test_a_gated_penalty_still_charges_a_correct_answer_cut_off_at_the_limit():
    funcs, _ = _gated_mix()
    values = funcs[2](completions=["\\boxed{4}", "\\boxed{4}"], answer=["4", "4"], completion_ids=[[1, 2], [1, 1, 1, 1]])
    assert values == [1.0, -1.0]


def test_a_gated_reward_keeps_its_logged_name():
    funcs, _ = _gated_mix()
    assert [f.__name__ for f in funcs] == ["correctness", "boxed_format", "termination"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [({"name": "boxed_format", "gate": "sometimes"}, "gate must be one of correct"),
     ({"name": "correctness", "gate": "correct"}, "takes no gate")],
)
def test_a_bad_gate_is_named(spec, message):
    with pytest.raises(ValueError, match=message):
        validate_reward_specs([spec])


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


# --------------------------------------------------------------------------------------------
# coin_flip: the null control's reward


def test_coin_flip_is_a_fair_seeded_coin_that_ignores_the_text_and_changes_every_step():
    from types import SimpleNamespace

    flip = get_reward("coin_flip", seed=2024)
    at = [flip([r"\boxed{1}"] * 1000, trainer_state=SimpleNamespace(global_step=step)) for step in (1, 2)]
    assert flip(["junk"] * 1000, trainer_state=SimpleNamespace(global_step=1)) == at[0]  # the text plays no part
    assert at[0] != at[1]  # fresh flips at every step
    assert all(set(flips) == {0.0, 1.0} and 0.45 < sum(flips) / len(flips) < 0.55 for flips in at)
    assert get_reward("coin_flip", seed=2025)(["x"] * 1000) != flip(["x"] * 1000)


def test_coin_flip_refuses_a_negative_seed():
    with pytest.raises(ValueError, match="seed"):
        get_reward("coin_flip", seed=-1)
