r"""The MATH-style task: LaTeX golds from MATH-500, graded by math-verify; loaded, rendered, evaluated."""

import json
import time
from pathlib import Path

import pytest

from rl_math.config import RecipeArguments
from rl_math.errors import ConfigError
from rl_math.grading import batch
from rl_math.rewards import get_reward
from rl_math.tasks import get_task
from rl_math.tasks.formats import PROMPT_FORMATS, get_prompt_format
from rl_math.tasks.loading import load_prompt_dataset, to_prompts

MATH = get_task("math")
MATH500 = Path(__file__).resolve().parents[3] / "shared" / "data" / "math500"

# (gold as MATH-500 writes it, an equivalent answer, a different answer)
REAL_GOLDS = [
    (r"\frac{\pi}{2}", r"\dfrac{\pi}{2}", r"\pi"),
    (r"(3, \frac{\pi}{2})", r"(3,\pi/2)", r"(\frac{\pi}{2}, 3)"),
    (r"\text{(C)}", "(C)", "(D)"),
    (r"10,\!080", "10080", "10081"),
    (r"p - q", "-q + p", "q - p"),
    (r"x^5 - x^4 + x^3 - x^2 + x - 1", "-1 + x - x^2 + x^3 - x^4 + x^5", "x^5 + x^4 + x^3 + x^2 + x + 1"),
    (r"\text{Evelyn}", "Evelyn", "Bob"),
    (r"6 - 5i", "-5i + 6", "6 + 5i"),
]


@pytest.fixture(scope="module")
def math500_dir() -> Path:
    if not (MATH500 / "test.jsonl").is_file():
        pytest.skip(f"MATH-500 not found at {MATH500} (the ../shared folder beside the repo)")
    return MATH500


@pytest.mark.parametrize(("gold", "equivalent", "_"), REAL_GOLDS)
def test_an_equivalent_boxed_answer_to_a_real_gold_is_correct(gold, equivalent, _):
    assert MATH.grade(rf"So the answer is \boxed{{{equivalent}}}.", gold).correct


@pytest.mark.parametrize(("gold", "_", "different"), REAL_GOLDS)
def test_a_different_boxed_answer_to_a_real_gold_is_wrong(gold, _, different):
    verdict = MATH.grade(rf"So the answer is \boxed{{{different}}}.", gold)
    assert verdict.gold_parseable and not verdict.correct


def test_a_hedge_between_the_gold_and_another_answer_is_wrong():
    assert not MATH.grade(r"\boxed{\frac{\pi}{2}} or \boxed{\pi}", r"\frac{\pi}{2}").correct


@pytest.mark.parametrize("answer", [r"9^{9^{9^9}}", r"(10!)!", "9" * 40, r"99999999999^{99999999}", "x" * 500])
def test_an_answer_that_could_hang_sympy_is_wrong_at_once(answer):
    started = time.perf_counter()
    assert not MATH.grade(rf"\boxed{{{answer}}}", r"\frac{\pi}{2}").correct
    assert time.perf_counter() - started < 2.0


def test_the_gsm8k_grader_cannot_read_a_latex_gold_that_the_math_task_reads():
    assert get_task("gsm8k").gold(r"(3, \frac{\pi}{2})") is None
    assert MATH.gold(r" (3, \frac{\pi}{2}) ") == r"(3, \frac{\pi}{2})"


def test_correctness_grades_with_the_task_column():
    completions, golds = [r"\boxed{(C)}", r"\boxed{(D)}"], [r"\text{(C)}"] * 2
    assert get_reward("correctness")(completions=completions, answer=golds, task=["math"] * 2) == [1.0, 0.0]


def test_correctness_without_a_task_column_grades_as_gsm8k(monkeypatch):

    monkeypatch.setattr(batch, "_warned", set())  # the warning is shown once per process
    with pytest.warns(RuntimeWarning, match="cannot read the gold answer"):
        assert get_reward("correctness")(completions=[r"\boxed{(C)}"], answer=[r"\text{(C)}"]) == [None]


def test_a_math_row_becomes_prompt_gold_solution_and_task():
    from datasets import Dataset

    rows = Dataset.from_list([{"problem": "Convert (0,3) to polar.", "solution": r"It is $\boxed{(3, \frac{\pi}{2})}$.",
                               "answer": r"(3, \frac{\pi}{2})"}])
    row = to_prompts(rows, "Box it.", MATH)[0]
    assert row["prompt"][-1]["content"] == "Convert (0,3) to polar." and row["answer"] == r"(3, \frac{\pi}{2})"
    assert row["task"] == "math" and MATH.reasoning(row["solution"]) == r"It is $(3, \frac{\pi}{2})$."


