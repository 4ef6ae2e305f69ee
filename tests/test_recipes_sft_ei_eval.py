"""The SFT, expert-iteration and evaluation recipes end to end on the offline tiny model (subprocesses)."""

import json
import re
from pathlib import Path

import pytest
import yaml
from recipe_runs import REPO_ROOT, metric_series, ok, run_recipe

CONFIGS = REPO_ROOT / "configs"
slow = pytest.mark.slow


# --------------------------------------------------------------------------------------------
# Every shipped config parses with its recipe's dataclasses (no model is loaded)


def _recipe_classes(name: str):
    from trl import ModelConfig, SFTConfig

    from rl_math.config import RecipeArguments
    from rl_math.eval.evaluate import EvalArguments
    from rl_math.methods.expert_iteration import ExpertIterationArguments

    if name.startswith("sft"):
        return [RecipeArguments, SFTConfig, ModelConfig]
    if name.startswith("ei"):
        return [RecipeArguments, SFTConfig, ModelConfig, ExpertIterationArguments]
    return [RecipeArguments, EvalArguments]


PIPELINE_CONFIGS = sorted(p.name for p in CONFIGS.glob("*.yaml") if p.name.startswith(("sft", "ei", "eval")))


def test_pipeline_configs_exist():
    assert {"sft_smoke.yaml", "sft_qwen0.5b.yaml", "sft_qwen1.5b.yaml", "sft_qwen3b.yaml", "sft_qwen7b.yaml",
            "ei_smoke.yaml", "ei_qwen1.5b.yaml", "eval.yaml", "eval_smoke.yaml"} <= set(PIPELINE_CONFIGS)


@pytest.mark.parametrize("name", PIPELINE_CONFIGS)
def test_config_parses(name, tmp_path):
    from rl_math.config import parse_config

    extra = ["--bf16", "false"] if not name.startswith("eval") else ["--model_name_or_path", "m"]
    parsed = parse_config(_recipe_classes(name), [str(CONFIGS / name), "--output_dir", str(tmp_path), *extra])
    text = (CONFIGS / name).read_text()
    if "qwen" in name:  # GPU configs say how to launch them, as the GRPO configs do
        assert re.search(r"^# rl-math: .*gpus=\d", text, re.M), name
        values = parsed.values
        assert values["model_name_or_path"].startswith("Qwen/Qwen2.5-")
        assert values["max_length"] == 1024 and values["packing"] is False
        lr = values["learning_rate"]
        assert 1e-6 <= lr <= 2e-5 or (values.get("use_peft") and lr == pytest.approx(1e-4))


# --------------------------------------------------------------------------------------------
# SFT


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sft")
    result = ok(run_recipe("sft", str(CONFIGS / "sft_smoke.yaml"), "--output_dir", str(out), "--max_steps", "6"))
    return out, result


@slow
def test_sft_logs_loss_and_saves_a_model(sft_run):
    out, result = sft_run
    losses = metric_series(out, "loss")
    assert len(losses) == 3 and all(loss > 0 for loss in losses)  # logging_steps 2, 6 steps
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    assert (out / "final_metrics.json").is_file()
    assert yaml.safe_load((out / "rl_math_config.yaml").read_text())["prompt_format"] == "boxed"
    # the recipe shows what the loss covers: the boxed target, up to the end of turn
    covered = re.search(r"the loss of row 0 covers: '(.*)'", result.stdout).group(1)
    assert covered.endswith(r"The answer is \\boxed{" + covered.split("boxed{")[-1].split("}")[0] + r"}.<|im_end|>\n")
    generation = json.loads((out / "generation_config.json").read_text())
    assert 2 in generation["eos_token_id"]  # <|im_end|> stops generation


# --------------------------------------------------------------------------------------------
# Expert iteration


@pytest.fixture(scope="module")
def ei_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ei")
    result = ok(run_recipe("expert_iteration", str(CONFIGS / "ei_smoke.yaml"), "--output_dir", str(out)))
    return out, result


@slow
def test_ei_round_writes_samples_accepted_model_and_metrics(ei_run):
    out, result = ei_run
    rdir = out / "round_1"
    samples = [json.loads(line) for line in (rdir / "samples.jsonl").read_text().splitlines()]
    accepted = [json.loads(line) for line in (rdir / "accepted.jsonl").read_text().splitlines()]
    metrics = json.loads((rdir / "metrics.json").read_text())
    assert len(samples) == 16 * 4  # ei_questions_per_round x ei_samples_per_question
    assert {s["question_index"] for s in samples} == set(range(16))
    # smoke filter: termination >= 1, i.e. the sample ended with a stop token
    assert all(s["accepted"] == s["eos"] for s in samples)
    assert 0 < len(accepted) <= sum(s["accepted"] for s in samples)
    assert metrics["n_accepted"] == sum(s["accepted"] for s in samples)
    assert metrics["n_selected"] == len(accepted)
    covered = len({s["question_index"] for s in samples if s["accepted"]})
    assert metrics["questions_with_accepted"] == covered
    assert metrics["trained"] is True and metrics["train"]["steps"] == 4
    assert (rdir / "model" / "model.safetensors").is_file()
    assert metrics["model_path"] == str(rdir / "model")
    assert (rdir / "train" / "trainer_state.json").is_file()
    assert not list((rdir / "train").glob("checkpoint-*"))
    assert metrics["eval"]["n_questions"] == 8 and 0.0 <= metrics["eval"]["accuracy"] <= 1.0
    assert len((rdir / "eval_completions.jsonl").read_text().splitlines()) == 8
    # the log reports the same counts and the eval accuracy
    assert f"round 1: {covered}/16 questions had at least one accepted sample" in result.stdout
    assert re.search(r"round 1: eval accuracy \d\.\d{4} on 8 questions", result.stdout)
    assert json.loads((out / "rounds.json").read_text())[0]["round"] == 1


