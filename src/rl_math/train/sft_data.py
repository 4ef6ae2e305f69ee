r"""SFT data: a task's worked solutions → prompt/completion rows in the chosen prompt format.

The SFT targets are exactly what the RL rewards pay for. The task renders the reasoning from a
row's solution (GSM8K: before ``####``, calculator annotations ``<<…>>`` removed, see
:func:`rl_math.tasks.gsm8k.solution_reasoning`; MATH: the solution with its box unwrapped) and the
prompt format writes the target (:meth:`rl_math.tasks.formats.PromptFormat.sft_target`). For the
question "… 48/2 = <<48/2=24>>24 clips …\n#### 72":

=============  =================================================================================
format         completion
=============  =================================================================================
boxed          ``{reasoning}\nThe answer is \boxed{72}.``
think_boxed    ``<think>\n{reasoning}\n</think>\nThe answer is \boxed{72}.``
r1             ``<think>\n{reasoning}\n</think>\n<answer>\boxed{72}</answer>``
=============  =================================================================================

Every target scores 1.0 on ``correctness`` and on its format's reward (``boxed_format`` for boxed,
``think_format`` for think_boxed and r1); :func:`problems_to_sft` checks each row with the rewards
themselves and drops (with a count logged) the few that do not -- a solution whose reasoning is
under ``think_format``'s five words, say -- so that SFT never teaches a shape RL then penalises.
The r1 answer keeps the box inside ``<answer>`` so that it also scores 1.0 on ``boxed_format``
and TRL's ``accuracy_reward`` (which only reads ``\boxed{}``).

Rows are conversational prompt-completion (``prompt``: system + user messages, ``completion``:
one assistant message), so SFTTrainer computes the loss on the completion only and the chat
template closes it with the end-of-turn token (``<|im_end|>`` for Qwen): the model learns to stop.

A local ``.jsonl``/``.json``/``.parquet`` file (or a folder with ``{split}.jsonl``) that already has
``prompt``/``completion`` columns -- strings or message lists -- is passed through unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rl_math.errors import ConfigError
from rl_math.grading.grader import assistant_message
from rl_math.rewards import get_reward, reward_call
from rl_math.tasks import get_task
from rl_math.tasks.formats import get_prompt_format
from rl_math.tasks.loading import DataArguments, load_prompt_dataset, local_file, read_local_file

if TYPE_CHECKING:
    from datasets import Dataset

logger = logging.getLogger(__name__)

PASSTHROUGH_COLUMNS = ("prompt", "completion")


# --------------------------------------------------------------------------------------------
# Targets




def target_problems(
    prompts: list, completions: list[str], golds: list[str], prompt_format: str, tasks: list[str] | None = None
) -> list[str | None]:
    """For each target, why the RL rewards would not pay it in full (None when they pay 1.0).

    The rewards used are `correctness` and the prompt format's own format reward, called exactly as
    GRPOTrainer calls them (conversational completions, `prompts`, the `answer` and `task` columns).
    """

    format_name = get_prompt_format(prompt_format).format_reward
    call = reward_call(prompts, completions, golds, tasks=tasks)
    correct = get_reward("correctness")(**call)
    shaped = get_reward(format_name)(**call)
    problems: list[str | None] = []
    for c, s in zip(correct, shaped):
        reasons = ([] if c == 1.0 else [f"correctness={c}"]) + ([] if s == 1.0 else [f"{format_name}={s}"])
        problems.append(", ".join(reasons) or None)
    return problems


# --------------------------------------------------------------------------------------------
# Datasets


def problems_to_sft(dataset: Dataset, prompt_format: str) -> Dataset:
    """Rows with `prompt`/`answer`/`solution`/`task` (from `rl_math.tasks.loading.to_prompts`) → SFT rows.

    Returns `prompt` (unchanged), `completion` (one assistant message), `answer` (the gold) and
    `task`, kept for inspection (SFTTrainer ignores them). Rows the rewards would not pay 1.0 are dropped.
    """
    from datasets import Dataset

    fmt = get_prompt_format(prompt_format)
    rows = dataset.to_list()
    texts = [fmt.sft_target(get_task(r["task"]).reasoning(r["solution"]), r["answer"]) for r in rows]
    problems = target_problems(
        [r["prompt"] for r in rows], texts, [r["answer"] for r in rows], prompt_format, [r["task"] for r in rows]
    )
    kept = []
    for row, text, problem in zip(rows, texts, problems):
        if problem is None:
            kept.append(
                {"prompt": row["prompt"], "completion": assistant_message(text), "answer": row["answer"], "task": row["task"]}
            )
    dropped = [(row, problem) for row, problem in zip(rows, problems) if problem is not None]
    if dropped:
        logger.warning(
            "dropped %d of %d SFT targets the rewards would not pay 1.0 (first: %s on %r)",
            len(dropped), len(rows), dropped[0][1], dropped[0][0]["solution"][:120],
        )
    if not kept:
        raise ValueError(f"no usable SFT target in {len(rows)} rows for prompt_format {prompt_format!r}")
    return Dataset.from_list(kept)


def samples_to_sft(samples: Iterable[Mapping[str, Any]]) -> Dataset:
    """Accepted expert-iteration samples (`prompt` messages, `completion` text) → SFT rows."""
    from datasets import Dataset

    rows = [
        {"prompt": s["prompt"], "completion": assistant_message(s["completion"]), "answer": str(s.get("gold", ""))}
        for s in samples
    ]
    if not rows:
        raise ValueError("no accepted samples to train on")
    return Dataset.from_list(rows)


def passthrough_file(dataset_name: str, split: str) -> str | None:
    """The local file to pass through unchanged, if `dataset_name`/`split` names one with prompt/completion."""
    path = local_file(dataset_name, split)
    if path is None:
        return None
    columns = read_local_file(path).column_names
    return str(path) if set(PASSTHROUGH_COLUMNS) <= set(columns) else None


def load_sft_dataset(
    args: DataArguments, split: str, tokenizer=None, limit: int | None = None, seed: int = 0
) -> Dataset:
    """The SFT recipe's dataset: a prompt/completion file as is, or the task's problems as targets."""
    if (path := passthrough_file(args.dataset_name, split)) is not None:
        dataset = read_local_file(Path(path))
        if limit is not None and limit < len(dataset):
            dataset = dataset.shuffle(seed=seed).select(range(limit))
        logger.info("SFT data: %d prompt/completion rows from %s, passed through unchanged", len(dataset), path)
        return dataset
    problems = load_prompt_dataset(args, split, tokenizer, limit, seed)
    dataset = problems_to_sft(problems, args.prompt_format)
    logger.info("SFT data: %d %s targets from %s (%s)", len(dataset), args.prompt_format, args.dataset_name, split)
    return dataset


def drop_overlong(dataset: Dataset, tokenizer, max_length: int | None) -> Dataset:
    """Drop conversational rows whose prompt + completion exceed `max_length` tokens.

    SFTTrainer would cut them at `max_length` (keep_start), which removes the end-of-turn token
    and teaches the model to run on; a dropped row teaches nothing wrong. String rows are kept
    (TRL appends EOS to those itself, and they are the user's own data).
    """
    if max_length is None or len(dataset) == 0 or not isinstance(dataset[0]["prompt"], list):
        return dataset

    def fits(row) -> bool:
        ids = tokenizer.apply_chat_template(row["prompt"] + row["completion"], tokenize=True)
        ids = ids["input_ids"] if hasattr(ids, "keys") else ids
        return len(ids) <= max_length

    kept = dataset.filter(fits)
    if dropped := len(dataset) - len(kept):
        logger.warning("dropped %d of %d SFT rows longer than max_length=%d tokens", dropped, len(dataset), max_length)
    if len(kept) == 0:
        raise ConfigError(f"every SFT row is longer than max_length={max_length}; raise max_length")
    return kept


def supervised_text(example: Mapping[str, Any], tokenizer) -> tuple[str, str]:
    """(supervised text, unsupervised text) of one example of SFTTrainer's prepared train_dataset."""
    ids, labels = example["input_ids"], example["labels"]
    supervised = [i for i, label in zip(ids, labels) if label != -100]
    ignored = [i for i, label in zip(ids, labels) if label == -100]
    return tokenizer.decode(supervised), tokenizer.decode(ignored)
