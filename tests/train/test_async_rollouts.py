"""Asynchronous generation: a sampler process generates max_staleness steps ahead of the trainer."""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Listener
from pathlib import Path

import pytest
import torch
import yaml
from conftest import LEARNING_CI_SEED
from recipe_runs import REPO_ROOT, accelerate_launch, offline_env, ok, run_recipe
from safetensors.torch import load_file
from test_learning import MARGIN as LEARNING_MARGIN

from rl_math import exit_status
from rl_math.errors import ConfigError
from rl_math.train.async_rollouts import (
    RECORD_FILE,
    SAMPLER_DIR,
    SamplerClient,
    SamplerFailure,
    check_async_generation,
    importance_weights,
    round_schedule,
)

SMOKE = REPO_ROOT / "configs" / "smoke.yaml"


# --------------------------------------------------------------------------------------------
# The pieces


def test_equal_log_probs_weigh_exactly_one_in_every_mode():
    logps = torch.randn(3, 5)
    mask = torch.ones(3, 5)
    for mode in ("token_truncate", "token_mask", "sequence_truncate", "sequence_mask"):
        weights, stats = importance_weights(logps, logps.clone(), mask, mode=mode, clip_max=2.0)
        assert torch.equal(weights, torch.ones_like(weights)), mode
        assert (stats["log_ratio_max"], stats["clipped_frac"]) == (0.0, 0.0)


def test_truncation_caps_a_token_weight_and_masking_zeroes_the_sequence():
    trainer = torch.tensor([[0.0, 0.0, 0.0]])
    sampler = torch.tensor([[0.0, -2.0, 0.0]])  # the trainer likes token 1 e² ≈ 7.4 times more
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    weights, stats = importance_weights(trainer, sampler, mask, mode="token_truncate", clip_max=2.0)
    assert weights.tolist() == [[1.0, 2.0, 1.0]]
    assert stats["clipped_frac"] == 0.5 and stats["log_ratio_max"] == 2.0
    weights, stats = importance_weights(trainer, sampler, mask, mode="sequence_mask", clip_max=3.0)
    assert weights.tolist() == [[0.0]] and stats["clipped_frac"] == 1.0


def test_padding_tokens_do_not_count():
    weights, stats = importance_weights(torch.zeros(1, 2), torch.tensor([[0.0, -9.0]]), torch.tensor([[1.0, 0.0]]))
    assert weights.tolist() == [[1.0, 1.0]] and stats["log_ratio_max"] == 0.0


def test_a_round_is_trained_by_the_optimizer_step_of_its_first_micro_batch():
    # steps_per_generation 4, gradient accumulation 2: one round every 4 micro-batches, i.e. every 2 steps
    assert [round_schedule(m, 4, 2) for m in range(0, 9, 4)] == [(0, 0), (1, 2), (2, 4)]


def test_async_generation_refuses_dynamic_sampling_in_one_sentence():
    with pytest.raises(ConfigError, match=r"^async_generation cannot be combined with dynamic_sampling: .*; turn"):
        check_async_generation({"async_generation": True, "dynamic_sampling": True}, set())


def test_async_generation_truncates_per_token_unless_told_otherwise():
    values = {"async_generation": True, "vllm_importance_sampling_mode": "sequence_mask",
              "vllm_importance_sampling_clip_max": 3.0}
    check_async_generation(values, explicit=set())
    assert (values["vllm_importance_sampling_mode"], values["vllm_importance_sampling_clip_max"]) == (
        "token_truncate", 2.0)
    values["vllm_importance_sampling_mode"] = "sequence_mask"
    check_async_generation(values, explicit={"vllm_importance_sampling_mode"})
    assert values["vllm_importance_sampling_mode"] == "sequence_mask"


def test_a_sampler_that_never_answers_fails_after_the_timeout(tmp_path, monkeypatch):
    monkeypatch.setenv("RL_MATH_SAMPLER_AUTHKEY", "test-key")
    listener = Listener(("127.0.0.1", 0), authkey=b"test-key")
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    client = SamplerClient(str(tmp_path), timeout_s=1.0, address=f"127.0.0.1:{listener.address[1]}")
    started = time.monotonic()
    with pytest.raises(SamplerFailure, match=r"sent no ready within step_timeout_s=1 s"):
        client.hello(str(tmp_path), {}, [0], 0)
    assert time.monotonic() - started < 5
    client.close(stop=False)
    listener.close()


# --------------------------------------------------------------------------------------------
# Runs of the recipe


def _config(tmp_path, name: str, **overrides) -> str:
    config = yaml.safe_load(SMOKE.read_text())
    config.update(rewards=[{"name": "async_rewards:alternating_recorded", "weight": 1.0}],
                  max_completion_length=12, eval_accuracy_steps=0, logging_steps=1, max_steps=4,
                  save_strategy="steps", save_steps=2, async_generation=True, max_staleness=1,
                  step_timeout_s=120, output_dir=str(tmp_path / name))
    config.update(overrides)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def _records(output_dir) -> list[dict]:
    return [json.loads(line) for line in (Path(output_dir) / RECORD_FILE).read_text().splitlines()]


def _prompts(log: Path) -> list[list[str]]:
    return [json.loads(line)["prompts"] for line in log.read_text().splitlines()]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """4 async steps of the smoke config, a checkpoint at step 2, and its prompt log."""
    tmp_path = tmp_path_factory.mktemp("async")
    ok(run_recipe("grpo", _config(tmp_path, "run"), env=offline_env(PROMPT_LOG=str(tmp_path / "prompts.jsonl"))))
    return tmp_path


