r"""SFT data is exactly what the RL rewards pay for, and SFTTrainer supervises it up to <|im_end|>."""

from __future__ import annotations

import json
import logging

import pytest

from rl_math.config import RecipeArguments
from rl_math.rewards import get_reward
from rl_math.tasks.formats import PROMPT_FORMATS, build_prompt, get_prompt_format
from rl_math.tasks.loading import load_prompt_dataset, to_prompts
from rl_math.train.sft_data import (
    assistant_message,
    drop_overlong,
    load_sft_dataset,
    problems_to_sft,
    samples_to_sft,
    supervised_text,
)

FORMATS = sorted(PROMPT_FORMATS)
NATALIA = {
    "question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?",
    "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
    "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72",
}
REASONING = "Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether in April and May."


def _rows(problems, prompt_format):
    from datasets import Dataset

    args = RecipeArguments(prompt_format=prompt_format)
    system = get_prompt_format(prompt_format).system_prompt
    return problems_to_sft(to_prompts(Dataset.from_list(problems), system), args.prompt_format)


def _scores(rows, prompt_format):
    """Score the SFT completions with the rewards themselves, called as GRPOTrainer calls them."""
    kwargs = dict(prompts=rows["prompt"], completions=rows["completion"], answer=rows["answer"])
    format_reward = get_prompt_format(prompt_format).format_reward
    return get_reward("correctness")(**kwargs), get_reward(format_reward)(**kwargs)


EXPECTED = {
    "boxed": REASONING + "\nThe answer is \\boxed{72}.",
    "think_boxed": "<think>\n" + REASONING + "\n</think>\nThe answer is \\boxed{72}.",
    "r1": "<think>\n" + REASONING + "\n</think>\n<answer>\\boxed{72}</answer>",
    "xml": "<reasoning>\n" + REASONING + "\n</reasoning>\n<answer>\n72\n</answer>",
}


@pytest.mark.parametrize("prompt_format", FORMATS)
def test_target_per_format_with_annotations_removed(prompt_format):
    rows = _rows([NATALIA], prompt_format)
    completion = rows[0]["completion"]
    assert completion == [{"role": "assistant", "content": EXPECTED[prompt_format]}]
    assert "<<" not in completion[0]["content"] and ">>" not in completion[0]["content"]
    assert "####" not in completion[0]["content"]
    assert rows[0]["prompt"][0] == {"role": "system", "content": get_prompt_format(prompt_format).system_prompt}
    assert rows[0]["prompt"][1]["content"] == NATALIA["question"]


@pytest.mark.parametrize("prompt_format", FORMATS)
def test_every_synthetic_target_scores_one_on_correctness_and_its_format(prompt_format):
    from rl_math.tasks.arithmetic import generate_problems

    rows = _rows(generate_problems(200, seed=3), prompt_format)
    assert len(rows) == 200  # none dropped
    correct, shaped = _scores(rows, prompt_format)
    assert set(correct) == {1.0} and set(shaped) == {1.0}


@pytest.mark.parametrize("prompt_format", FORMATS)
def test_every_real_gsm8k_target_scores_one(prompt_format, gsm8k_dir):
    args = RecipeArguments(dataset_name=str(gsm8k_dir), prompt_format=prompt_format)
    problems = load_prompt_dataset(args, "test", limit=300, seed=0)
    rows = problems_to_sft(problems, prompt_format)
    assert len(rows) == len(problems)
    correct, shaped = _scores(rows, prompt_format)
    assert set(correct) == {1.0} and set(shaped) == {1.0}
    assert not any("<<" in c[0]["content"] for c in rows["completion"])


def test_rows_the_rewards_would_not_pay_are_dropped(caplog):
    # think_format wants at least five words of reasoning: a bare "#### 5" solution has none
    bare = {"question": "What is 2 + 3?", "answer": "#### 5"}
    with caplog.at_level(logging.WARNING, logger="rl_math.train.sft_data"):
        rows = _rows([NATALIA, bare], "think_boxed")
    assert len(rows) == 1 and rows[0]["answer"] == "72"
    assert "dropped 1 of 2 SFT targets" in caplog.text and "think_format=0.0" in caplog.text
    assert len(_rows([NATALIA, bare], "boxed")) == 2  # boxed needs no reasoning: "The answer is \boxed{5}."


