r"""Math answer extraction and equivalence: the grader every reward and the evaluation share.

Where the final answer is
-------------------------
1. **Answer region.** With a think block, the text after the *last* ``</think>``; an unclosed
   ``<think>`` (a truncated completion, or a new ``<think>`` after the last ``</think>``) means there
   is no answer region at all. Without think tags, the whole completion.
2. **Answer blocks (r1 format).** If the region holds ``<answer>…</answer>`` blocks, only their
   content counts (an unclosed ``<answer>`` means no answer). A block without a box is itself the
   answer: ``<answer>18</answer>`` answers 18.
3. **Boxes.** Otherwise the answers are the contents of the top-level ``\boxed{…}`` in the region,
   with balanced braces. Accepted spellings: ``\boxed{…}``, ``\boxed {…}`` and ``\fbox{…}``
   (``\boxed 18`` without braces is not an answer). A box nested in a box is part of its content:
   ``\boxed{\boxed{18}}`` is one answer, 18. An unbalanced box (``\boxed{18``) is a malformed answer.

An empty box (``\boxed{}``, the instruction's placeholder echoed back) is no answer at all.
Several answers in the region must all equal the gold answer: ``\boxed{18} … \boxed{19}`` is a
hedge and scores 0, ``\boxed{18} … \boxed{18.0}`` is fine for correctness (but not well-formed).

When two answers are equal
--------------------------
Equality is mathematical, decided by a fast exact path first: the answer is cleaned of
presentation (``\$``, ``$…$``, ``\%``, degrees, ``\text{…}``/``\textbf{…}``/``\mathrm{…}``
wrappers, ``\left``/``\right``, LaTeX spaces, thousands separators ``1,080``/``1\,080``/``1\, 080``/
``1 080``, trailing words such as units ``18 apples`` or ``12 m²``, a leading label ``x =`` or
``The answer is``), then
evaluated exactly with :class:`fractions.Fraction` (``+ - * / ^``, ``\frac``/``\dfrac``/``\tfrac``
including ``\frac12``, parentheses and braces, decimals, ``1.8e1``, mixed numbers ``2 1/2``).

Only what this path cannot read -- an answer with a symbolic command such as ``\sqrt`` or ``\pi``,
or a gold answer that is not a number -- goes to math-verify, and only when it is short, a single
expression (no words, no lists, no ``or``) and free of expressions that could make sympy hang
(towers of powers, factorials, huge literals). The fallback's verdict counts only if it parsed
the answer as a single sympy expression (never a set or a relation).

Conventions a careful human might argue with (all tested):

* ``1.080`` is one point zero eight, never one thousand and eighty (no European separators).
* The percent sign is dropped, the number compared as written: ``50\%`` equals gold ``50`` but
  not gold ``0.5`` (GSM8K golds are written in the unit the question asks for).
* Comparisons are exact: ``0.33`` does not equal ``1/3``.
* Trailing words are units and ignored (``18 dollars``), unless they contain a digit
  (``18 or 19``), a conjunction or a fraction word (``18 and a half``); a scale word multiplies
  (``1.5 million``); ``dozen`` is a unit, not 12.
* ``x = 18`` is 18; in ``2 \times 9 = 18`` every side must agree, else the answer is rejected.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

# The grader's public names, wherever they are defined in this package (one import for callers)
from rl_math.grading.answers import (  # noqa: F401
    ANSWER_CLOSE,
    ANSWER_OPEN,
    BOX_OPEN,
    MAX_ANSWER_CHARS,
    MAX_DISTINCT_ANSWERS,
    MAX_TEXT_CHARS,
    THINK_CLOSE,
    THINK_OPEN,
    FinalAnswers,
    answer_region,
    boxed_contents,
    final_answers,
    matching_brace,
)
from rl_math.grading.numbers import _clean_latex, _is_label, parse_number
from rl_math.grading.symbolic import MAX_SYMBOLIC_CHARS, sympy_safe, verified_equal, verified_parse
from rl_math.grading.text import assistant_message, completion_text, prompt_text  # noqa: F401

__all__ = [
    "FinalAnswers",
    "Verdict",
    "answer_region",
    "answers_equal",
    "assistant_message",
    "completion_text",
    "final_answers",
    "grade",
    "grade_with",
    "gold_is_gradable",
    "normalize_gold",
    "parse_number",
    "prompt_text",
]

# --------------------------------------------------------------------------------------------
# The math-verify fallback (symbolic answers), guarded

_SYMBOLIC_COMMANDS = frozenset("sqrt pi frac dfrac tfrac cdot times div left right".split())
_COMMAND = re.compile(r"\\([A-Za-z]+)")
_SINGLE_DIGIT_POWER = re.compile(r"\^(?:\d(?!\d)|\{-?\d\})")


def _fallback_allowed(answer: str) -> bool:
    """Whether an answer the fast path could not read may be handed to math-verify.

    What a numeric task's answer may be when it is not a number: a single expression with a
    square root, pi or one one-letter variable -- no words, no lists, no relations, no functions,
    single-digit powers only -- within the one bound on what sympy sees (:func:`sympy_safe`).
    """
    if not sympy_safe(answer):
        return False
    commands = _COMMAND.findall(answer)
    if any(command not in _SYMBOLIC_COMMANDS for command in commands):
        return False
    plain = _COMMAND.sub(" ", answer)
    if re.search(r"[A-Za-z]{2,}|[,;!=<>&|%$'_]|\\\\", plain):
        return False
    if answer.count("^") != len(_SINGLE_DIGIT_POWER.findall(answer)):
        return False
    variables = set(re.findall(r"[A-Za-z]", plain))
    return len(variables) <= 1 and ("sqrt" in commands or "pi" in commands or bool(variables))


def _symbolic_parse(answer: str):
    """math-verify's parse of a fallback-allowed answer, if it is a single sympy expression; else None."""
    if not _fallback_allowed(answer):
        return None
    parsed = verified_parse(answer)
    if parsed is None:
        return None
    import sympy  # heavy; verified_parse has loaded it by now

    return parsed if isinstance(parsed[0], sympy.Expr) else None


