"""Data: gold answers, prompt formats, local and generated sources, the prompt-length budget."""

import json

import pytest

from rl_math.config import RecipeArguments
from rl_math.errors import ConfigError
from rl_math.grading.grader import normalize_gold
from rl_math.tasks.arithmetic import generate_problems, synthetic_split
from rl_math.tasks.formats import PROMPT_FORMATS, build_prompt, get_prompt_format
from rl_math.tasks.gsm8k import TASK as GSM8K
from rl_math.tasks.gsm8k import solution_reasoning
from rl_math.tasks.loading import SYNTHETIC_DATASET, drop_long_prompts, load_problems, load_prompt_dataset, to_prompts


def test_gold_answer_is_text_after_the_marker_without_commas():
    assert normalize_gold("Step one.\n#### 1,080") == "1080"


def test_gold_answer_keeps_negative_sign():
    assert normalize_gold("#### -3") == "-3"


def test_a_solution_on_several_lines_without_marker_has_no_gold():
    assert normalize_gold("Step one.\nThe answer is 5.") is None


def test_bare_short_answer_is_its_own_gold():
    assert GSM8K.gold("  42 ") == "42"


def test_a_bare_gold_keeps_its_commas():
    assert normalize_gold("(3, 4)") == "(3, 4)" and GSM8K.gold(" 1,080 ") == "1,080"


def test_gold_answer_the_grader_cannot_read_is_none():
    assert GSM8K.gold("Paris") is None and GSM8K.gold("#### blue") is None


def test_a_split_without_a_readable_gold_answer_is_a_config_error():
    from datasets import Dataset

    from rl_math.errors import ConfigError

    rows = Dataset.from_list([{"question": "Capital of France?", "answer": "Paris"}] * 3)
    with pytest.raises(ConfigError, match="none of the 3 problems has a gold answer task 'gsm8k' can read"):
        to_prompts(rows, "system")


def test_reasoning_drops_calculator_annotations_and_answer_line():
    assert solution_reasoning("She has 3*4 = <<3*4=12>>12 eggs.\n#### 12") == "She has 3*4 = 12 eggs."


@pytest.mark.parametrize("name", sorted(PROMPT_FORMATS))
def test_every_prompt_format_asks_for_its_answer_shape(name):
    prompt = get_prompt_format(name).system_prompt
    assert ("\\boxed{}" in prompt) or ("<answer>" in prompt)
    if name != "boxed":  # the tagged formats ask for their reasoning section too
        assert ("<think>" in prompt) or ("<reasoning>" in prompt)


def test_prompt_is_system_then_user_message():
    assert build_prompt("Q?", "S") == [{"role": "system", "content": "S"}, {"role": "user", "content": "Q?"}]


def test_prompt_without_system_prompt_has_only_the_question():
    assert build_prompt("Q?", "") == [{"role": "user", "content": "Q?"}]


def test_synthetic_problems_are_deterministic_and_well_formed():
    first, second = generate_problems(50, seed=3), generate_problems(50, seed=3)
    assert first == second
    for problem in first:
        assert GSM8K.gold(problem["answer"]) is not None


def test_synthetic_train_and_test_do_not_overlap():
    train = {p["question"] for p in synthetic_split("train")}
    test = {p["question"] for p in synthetic_split("test")}
    assert not train & test


def test_synthetic_answers_are_arithmetically_right():
    for problem in generate_problems(200, seed=1):
        expression = problem["answer"].split("<<")[-1].split("=")[0]  # the last step gives the answer
        assert str(int(eval(expression))) == GSM8K.gold(problem["answer"])  # noqa: S307 - our own digits


def test_local_jsonl_file_loads(tmp_path):
    path = tmp_path / "mini.jsonl"
    path.write_text(json.dumps({"question": "1+1?", "answer": "1+1=2\n#### 2"}) + "\n")
    dataset = load_problems(str(path), "train")
    assert dataset[0]["question"] == "1+1?"


