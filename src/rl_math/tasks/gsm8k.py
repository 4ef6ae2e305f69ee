"""GSM8K: a `question`, and an `answer` whose reasoning ends with `#### <number>`.

The one gold-answer normaliser of the project lives here (:func:`normalize_gold`): the loader,
the grader and the rewards all read a gold answer through it.
"""

from __future__ import annotations

import re
from fractions import Fraction

from rl_math.tasks import Task

_GOLD_MARKER = "####"
_CALCULATOR_ANNOTATION = re.compile(r"<<[^<>]*>>")


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
    if _GOLD_MARKER in gold:
        answer = gold.rsplit(_GOLD_MARKER, 1)[1].strip()
        answer = answer.replace(",", "").rstrip(".").strip()
        return answer or None
    answer = gold.strip()
    return answer if answer and "\n" not in answer else None


def solution_reasoning(solution: str) -> str:
    """The reasoning part of a GSM8K solution: before `####`, calculator annotations removed.

    >>> solution_reasoning("She sold 48/2 = <<48/2=24>>24 clips.\\n#### 24")
    'She sold 48/2 = 24 clips.'
    """
    reasoning = solution.rsplit(_GOLD_MARKER, 1)[0] if _GOLD_MARKER in solution else solution
    return _CALCULATOR_ANNOTATION.sub("", reasoning).strip()


class GSM8KTask(Task):
    """Numeric golds, graded by the grader's fast exact path; SFT reasoning is the solution before `####`."""

    def gold(self, value: object) -> str | None:
        from rl_math.rewards.grader import gold_is_gradable

        text = normalize_gold(value)
        return text if text is not None and gold_is_gradable(text) else None

    def reasoning(self, solution: str) -> str:
        return solution_reasoning(solution)

    def grade(self, completion: object, gold: object):
        from rl_math.rewards.grader import grade

        return grade(completion, gold)

    def answers_equal(self, answer: str, gold: object) -> bool:
        from rl_math.rewards.grader import answers_equal

        return answers_equal(answer, gold)


TASK = GSM8KTask(
    name="gsm8k",
    question_column="question",
    answer_column="answer",
    solution_column="answer",
    answer_help="a GSM8K solution ending in '#### <number>' or the number itself",
)