def _as_sympy(value: Fraction | str):
    """math-verify's representation of an exact value or of a guarded symbolic answer; or None."""
    if isinstance(value, Fraction):
        import sympy

        return [sympy.Rational(value.numerator, value.denominator), str(value)]
    return _symbolic_parse(value.strip())


def _without_label(answer: str) -> str | None:
    r"""`x = \sqrt{2}` → `\sqrt{2}`; None when a left-hand side is not a mere label."""
    if "=" not in answer:
        return answer
    left, right = answer.rsplit("=", 1)
    cleaned_left = _clean_latex(left) if len(left) <= MAX_SYMBOLIC_CHARS else None
    if cleaned_left is None or not all(_is_label(side) for side in cleaned_left.split("=")):
        return None
    return right


def _symbolic_equal(gold: Fraction | str, answer: Fraction | str) -> bool:
    """math-verify's verdict, for what the fast path could not decide."""
    if isinstance(answer, str):
        answer = _without_label(answer)
        if answer is None:
            return False
    answer_parsed = _as_sympy(answer)
    gold_parsed = None if answer_parsed is None else _as_sympy(gold)
    return verified_equal(gold_parsed, answer_parsed)


# --------------------------------------------------------------------------------------------
# Gold answers and grading

# A gold may be written the GSM8K way (a solution ending `#### 1,080`) or bare; every task's gold
# passes through this one reader, so grading never needs to know which task wrote it.
GOLD_MARKER = "####"


def normalize_gold(gold: object) -> str | None:
    """The gold answer as text, or None when there is none.

    A GSM8K solution is cut after its last `####`, where the answer is a number: thousands
    separators and a trailing period are dropped. A bare answer (a number from a JSON file, a
    short answer such as `(3, \\frac{\\pi}{2})`) is kept as written, stripped: its commas may be
    part of it, and the grader reads `1,080` as 1080 anyway. A bare answer on several lines is
    not an answer.

    >>> normalize_gold("48/2 = <<48/2=24>>24 clips.\\n#### 1,080"), normalize_gold(72), normalize_gold(" 1,080 ")
    ('1080', '72', '1,080')
    >>> normalize_gold("(3, 4)"), normalize_gold(""), normalize_gold("no\\nanswer"), normalize_gold(None)
    ('(3, 4)', None, None, None)
    """
    if isinstance(gold, bool) or gold is None:
        return None
    if isinstance(gold, (int, float, Fraction)):
        gold = str(gold)  # `{"answer": 18}` in a JSON file
    if not isinstance(gold, str):
        return None
    if GOLD_MARKER in gold:
        answer = gold.rsplit(GOLD_MARKER, 1)[1].strip()
        answer = answer.replace(",", "").rstrip(".").strip()
        return answer or None
    answer = gold.strip()
    return answer if answer and "\n" not in answer else None




