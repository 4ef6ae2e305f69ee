"""95 % intervals for accuracies, so a difference between two numbers can be told from noise.

One sample per question: the Wilson score interval over the questions (right at 0 % and 100 %,
where the normal approximation collapses to a point). k samples per question: the samples of a
question are not independent, so the interval is the normal one over the per-question means
(the question is the unit that was drawn), clipped to [0, 1].
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion.

    >>> [round(x, 3) for x in wilson_interval(0, 8)], [round(x, 3) for x in wilson_interval(660, 1319)]
    ([0.0, 0.324], [0.473, 0.527])
    """
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def accuracy_interval(per_question: Sequence[float], num_samples: int) -> tuple[float, float]:
    """The 95 % interval of a mean accuracy from each question's fraction of correct samples.

    >>> [round(x, 3) for x in accuracy_interval([1, 0, 1, 1], num_samples=1)]
    [0.301, 0.954]
    >>> [round(x, 3) for x in accuracy_interval([0.5, 0.25, 0.75, 0.5], num_samples=4)]
    [0.3, 0.7]
    """
    n = len(per_question)
    if num_samples == 1 or n < 2:
        return wilson_interval(round(sum(per_question)), n)
    mean = statistics.fmean(per_question)
    half = Z95 * statistics.stdev(per_question) / math.sqrt(n)
    return (max(0.0, mean - half), min(1.0, mean + half))


def format_interval(value: float, interval: Sequence[float] | None) -> str:
    """`49.6% [46.9, 52.3]`: the accuracy and its interval, in percent.

    >>> format_interval(0.496, (0.469, 0.523)), format_interval(0.5, None)
    ('49.6% [46.9, 52.3]', '50.0%')
    """
    if interval is None:
        return f"{100 * value:.1f}%"
    return f"{100 * value:.1f}% [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"
