"""One bound on what sympy sees: the grader's fallback and the MATH task both respect it."""

import pytest

from rl_math.grading import grader
from rl_math.grading.symbolic import MAX_SYMBOLIC_CHARS, sympy_safe, verified_equal, verified_parse
from rl_math.tasks import get_task


@pytest.mark.parametrize("text", [
    r"10^{10^{10}}", "2^9^9", r"(2^9)^9", r"(10^{100})!", "9" * 12, r"x^{1000}", "x^2+" * 13 + "1",
    "1+" * (MAX_SYMBOLIC_CHARS // 2) + "1",
])
def test_what_could_hang_sympy_is_never_parsed(text):
    assert not sympy_safe(text)
    assert verified_parse(text) is None


@pytest.mark.parametrize("text", [r"\frac{\pi}{2}", r"3\sqrt{2}", r"x^2 + 2x + 1", r"(3, \frac{\pi}{2})"])
def test_ordinary_symbolic_answers_are_parsed(text):
    assert sympy_safe(text) and verified_parse(text) is not None


def test_the_grader_fallback_and_the_math_task_share_the_length_bound():
    inside = r"\sqrt{2}" + "+1" * ((MAX_SYMBOLIC_CHARS - 8) // 2)
    outside = inside + "+1"
    assert len(inside) <= MAX_SYMBOLIC_CHARS < len(outside)
    math = get_task("math")
    assert grader._fallback_allowed(inside) and not grader._fallback_allowed(outside)
    assert math.answers_equal(inside, inside) and not math.answers_equal(outside, outside)


def test_verified_equal_is_false_when_a_side_did_not_parse():
    assert verified_equal(verified_parse(r"\frac{1}{2}"), verified_parse("0.5"))
    assert not verified_equal(None, verified_parse("2"))