@pytest.mark.slow
def test_every_batch_is_trained_within_the_staleness_bound_once_and_in_order(uninterrupted):
    records = _records(uninterrupted / "run")
    assert [r["step"] for r in records] == [0, 1, 2, 3]
    assert [r["age"] for r in records] == [0, 1, 1, 1]  # round 1 is submitted with the step-0 weights too
    assert all(r["step"] - r["version"] == r["age"] <= 1 for r in records)
    assert (uninterrupted / "run" / "checkpoint-2" / "async_rollouts.pt").exists()
    assert not list((uninterrupted / "run" / SAMPLER_DIR).glob("weights-v[01].pt"))  # consumed weights removed


@pytest.mark.slow
def test_the_prompts_are_the_synchronous_runs(uninterrupted, tmp_path):
    log = tmp_path / "prompts.jsonl"
    ok(run_recipe("grpo", _config(tmp_path, "sync", async_generation=False, save_strategy="no"),
                   env=offline_env(PROMPT_LOG=str(log))))
    assert _prompts(log) == _prompts(uninterrupted / "prompts.jsonl")


@pytest.mark.slow
def test_a_killed_run_resumes_on_the_surviving_sampler_to_the_uninterrupted_weights(uninterrupted, tmp_path):
    config = _config(tmp_path, "killed")
    out = tmp_path / "killed"
    log = (tmp_path / "killed.log").open("w")
    trainer = subprocess.Popen([sys.executable, str(REPO_ROOT / "recipes" / "grpo.py"), config], cwd=REPO_ROOT,
                               env=offline_env(STALL_FROM_STEP="2"), stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)  # its own group: the supervisor and the trainer die together
    marker = out / "checkpoint-2" / "rl_math_checkpoint_complete.json"
    deadline = time.monotonic() + 300
    while not marker.exists() and trainer.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert marker.exists(), (tmp_path / "killed.log").read_text()[-3000:]
    os.killpg(trainer.pid, signal.SIGKILL)  # while step 3 is stalled: nothing of it is saved (the sampler has its own)
    trainer.wait()
    sampler_pid = json.loads((out / SAMPLER_DIR / "address.json").read_text())["pid"]
    os.kill(sampler_pid, 0)  # the sampler outlived its trainer

    result = ok(run_recipe("grpo", config, "--resume_from_checkpoint", "true"))
    assert f"reusing the running sampler (pid {sampler_pid})" in result.stdout + result.stderr
    assert [r["step"] for r in _records(out)] == [0, 1, 2, 3]  # step 2 trained once, nothing dropped
    resumed, reference = load_file(out / "model.safetensors"), load_file(uninterrupted / "run" / "model.safetensors")
    assert all(torch.equal(resumed[name], reference[name]) for name in reference)


@pytest.mark.slow
def test_a_dead_sampler_ends_the_run_with_one_sentence_and_the_stalled_status(tmp_path):
    out = tmp_path / "dead"
    trainer = subprocess.Popen([sys.executable, str(REPO_ROOT / "recipes" / "grpo.py"),
                                _config(tmp_path, "dead", max_steps=50, save_strategy="no", step_timeout_s=60)],
                               cwd=REPO_ROOT, env=offline_env(), stdout=subprocess.DEVNULL,
                               stderr=(tmp_path / "dead.log").open("w"))
    deadline = time.monotonic() + 300
    while not (out / RECORD_FILE).exists() and trainer.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.kill(json.loads((out / SAMPLER_DIR / "address.json").read_text())["pid"], signal.SIGKILL)
    killed = time.monotonic()
    trainer.wait(timeout=90)
    stderr = (tmp_path / "dead.log").read_text()
    assert trainer.returncode == exit_status.STALLED, stderr[-3000:]
    assert time.monotonic() - killed < 60  # well within step_timeout_s
    (line,) = [x for x in stderr.splitlines() if x.startswith("async generation:")]  # one line, one sentence
    assert "sampler process" in line and "died" in line and line.count(". ") == 0


@pytest.mark.slow
def test_two_processes_share_one_sampler_and_staleness_zero_is_on_policy(tmp_path):
    config = _config(tmp_path, "ddp", max_steps=2, save_strategy="no", max_staleness=0)
    ok(run_recipe("grpo", config, launcher=accelerate_launch(2, 29731)))
    records = _records(tmp_path / "ddp")
    assert [r["age"] for r in records] == [0, 0]
    # every token's importance ratio within 1e-3 of 1: |exp(log r) - 1| < 1e-3 for the largest |log r|
    assert all(math.expm1(r["log_ratio_max"]) < 1e-3 for r in records), [r["log_ratio_max"] for r in records]
    shutil.rmtree(tmp_path / "ddp")


@pytest.mark.slow
def test_the_learning_benchmarks_quick_grpo_stage_learns_with_async_generation(learning_sft_model, tmp_path):
    """The quick protocol of tests/test_learning.py, GRPO stage only, from the same SFT model (its
    controls are the synchronous test's)."""
    report = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "learning.py"), "--quick", "--seeds", str(LEARNING_CI_SEED),
         "--sft-model", str(learning_sft_model), "--stages", "grpo", "--workers", "1",
         "--set", "grpo.async_generation=true", "--out", str(tmp_path), "--json", str(report)],
        cwd=REPO_ROOT, env=offline_env(), capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    seed = json.loads(report.read_text())["seeds"][str(LEARNING_CI_SEED)]
    assert seed["grpo"]["accuracy"] >= seed["sft"]["accuracy"] + LEARNING_MARGIN
    records = _records(tmp_path / f"seed_{LEARNING_CI_SEED}" / "grpo")
    steps = yaml.safe_load((tmp_path / f"seed_{LEARNING_CI_SEED}" / "grpo" / "rl_math_config.yaml").read_text())["max_steps"]
    assert len(records) == steps and max(r["age"] for r in records) == 1  # max_staleness 1, never older
