"""Dataset sources → conversational prompts with a gold `answer` column, for the run's task.

Sources, chosen by `dataset_name`:
- a hub id (default `openai/gsm8k`, config `main`),
- a local `.jsonl`/`.json`/`.parquet` file, or a folder holding `{split}.jsonl|json|parquet`
  (a split name may itself be a file path),
- `rl-math:synthetic`, the offline generated arithmetic problems,
- `rl-math:arithmetic?operations=add&max_operand=9&…`, the difficulty-controlled offline task
  (options: :class:`rl_math.tasks.arithmetic.ArithmeticOptions`).

The task (:mod:`rl_math.tasks`) names the columns (GSM8K: `question`/`answer`; MATH: `problem`/
`answer`/`solution`) and reads the golds. Each row becomes `prompt` (system prompt + question),
`answer` (the normalised gold answer), `solution` (the worked solution, used by SFT) and `task`
(the task's name, which the `correctness` reward and the evaluation grade with). Rows whose gold
answer the task cannot read are dropped with a count logged, so that no reward is ever computed
against a missing gold answer.

A data mistake (a missing file, split or column, an empty file, a corrupt line, a row without a
question, no gold answer the grader can read at all) is a `ConfigError`: one sentence, before any
model loads.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from rl_math.errors import ConfigError, one_line
from rl_math.fields import reserved_name_options
from rl_math.runtime import hub_offline
from rl_math.tasks import DEFAULT_TASK, Task, get_task
from rl_math.tasks.arithmetic import (
    ARITHMETIC_DATASET,
    SYNTHETIC_DATASET,
    ArithmeticOptions,
    arithmetic_split,
    is_arithmetic_dataset,
    synthetic_split,
)
from rl_math.tasks.formats import build_prompt, get_prompt_format

if TYPE_CHECKING:
    from datasets import Dataset

logger = logging.getLogger(__name__)

_LOCAL_SUFFIXES = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}


def arithmetic_options(dataset_name: str):
    """The options of an `rl-math:arithmetic?…` name (a ConfigError for bad ones), else None."""

    return reserved_name_options(dataset_name, ARITHMETIC_DATASET, ArithmeticOptions)


def local_file(dataset_name: str, split: str) -> Path | None:
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
        splits = ", ".join(sorted({Path(name).stem for name in found})) or "none"
        raise ConfigError(
            f"split {split!r} not found: no {split}.jsonl, {split}.json or {split}.parquet in {path}; set "
            f"dataset_train_split / dataset_test_split to one of the splits there ({splits})"
        )
    if path.suffix in _LOCAL_SUFFIXES:
        raise ConfigError(
            f"dataset file {dataset_name!r} does not exist (relative paths start in {Path.cwd()}); "
            "give an existing .jsonl/.json/.parquet file or folder, or a hub dataset id"
        )
    return None


def read_local_file(path: Path) -> Dataset:
    """A local .jsonl/.json/.parquet file as a Dataset; an empty or corrupt file is a ConfigError."""
    from datasets import load_dataset

    if path.stat().st_size == 0:
        raise ConfigError(f"dataset file {str(path)!r} is empty; give a file with one question/answer row per line")
    try:
        return load_dataset(_LOCAL_SUFFIXES[path.suffix], data_files=str(path), split="train")
    except Exception as err:  # noqa: BLE001 - datasets wraps every parse error in its own types
        if bad_line := _first_bad_json_line(path):
            raise ConfigError(f"dataset file {str(path)!r} cannot be read: {bad_line}; fix or remove that line") from None
        raise ConfigError(
            f"dataset file {str(path)!r} cannot be read ({one_line(str(err))[:300]}); check that it is a valid "
            f"{path.suffix} file of question/answer rows"
        ) from None


def _first_bad_json_line(path: Path) -> str | None:
    """`line 7 is not valid JSON (...)` for the first broken line of a .jsonl file; None if none is found."""
    import json

    if path.suffix != ".jsonl":
        return None
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                try:
                    json.loads(line)
                except json.JSONDecodeError as err:
                    return f"line {number} is not valid JSON ({err.msg})"
    return None


def _load_hub_dataset(dataset_name: str, split: str, dataset_config: str | None) -> Dataset:
    from datasets import load_dataset

    try:
        return load_dataset(dataset_name, dataset_config, split=split)
    except Exception as err:  # noqa: BLE001 - offline, not found, unknown split or config: all input mistakes
        reason = one_line(str(err))[:300]
        if hub_offline():
            fix = "the hub is unreachable (HF_HUB_OFFLINE=1): load it once with network, or give a local .jsonl file"
        else:
            fix = "check the id, config and split, or give a local .jsonl file with question/answer rows"
        raise ConfigError(
            f"dataset {dataset_name!r} (config {dataset_config!r}, split {split!r}) could not be loaded ({reason}); {fix}"
        ) from None


def task_name_for(task: str | None, dataset_name: str) -> str:
    """The task a run uses: the configured one, else the one its dataset name implies.

    >>> task_name_for(None, "openai/gsm8k"), task_name_for(None, "rl-math:arithmetic?max_operand=5")
    ('gsm8k', 'arithmetic')
    >>> task_name_for("math", "../shared/data/math500")
    'math'
    """
    if task:
        return task
    return "arithmetic" if is_arithmetic_dataset(dataset_name) else DEFAULT_TASK



def load_problems(dataset_name: str, split: str, dataset_config: str | None = None, task: Task | None = None) -> Dataset:
    """Load one split with the task's question and answer columns, from the hub, a local file or the generator."""
    from datasets import Dataset, Value

    if dataset_name == SYNTHETIC_DATASET:

        dataset = Dataset.from_list(synthetic_split(split))
    elif (options := arithmetic_options(dataset_name)) is not None:

        dataset = Dataset.from_list(arithmetic_split(split, options))
    elif (local := local_file(dataset_name, split)) is not None:
        dataset = read_local_file(local)
    else:
        dataset = _load_hub_dataset(dataset_name, split, dataset_config)
    task = task or get_task(task_name_for(None, dataset_name))
    where = f"dataset {dataset_name!r} split {split!r}"
    missing = [c for c in task.columns if c not in dataset.column_names]
    if missing:
        question, answer = task.columns
        raise ConfigError(
            f"{where} lacks column(s) {missing} for task {task.name!r} (it has {dataset.column_names}); rename its "
            f"columns to {question!r} and {answer!r} ({task.answer_help}), or set `task` to the task of this data"
        )
    if len(dataset) == 0:
        raise ConfigError(f"{where} has no rows; give a dataset with {'/'.join(task.columns)} rows")
    answer_type = dataset.features[task.answer_column]
    if isinstance(answer_type, Value) and answer_type.dtype != "string":  # `{"answer": 18}` is an answer too
        dataset = dataset.cast_column(task.answer_column, Value("string"))
    for index, question in enumerate(dataset[task.question_column]):
        if not isinstance(question, str) or not question.strip():
            raise ConfigError(f"row {index} of {where} has no question ({question!r}); fill it in or remove the row")
    return dataset


