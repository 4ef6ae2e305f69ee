"""Evaluation protocols: presets that reproduce how published numbers were made, checked against
the pinned lm-eval's own prompt building, few-shot sampler and task YAML."""

import json

import pytest
from recipe_runs import REPO_ROOT, run_recipe

from rl_math.errors import ConfigError
from rl_math.eval.protocols import (
    PROTOCOLS,
    apply_protocol,
    apply_stop_strings,
    check_protocol_task,
    fewshot_indices,
    protocol_prompts,
)
from rl_math.sampling import Generations

LM_EVAL = PROTOCOLS["lm-eval-gsm8k"]


def test_a_protocol_sets_its_fields_and_its_defaults_yield_to_the_config():
    values = {"eval_protocol": "sampled", "temperature": 0.0, "top_p": 1.0, "num_samples": 1}
    apply_protocol(values, explicit=set())
    assert (values["temperature"], values["top_p"], values["num_samples"]) == (1.0, 0.95, 8)
    values = {"eval_protocol": "sampled", "num_samples": 16, "temperature": 1.0}
    apply_protocol(values, explicit={"num_samples", "temperature"})  # the same value is no conflict
    assert values["num_samples"] == 16


def test_a_field_set_against_the_protocol_is_one_sentence():
    with pytest.raises(ConfigError, match=r"^eval_protocol qwen-math-cot sets temperature to 0.0, but the config "
                                          r"sets it to 1.0; remove one of the two$"):
        apply_protocol({"eval_protocol": "qwen-math-cot", "temperature": 1.0}, explicit={"temperature"})
    with pytest.raises(ConfigError, match="unknown eval_protocol 'lm-eval'; choose one of: lm-eval-gsm8k"):
        apply_protocol({"eval_protocol": "lm-eval"}, explicit=set())
    with pytest.raises(ConfigError, match="apply_chat_template applies to a plain-text protocol"):
        apply_protocol({"eval_protocol": "qwen-math-cot", "apply_chat_template": True}, explicit=set())
    with pytest.raises(ConfigError, match="defined for task gsm8k, not 'math'"):
        check_protocol_task(LM_EVAL, "math")


def test_lm_eval_gsm8k_has_no_chat_template_unless_asked():
    values = {"eval_protocol": "lm-eval-gsm8k", "apply_chat_template": None}
    apply_protocol(values, explicit=set())
    assert values["apply_chat_template"] is False and values["max_new_tokens"] == 256
    prompts = protocol_prompts(LM_EVAL, ["What is 2+3?"], ["What is 1+1?"] * 5, ["2\n#### 2"] * 5, chat=True)
    assert prompts[0][0]["role"] == "user" and len(prompts[0]) == 1


def test_stop_strings_cut_the_completion_and_mark_it_ended():
    generations = Generations(1, texts=["#### 18\n\nQuestion: more", "#### 7"], token_ids=[[1], [2]],
                              eos=[False, False], truncated=[True, True])
    assert apply_stop_strings(generations, LM_EVAL.stop_strings) == 1
    assert generations.texts == ["#### 18\n\n", "#### 7"]
    assert generations.eos == [True, False] and generations.truncated == [False, True]


# -- against the pinned lm-eval ------------------------------------------------------------------


def test_prompt_template_and_stop_strings_are_the_pinned_yamls():
    pytest.importorskip("lm_eval", reason="lm-eval is in the dev extra")
    from rl_math.eval.conventions import lm_eval_task_config

    config = lm_eval_task_config("gsm8k")
    assert config["doc_to_text"].replace("{{question}}", "{question}") == LM_EVAL.question_template
    assert tuple(config["generation_kwargs"]["until"]) == LM_EVAL.stop_strings
    assert config["num_fewshot"] == LM_EVAL.num_fewshot and config["fewshot_split"] == LM_EVAL.fewshot_split
    assert config["generation_kwargs"]["do_sample"] is False and LM_EVAL.fixed["temperature"] == 0.0


def test_shots_are_the_ones_lm_evals_sampler_draws_for_each_question_in_order():
    pytest.importorskip("lm_eval", reason="lm-eval is in the dev extra")
    from lm_eval.api.samplers import ContextSampler

    sampler = ContextSampler(list(range(7473)), rnd=1234)  # GSM8K train has 7473 rows; seed: fewshot_random_seed
    assert fewshot_indices(20, 5, 7473) == [list(sampler.sample(5)) for _ in range(20)]


def test_the_prompt_text_is_lm_evals_rendering_plain_and_as_one_chat_message():
    pytest.importorskip("lm_eval", reason="lm-eval is in the dev extra")
    from lm_eval.api.task import ConfigurableTask
    from lm_eval.api.utils import multiturn_to_singleturn

    pool_q, pool_a = [f"Q{i}?" for i in range(10)], [f"step {i}\n#### {i}" for i in range(10)]
    shots = fewshot_indices(1, 5, 10)[0]
    messages = []
    for j in shots:
        messages += ConfigurableTask.build_qa_turn(None, q=f"Question: {pool_q[j]}\nAnswer:", a=pool_a[j])
    messages += ConfigurableTask.build_qa_turn(None, q="Question: What now?\nAnswer:", few_delim="")
    plain = "".join(m.to_text() for m in messages)
    assert protocol_prompts(LM_EVAL, ["What now?"], pool_q, pool_a, chat=False) == [plain]
    assert protocol_prompts(LM_EVAL, ["What now?"], pool_q, pool_a, chat=True) == [multiturn_to_singleturn(messages)]


# -- the recipe ------------------------------------------------------------------------------------


def test_the_recipe_refuses_a_protocol_against_an_explicit_field_before_loading_a_model(tmp_path):
    result = run_recipe("evaluate", str(REPO_ROOT / "configs" / "eval_smoke.yaml"), "--eval_protocol", "qwen-math-cot",
                        "--output_dir", str(tmp_path))
    assert result.returncode == 2
    assert "eval_protocol qwen-math-cot sets num_samples to 1, but the config sets it to 2; remove one of the two\n" in result.stderr
    assert not (tmp_path / "metrics.json").exists()


@pytest.mark.slow
def test_evaluation_of_the_tiny_model_reports_protocol_conventions_and_intervals(tmp_path):
    result = run_recipe("evaluate", str(REPO_ROOT / "configs" / "eval_smoke.yaml"), "--eval_protocol", "sampled",
                        "--num_samples", "2", "--max_eval_samples", "4", "--output_dir", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["protocol"]["name"] == "sampled"
    assert metrics["protocol"]["generation"] == {"num_samples": 2, "temperature": 1.0, "top_p": 0.95,
                                                 "max_new_tokens": 48, "seed": 42}
    model = metrics["models"]["rl-math:tiny-qwen2"]
    assert set(model["conventions"]) == {"rl_math", "strict_match", "flexible_extract", "cot_strict_match",
                                         "math_verify", "qwen_boxed"}
    assert all(0 <= c["interval"][0] <= c["accuracy"] <= c["interval"][1] <= 1 for c in model["conventions"].values())
    rows = [json.loads(line) for line in (tmp_path / "completions.jsonl").read_text().splitlines()]
    assert all(set(row["conventions"]) == set(model["conventions"]) for row in rows)
    assert "protocol sampled" in result.stdout and "[95% CI]" in result.stdout
    assert all(name in result.stdout for name in model["conventions"]), result.stdout[-3000:]
