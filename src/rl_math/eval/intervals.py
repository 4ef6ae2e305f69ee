"""95 % intervals for accuracies, so a difference between two numbers can be told from noise.

The unit drawn is the question, so the interval is the Wilson score interval over questions of
the mean accuracy (right at 0 % and 100 %, where the normal approximation collapses to a point).
With one sample per question that is the textbook interval; with k samples per question each
question's accuracy lies in [0, 1], so its variance is at most p(1 - p) and the interval is
conservative (it never claims more precision than the questions give).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

Z95 = 1.959963984540054


def wilson_interval(p: float, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion `p` measured on `n` units.

    >>> [round(x, 3) for x in wilson_interval(0.0, 8)], [round(x, 3) for x in wilson_interval(660 / 1319, 1319)]
    ([0.0, 0.324], [0.473, 0.527])
    """
    if n <= 0:
        return (0.0, 1.0)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(max(0.0, p * (1 - p)) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def accuracy_interval(per_question: Sequence[float]) -> tuple[float, float]:
    """The 95 % interval of a mean accuracy from each question's fraction of correct samples.

    >>> [round(x, 3) for x in accuracy_interval([1, 0, 1, 1])]
    [0.301, 0.954]
    >>> [round(x, 3) for x in accuracy_interval([0.0, 0.0, 0.0, 0.0])]  # k samples, all wrong: still uncertain
    [0.0, 0.49]
    """
    if not per_question:
        return (0.0, 1.0)
    return wilson_interval(statistics.fmean(per_question), len(per_question))


def format_interval(value: float, interval: Sequence[float] | None) -> str:
    """`49.6% [46.9, 52.3]`: the accuracy and its interval, in percent.

    >>> format_interval(0.496, (0.469, 0.523)), format_interval(0.5, None)
    ('49.6% [46.9, 52.3]', '50.0%')
    """
    if interval is None:
        return f"{100 * value:.1f}%"
    return f"{100 * value:.1f}% [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"
