"""GSM8K: a `question`, and an `answer` whose reasoning ends with `#### <number>`.

The one gold-answer normaliser of the project lives here (:func:`normalize_gold`): the loader,
the grader and the rewards all read a gold answer through it.
"""

from __future__ import annotations

import re

from rl_math.grading.grader import GOLD_MARKER, answers_equal, gold_is_gradable, grade, normalize_gold
from rl_math.tasks import Task

_CALCULATOR_ANNOTATION = re.compile(r"<<[^<>]*>>")


def solution_reasoning(solution: str) -> str:
    """The reasoning part of a GSM8K solution: before `####`, calculator annotations removed.

    >>> solution_reasoning("She sold 48/2 = <<48/2=24>>24 clips.\\n#### 24")
    'She sold 48/2 = 24 clips.'
    """
    reasoning = solution.rsplit(GOLD_MARKER, 1)[0] if GOLD_MARKER in solution else solution
    return _CALCULATOR_ANNOTATION.sub("", reasoning).strip()


class GSM8KTask(Task):
    """Numeric golds, graded by the grader's fast exact path; SFT reasoning is the solution before `####`."""

    def gold(self, value: object) -> str | None:

        text = normalize_gold(value)
        return text if text is not None and gold_is_gradable(text) else None

    def reasoning(self, solution: str) -> str:
        return solution_reasoning(solution)

    def grade(self, completion: object, gold: object):

        return grade(completion, gold)

    def answers_equal(self, answer: str, gold: object) -> bool:

        return answers_equal(answer, gold)


TASK = GSM8KTask(
    name="gsm8k",
    question_column="question",
    answer_column="answer",
    solution_column="answer",
    answer_help="a GSM8K solution ending in '#### <number>' or the number itself",
)