def test_local_folder_loads_the_named_split(tmp_path):
    (tmp_path / "test.jsonl").write_text(json.dumps({"question": "q", "answer": "#### 7"}) + "\n")
    assert load_problems(str(tmp_path), "test")[0]["answer"] == "#### 7"


def test_local_folder_without_the_split_says_what_it_found(tmp_path):
    (tmp_path / "train.jsonl").write_text(json.dumps({"question": "q", "answer": "#### 7"}) + "\n")
    with pytest.raises(ConfigError, match=r"one of the splits there \(train\)"):
        load_problems(str(tmp_path), "test")


def test_missing_columns_are_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"problem": "q", "solution": "7"}) + "\n")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['question', 'answer'\]"):
        load_problems(str(path), "train")


def test_rows_become_prompt_answer_and_solution():
    from datasets import Dataset

    rows = Dataset.from_list([{"question": "q", "answer": "r\n#### 1,000"}])
    converted = to_prompts(rows, "sys")
    assert converted[0]["prompt"][0] == {"role": "system", "content": "sys"}
    assert converted[0]["answer"] == "1000"
    assert converted[0]["solution"] == "r\n#### 1,000"


def test_rows_with_unparseable_gold_are_dropped():
    from datasets import Dataset

    rows = Dataset.from_list([{"question": "q", "answer": "#### 3"}, {"question": "q2", "answer": "#### "}])
    assert len(to_prompts(rows, None)) == 1


def test_long_prompts_are_dropped_with_a_count(tiny_tokenizer, caplog):
    from datasets import Dataset

    rows = Dataset.from_list([{"question": "short?", "answer": "#### 1"}, {"question": "long " * 300, "answer": "#### 2"}])
    kept = drop_long_prompts(to_prompts(rows, None), tiny_tokenizer, max_prompt_tokens=100)
    assert [r["answer"] for r in kept] == ["1"]
    assert "dropped 1 of 2 prompts" in caplog.text


def test_prompt_budget_that_drops_everything_is_an_error(tiny_tokenizer):
    from datasets import Dataset

    rows = to_prompts(Dataset.from_list([{"question": "q", "answer": "#### 1"}]), "system")
    with pytest.raises(ValueError, match="every prompt is longer"):
        drop_long_prompts(rows, tiny_tokenizer, max_prompt_tokens=2)


def test_real_gsm8k_loads_with_the_format_system_prompt(gsm8k_dir):
    args = RecipeArguments(dataset_name=str(gsm8k_dir), prompt_format="r1")
    dataset = load_prompt_dataset(args, "test")
    assert len(dataset) == 1319
    assert dataset[0]["prompt"][0]["content"] == get_prompt_format("r1").system_prompt


def test_synthetic_dataset_by_name():
    args = RecipeArguments(dataset_name=SYNTHETIC_DATASET)
    assert len(load_prompt_dataset(args, "test", limit=10)) == 10


def test_real_gsm8k_prompts_fit_the_shipped_budget_with_the_real_tokenizer(gsm8k_dir, caplog):
    from transformers import AutoTokenizer

    tokenizer_dir = gsm8k_dir.parents[1] / "tokenizers" / "qwen2.5-instruct"
    if not tokenizer_dir.is_dir():
        pytest.skip(f"real Qwen2.5 tokenizer not found at {tokenizer_dir}")
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    args = RecipeArguments(dataset_name=str(gsm8k_dir), max_prompt_tokens=512)
    assert len(load_prompt_dataset(args, "test", tokenizer)) == 1319  # the longest is 216 tokens
    tight = RecipeArguments(dataset_name=str(gsm8k_dir), max_prompt_tokens=100)
    kept = load_prompt_dataset(tight, "test", tokenizer)
    assert 0 < len(kept) < 1319
    assert f"dropped {1319 - len(kept)} of 1319 prompts longer than max_prompt_tokens=100" in caplog.text
