"""The GRPO recipe end to end on the offline tiny model: runs, saves, resumes, learns, scales to 2 processes."""

import json
import statistics

import pytest
import yaml
from recipe_runs import FIXTURES, REPO_ROOT, accelerate_launch, metric_series, offline_env, ok, run_probe, run_recipe

from rl_math.cli import main as cli_main
from rl_math.config import parse_config
from rl_math.methods import recipe_dataclasses

pytestmark = pytest.mark.slow
SMOKE = str(REPO_ROOT / "configs" / "smoke.yaml")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """The smoke config, shortened: 4 steps, a checkpoint every 2."""
    out = tmp_path_factory.mktemp("smoke")
    result = ok(run_recipe("grpo", SMOKE, "--output_dir", str(out), "--max_steps", "4", "--save_steps", "2"))
    return out, result


def test_smoke_run_shows_progress_and_reward_metrics(smoke_run):
    out, result = smoke_run
    assert "4/4" in result.stderr  # the Trainer's progress bar
    assert metric_series(out, "rewards/correctness/mean")
    assert metric_series(out, "rewards/termination/mean")


def test_rl_math_samples_reads_the_smoke_runs_completions(smoke_run, capsys):
    out, _ = smoke_run
    assert cli_main(["samples", str(out)]) == 0
    assert "step 4" in capsys.readouterr().out


def test_the_smoke_config_raises_no_alarm_that_a_random_model_always_earns():
    health = parse_config(recipe_dataclasses("grpo"), [SMOKE]).instances[3]
    assert health.action_for("shape_only") == "off" and health.action_for("reward_trap") != "off"


def test_smoke_run_writes_checkpoints(smoke_run):
    out, _ = smoke_run
    assert (out / "checkpoint-2" / "model.safetensors").is_file()
    assert (out / "checkpoint-4" / "trainer_state.json").is_file()


def test_smoke_run_saves_model_tokenizer_config_and_metrics(smoke_run):
    out, _ = smoke_run
    assert (out / "model.safetensors").is_file()
    assert (out / "tokenizer.json").is_file()
    resolved = yaml.safe_load((out / "rl_math_config.yaml").read_text())
    assert resolved["max_steps"] == 4 and resolved["rewards"][0]["name"] == "correctness"
    metrics = json.loads((out / "final_metrics.json").read_text())
    assert metrics["step"] == 4 and "reward" in metrics


def test_resuming_a_finished_run_trains_no_further(smoke_run):
    from safetensors.torch import load_file

    out, _ = smoke_run
    before = load_file(out / "model.safetensors")
    ok(run_recipe("grpo", SMOKE, "--output_dir", str(out), "--max_steps", "4", "--save_steps", "2",
                   "--resume_from_checkpoint", "true"))
    steps = [e["step"] for e in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in e]
    assert steps == [1, 2, 3, 4]
    after = load_file(out / "model.safetensors")
    assert all((before[name] == after[name]).all() for name in before)


def test_resume_continues_from_last_checkpoint(smoke_run):
    out, _ = smoke_run
    result = ok(run_recipe("grpo", SMOKE, "--output_dir", str(out), "--max_steps", "6", "--save_steps", "2",
                            "--resume_from_checkpoint", "true"))
    assert "resuming from" in result.stdout and "checkpoint-4" in result.stdout
    steps = [e["step"] for e in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in e]
    assert steps == [1, 2, 3, 4, 5, 6]  # the first four come from the checkpoint, not a rerun


def test_bad_batch_fails_before_any_model_loads(tmp_path):
    result = run_recipe("grpo", SMOKE, "--output_dir", str(tmp_path), "--num_generations", "3")
    assert result.returncode != 0
    assert "must be divisible by num_generations 3" in result.stderr
    assert "Loading weights" not in result.stderr


def test_unknown_reward_fails_with_the_known_ones(tmp_path):
    result = run_recipe("grpo", SMOKE, "--output_dir", str(tmp_path), "--rewards", "[{name: corectness}]")
    assert result.returncode != 0
    assert "correctness" in result.stderr and "boxed_format" in result.stderr


def _learning_run(tmp_path, weight: float) -> list[float]:
    config = yaml.safe_load((FIXTURES / "learning.yaml").read_text())
    config["rewards"][0]["weight"] = weight
    config["output_dir"] = str(tmp_path / f"weight{weight:+g}")
    path = tmp_path / f"learning{weight:+g}.yaml"
    path.write_text(yaml.safe_dump(config))
    ok(run_recipe("grpo", str(path)))
    return metric_series(config["output_dir"], "rewards/low_token_share/mean")


def test_grpo_raises_a_learnable_reward(tmp_path):
    shares = _learning_run(tmp_path, weight=1.0)
    first, last = statistics.mean(shares[:5]), statistics.mean(shares[-5:])
    assert last > first + 0.1, f"reward did not rise: {shares}"


