"""GSM8K (or any question/answer set) → conversational prompts with a gold `answer` column.

Sources, chosen by `dataset_name`:
- a hub id (default `openai/gsm8k`, config `main`),
- a local `.jsonl`/`.json`/`.parquet` file, or a folder holding `{split}.jsonl|json|parquet`
  (a split name may itself be a file path),
- `rl-math:synthetic`, the offline generated arithmetic problems,
- `rl-math:arithmetic?operations=add&max_operand=9&…`, the difficulty-controlled offline task
  (options: :class:`rl_math.synthetic.ArithmeticOptions`).

Each row becomes `prompt` (system prompt + question), `answer` (the normalised gold answer) and
`solution` (the original reasoning text, used by SFT). Rows whose gold answer the grader cannot read
are dropped with a count logged, so that no reward is ever computed against a missing gold answer;
a split with none left is a ConfigError.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from rl_math.config import ConfigError
from rl_math.grader import gold_is_gradable
from rl_math.gsm8k import gold_answer_from_solution
from rl_math.prompts import build_prompt, get_prompt_format

if TYPE_CHECKING:
    from datasets import Dataset

    from rl_math.config import RecipeArguments

logger = logging.getLogger(__name__)

SYNTHETIC_DATASET = "rl-math:synthetic"
_LOCAL_SUFFIXES = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}
REQUIRED_COLUMNS = ("question", "answer")


def gold_answer(answer_text: str) -> str | None:
    """The gold answer of a row: after `####` in a GSM8K solution, else the short answer itself;
    None when there is none or the grader cannot read it.

    >>> gold_answer("6 * 3 = 18\\n#### 18"), gold_answer(" 1,080 "), gold_answer(""), gold_answer("Paris")
    ('18', '1080', None, None)
    """
    if not isinstance(answer_text, str):
        return None
    if "####" in answer_text:
        text = gold_answer_from_solution(answer_text)
    else:
        text = answer_text.strip().replace(",", "")
        text = text if text and "\n" not in text else None
    return text if text is not None and gold_is_gradable(text) else None


def arithmetic_options(dataset_name: str):
    """The options of an `rl-math:arithmetic?…` name (a ConfigError for bad ones), else None."""
    from rl_math.config import parse_name_options
    from rl_math.synthetic import ARITHMETIC_DATASET, ArithmeticOptions

    if dataset_name.partition("?")[0] != ARITHMETIC_DATASET:
        return None
    return parse_name_options(dataset_name, ArithmeticOptions)[1]


def _local_file(dataset_name: str, split: str) -> Path | None:
    split_path = Path(split)
    if split_path.suffix in _LOCAL_SUFFIXES and split_path.is_file():
        return split_path
    path = Path(dataset_name)
    if path.is_file():
        return path
    if path.is_dir():
        for suffix in _LOCAL_SUFFIXES:
            candidate = path / f"{split}{suffix}"
            if candidate.is_file():
                return candidate
        found = sorted(p.name for p in path.iterdir() if p.suffix in _LOCAL_SUFFIXES)
        raise FileNotFoundError(
            f"no {split}.jsonl, {split}.json or {split}.parquet in {path} (found: {', '.join(found) or 'none'})"
        )
    return None


def load_problems(dataset_name: str, split: str, dataset_config: str | None = None) -> "Dataset":
    """Load one split with `question` and `answer` columns, from the hub, a local file or the generator."""
    from datasets import Dataset, load_dataset

    if dataset_name == SYNTHETIC_DATASET:
        from rl_math.synthetic import synthetic_split

        dataset = Dataset.from_list(synthetic_split(split))
    elif (options := arithmetic_options(dataset_name)) is not None:
        from rl_math.synthetic import arithmetic_split

        dataset = Dataset.from_list(arithmetic_split(split, options))
    elif (local := _local_file(dataset_name, split)) is not None:
        dataset = load_dataset(_LOCAL_SUFFIXES[local.suffix], data_files=str(local), split="train")
    else:
        dataset = load_dataset(dataset_name, dataset_config, split=split)
    missing = [c for c in REQUIRED_COLUMNS if c not in dataset.column_names]
    if missing:
        raise ValueError(
            f"dataset {dataset_name!r} split {split!r} lacks column(s) {missing}; it has {dataset.column_names}. "
            "rl-math expects 'question' and 'answer' (a GSM8K-style solution ending in '#### <answer>', or the bare answer)."
        )
    return dataset


def to_prompts(dataset: "Dataset", system_prompt: str | None) -> "Dataset":
    """Map question/answer rows to `prompt`, `answer` (gold) and `solution`; drop unparseable golds."""

    def convert(row):
        return {
            "prompt": build_prompt(row["question"], system_prompt),
            "answer": gold_answer(row["answer"]),
            "solution": row["answer"],
        }

    converted = dataset.map(convert, remove_columns=dataset.column_names)
    kept = converted.filter(lambda row: row["answer"] is not None)
    if len(converted) and not len(kept):
        raise ConfigError(
            f"none of the {len(converted)} problems has a gold answer the grader can read (the first is "
            f"{str(dataset[0]['answer'])[:80]!r}); the answer column must hold a GSM8K solution ending in "
            "'#### <number>' or the number itself"
        )
    if dropped := len(converted) - len(kept):
        logger.warning("dropped %d of %d problems whose gold answer could not be parsed", dropped, len(converted))
    return kept


def drop_long_prompts(dataset: "Dataset", tokenizer, max_prompt_tokens: int | None) -> "Dataset":
    """Drop prompts whose chat-formatted length exceeds the budget (TRL 1.16 never truncates them)."""
    if max_prompt_tokens is None:
        return dataset

    def fits(row) -> bool:
        ids = tokenizer.apply_chat_template(row["prompt"], tokenize=True, add_generation_prompt=True)
        ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
        return len(ids) <= max_prompt_tokens

    kept = dataset.filter(fits)
    dropped = len(dataset) - len(kept)
    if dropped:
        logger.warning(
            "dropped %d of %d prompts longer than max_prompt_tokens=%d", dropped, len(dataset), max_prompt_tokens
        )
    else:
        logger.info("all %d prompts fit in max_prompt_tokens=%d", len(dataset), max_prompt_tokens)
    if len(kept) == 0:
        raise ValueError(
            f"every prompt is longer than max_prompt_tokens={max_prompt_tokens}; raise it or shorten system_prompt"
        )
    return kept


def system_prompt_for(args: "RecipeArguments") -> str:
    return args.system_prompt if args.system_prompt is not None else get_prompt_format(args.prompt_format).system_prompt


def load_prompt_dataset(args: "RecipeArguments", split: str, tokenizer=None, limit: int | None = None, seed: int = 0) -> "Dataset":
    """The recipe's dataset for `split`: prompts in the chosen format, gold answers, long prompts dropped."""
    dataset = load_problems(args.dataset_name, split, args.dataset_config)
    if limit is not None and limit < len(dataset):
        dataset = dataset.shuffle(seed=seed).select(range(limit))
    dataset = to_prompts(dataset, system_prompt_for(args))
    if tokenizer is not None:
        dataset = drop_long_prompts(dataset, tokenizer, args.max_prompt_tokens)
    return dataset