def _gold_value(gold: object) -> Fraction | str | None:
    """The gold's exact value, the gold text when only math-verify can read it, or None."""
    gold_text = normalize_gold(gold)
    if gold_text is None or len(gold_text) > MAX_ANSWER_CHARS:
        return None
    return _gold_text_value(gold_text)


def gold_is_gradable(gold: object) -> bool:
    """Whether the grader can read this gold answer (if not, every completion scores 0 against it).

    >>> gold_is_gradable("#### 18"), gold_is_gradable(r"\\frac{1}{2}"), gold_is_gradable("two")
    (True, True, False)
    """
    return _gold_value(gold) is not None


@lru_cache(maxsize=16384)
def _gold_text_value(gold: str) -> Fraction | str | None:
    value = parse_number(gold)
    if value is not None:
        return value
    symbolic = _without_label(gold)
    return symbolic if symbolic is not None and _symbolic_parse(symbolic.strip()) is not None else None


def _matches(answer: str | None, gold: Fraction | str) -> bool:
    if answer is None or not answer.strip() or len(answer) > MAX_ANSWER_CHARS:
        return False
    value = parse_number(answer)
    if value is not None and isinstance(gold, Fraction):
        return value == gold
    return _symbolic_equal(gold, answer if value is None else value)


def answers_equal(answer: str, gold: object) -> bool:
    r"""Whether a bare answer (no box needed) is mathematically equal to the gold answer.

    >>> answers_equal(r"\frac{36}{2}", "18"), answers_equal("1.080", "1080")
    (True, False)
    """
    gold_value = _gold_value(gold)
    return gold_value is not None and isinstance(answer, str) and _matches(answer, gold_value)


@dataclass(frozen=True)
class Verdict:
    """The grader's decision on one completion.

    correct: every final answer equals the gold answer (and there is at least one).
    well_formed: exactly one non-empty final answer in the answer region (one box, or one
        `<answer>` block without a box).
    extracted: the last final answer (None if there is none or it is unbalanced).
    gold_parseable: the gold answer could be read; if not, `correct` is False and means nothing.
    n_answers: how many final answers the answer region holds.
    """

    correct: bool
    well_formed: bool
    extracted: str | None
    gold_parseable: bool
    n_answers: int


def grade(completion: object, gold: object) -> Verdict:
    r"""Grade one completion (text or message list) against a gold answer (bare or GSM8K solution).

    >>> grade(r"<think>9*2 = 18</think> The answer is \boxed{\$18.00}.", "#### 18")
    Verdict(correct=True, well_formed=True, extracted='\\$18.00', gold_parseable=True, n_answers=1)
    >>> grade(r"\boxed{18} or maybe \boxed{19}", "18").correct
    False
    """
    gold_value = _gold_value(gold)
    return grade_with(completion, gold_value is not None, lambda answer: _matches(answer, gold_value))


def grade_with(completion: object, gold_parseable: bool, matches: Callable[[str | None], bool]) -> Verdict:
    """Grade one completion with a task's comparator: `matches(answer)` says whether one final answer
    equals the gold (a task with non-numeric golds brings its own, see :mod:`rl_math.tasks.math`)."""
    text = completion_text(completion)
    found = final_answers(text)
    distinct = set(found.answers)
    correct = (
        gold_parseable
        and bool(found.answers)
        and len(distinct) <= MAX_DISTINCT_ANSWERS
        and all(matches(answer) for answer in distinct)
    )
    extracted = found.answers[-1].strip() if found.answers and found.answers[-1] is not None else None
    return Verdict(
        correct=correct,
        well_formed=found.single is not None,
        extracted=extracted,
        gold_parseable=gold_parseable,
        n_answers=len(found.answers),
    )
