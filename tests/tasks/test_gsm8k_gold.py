"""On the real GSM8K (both splits): every gold answer parses, and `correctness` scores it exactly.

The data lives beside the repository in ../shared/data/gsm8k (read-only, never copied in).
"""

import json
from fractions import Fraction
from pathlib import Path

import pytest

from rl_math.grading.grader import normalize_gold, parse_number
from rl_math.rewards import correctness

GSM8K_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "gsm8k"
SPLITS = ["train", "test"]


@pytest.fixture(scope="module", params=SPLITS)
def split(request):
    path = GSM8K_DIR / f"{request.param}.jsonl"
    if not path.is_file():
        pytest.skip(f"GSM8K {request.param} split not found at {path} (expected ../shared/data/gsm8k beside the repo)")
    with path.open() as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    gold_values = [parse_number(normalize_gold(row["answer"]) or "") for row in rows]
    return rows, gold_values


def thousands(value: Fraction) -> str:
    """1080 → '1,080' (integers only; GSM8K golds are integers)."""
    return f"{int(value):,}"


def box(answers):
    return [f"Let me compute step by step.\nSo the answer is \\boxed{{{answer}}}." for answer in answers]


def test_every_gold_answer_parses(split):
    rows, gold_values = split
    unparsed = [row["answer"][-80:] for row, value in zip(rows, gold_values) if value is None]
    assert not unparsed, f"{len(unparsed)} gold answers do not parse, e.g. {unparsed[:3]}"


def test_every_gold_answer_is_an_integer(split):
    _, gold_values = split
    assert all(value.denominator == 1 for value in gold_values)


def test_boxed_gold_answer_scores_one(split):
    rows, gold_values = split
    golds = [row["answer"] for row in rows]
    scores = correctness(box(str(int(value)) for value in gold_values), answer=golds)
    assert scores == [1.0] * len(rows)


def test_boxed_gold_plus_one_scores_zero(split):
    rows, gold_values = split
    golds = [row["answer"] for row in rows]
    scores = correctness(box(str(int(value) + 1) for value in gold_values), answer=golds)
    assert scores == [0.0] * len(rows)


def test_boxed_gold_with_thousands_separator_scores_one(split):
    rows, gold_values = split
    golds = [row["answer"] for row in rows]
    scores = correctness(box(thousands(value) for value in gold_values), answer=golds)
    assert scores == [1.0] * len(rows)


def test_boxed_gold_in_dollars_with_cents_scores_one(split):
    rows, gold_values = split
    golds = [row["answer"] for row in rows]
    scores = correctness(box(f"\\${thousands(value)}.00" for value in gold_values), answer=golds)
    assert scores == [1.0] * len(rows)


def test_boxed_gold_with_units_after_think_scores_one(split):
    rows, gold_values = split
    golds = [row["answer"] for row in rows]
    completions = [
        f"<think>{row['question'][:200]}</think> \\boxed{{{int(value)} \\text{{ units}}}}"
        for row, value in zip(rows, gold_values)
    ]
    assert correctness(completions, answer=golds) == [1.0] * len(rows)