def test_negative_weight_drives_the_reward_down(tmp_path):
    # The same reward with its sign flipped through the YAML weight must go the other way.
    shares = _learning_run(tmp_path, weight=-1.0)
    first, last = statistics.mean(shares[:5]), statistics.mean(shares[-5:])
    assert last < first - 0.1, f"reward did not fall: {shares}"


def _checksum(model_path) -> float:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_path)
    return sum(float(p.detach().double().abs().sum()) for p in model.parameters())


def test_two_processes_train_one_data_parallel_model(tmp_path, tiny_model_path):
    probe = tmp_path / "probe"
    result = ok(run_probe(
        "grpo", SMOKE,
        "--output_dir", str(tmp_path / "out"), "--max_steps", "2", "--save_strategy", "no",
        "--per_device_train_batch_size", "4",
        launcher=accelerate_launch(2, port=29613), env=offline_env(PROBE_DIR=str(probe)),
    ))
    ranks = [json.loads((probe / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2], result.stdout[-2000:]
    assert all(r["wrapped_model"] == "DistributedDataParallel" for r in ranks)
    assert ranks[0]["checksum"] == ranks[1]["checksum"]  # same update applied on both ranks
    assert ranks[0]["global_step"] == 2
    assert ranks[0]["checksum"] != pytest.approx(_checksum(tiny_model_path), rel=1e-9)  # it did train


def test_lora_with_reference_model_saves_an_adapter(tmp_path):
    out = tmp_path / "lora"
    result = ok(run_recipe("grpo", SMOKE, "--output_dir", str(out), "--max_steps", "2", "--save_strategy", "no",
                            "--use_peft", "--lora_r", "8", "--lora_target_modules", "q_proj", "v_proj",
                            "--beta", "0.04"))
    assert "PeftModelForCausalLM" in result.stdout
    assert (out / "adapter_model.safetensors").is_file()
    assert metric_series(out, "kl")  # beta > 0: a reference model is in use


def test_config_error_is_one_line_without_traceback(tmp_path):
    result = run_recipe("grpo", SMOKE, "--output_dir", str(tmp_path), "--learnin_rate", "1e-6")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "grpo.py: error: unknown config key 'learnin_rate' on the command line; did you mean 'learning_rate'?"
    )
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("recipe", ["grpo", "sft"])
def test_negative_max_steps_is_a_config_error_in_every_training_recipe(recipe, tmp_path):
    config = {"grpo": SMOKE, "sft": "configs/sft_smoke.yaml"}[recipe]
    result = run_recipe(recipe, config, "--output_dir", str(tmp_path), "--max_steps", "-5")
    assert result.returncode == 2 and "max_steps is -5" in result.stderr


def test_a_stop_alarm_exits_with_its_own_status_and_records_why(tmp_path):
    # correctness alone on a random model: every group scores 0, so reward_trap holds from step 1
    result = run_recipe("grpo", SMOKE, "--output_dir", str(tmp_path), "--max_steps", "6", "--save_steps", "10",
                        "--rewards", "[{name: correctness}]", "--health_actions", "{reward_trap: stop}",
                        "--health_patience", "2")
    assert result.returncode == 3, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "final_metrics.json").read_text())
    assert metrics["stop_reason"] == "health alarm reward_trap at step 2" and metrics["step"] == 2


def test_resume_on_a_generation_boundary_reproduces_the_uninterrupted_run(tmp_path):
    from safetensors.torch import load_file

    # two optimizer steps per generation; constant LR so that the first leg's shorter max_steps changes nothing
    common = ("--steps_per_generation", "2", "--save_steps", "2", "--lr_scheduler_type", "constant")
    ok(run_recipe("grpo", SMOKE, "--output_dir", str(tmp_path / "whole"), "--max_steps", "4", *common))
    ok(run_recipe("grpo", SMOKE, "--output_dir", str(tmp_path / "split"), "--max_steps", "2", *common))
    ok(run_recipe("grpo", SMOKE, "--output_dir", str(tmp_path / "split"), "--max_steps", "4", *common,
                   "--resume_from_checkpoint", "true"))
    whole, split = (load_file(tmp_path / run / "model.safetensors") for run in ("whole", "split"))
    assert all((whole[name] == split[name]).all() for name in whole)


def test_the_saved_config_reruns_to_the_same_values(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    ok(run_recipe("grpo", SMOKE, "--output_dir", str(first), "--max_steps", "1", "--save_strategy", "no"))
    ok(run_recipe("grpo", str(first / "rl_math_config.yaml"), "--output_dir", str(second)))
    saved = [yaml.safe_load((out / "rl_math_config.yaml").read_text()) for out in (first, second)]
    assert {k: v for k, v in saved[0].items() if k != "output_dir"} == {
        k: v for k, v in saved[1].items() if k != "output_dir"
    }