def to_prompts(dataset: Dataset, system_prompt: str | None, task: Task | None = None) -> Dataset:
    """Map the task's rows to `prompt`, `answer` (gold), `solution` and `task`; drop golds the task cannot read."""
    task = task or get_task(None)

    def convert(row):
        solution = row.get(task.solution_column)
        return {
            "prompt": build_prompt(row[task.question_column], system_prompt),
            "answer": task.gold(row[task.answer_column]),
            "solution": "" if solution is None else str(solution),
            "task": task.name,
        }

    converted = dataset.map(convert, remove_columns=dataset.column_names)
    kept = converted.filter(lambda row: row["answer"] is not None)
    if len(converted) and not len(kept):
        raise ConfigError(
            f"none of the {len(converted)} problems has a gold answer task {task.name!r} can read (the first is "
            f"{str(dataset[0][task.answer_column])[:80]!r}); the {task.answer_column!r} column must hold "
            f"{task.answer_help}, or set `task` to the task of this data"
        )
    if dropped := len(converted) - len(kept):
        logger.warning("dropped %d of %d problems whose gold answer could not be parsed", dropped, len(converted))
    return kept


def dataset_task(dataset) -> str | None:
    """The task a prompt dataset's rows name (the `task` column :func:`to_prompts` writes), or None.

    `dataset` is a Dataset or a mapping of columns.

    >>> dataset_task({"prompt": [[]], "answer": ["18"], "task": ["gsm8k"]}), dataset_task({"answer": ["18"]})
    ('gsm8k', None)
    """
    columns = dataset.column_names if hasattr(dataset, "column_names") else list(dataset)
    tasks = dataset["task"] if "task" in columns else []
    return tasks[0] if len(tasks) else None


