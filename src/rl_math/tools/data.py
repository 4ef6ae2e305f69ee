"""`rl-math data CONFIG.yaml --split S`: the rows a run with that config would use, as JSON lines.

Each row is what the recipes build from the config's data fields (`dataset_name`, `task`,
`dataset_config`, `prompt_format`, `system_prompt`, `max_train_samples` / `max_eval_samples`) through
the one loader, :func:`rl_math.tasks.loading.load_prompt_dataset`: ``question`` (the user message),
``answer`` (the gold the rewards grade against), ``solution`` (what SFT trains on) and ``task``.
Prompts longer than `max_prompt_tokens` are not dropped here (that needs the model's tokenizer).
Useful to audit what a run trains and is scored on, e.g. that held-out facts are held out.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rl_math.config import load_yaml
from rl_math.fields import collect_fields
from rl_math.tasks.loading import DataArguments, load_prompt_dataset

# TrainingArguments' default seed: the one a recipe shuffles with when the config names none.
DEFAULT_SEED = 42


def data_arguments(config: dict[str, Any]) -> DataArguments:
    """The config's data fields as the recipes parse them (other fields are another layer's).

    >>> data_arguments({"dataset_name": "rl-math:synthetic", "learning_rate": 1e-5}).dataset_name
    'rl-math:synthetic'
    """
    fields = collect_fields([DataArguments])
    return DataArguments(**{key: value for key, value in config.items() if key in fields})


def config_rows(config_path: str | Path, split: str) -> Iterator[dict[str, Any]]:
    """The rows of `split` a run with this config would use (a sampled subset where the config asks one)."""
    config = load_yaml(config_path)
    args = data_arguments(config)
    limit = {args.dataset_train_split: args.max_train_samples, args.dataset_test_split: args.max_eval_samples}.get(split)
    dataset = load_prompt_dataset(args, split, None, limit, int(config.get("seed", DEFAULT_SEED)))
    for row in dataset:
        yield {"question": row["prompt"][-1]["content"], "answer": row["answer"], "solution": row["solution"],
               "task": row["task"]}


def write_rows(rows: Iterator[dict[str, Any]], handle) -> int:
    """Write rows as JSON lines; return how many."""
    count = 0
    for row in rows:
        handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += 1
    return count
