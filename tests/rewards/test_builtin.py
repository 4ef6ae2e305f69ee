"""The built-in rewards: what each pays for, in TRL's calling convention, and gating on correctness."""

import doctest
import warnings

import pytest
from trl.trainer.utils import get_callable_name

from rl_math.rewards import (
    REWARDS,
    available_rewards,
    boxed_format,
    build_rewards,
    completion_text,
    correctness,
    get_reward,
    repetition_penalty,
    termination,
    think_format,
)
from rl_math.rewards import builtin as builtin_module
from rl_math.tasks.formats import PROMPT_FORMATS, build_prompt

REASONING = "Janet's ducks lay 16 eggs, she eats 3 and bakes 4, so she sells 9 eggs at $2: 9 * 2 = 18."


def as_messages(text):
    return [{"role": "assistant", "content": text}]


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


def test_completion_text_is_reexported():
    assert completion_text(as_messages("hi")) == "hi"


@pytest.mark.parametrize("box", [r"\boxed{answer here}", r"\boxed{\text{answer here}}", r"\boxed{your answer}", r"\boxed{...}"])
def test_boxed_format_refuses_a_copied_template_placeholder(box):
    assert boxed_format([f"The answer is {box}."]) == [0.0]


def test_boxed_format_accepts_a_letter_answer():
    assert boxed_format([r"so \boxed{x}"]) == [1.0]


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


def test_docstring_examples_hold():
    result = doctest.testmod(builtin_module)
    assert result.failed == 0 and result.attempted > 0