@slow
def test_ei_evaluates_the_starting_model_once_as_the_bar_for_every_round(ei_run):
    out, result = ei_run
    start = json.loads((out / "start_eval.json").read_text())
    assert start["model_path"] == "rl-math:tiny-qwen2"
    assert start["eval"]["n_questions"] == 8
    assert re.search(r"start: eval accuracy \d\.\d{4} on 8 questions", result.stdout)


@slow
def test_ei_resumes_after_the_finished_round(ei_run):
    out, _ = ei_run
    finished = (out / "round_1" / "metrics.json").read_text()
    again = ok(run_recipe("expert_iteration", str(CONFIGS / "ei_smoke.yaml"), "--output_dir", str(out)))
    assert "all 1 rounds are finished" in again.stdout
    assert "sampling" not in again.stderr and "Loading weights" not in again.stderr
    # one more round with the default filter: resumes from round 1's model; a random model is never
    # correct, so nothing is accepted and the model carries over untrained
    more = ok(run_recipe("expert_iteration", str(CONFIGS / "ei_smoke.yaml"), "--output_dir", str(out),
                          "--ei_rounds", "2", "--ei_filter", "null"))
    assert f"resuming at round 2 from {out / 'round_1' / 'model'}" in more.stdout
    assert "correctness >= 1 and boxed_format >= 1 and termination >= 1" in more.stdout
    assert (out / "round_1" / "metrics.json").read_text() == finished  # round 1 was not redone
    round2 = json.loads((out / "round_2" / "metrics.json").read_text())
    assert round2["start_model"] == str(out / "round_1" / "model")
    assert round2["n_accepted"] == 0 and round2["trained"] is False
    assert round2["model_path"] == str(out / "round_1" / "model")
    assert (out / "round_2" / "model").resolve() == (out / "round_1" / "model").resolve()
    assert round2["eval"]["carried_over_from_round"] == 1
    assert [r["round"] for r in json.loads((out / "rounds.json").read_text())] == [1, 2]


@slow
def test_ei_rerun_of_a_finished_run_with_other_settings_is_refused(ei_run):
    out, _ = ei_run
    result = run_recipe("expert_iteration", str(CONFIGS / "ei_smoke.yaml"), "--output_dir", str(out),
                        "--learning_rate", "5e-4")
    assert result.returncode == 2 and "are finished with other settings (" in result.stderr
    assert "learning_rate: 0.001 → 0.0005" in result.stderr


# --------------------------------------------------------------------------------------------
# Evaluation


@slow
def test_evaluation_compares_two_models(sft_run, tmp_path):
    sft_out, _ = sft_run
    out = tmp_path / "eval"
    result = ok(run_recipe("evaluate", str(CONFIGS / "eval_smoke.yaml"), "--output_dir", str(out),
                            "--model_name_or_path", "rl-math:tiny-qwen2", str(sft_out)))
    metrics = json.loads((out / "metrics.json").read_text())
    names = ["rl-math:tiny-qwen2", sft_out.name]
    assert list(metrics["models"]) == names
    for name in names:
        model = metrics["models"][name]
        assert model["n_questions"] == 8 and model["num_samples"] == 2
        assert sum(model["buckets"].values()) == pytest.approx(1.0)
        assert {"pass@2", "maj@2", "zero_std_rate", "eos_rate", "truncation_rate"} <= set(model)
        assert set(model["rewards"]) == {"correctness", "boxed_format", "termination"}
    rows = [json.loads(line) for line in (out / "completions.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 8 * 2  # models x questions x k
    assert {"model", "question_index", "sample_index", "prompt", "completion", "gold", "extracted", "bucket",
            "rewards", "n_tokens", "truncated"} <= set(rows[0])
    assert all(r["n_tokens"] <= 48 for r in rows)
    from PIL import Image

    assert Image.open(out / "evaluation.png").text["rl_math:models"] == ",".join(names)
    assert "accuracy (pass@1)" in result.stdout and sft_out.name in result.stdout  # the rich table


@slow
def test_evaluation_on_real_gsm8k_test(gsm8k_dir, tmp_path):
    out = tmp_path / "eval"
    ok(run_recipe("evaluate", str(CONFIGS / "eval_smoke.yaml"), "--output_dir", str(out),
                   "--dataset_name", str(gsm8k_dir), "--max_eval_samples", "4", "--num_samples", "1",
                   "--temperature", "0"))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["models"]["rl-math:tiny-qwen2"]["n_questions"] == 4
    rows = [json.loads(line) for line in (out / "completions.jsonl").read_text().splitlines()]
    assert len(rows) == 4
    gsm8k_golds = {json.loads(line)["answer"].split("####")[-1].strip().replace(",", "")
                   for line in Path(gsm8k_dir, "test.jsonl").read_text().splitlines()}
    assert all(r["gold"] in gsm8k_golds for r in rows)
    assert all(len(r["prompt"][1]["content"]) > 50 for r in rows)  # real word problems
