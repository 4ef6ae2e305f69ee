"""The grader: where the final answer is, when it equals the gold answer, and the evaluation verdict."""

import doctest
import threading
import time

import pytest

from rl_math.grading import grader
from rl_math.grading.grader import (
    Verdict,
    answer_region,
    answers_equal,
    boxed_contents,
    completion_text,
    final_answers,
    grade,
    normalize_gold,
    parse_number,
)

# --------------------------------------------------------------------------------------------
# Equality is mathematical, not textual: (answer, gold) pairs a careful human calls equal ...

EQUAL = [
    ("1,080", "1080"),
    (r"1\,080", "1080"),
    (r"1\, 080", "1080"),  # a thin space followed by an ordinary one, as MATH-style outputs write it
    (r"1\, 000\, 000", "1000000"),
    ("1 080", "1080"),
    (r"1{,}080", "1080"),
    ("18.00", "18"),
    (r"\$18", "18"),
    (r"18\%", "18"),
    (r"18 \text{ dollars}", "18"),
    ("x = 18", "18"),
    (r"\frac{36}{2}", "18"),
    (r"\dfrac{36}{2}", "18"),
    (r"\tfrac{36}{2}", "18"),
    (r"\frac12", "0.5"),
    ("\u22125", "-5"),  # unicode minus
    (r"\textbf{18}", "18"),
    ("18.", "18"),
    ("18 apples", "18"),
    (r"\$1,080.00", "1080"),
    ("18/1", "18"),
    ("36/2", "18"),
    ("2.5", "5/2"),
    ("0.5", "1/2"),
    (r"50\%", "50"),
    (r"\text{18}", "18"),
    (r"\mathrm{18}", "18"),
    ("$18$", "18"),
    ("{18}", "18"),
    (r"18^\circ", "18"),
    (r"18^{\circ}", "18"),
    (r"\left( 18 \right)", "18"),
    ("1.8e1", "18"),
    (r"\boxed{18}", "18"),
    (r"2 \times 9 = 18", "18"),
    ("The answer is 18", "18"),
    ("Answer: 18", "18"),
    (r"\text{The answer is } 18", "18"),
    ("1.5 million", "1500000"),
    ("2 1/2", "2.5"),
    (r"2\frac{1}{2}", "2.5"),
    (r"-\frac{1}{2}", "-0.5"),
    (r"10^{3}", "1000"),
    (r"18 \text{ m}^2", "18"),
    ("12 m²", "12"),  # superscript units
    ("5 cm³", "5"),
    (r"5 \text{ cm}³", "5"),
    ("10²", "100"),  # a superscript on a number is a power
    ("18 more", "18"),
    ("18 dozen", "18"),  # dozen is a unit, not 12
    ("18 - 2", "16"),
    (r"\sqrt{324}", "18"),  # math-verify fallback
    (r"x = \sqrt{324}", "18"),  # math-verify fallback, behind a label
]

# ... and pairs a careful human calls different.
NOT_EQUAL = [
    ("180", "18"),
    ("1.8", "18"),
    ("18 - 2", "18"),
    ("-5", "5"),
    ("1.080", "1080"),  # no European thousands separator
    ("18 or 19", "18"),
    (r"18 \text{ or } 19", "18"),
    (r"18\text{or}19", "18"),
    ("18, 19", "18"),
    ("18,19", "18"),
    (r"18\, 19", "18"),
    (r"50\%", "0.5"),  # the percent sign is dropped, the number compared as written
    ("0.5", "50"),
    ("0.33", "1/3"),  # comparisons are exact
    ("18 and a half", "18"),
    (r"2 \times 9 = 19", "19"),  # sides that disagree
    (r"x = 18 \text{ or } x = 19", "19"),
    ("", "18"),
    (r"\mathrm{}", "0"),
    (r"18 \pi", "18"),
    (r"\pi", "3.14159"),
    ("5-", "5"),
    (r"10^{10^{10}}", "1"),
]


