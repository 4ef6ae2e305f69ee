"""RLOO, the method added as one file: it trains on the shared rewards, logs them, evaluates in-run,
saves, resumes and refuses bad input before loading anything, like GRPO."""

import json

import pytest
import yaml
from recipe_runs import REPO_ROOT, metric_series, ok, run_recipe

pytestmark = pytest.mark.slow
SMOKE_RLOO = str(REPO_ROOT / "configs" / "smoke_rloo.yaml")


@pytest.fixture(scope="module")
def rloo_run(tmp_path_factory):
    """The RLOO smoke config, shortened: 4 steps, a checkpoint and an in-run evaluation every 2."""
    out = tmp_path_factory.mktemp("rloo")
    result = ok(run_recipe("rloo", SMOKE_RLOO, "--output_dir", str(out), "--max_steps", "4", "--save_steps", "2",
                            "--eval_accuracy_steps", "2", "--eval_questions", "4"))
    return out, result


def test_rloo_logs_every_shared_reward(rloo_run):
    out, _ = rloo_run
    for name in ("correctness", "boxed_format", "termination", "repetition_penalty"):
        assert metric_series(out, f"rewards/{name}/mean"), name


def test_rloo_evaluates_held_out_accuracy_during_the_run(rloo_run):
    out, _ = rloo_run
    assert len(metric_series(out, "eval_accuracy")) == 3  # steps 0, 2 and 4


def test_rloo_saves_what_a_grpo_run_saves(rloo_run):
    out, _ = rloo_run
    assert (out / "checkpoint-2" / "model.safetensors").is_file()
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    resolved = yaml.safe_load((out / "rl_math_config.yaml").read_text())
    assert resolved["max_steps"] == 4 and resolved["rewards"][0]["name"] == "correctness"
    assert json.loads((out / "final_metrics.json").read_text())["step"] == 4


def test_rloo_resumes_from_its_last_checkpoint(rloo_run):
    out, _ = rloo_run
    result = ok(run_recipe("rloo", SMOKE_RLOO, "--output_dir", str(out), "--max_steps", "6", "--save_steps", "2",
                            "--eval_accuracy_steps", "2", "--eval_questions", "4", "--resume_from_checkpoint", "true"))
    assert "checkpoint-4" in result.stdout
    steps = [e["step"] for e in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in e]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_rloo_refuses_a_bad_batch_before_any_model_loads(tmp_path):
    result = run_recipe("rloo", SMOKE_RLOO, "--output_dir", str(tmp_path), "--num_generations", "3")
    assert result.returncode == 2
    assert "num_generations 3" in result.stderr and "Loading weights" not in result.stderr
