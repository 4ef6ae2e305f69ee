r"""MATH-style problems: `problem`, `answer` (any LaTeX: `\frac{\pi}{2}`, `(3, \frac{\pi}{2})`,
`\text{(C)}`) and, for SFT, `solution`. Evaluated on MATH-500 (``configs/eval_math500.yaml``).

The final answer is found as for every task (the grader's boxes and answer blocks); it is compared
with the gold by the grader's fast exact path when both are numbers, else by math-verify, bounded:
answers longer than :data:`MAX_VERIFIED_CHARS`, with long literals, towers of powers or
factorials are never handed to sympy, and math-verify's own timeouts apply on the main thread.

>>> TASK.grade(r"The point is \boxed{(3, \frac{\pi}{2})}.", r"(3, \frac{\pi}{2})").correct
True
>>> TASK.answers_equal(r"(\frac{\pi}{2}, 3)", r"(3, \frac{\pi}{2})")
False
>>> TASK.gold(r" \text{(C)} "), TASK.gold("")
('\\text{(C)}', None)
"""

from __future__ import annotations

import re
from functools import lru_cache

from rl_math.grading.grader import (
    BOX_OPEN,
    answers_equal,
    call_math_verify,
    gold_is_gradable,
    grade_with,
    matching_brace,
    math_verify_timeout,
)
from rl_math.tasks import Task

MAX_VERIFIED_CHARS = 160  # longer answers (and golds) are not handed to sympy
# huge literals, factorials (`\!` is a LaTeX space), towers of powers: sympy may hang on them
_UNSAFE = re.compile(r"\d{10,}|\^\s*\{?\s*-?\d{3,}|(?<!\\)!|\^\s*\{[^{}]*\^|\^\s*\d+\s*\^")
_MAX_POWERS = 12


def _sympy_safe(text: str) -> bool:
    return len(text) <= MAX_VERIFIED_CHARS and not _UNSAFE.search(text) and text.count("^") <= _MAX_POWERS


@lru_cache(maxsize=16384)
def verified_parse(text: str):
    """math-verify's parse of a bare answer, or None when it is unsafe or not math (never raises).

    math-verify returns the bare string when it found no expression in it: not an answer.
    """
    text = text.strip()
    if not text or not _sympy_safe(text):
        return None
    from math_verify import LatexExtractionConfig, parse


    parsed = call_math_verify(
        parse, "\\boxed{" + text + "}", extraction_config=[LatexExtractionConfig(boxed_match_priority=0)],
        parsing_timeout=math_verify_timeout(),
    )
    return parsed if parsed and not isinstance(parsed[0], str) else None


def unboxed(solution: str) -> str:
    r"""A solution with its `\boxed{X}` written as `X` (an SFT target boxes the gold once, at the end).

    >>> unboxed(r"So $r = 3$ and the point is $\boxed{(3, \frac{\pi}{2})}.$")
    'So $r = 3$ and the point is $(3, \\frac{\\pi}{2}).$'
    """

    while (box := BOX_OPEN.search(solution)) is not None:
        close = matching_brace(solution, box.end() - 1)
        if close is None:
            return solution
        solution = solution[: box.start()] + solution[box.end() : close] + solution[close + 1 :]
    return solution


class MathTask(Task):
    """Non-numeric golds, compared by math-verify (the fast path first, for numbers)."""

    def gold(self, value: object) -> str | None:

        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            return None
        text = value.strip()
        return text if text and (gold_is_gradable(text) or verified_parse(text) is not None) else None

    def reasoning(self, solution: str) -> str:
        return unboxed(solution).strip()

    def answers_equal(self, answer: str, gold: object) -> bool:
        from math_verify import verify


        gold_text = self.gold(gold)
        if gold_text is None or not isinstance(answer, str) or not answer.strip():
            return False
        if gold_is_gradable(gold_text) and answers_equal(answer, gold_text):
            return True  # the fast exact path: 18 = 18.0 = \frac{36}{2}
        answer_parsed, gold_parsed = verified_parse(answer), verified_parse(gold_text)
        if answer_parsed is None or gold_parsed is None:
            return False
        return bool(call_math_verify(verify, gold_parsed, answer_parsed, timeout_seconds=math_verify_timeout()))

    def grade(self, completion: object, gold: object):

        gold_text = self.gold(gold)
        return grade_with(
            completion, gold_text is not None, lambda answer: answer is not None and self.answers_equal(answer, gold_text)
        )


TASK = MathTask(
    name="math",
    question_column="problem",
    answer_column="answer",
    solution_column="solution",
    answer_help="the final answer in LaTeX, e.g. \\frac{\\pi}{2} or (3, 4) or \\text{(C)}",
)
