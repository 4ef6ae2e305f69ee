"""Paired statistics over seeds for the learning benchmark (tests/test_benchmark_stats.py runs the doctests).

A comparison such as grpo − sft is paired: both stages start from the same SFT model of a seed and
are scored on the same questions, so the unit is the per-seed difference.

- :func:`paired` — mean difference, 95 % Student-t interval, sign count, min–max (secondary);
- :func:`pooled_bootstrap` — the same mean from per-question correctness, with a bootstrap that
  resamples seeds and questions (clusters) independently, when per-question outcomes are pooled;
- :func:`gain_vs_level` — how a gain depends on the SFT level it started from (slope and r).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

# Two-sided 95 % Student-t quantiles t(0.975, df); beyond the table the next smaller listed df is
# used (conservative), and 1.96 from df 1000 on.
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
         11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
         20: 2.086, 25: 2.060, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980, 1000: 1.962}


def t_quantile_975(df: int) -> float:
    """t(0.975, df), the multiplier of a 95 % two-sided interval.

    >>> t_quantile_975(9), t_quantile_975(22), t_quantile_975(5000)
    (2.262, 2.086, 1.962)
    """
    if df < 1:
        raise ValueError(f"a t interval needs at least 2 values (df >= 1), got df={df}")
    return _T975[max(k for k in _T975 if k <= df)]


def paired(differences: Sequence[float]) -> dict:
    """Mean, 95 % t interval, n, sign count and min–max of per-seed differences.

    `positive` counts differences > 0 (ties count as not positive). With one value the interval is
    [nan, nan]: one seed says nothing about the spread.

    >>> r = paired([0.10, 0.20, 0.30, 0.05, 0.15])
    >>> round(r["mean"], 3), [round(x, 3) for x in r["ci95"]], r["n"], r["positive"], r["min"], r["max"]
    (0.16, [0.041, 0.279], 5, 5, 0.05, 0.3)
    >>> paired([0.1])["ci95"]
    [nan, nan]
    """
    values = [float(v) for v in differences]
    if not values:
        raise ValueError("no differences to summarise")
    mean = statistics.fmean(values)
    if len(values) > 1:
        half = t_quantile_975(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
        ci95 = [mean - half, mean + half]
    else:
        ci95 = [math.nan, math.nan]
    return {"mean": mean, "ci95": ci95, "n": len(values), "positive": sum(v > 0 for v in values),
            "min": min(values), "max": max(values)}


def pooled_bootstrap(a: Sequence[Sequence[int]], b: Sequence[Sequence[int]], resamples: int = 2000,
                     seed: int = 0) -> dict:
    """Mean of a − b over seeds × questions (0/1 correctness), with a 95 % percentile bootstrap
    that resamples seeds and questions independently (questions are clusters shared by all seeds).

    `a[s][q]`, `b[s][q]`: seed s, question q, the same questions in the same order for every seed.

    >>> a = [[1, 1, 0, 1], [1, 0, 0, 1], [1, 1, 1, 1]]
    >>> b = [[0, 1, 0, 1], [0, 0, 0, 1], [1, 0, 1, 1]]
    >>> r = pooled_bootstrap(a, b, resamples=500)
    >>> round(r["mean"], 3), r["n_seeds"], r["n_questions"], r["ci95"][0] <= r["mean"] <= r["ci95"][1]
    (0.25, 3, 4, True)
    """
    import numpy as np

    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if diff.ndim != 2 or diff.size == 0:
        raise ValueError(f"need seeds × questions outcomes of one shape, got shape {diff.shape}")
    n_seeds, n_questions = diff.shape
    rng = np.random.default_rng(seed)
    seed_counts = rng.multinomial(n_seeds, [1 / n_seeds] * n_seeds, size=resamples)  # resamples × seeds
    question_counts = rng.multinomial(n_questions, [1 / n_questions] * n_questions, size=resamples)
    means = np.einsum("rs,sq,rq->r", seed_counts, diff, question_counts) / (n_seeds * n_questions)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"mean": float(diff.mean()), "ci95": [float(low), float(high)], "n_seeds": n_seeds,
            "n_questions": n_questions, "resamples": resamples}


def gain_vs_level(levels: Sequence[float], gains: Sequence[float]) -> dict:
    """Least-squares slope of gain on starting level, and Pearson's r (nan when undefined).

    A strongly negative slope says seeds that started lower gained more: the mean gain then
    depends on where SFT happened to stop.

    >>> r = gain_vs_level([0.3, 0.5, 0.7], [0.3, 0.2, 0.1])
    >>> round(r["slope"], 3), round(r["r"], 3), r["n"]
    (-0.5, -1.0, 3)
    """
    n = len(levels)
    if n != len(gains):
        raise ValueError(f"{n} levels but {len(gains)} gains")
    if n < 2:
        return {"slope": math.nan, "r": math.nan, "n": n}
    mx, my = statistics.fmean(levels), statistics.fmean(gains)
    sxx = sum((x - mx) ** 2 for x in levels)
    syy = sum((y - my) ** 2 for y in gains)
    sxy = sum((x - mx) * (y - my) for x, y in zip(levels, gains))
    slope = sxy / sxx if sxx else math.nan
    r = sxy / math.sqrt(sxx * syy) if sxx and syy else math.nan
    return {"slope": slope, "r": r, "n": n}