def drop_long_prompts(dataset: Dataset, tokenizer, max_prompt_tokens: int | None) -> Dataset:
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
        raise ConfigError(
            f"every prompt is longer than max_prompt_tokens={max_prompt_tokens}; raise it or shorten system_prompt"
        )
    return kept


@dataclasses.dataclass
class DataArguments:
    """Which problems a run uses and how they are put to the model (the trainers know nothing of these)."""

    dataset_name: str = dataclasses.field(
        default="openai/gsm8k",
        metadata={
            "help": "Hub dataset id, a local .jsonl/.json/.parquet file or folder with question/answer "
            "columns, 'rl-math:synthetic' for the offline generated arithmetic problems, or "
            "'rl-math:arithmetic?operations=add&max_operand=9&worked=false&train_size=2000&test_size=1000' "
            "for the difficulty-controlled offline task."
        },
    )
    task: str | None = dataclasses.field(
        default=None,
        metadata={
            "help": "What is asked and what counts as right: gsm8k (question/answer columns, numeric golds), "
            "arithmetic (the offline rl-math:synthetic / rl-math:arithmetic problems) or math (problem/answer/"
            "solution columns, LaTeX golds graded by math-verify). null: arithmetic for the offline "
            "dataset names, else gsm8k."
        },
    )
    dataset_config: str | None = dataclasses.field(
        default="main", metadata={"help": "Hub dataset configuration name (GSM8K: 'main')."}
    )
    dataset_train_split: str = dataclasses.field(default="train", metadata={"help": "Training split."})
    dataset_test_split: str = dataclasses.field(default="test", metadata={"help": "Evaluation split."})
    max_train_samples: int | None = dataclasses.field(
        default=None, metadata={"help": "Keep only the first N training problems (after shuffling)."}
    )
    max_eval_samples: int | None = dataclasses.field(
        default=None, metadata={"help": "Keep only the first N evaluation problems."}
    )
    prompt_format: str = dataclasses.field(
        default="boxed",
        metadata={"help": "Answer format asked of the model: boxed, think_boxed or r1."},
    )
    system_prompt: str | None = dataclasses.field(
        default=None, metadata={"help": "Replaces the prompt format's default system prompt."}
    )
    max_prompt_tokens: int | None = dataclasses.field(
        default=512,
        metadata={
            "help": "Drop prompts longer than this many tokens (TRL 1.16 never truncates prompts); "
            "the count dropped is logged. null keeps all."
        },
    )
    def __post_init__(self) -> None:
        try:
            get_prompt_format(self.prompt_format)
            get_task(self.task)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        arithmetic_options(self.dataset_name)  # a bad option is a ConfigError now, not at load time


def system_prompt_for(args: DataArguments) -> str:
    return args.system_prompt if args.system_prompt is not None else get_prompt_format(args.prompt_format).system_prompt


def task_of(args: DataArguments) -> Task:
    """The run's task: `task` in the YAML, else the one its dataset name implies."""
    return get_task(task_name_for(args.task, args.dataset_name))


def load_prompt_dataset(args: DataArguments, split: str, tokenizer=None, limit: int | None = None, seed: int = 0) -> Dataset:
    """The recipe's dataset for `split`: the task's prompts in the chosen format, gold answers, long prompts dropped."""
    task = task_of(args)
    dataset = load_problems(args.dataset_name, split, args.dataset_config, task)
    if limit is not None and limit < len(dataset):
        dataset = dataset.shuffle(seed=seed).select(range(limit))
    dataset = to_prompts(dataset, system_prompt_for(args), task)
    if tokenizer is not None:
        dataset = drop_long_prompts(dataset, tokenizer, args.max_prompt_tokens)
    return dataset