def test_completion_ends_with_end_of_turn_when_templated(tiny_tokenizer):
    rows = _rows([NATALIA], "boxed")
    text = tiny_tokenizer.apply_chat_template(rows[0]["prompt"] + rows[0]["completion"], tokenize=False)
    assert text.endswith(EXPECTED["boxed"] + "<|im_end|>\n")


@pytest.mark.parametrize("prompt_format", ["boxed", "r1"])
def test_sft_trainer_supervises_the_completion_through_im_end_and_not_the_prompt(
    prompt_format, tiny_model_path, tiny_tokenizer, tmp_path
):
    """Build the real SFTTrainer (as recipes/sft.py does) and read the labels of its prepared dataset."""
    from trl import SFTConfig, SFTTrainer

    rows = _rows([NATALIA], prompt_format)
    args = SFTConfig(output_dir=str(tmp_path), bf16=False, report_to="none", gradient_checkpointing=False,
                     dataloader_pin_memory=False, max_length=1024)
    trainer = SFTTrainer(model=tiny_model_path, args=args, train_dataset=rows, processing_class=tiny_tokenizer)
    example = trainer.train_dataset[0]
    supervised, ignored = supervised_text(example, tiny_tokenizer)
    assert supervised == EXPECTED[prompt_format] + "<|im_end|>\n"
    # the last supervised token after the completion is the end-of-turn (a newline follows it in ChatML)
    labels = [label for label in example["labels"] if label != -100]
    assert labels[-2] == tiny_tokenizer.convert_tokens_to_ids("<|im_end|>")
    # the prompt, system message and generation prompt included, is never supervised
    prompt_text = tiny_tokenizer.apply_chat_template(rows[0]["prompt"], tokenize=False, add_generation_prompt=True)
    assert ignored == prompt_text
    assert NATALIA["question"] not in supervised
    # supervised tokens are one contiguous block at the end
    first = next(i for i, label in enumerate(example["labels"]) if label != -100)
    assert all(label != -100 for label in example["labels"][first:])


def test_prompt_completion_files_pass_through_unchanged(tmp_path):
    strings = [{"prompt": "2 + 2 =", "completion": " 4"}, {"prompt": "3 + 3 =", "completion": " 6"}]
    messages = [{"prompt": [{"role": "user", "content": "hi"}], "completion": [{"role": "assistant", "content": "yo"}]}]
    for name, rows in (("strings.jsonl", strings), ("messages.jsonl", messages)):
        path = tmp_path / name
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        loaded = load_sft_dataset(RecipeArguments(dataset_name=str(path)), "train")
        assert loaded.to_list() == rows


def test_question_answer_files_become_targets(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(NATALIA) + "\n")
    loaded = load_sft_dataset(RecipeArguments(dataset_name=str(tmp_path), prompt_format="r1"), "train")
    assert loaded[0]["completion"][0]["content"] == EXPECTED["r1"]


def test_accepted_samples_become_sft_rows():
    prompt = build_prompt("q", "Box it.")
    rows = samples_to_sft([{"prompt": prompt, "completion": r"so \boxed{4}", "gold": "4", "question_index": 0}])
    assert rows[0] == {"prompt": prompt, "completion": assistant_message(r"so \boxed{4}"), "answer": "4"}
    with pytest.raises(ValueError, match="no accepted samples"):
        samples_to_sft([])


def test_rows_longer_than_max_length_are_dropped_not_cut(tiny_tokenizer, caplog):
    from rl_math.tasks.arithmetic import generate_problems

    rows = _rows(generate_problems(4, seed=1), "boxed")
    long = rows.to_list()
    long[0]["completion"] = assistant_message("word " * 400 + r"\boxed{1}")
    from datasets import Dataset

    with caplog.at_level(logging.WARNING, logger="rl_math.train.sft_data"):
        kept = drop_overlong(Dataset.from_list(long), tiny_tokenizer, max_length=512)
    assert len(kept) == 3 and "dropped 1 of 4 SFT rows longer than max_length=512" in caplog.text


def test_docstring_examples():
    import doctest

    from rl_math.train import sft_data

    assert doctest.testmod(sft_data).failed == 0