def test_a_math_split_with_no_gold_the_task_reads_is_a_config_error():
    from datasets import Dataset

    rows = Dataset.from_list([{"problem": "?", "answer": r"\frac{1}{"}] * 2)
    with pytest.raises(ConfigError, match="none of the 2 problems has a gold answer task 'math' can read"):
        to_prompts(rows, None, MATH)


def test_a_gsm8k_file_under_the_math_task_is_a_config_error_naming_the_column(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"question": "1+1?", "answer": "#### 2"}) + "\n")
    with pytest.raises(ConfigError, match=r"lacks column\(s\) \['problem'\] for task 'math'"):
        load_prompt_dataset(RecipeArguments(dataset_name=str(path), task="math"), "train")


def test_every_math500_gold_is_readable_and_equals_itself(math500_dir):
    rows = [json.loads(line) for line in (math500_dir / "test.jsonl").read_text().splitlines()]
    assert len(rows) == 500
    assert all(MATH.gold(r["answer"]) is not None for r in rows)
    assert all(MATH.grade(rf"\boxed{{{r['answer']}}}", r["answer"]).correct for r in rows)


@pytest.mark.parametrize("prompt_format", sorted(PROMPT_FORMATS))
def test_every_math500_solution_as_an_sft_target_scores_one(math500_dir, prompt_format):
    dataset = load_prompt_dataset(
        RecipeArguments(dataset_name=str(math500_dir), task="math", prompt_format=prompt_format), "test", limit=60
    )
    fmt = get_prompt_format(prompt_format)
    texts = [fmt.sft_target(MATH.reasoning(r["solution"]), r["answer"]) for r in dataset]
    call = dict(completions=texts, prompts=dataset["prompt"], answer=dataset["answer"], task=dataset["task"])
    assert get_reward("correctness")(**call) == [1.0] * 60


@pytest.mark.slow
def test_eval_math500_config_evaluates_the_tiny_model_offline(math500_dir, tmp_path):
    from recipe_runs import REPO_ROOT, run_recipe

    out = tmp_path / "eval"
    result = run_recipe("evaluate", str(REPO_ROOT / "configs" / "eval_math500.yaml"), "--output_dir", str(out),
                        "--model_name_or_path", "rl-math:tiny-qwen2", "--dtype", "float32", "--use_vllm", "false",
                        "--attn_implementation", "eager", "--max_eval_samples", "3", "--max_new_tokens", "16")
    assert result.returncode == 0, result.stderr[-4000:]
    metrics = json.loads((out / "metrics.json").read_text())["models"]["rl-math:tiny-qwen2"]
    assert metrics["n_questions"] == 3 and sum(metrics["buckets"].values()) == pytest.approx(1.0)
    golds = {json.loads(line)["answer"] for line in (math500_dir / "test.jsonl").read_text().splitlines()}
    rows = [json.loads(line) for line in (out / "completions.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(r["gold"] in golds for r in rows)


def test_evaluation_grades_and_votes_with_the_task_comparator():
    from rl_math.eval.evaluate import score_completions, summarize
    from rl_math.rewards import build_rewards

    funcs, weights = build_rewards([{"name": "correctness"}])
    texts = [r"\boxed{(C)}", r"\boxed{\textbf{(C)}}", r"\boxed{(D)}"]
    results = score_completions([[{"role": "user", "content": "?"}]], texts, [[1]] * 3, [True] * 3, [False] * 3,
                                [r"\text{(C)}"], 3, funcs, weights, get_prompt_format("boxed"), "math")
    assert [r.correct for r in results] == [True, True, False] and results[0].rewards == {"correctness": 1.0}
    assert summarize(results, [r"\text{(C)}"], 3, "math")["maj@3"] == 1.0


def test_expert_iteration_filters_with_the_task_comparator():
    from rl_math.methods.expert_iteration import apply_filter, build_filter

    samples = [{"prompt": [], "completion": rf"\boxed{{{answer}}}", "gold": r"\text{(C)}", "task": "math"}
               for answer in ("(C)", "(D)")]
    apply_filter(samples, build_filter([{"name": "correctness", "min": 1.0}]))
    assert [s["accepted"] for s in samples] == [True, False]
