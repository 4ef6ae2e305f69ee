"""The pipeline teaches math: GRPO with the real rewards raises held-out accuracy; controls must not.

The shortened protocol of `benchmarks/learning.py --quick` (one seed, 100 GRPO steps, 400 test
questions): a tiny Qwen2 model is trained from scratch with SFT on one-digit addition word problems,
then GRPO runs from it three times — with the shipped reward mix, with correctness's weight
negated, and on a train split whose gold answers are permuted. A bug in the grader, the reward
weights, the answer column, the prompt format or the advantage's sign breaks one of the checks.
Margins come from the full benchmark (BENCHMARKS.md, "Learning"): GRPO gained +25 to +35 points
over SFT on every seed; the negated control fell to 0 %; the shuffled control lost accuracy.
"""

import json
import subprocess
import sys

import pytest
from recipe_runs import REPO_ROOT, offline_env

SEED = 1
MARGIN = 0.15  # points of held-out accuracy (as a fraction) no run-to-run noise reaches


@pytest.fixture(scope="module")
def protocol(tmp_path_factory):
    out = tmp_path_factory.mktemp("learning")
    report = out / "report.json"
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "learning.py"), "--quick", "--seeds", str(SEED),
         "--stages", "grpo", "negated", "shuffled", "--workers", "1", "--out", str(out), "--json", str(report)],
        cwd=REPO_ROOT, env=offline_env(), capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(report.read_text())["seeds"][str(SEED)]


def test_sft_from_scratch_lands_part_way(protocol):
    assert 0.1 <= protocol["sft"]["accuracy"] <= 0.7


def test_grpo_with_the_shipped_rewards_raises_held_out_accuracy_over_sft(protocol):
    assert protocol["grpo"]["accuracy"] >= protocol["sft"]["accuracy"] + MARGIN


def test_grpo_held_out_accuracy_rises_from_its_step_0_baseline(protocol):
    curve = [accuracy for _, accuracy in protocol["grpo"]["held_out_curve"]]
    assert max(curve[1:]) >= curve[0] + MARGIN


def test_the_best_checkpoint_is_the_highest_held_out_accuracy_and_survives_pruning(protocol):
    curve = protocol["grpo"]["held_out_curve"]
    best_step, best_accuracy = max(curve[1:], key=lambda point: point[1])  # the first of equal bests
    assert protocol["grpo"]["best_checkpoint"] == {"step": best_step, "accuracy": best_accuracy, "kept": True}


def test_negated_correctness_loses_accuracy(protocol):
    assert protocol["negated"]["accuracy"] <= protocol["sft"]["accuracy"] - MARGIN


def test_negated_correctness_is_stopped_by_the_accuracy_drop_alarm(protocol):
    assert "accuracy_drop" in protocol["negated"]["stop_reason"]


def test_shuffled_answers_teach_nothing(protocol):
    assert protocol["shuffled"]["accuracy"] <= protocol["sft"]["accuracy"] + 0.05
