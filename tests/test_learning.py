"""The learning benchmark v2 (benchmarks/learning.py) in its CI form, and its frozen protocol.

One tuning seed (LEARNING_CI_SEED), validation split only, `--quick` (60 GRPO steps, 200 validation
questions): the session's SFT model (the `learning_sft_model` fixture: configs/learning/sft.yaml,
stopped once validation passes 50 %), then GRPO with the shipped rewards, RLOO with the same rewards
and budget (a validation-only stage in protocol v2), and GRPO with
correctness negated *with* the `accuracy_drop` stop on (the protocol runs its controls to the end
with health stops off; this is the test that the stop still fires). A bug in the held-out task, the
grader, the reward weights, the advantage's sign or the benchmark's bookkeeping breaks a check.

Margins hold on every tuning seed, run by hand on 2026-12-07 02:44-02:50 UTC with the very commands
of this test (2-core shared CPU, load average ~6; benchmarks/results/learning-v2-quick-seed{6,7}.json;
percent of 200 validation questions, `--quick`):

    seed  SFT   GRPO (gain)    RLOO (gain)    negated (loss, stopped at)
    6     48.0  62.5 (+14.5)   60.0 (+12.0)   0.5 (-47.5, step 45)
    7     62.0  69.5  (+7.5)   67.0  (+5.0)   10.0 (-52.0, step 45)

MARGIN (5 points) is under the smallest GRPO gain (+7.5) and negated loss (-47.5); RLOO_MARGIN
(3 points) under RLOO's smallest gain (+5.0, seed 7, which sits exactly on 5).
"""

import json
import subprocess
import sys

import pytest
from conftest import LEARNING_CI_SEED
from recipe_runs import REPO_ROOT, offline_env

BENCHMARK = REPO_ROOT / "benchmarks" / "learning.py"
MARGIN = 0.05  # of validation accuracy: the smallest GRPO gain and negated loss over the tuning seeds exceed it
RLOO_MARGIN = 0.03  # RLOO's smallest gain over the tuning seeds is +5.0 points (seed 7)
NEGATED_STOP = ["--set", "negated.eval_accuracy_steps=15", "--set", "negated.eval_questions=100",
                "--set", "negated.dataset_test_split=validation", "--set", "negated.eval_generation_batch_size=100",
                "--set", "negated.health_actions={accuracy_drop: stop}"]


def run_benchmark(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCHMARK), *args], cwd=REPO_ROOT, env=offline_env(),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def report(learning_sft_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("learning")
    result = run_benchmark("--quick", "--seeds", str(LEARNING_CI_SEED), "--sft-model", str(learning_sft_model),
                           "--stages", "grpo", "rloo", "negated", *NEGATED_STOP, "--out", str(out), "--json", str(out / "r.json"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads((out / "r.json").read_text())


@pytest.fixture(scope="module")
def stages(report):
    return report["seeds"][str(LEARNING_CI_SEED)]


@pytest.mark.slow
def test_sft_stops_at_a_middle_validation_level(stages):
    stop = stages["sft"]["sft_stop"]  # eval_stop_at_accuracy ended it before its 3000-step bound
    assert stop["step"] < 3000 and stop["validation_accuracy"] >= 0.5
    assert 0.25 <= stages["sft"]["accuracy"] <= 0.8


@pytest.mark.slow
def test_grpo_with_the_shipped_rewards_raises_accuracy_on_held_out_facts(stages):
    assert stages["grpo"]["accuracy"] >= stages["sft"]["accuracy"] + MARGIN


@pytest.mark.slow
def test_rloo_with_the_same_rewards_and_budget_raises_accuracy_on_held_out_facts(stages):
    assert stages["rloo"]["optimizer_steps"] == 60 and stages["rloo"]["flops"] > 0
    assert stages["rloo"]["accuracy"] >= stages["sft"]["accuracy"] + RLOO_MARGIN


@pytest.mark.slow
def test_negated_correctness_loses_accuracy_and_the_accuracy_drop_stop_fires(stages):
    assert stages["negated"]["accuracy"] <= stages["sft"]["accuracy"] - MARGIN
    assert "accuracy_drop" in stages["negated"]["stop_reason"]


@pytest.mark.slow
def test_the_report_has_the_protocol_costs_and_paired_comparisons(report, stages):
    assert report["protocol"]["version"] == 2 and len(report["protocol"]["sha256"]) == 64
    assert "quick" in report["protocol"]["deviations"]  # a CI run is never mistaken for the protocol
    grpo = stages["grpo"]
    assert grpo["optimizer_steps"] == 60 and grpo["flops"] > 0 and grpo["seconds"] > 0
    assert len(grpo["correct"]) == grpo["n_questions"] == 200 and len(grpo["correct_trained"]) == 200
    comparison = report["comparisons"]["grpo-sft"]
    assert comparison["n"] == 1 and comparison["mean"] == pytest.approx(grpo["accuracy"] - stages["sft"]["accuracy"])
    assert set(comparison) >= {"mean", "ci95", "n", "positive", "pooled_bootstrap", "vs_sft_level"}


def test_the_frozen_protocol_names_the_stage_configs_as_committed():
    """A changed stage config is a new protocol version: freeze it again (BENCHMARKS.md §0, protocol log)."""
    sys.path.insert(0, str(BENCHMARK.parent))
    import learning

    protocol = learning.load_protocol()
    assert learning.deviations(protocol) == []
    assert sorted(protocol["config_sha256"]) == sorted(p.name for p in learning.CONFIGS.glob("*.yaml"))
    assert not set(protocol["tuning_seeds"]) & set(protocol["reporting_seeds"])
    assert not set(range(1, 6)) & set(protocol["reporting_seeds"]) and len(protocol["reporting_seeds"]) >= 10


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--reporting", "--seeds", "6"], "are not reporting seeds"),
        (["--reporting", "--quick"], "change the protocol"),
        (["--reporting", "--stages", "grpo", "rloo"], "run on the validation split only"),
        (["--seeds", "11"], "are reporting seeds"),
        (["--set", "grpo=1"], "write STAGE.FIELD=VALUE"),
    ],
)
def test_the_test_splits_and_reporting_seeds_are_guarded(args, message):
    result = run_benchmark(*args, timeout=60)
    assert result.returncode == 2 and message in result.stderr
