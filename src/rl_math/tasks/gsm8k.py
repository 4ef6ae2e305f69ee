"""GSM8K answer conventions: the gold answer is the text after the last `####` line."""

from __future__ import annotations

import re

_GOLD_MARKER = "####"
_CALCULATOR_ANNOTATION = re.compile(r"<<[^<>]*>>")


def gold_answer_from_solution(solution: str) -> str | None:
    """The normalised gold answer of a GSM8K solution, or None when it has no `####` answer.

    Thousands separators are removed, surrounding whitespace and a trailing period dropped.

    >>> gold_answer_from_solution("48/2 = <<48/2=24>>24 clips.\\n#### 1,080")
    '1080'
    >>> gold_answer_from_solution("no marker") is None
    True
    """
    if not isinstance(solution, str) or _GOLD_MARKER not in solution:
        return None
    answer = solution.rsplit(_GOLD_MARKER, 1)[1].strip()
    answer = answer.replace(",", "").rstrip(".").strip()
    return answer or None


def solution_reasoning(solution: str) -> str:
    """The reasoning part of a GSM8K solution: before `####`, calculator annotations removed.

    >>> solution_reasoning("She sold 48/2 = <<48/2=24>>24 clips.\\n#### 24")
    'She sold 48/2 = 24 clips.'
    """
    reasoning = solution.rsplit(_GOLD_MARKER, 1)[0] if _GOLD_MARKER in solution else solution
    return _CALCULATOR_ANNOTATION.sub("", reasoning).strip()