@pytest.mark.parametrize(("answer", "gold"), EQUAL)
def test_equal_answers_are_equal(answer, gold):
    assert answers_equal(answer, gold)


@pytest.mark.parametrize(("answer", "gold"), NOT_EQUAL)
def test_different_answers_are_not_equal(answer, gold):
    assert not answers_equal(answer, gold)


@pytest.mark.parametrize(("answer", "gold"), EQUAL)
def test_equal_answers_are_correct_when_boxed(answer, gold):
    assert grade(f"The answer is \\boxed{{{answer}}}.", gold).correct


@pytest.mark.parametrize(("answer", "gold"), NOT_EQUAL)
def test_different_answers_are_wrong_when_boxed(answer, gold):
    assert not grade(f"The answer is \\boxed{{{answer}}}.", gold).correct


def test_fast_path_decides_numbers_without_math_verify(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("math-verify called for a plain number")

    monkeypatch.setattr(grader, "_symbolic_parse", forbidden)
    assert answers_equal(r"\$1,080.00", "1080")
    assert not answers_equal("1081", "1080")


def test_math_verify_fallback_never_accepts_a_hedge():
    assert not grader._fallback_allowed("18 or 19")
    assert not grader._fallback_allowed(r"18 \text{ or } 19")
    assert not grader._fallback_allowed(r"\sqrt{324}, 19")
    assert grader._fallback_allowed(r"\sqrt{324}")


def test_math_verify_fallback_refuses_expressions_that_could_hang():
    assert not grader._fallback_allowed(r"10^{10^{10}}")
    assert not grader._fallback_allowed(r"(10^{100})!")
    assert not grader._fallback_allowed("\\sqrt{" + "9" * 40 + "}")


def test_math_verify_fallback_works_off_the_main_thread():
    results = []
    thread = threading.Thread(target=lambda: results.append(answers_equal(r"\sqrt{289}", "17")))
    thread.start()
    thread.join(timeout=30)
    assert results == [True]


def test_symbolic_gold_is_graded_by_math_verify():
    assert grade(r"\boxed{\frac{\sqrt{3}}{2}}", r"\frac{\sqrt{3}}{2}").correct
    assert grade(r"\boxed{\frac{\sqrt{3}}{2}}", r"\frac{\sqrt{3}}{2}").gold_parseable
    assert not grade(r"\boxed{\frac{1}{2}}", r"\frac{\sqrt{3}}{2}").correct


def test_parse_number_returns_exact_fractions():
    assert parse_number(r"\frac{1}{3}") * 3 == 1
    assert parse_number("2.50") == parse_number("5/2")


def test_parse_number_refuses_oversized_answers():
    assert parse_number("1" * (grader.MAX_ANSWER_CHARS + 1)) is None


# --------------------------------------------------------------------------------------------
# Where the final answer is


def test_whole_completion_is_the_answer_region_without_think_tags():
    assert answer_region(r"so \boxed{18}") == r"so \boxed{18}"


def test_answer_region_is_after_the_think_block():
    assert answer_region(r"<think>\boxed{17}</think> \boxed{18}") == r" \boxed{18}"


def test_unclosed_think_means_no_answer_region():
    assert answer_region(r"<think>so the answer is \boxed{18}") is None
    assert not grade(r"<think>so the answer is \boxed{18}", "18").correct


def test_new_think_after_the_last_close_means_no_answer_region():
    assert answer_region(r"<think>a</think> \boxed{18} <think>more") is None


def test_closing_think_alone_starts_the_answer_region():
    # chat templates that open <think> in the prompt leave only </think> in the completion
    assert grade(r"9 * 2 = 18 </think> \boxed{18}", "18").correct


def test_boxed_answer_only_inside_think_does_not_count():
    verdict = grade(r"<think>so \boxed{18}</think> I am not sure.", "18")
    assert not verdict.correct
    assert verdict.n_answers == 0


def test_boxed_answer_after_think_counts():
    assert grade(r"<think>9 * 2 = 18</think> The answer is \boxed{18}.", "18").correct


def test_box_content_keeps_balanced_braces():
    assert boxed_contents(r"\boxed{\frac{36}{2}} end") == [r"\frac{36}{2}"]


def test_box_with_a_space_before_the_brace_is_accepted():
    assert grade(r"\boxed {18}", "18").correct


def test_fbox_is_accepted():
    assert grade(r"\fbox{18}", "18").correct


def test_box_without_braces_is_not_an_answer():
    assert not grade(r"\boxed 18", "18").correct


def test_nested_boxes_are_one_answer():
    verdict = grade(r"\boxed{\boxed{18}}", "18")
    assert verdict.correct
    assert verdict.well_formed
    assert verdict.n_answers == 1


def test_unbalanced_box_is_malformed_and_wrong():
    verdict = grade(r"\boxed{18", "18")
    assert not verdict.correct
    assert not verdict.well_formed
    assert verdict.extracted is None


def test_empty_box_is_malformed_and_wrong():
    verdict = grade(r"\boxed{}", "0")
    assert not verdict.correct
    assert not verdict.well_formed


def test_empty_box_echoed_from_the_instruction_is_not_a_second_answer():
    verdict = grade(r"Put your final answer within \boxed{}. 6 + 12 = 18, so \boxed{18}.", "18")
    assert verdict.correct and verdict.well_formed
    assert verdict.n_answers == 1


def test_escaped_braces_do_not_close_a_box():
    assert boxed_contents(r"\boxed{\{1, 2\}}") == [r"\{1, 2\}"]


def test_boxes_with_different_values_are_a_hedge_and_score_zero():
    assert not grade(r"\boxed{18} or maybe \boxed{19}", "18").correct
    assert not grade(r"\boxed{19} or maybe \boxed{18}", "18").correct


def test_boxes_with_equal_values_are_correct_but_not_well_formed():
    verdict = grade(r"\boxed{18}, that is \boxed{18.00}", "18")
    assert verdict.correct
    assert not verdict.well_formed
    assert verdict.n_answers == 2


def test_unboxed_answer_is_not_an_answer():
    verdict = grade("The answer is 18.", "18")
    assert not verdict.correct
    assert verdict.extracted is None


def test_answer_block_without_box_is_the_answer():
    verdict = grade("<think>9 * 2 = 18</think><answer> 18 </answer>", "18")
    assert verdict.correct
    assert verdict.well_formed
    assert verdict.extracted == "18"


def test_answer_block_sentence_is_read():
    assert grade("<think>9 * 2 = 18</think><answer>The answer is 18.</answer>", "18").correct


def test_answer_block_with_box_uses_the_box():
    assert grade(r"<think>x</think><answer>so \boxed{18} not 19</answer>", "18").correct


def test_text_outside_the_answer_block_is_ignored():
    assert grade(r"<think>x</think> \boxed{19} <answer>18</answer>", "18").correct


def test_unclosed_answer_block_means_no_answer():
    assert not grade("<think>x</think><answer>18", "18").correct


def test_answer_blocks_with_different_values_are_a_hedge():
    assert not grade("<think>x</think><answer>18</answer><answer>19</answer>", "18").correct


def test_final_answers_lists_every_candidate():
    assert final_answers(r"\boxed{1} \boxed{2} \boxed{3").answers == ("1", "2", None)


# --------------------------------------------------------------------------------------------
# Gold answers and the verdict


def test_gold_can_be_a_bare_value():
    assert grade(r"\boxed{1080}", "1080").correct


def test_gold_can_be_a_full_gsm8k_solution():
    assert grade(r"\boxed{1080}", "5 * 216 = <<5*216=1080>>1080\n#### 1,080").correct


def test_gold_can_be_a_number():
    assert normalize_gold(72) == "72"
    assert grade(r"\boxed{72}", 72).correct


def test_unparseable_gold_is_flagged_and_never_correct():
    verdict = grade(r"\boxed{18}", "no gold here")
    assert not verdict.gold_parseable
    assert not verdict.correct


def test_missing_gold_is_unparseable():
    assert not grade(r"\boxed{18}", None).gold_parseable
    assert not grade(r"\boxed{18}", "").gold_parseable


def test_verdict_reports_correct_and_well_formed():
    assert grade(r"<think>9 * 2</think> \boxed{\$18.00}", "#### 18") == Verdict(
        correct=True, well_formed=True, extracted=r"\$18.00", gold_parseable=True, n_answers=1
    )


def test_verdict_reports_well_formed_but_wrong():
    verdict = grade(r"\boxed{17}", "18")
    assert (verdict.correct, verdict.well_formed, verdict.extracted) == (False, True, "17")


def test_grade_accepts_a_message_list():
    assert grade([{"role": "assistant", "content": r"\boxed{18}"}], "18").correct


# --------------------------------------------------------------------------------------------
# completion_text


def test_completion_text_of_a_string_is_itself():
    assert completion_text("abc") == "abc"


def test_completion_text_of_a_message_list_is_the_assistant_content():
    messages = [
        {"role": "assistant", "content": "call"},
        {"role": "tool", "content": "tool output"},
        {"role": "assistant", "content": r"\boxed{1}"},
    ]
    assert completion_text(messages) == "call\n\\boxed{1}"


def test_completion_text_reads_content_parts():
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": "hi"}]}]) == "hi"


@pytest.mark.parametrize("junk", [None, 3, object(), [None, 1], {"role": "assistant"}])
def test_completion_text_of_junk_is_empty(junk):
    assert completion_text(junk) == ""


def test_completion_text_decodes_bytes_leniently():
    assert completion_text(b"\xff18") == "\ufffd18"


# --------------------------------------------------------------------------------------------
# Bounded work and documentation


@pytest.mark.parametrize(
    "text",
    [
        "word " * 20_000 + r"\boxed{18}",
        "\\boxed" + "{" * 10_000,
        r"\boxed{1}" * 10_000,
        "\\boxed{" + "\\frac{" * 300 + "1" + "}{2}" * 300 + "}",
        "\\boxed{" + "\\text{" * 500 + "1" + "}" * 500 + "}",
        "\\boxed{" + "(" * 400 + "1" + ")" * 400 + "}",
        r"\boxed{2^2^2^2^2^2^2^2^2^2}",
        "<think>" * 10_000 + "</think>" * 10_000,
    ],
    ids=["100kB", "nested-braces", "many-boxes", "nested-fracs", "nested-text", "parens", "power-tower", "think-tags"],
)
def test_grading_pathological_text_is_fast(text):
    start = time.perf_counter()
    grade(text, "18")
    assert time.perf_counter() - start < 2.0


def test_docstring_examples_hold():
    result = doctest.testmod(grader)
    assert result.failed == 0 and result.attempted > 0


def test_message_text_reads_parquets_numpy_arrays_of_messages():
    import numpy as np

    from rl_math.grading.grader import completion_text, prompt_text

    completion = np.array([{"role": "assistant", "content": r"\boxed{4}"}], dtype=object)
    prompt = np.array([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}], dtype=object)
    assert completion_text(completion) == r"\boxed{4}"
    assert prompt_text(prompt) == "Be brief.\n2+2?"


def test_prompt_text_keeps_every_role_and_completion_text_only_the_assistant():
    from rl_math.grading.grader import completion_text, prompt_text

    turns = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
    assert (prompt_text(turns), completion_text(turns)) == ("2+2?\n4", "4")


def test_message_text_reads_content_parts():
    from rl_math.grading.grader import prompt_text

    assert prompt_text([{"role": "user", "content": [{"type": "text", "text": "2+2?"}]}]) == "2+2?"
