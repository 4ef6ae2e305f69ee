"""benchmarks/_stats.py: the learning benchmark's paired statistics (its doctests, and the properties a reviewer checks)."""

import doctest
import importlib.util
import math
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "_stats.py"
_spec = importlib.util.spec_from_file_location("benchmark_stats", _PATH)
stats = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(stats)


def test_doctests():
    assert doctest.testmod(stats).failed == 0


def test_t_interval_matches_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    values = [0.12, -0.03, 0.2, 0.07, 0.15, 0.01, 0.09, 0.11, -0.02, 0.3]
    lo, hi = stats.paired(values)["ci95"]
    expected = scipy_stats.t.interval(0.95, len(values) - 1, loc=sum(values) / len(values), scale=scipy_stats.sem(values))
    assert lo == pytest.approx(expected[0], abs=1e-3) and hi == pytest.approx(expected[1], abs=1e-3)


def test_an_interval_straddles_zero_when_seeds_disagree():
    result = stats.paired([0.2, -0.2, 0.1, -0.1])
    assert result["ci95"][0] < 0 < result["ci95"][1] and result["positive"] == 2


def test_pooled_bootstrap_is_wider_than_zero_and_centred_on_the_mean():
    a = [[1, 0] * 50 for _ in range(5)]
    b = [[0, 0] * 50 for _ in range(5)]
    result = stats.pooled_bootstrap(a, b, resamples=300)
    assert result["mean"] == pytest.approx(0.5)
    assert result["ci95"][0] < 0.5 < result["ci95"][1]


def test_gain_vs_level_is_nan_without_spread():
    assert math.isnan(stats.gain_vs_level([0.5, 0.5], [0.1, 0.2])["slope"])
