"""The benchmark scripts stay runnable: --help works, the GPU scripts refuse a CPU clearly, the
recipe-overhead comparison runs end to end in its quick mode."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO_ROOT / "benchmarks"
SCRIPTS = ["reward_throughput.py", "recipe_overhead.py", "startup.py", "gpu_grpo_step.py", "plan_vs_measured.py", "bare_grpo.py",
           "learning.py", "checkpoint_checksum.py", "async_generation.py", "learning_diagnostics.py",
           "learning_headline.py"]


def run(script: str, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", WANDB_MODE="disabled")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "src"), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize("script", [s for s in SCRIPTS if s != "bare_grpo.py"])
def test_help(script):
    result = run(script, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage" in result.stdout.lower()


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(_has_cuda(), reason="a GPU is present: the scripts would run for real")
@pytest.mark.parametrize("script", ["gpu_grpo_step.py", "plan_vs_measured.py"])
def test_gpu_scripts_refuse_a_cpu_with_a_clear_message(script):
    result = run(script, "--model-config", "unused")
    assert result.returncode == 2
    assert "needs a CUDA GPU" in result.stderr and "--cpu-smoke" in result.stderr


def test_plan_vs_measured_compares_a_measurement(tmp_path):
    """The comparison half, fed a hand-made measurement of the tiny model (no GPU involved)."""
    from transformers import Qwen2Config

    from rl_math.tools import memory_plan

    Qwen2Config(vocab_size=600, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2).save_pretrained(tmp_path)
    step = {"counts": {"max_sequence_tokens": 40}, "seconds": {}, "generation_phase_peak": 0, "rest_of_step_peak": 0}
    result = {"model_config": str(tmp_path), "completion_tokens": 8, "micro_batch": 4, "gradient_accumulation_steps": 2,
              "gradient_checkpointing": True, "steps": [step]}
    settings = memory_plan.RunSettings.from_yaml(
        {"per_device_train_batch_size": 4, "gradient_accumulation_steps": 2, "max_completion_length": 8,
         "dtype": "bfloat16", "bf16": True}, prompt_tokens=32)
    expected = memory_plan.plan_memory(memory_plan.model_shape(str(tmp_path)), settings, "ddp", 1).peak_allocated
    step["generation_phase_peak"] = step["rest_of_step_peak"] = expected * 1.1  # the plan 9 % under
    path = tmp_path / "steps.json"
    path.write_text(json.dumps({"device": "made up", "results": [result]}))
    out = run("plan_vs_measured.py", "--from-json", str(path))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "-9.1%" in out.stdout and "ok" in out.stdout


def _seed_folder(out: Path, seed: int, variant_options: str, grpo_seconds: float, completions: list[tuple[str, str, str]]):
    """A learning.py seed folder as the worker leaves it: result.json, a GRPO trainer_state, test completions."""
    folder = out / f"seed_{seed}"
    (folder / "grpo").mkdir(parents=True)
    (folder / "eval_test").mkdir()
    stages = {"sft_matched": {"train_seconds": 100.0, "optimizer_steps": 400},
              "grpo": {"train_seconds": grpo_seconds, "optimizer_steps": 100}}
    (folder / "result.json").write_text(json.dumps({"stages": stages, "options": {"variant_options": variant_options}}))
    logs = [{"loss": 0.0, "rewards/correctness/mean": 0.25, "groups/no_signal": 0.2},
            {"loss": 0.0, "rewards/correctness/mean": 0.5, "groups/no_signal": 0.0}]
    (folder / "grpo" / "trainer_state.json").write_text(json.dumps({"global_step": 100, "log_history": logs}))
    rows = [{"model": model, "prompt": [{"role": "user", "content": question}], "completion": completion,
             "correct": completion.endswith(f"{{{sum(map(int, question.split()[2::2]))}}}.")}
            for model, question, completion in completions]
    (folder / "eval_test" / "completions.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_learning_diagnostics_groups_seeds_by_variant_and_averages_what_benchmarks_quotes(tmp_path):
    carry, plain = "What is 28 + 15 ?", "What is 21 + 13 ?"
    _seed_folder(tmp_path, 11, "&flawed_carry=0.6", grpo_seconds=100.0, completions=[
        ("grpo", carry, "28 + 15 = 33.\nThe answer is \\boxed{43}."),  # worked line drops the carry, box right
        ("grpo", plain, "21 + 13 = 34.\nThe answer is \\boxed{34}."),
        ("rl-math:tiny-qwen2?seed=11", carry, "no idea")])
    _seed_folder(tmp_path, 12, "&flawed_carry=0.6", grpo_seconds=300.0, completions=[
        ("grpo", carry, "28 + 15 = 43.\nThe answer is \\boxed{43}."),
        ("grpo", plain, "21 + 13 = 34.\nThe answer is \\boxed{35}.")])
    _seed_folder(tmp_path, 13, "", grpo_seconds=100.0, completions=[("round_2/model", plain, "21 + 13 = 34.\nThe answer is \\boxed{34}.")])
    out = run("learning_diagnostics.py", str(tmp_path), "--json", str(tmp_path / "d.json"))
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "d.json").read_text())
    assert sorted(report["runs"]) == ["clean", "flawed"] and sorted(report["runs"]["flawed"]) == ["11", "12"]
    flawed = report["summary"]["flawed"]
    assert flawed["grpo"]["train_correctness_first"] == 0.25 and flawed["grpo"]["train_correctness_last"] == 0.5
    assert flawed["grpo"]["groups_no_signal"] == pytest.approx(0.1)
    assert flawed["grpo_step_over_sft_step_median"] == pytest.approx((4.0 + 12.0) / 2)  # per-seed ratios 4 and 12
    grpo = flawed["test_completions"]["grpo"]
    assert grpo["accuracy_carry"] == 1.0 and grpo["accuracy_no_carry"] == 0.5
    assert grpo["worked_line_right"] == 0.75 and grpo["worked_line_agrees_with_box"] == 0.5
    assert report["runs"]["flawed"]["11"]["test_completions"]["base"]["accuracy_carry"] == 0.0
    assert flawed["paired_test_completions"]["grpo-sft_matched_carry"] == {"mean": None, "positive": 0, "n": 0}  # no sft_matched
    assert report["summary"]["clean"]["test_completions"]["ei"]["accuracy_no_carry"] == 1.0  # EI's last round is `ei`
    kept = run("learning_diagnostics.py", "--keep", str(tmp_path / "d.json"))  # no folders: the earlier seeds stay
    assert json.loads(kept.stdout)["runs"] == report["runs"]


def _report(path: Path, variant: str, seeds: int, **comparisons: tuple[float, float, float]) -> Path:
    """A learning.py report with only what the headline reads: comparisons as (mean, low, high) in points."""
    found = {name.replace("_minus_", "-"): {"mean": mean / 100, "ci95": [low / 100, high / 100], "n": seeds, "positive": 1,
                                             "pooled_bootstrap": {"ci95": [low / 100, high / 100]}}
             for name, (mean, low, high) in comparisons.items()}
    path.write_text(json.dumps({"protocol": {"variant": variant, "reporting_seeds": list(range(11, 21))},
                                "comparisons": found}))
    return path


def test_learning_headline_reads_each_verdict_off_the_t_interval(tmp_path):
    flawed = _report(tmp_path / "f.json", "flawed", 10, grpo_minus_sft=(20, 15, 25), grpo_minus_sft_matched=(-8, -15, -1),
                     grpo_minus_ei=(1, -3, 5))
    clean = _report(tmp_path / "c.json", "clean", 4, grpo_minus_sft=(20, 10, 30), grpo_minus_sft_matched=(-7, -30, 19),
                    grpo_minus_ei=(-1, -9, 7))
    out = run("learning_headline.py", str(flawed), str(clean))
    assert out.returncode == 0, out.stderr
    rows = {line.split(" | ")[0].lstrip("| "): line for line in out.stdout.splitlines()}
    assert "flawed: holds: the 95 % interval is above 0" in rows["1. GRPO with the shipped rewards improves over its SFT start"]
    assert "clean: holds, so far" in rows["1. GRPO with the shipped rewards improves over its SFT start"]  # 4 of 10 seeds
    claim_2 = rows["2. With flawed demonstrations, GRPO beats SFT given the same wall time"]
    assert claim_2.endswith("| GRPO loses: the 95 % interval is below 0 (1/10 seeds > 0) |")
    assert "-8.0 [-15.0, -1.0]" in claim_2 and "-7.0" not in claim_2  # the clean comparison is claim 3b's
    assert "flawed: not shown: the interval includes 0" in rows["3a. GRPO against expert iteration, same budget"]


def test_benchmarks_md_learning_v2_tables_are_the_committed_reports_written_out():
    """Every number of BENCHMARKS.md §0's tables and headline comes from the JSON next to it, as --markdown writes it."""
    sys.path.insert(0, str(BENCHMARKS))
    import learning
    import learning_headline

    text = (REPO_ROOT / "BENCHMARKS.md").read_text()
    reports = {variant: json.loads((BENCHMARKS / "results" / f"learning-v2-{variant}.json").read_text())
               for variant in ("flawed", "clean")}
    for variant, report in reports.items():
        assert len(report["seeds"]) == len(report["protocol"]["reporting_seeds"]), variant
        assert learning.markdown(report) in text, f"§0's {variant} tables differ from its report: rerun --markdown"
    assert learning_headline.headline(reports) in text, "§0's headline differs from the reports: rerun learning_headline.py"


@pytest.mark.slow
def test_recipe_overhead_quick_mode_runs():
    result = run("recipe_overhead.py", "--steps", "2", "--repeats", "1", "--warmup", "1", "--no-aa", timeout=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "ratio ours/bare, median step" in out
    assert "same data (dataset fingerprint)       yes" in out
    assert "same computation (losses, rewards)    yes" in out
    assert "PreemptionCallback, HealthCallback" in out
