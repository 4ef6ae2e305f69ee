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
           "learning.py", "checkpoint_checksum.py", "async_generation.py"]


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


@pytest.mark.slow
def test_recipe_overhead_quick_mode_runs():
    result = run("recipe_overhead.py", "--steps", "2", "--repeats", "1", "--warmup", "1", "--no-aa", timeout=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "ratio ours/bare, median step" in out
    assert "same data (dataset fingerprint)       yes" in out
    assert "same computation (losses, rewards)    yes" in out
    assert "PreemptionCallback, HealthCallback" in out
