"""The one place that turns argv into the recipe's dataclasses.

    python recipes/grpo.py configs/smoke.yaml --learning_rate 1e-6
    python recipes/grpo.py --config configs/smoke.yaml --learning_rate 1e-6

The YAML is flat and keyed by the dataclasses' own field names (TRL's `GRPOConfig`/`SFTConfig`,
TRL's `ModelConfig`, and rl-math's `RecipeArguments`). Its values become the parser's defaults and
command-line flags override them, as with TRL's own `TrlParser`. Everything is checked before any
model is loaded: an unknown key names the nearest valid key, a value of the wrong type names the
field and the expected type, and a recipe can add its own checks (`checks=`) that see the merged
values before the dataclasses are built.

Why not TRL's `TrlParser`: transformers' `HfArgumentParser` does parse the command-line flags here
(`--help`, types, booleans), but `TrlParser((GRPOConfig, ModelConfig)).parse_args_and_config()`
in TRL 1.16 lacks three things the recipes promise, each checked by running it:

- a positional YAML: `script.py cfg.yaml` ignores the file and runs on the defaults (here it
  stopped at GRPOConfig's bf16 check; with `--bf16 false` it fails with "Some specified arguments
  are not used by the HfArgumentParser: ['cfg.yaml']"). Only `--config cfg.yaml` is read.
- a nearest key: `learnin_rate:` in the YAML gives "Unknown arguments from config file:
  ['--learnin_rate', '1e-5']. Please remove them, add them to the dataclass, or set
  `fail_with_unknown_args=False`", and `--learnin_rate` on the command line "Some specified
  arguments are not used by the HfArgumentParser", neither naming `learning_rate`.
- typed one-sentence errors: `num_generations: 4.5` reaches GRPOConfig unchecked (the error is
  "generation_batch_size (8) must be divisible by num_generations (4.5)"), and
  `learning_rate: abc` or `--num_generations x` is argparse's usage page plus "invalid float
  value: 'abc'" and SystemExit 2, not an error a check or a test can catch by type.

Wrapping it would keep all of the code below (argv rewriting, the YAML type checks, the
nearest-key lookup) and add a second YAML reader, so there is less code without it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import enum
import logging
import os
import re
import sys
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from rl_math.field_checks import field_problem

logger = logging.getLogger(__name__)

_YAML_SUFFIXES = (".yaml", ".yml")
# Keys of the YAML that are not dataclass fields.
_ENV_KEY = "env"
# Credentials (hub tokens, API keys, passwords) come from the shell, never from a config file that
# gets committed, and are kept out of every file a run writes. One predicate for config fields and
# environment variables alike, matched on whole words: `max_prompt_tokens` and `eos_token` are not
# credentials, `hub_token`, `HF_TOKEN`, `WANDB_API_KEY` and `db_password` are.
_CREDENTIAL_WORDS = re.compile(r"(^|_)(api_?key|access_key|private_key|password|passwd|secret|credentials?)(_|$)")
_SPECIAL_TOKEN_FIELDS = {"eos_token", "pad_token", "bos_token", "unk_token", "sep_token", "cls_token", "mask_token"}
# Credential fields whose library also reads an environment variable: the value moves there.
_CREDENTIAL_ENV = {"hub_token": "HF_TOKEN"}


def is_credential(name: str) -> bool:
    """Whether a config field or environment variable holds a credential.

    >>> [n for n in ("hub_token", "HF_TOKEN", "WANDB_API_KEY", "max_prompt_tokens", "eos_token") if is_credential(n)]
    ['hub_token', 'HF_TOKEN', 'WANDB_API_KEY']
    """
    lowered = name.lower()
    if _CREDENTIAL_WORDS.search(lowered):
        return True
    return (lowered == "token" or lowered.endswith("_token")) and lowered not in _SPECIAL_TOKEN_FIELDS


class ConfigError(ValueError):
    """A configuration problem, raised before anything heavy is loaded."""


@dataclasses.dataclass
class RecipeArguments:
    """rl-math's own fields: data, prompt format and rewards (the trainers know nothing of these)."""

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
    overwrite_output_dir: bool = dataclasses.field(
        default=False,
        metadata={
            "help": "Start a new training run in an output_dir that holds an earlier one, deleting its "
            "checkpoints (without it such a run is refused unless it resumes)."
        },
    )
    # typing.Union, not `dict | str`: HfArgumentParser cannot build a flag from types.UnionType items
    rewards: list[typing.Union[dict, str]] | None = dataclasses.field(  # noqa: UP007
        default=None,
        metadata={
            "help": "Reward functions with weights and parameters, e.g. "
            "[{name: correctness, weight: 1.0}, {name: repetition_penalty, ngram_size: 5}]; a bare name "
            "has weight 1.0: [correctness, boxed_format]. "
            "null uses the prompt format's default mix."
        },
    )

    def __post_init__(self) -> None:
        from rl_math.tasks.formats import get_prompt_format

        try:
            get_prompt_format(self.prompt_format)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        from rl_math.tasks import get_task
        from rl_math.tasks.loading import arithmetic_options

        try:
            get_task(self.task)
        except ValueError as err:
            raise ConfigError(str(err)) from None

        arithmetic_options(self.dataset_name)  # a bad option is a ConfigError now, not at load time
        if self.rewards is not None:
            from rl_math.rewards import validate_reward_specs

            try:
                self.rewards = validate_reward_specs(self.rewards)
            except ValueError as err:
                raise ConfigError(f"rewards: {err}") from None


def recipe_dataclasses(recipe: str) -> list[type]:
    """The dataclasses a recipe (`grpo`, `sft`, `expert_iteration`, `evaluate`) parses its YAML into.

    One list per recipe, asked for by the recipe itself and by every test that parses its configs.
    """
    from trl import GRPOConfig, ModelConfig, SFTConfig

    from rl_math.eval.evaluate import EvalArguments
    from rl_math.eval.in_run import InRunEvalArguments
    from rl_math.train.dynamic_sampling import DynamicSamplingArguments
    from rl_math.train.expert_iteration import ExpertIterationArguments
    from rl_math.train.health import HealthArguments

    return {
        "grpo": [RecipeArguments, GRPOConfig, ModelConfig, HealthArguments, InRunEvalArguments,
                 DynamicSamplingArguments],
        "sft": [RecipeArguments, SFTConfig, ModelConfig, InRunEvalArguments],
        "expert_iteration": [RecipeArguments, SFTConfig, ModelConfig, ExpertIterationArguments],
        "evaluate": [RecipeArguments, EvalArguments],
    }[recipe]


# --------------------------------------------------------------------------------------------
# Options carried in a reserved name: `rl-math:arithmetic?operations=add,sub&max_operand=20`


def reserved_name_options(name: str, reserved: str, options_type: type) -> Any | None:
    """The options of `reserved?key=value&key=value` as an `options_type` instance; None for any other name.

    The options dataclass gives the keys, their types and defaults; a bad key or value is a
    ConfigError naming the option. Lists are comma-separated; booleans are true/false.

    >>> @dataclasses.dataclass
    ... class Opts:
    ...     size: int = 1
    ...     ops: list[str] = dataclasses.field(default_factory=lambda: ["add"])
    >>> reserved_name_options("rl-math:x?size=3&ops=add,mul", "rl-math:x", Opts)
    Opts(size=3, ops=['add', 'mul'])
    >>> reserved_name_options("Qwen/Qwen2.5-0.5B", "rl-math:x", Opts) is None
    True
    """
    base, _, query = name.partition("?")
    if base != reserved:
        return None
    fields = collect_fields([options_type])
    values: dict[str, Any] = {}
    for item in filter(None, query.split("&")):
        key, sep, text = item.partition("=")
        if key not in fields:
            hint = nearest_key(key, fields)
            known = f"did you mean {hint!r}?" if hint else f"known options: {', '.join(fields)}"
            raise ConfigError(f"unknown option {key!r} in {name!r}; {known}")
        if not sep:
            raise ConfigError(f"option {key!r} in {name!r} has no value; write {key}=VALUE")
        annotation = fields[key].annotation
        raw: Any = text
        if typing.get_origin(annotation) is list:
            raw = [part for part in text.split(",") if part]
        elif annotation is bool:
            raw = {"true": True, "false": False, "1": True, "0": False}.get(text.lower(), text)
        elif annotation is int:
            raw = int(text) if text.lstrip("-").isdigit() else text
        value = coerce_value(raw, annotation)
        if value is _NO_MATCH:
            raise ConfigError(f"option {key!r} in {name!r} expects {describe_type(annotation)}, got {text!r}")
        values[key] = value
    try:
        return options_type(**values)
    except ValueError as err:
        raise ConfigError(f"{name!r}: {err}") from None


# --------------------------------------------------------------------------------------------
# argv → (yaml path, overrides)


def split_config_path(argv: Sequence[str]) -> tuple[str | None, list[str]]:
    """Find the YAML among the arguments: `--config PATH`, `--config=PATH` or a positional path.

    >>> split_config_path(["configs/smoke.yaml", "--learning_rate", "1e-6"])
    ('configs/smoke.yaml', ['--learning_rate', '1e-6'])
    """
    argv = list(argv)
    paths: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--config":
            if i + 1 >= len(argv):
                raise ConfigError("--config needs a path to a YAML file")
            paths.append(argv[i + 1])
            i += 2
            continue
        if arg.startswith("--config="):
            paths.append(arg.split("=", 1)[1])
        elif not arg.startswith("-") and (not rest or not rest[-1].startswith("--")) and arg.endswith(_YAML_SUFFIXES):
            # a positional YAML (not the value of a preceding --flag)
            paths.append(arg)
        else:
            rest.append(arg)
        i += 1
    if len(paths) > 1:
        raise ConfigError(f"several config files given ({', '.join(paths)}); pass exactly one")
    return (paths[0] if paths else None), rest


class _DuplicateKey(Exception):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key given twice in one mapping (plain YAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str) and key in seen:
                raise _DuplicateKey(f"{key!r} (line {key_node.start_mark.line + 1})")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a config file into a mapping, with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except _DuplicateKey as err:
        raise ConfigError(f"{path} sets {err} twice (YAML would keep only the last); keep one of them") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {str(path)!r} is not text (not UTF-8); give the YAML config file") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {one_line(str(err))}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a YAML mapping of field: value, not a {type(data).__name__}")
    return data


# --------------------------------------------------------------------------------------------
# Field lookup and type checking


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    name: str
    owner: type
    annotation: Any


def collect_fields(dataclass_types: Iterable[type]) -> dict[str, FieldInfo]:
    """Every init field of the given dataclasses, by name, with its resolved type."""
    fields: dict[str, FieldInfo] = {}
    for dtype in dataclass_types:
        hints = typing.get_type_hints(dtype)
        for f in dataclasses.fields(dtype):
            if f.init:
                fields.setdefault(f.name, FieldInfo(f.name, dtype, hints.get(f.name, Any)))
    return fields


def nearest_key(name: str, candidates: Iterable[str]) -> str | None:
    """The closest valid name to a misspelt one, or None when nothing is close.

    The one "did you mean" matcher: config keys, reward names and parameters, task options and
    paths all use it, so a typo is caught (or not) the same way everywhere.

    >>> nearest_key("learnin_rate", ["learning_rate", "lr_scheduler_type"])
    'learning_rate'
    """
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


# Fields that users carry over from older TRL/transformers versions, and what replaced them.
_REPLACED_FIELDS = {
    "max_prompt_length": (
        "max_prompt_tokens",
        "TRL 1.16 has no max_prompt_length; rl-math drops prompts over max_prompt_tokens",
    ),
    "warmup_ratio": ("warmup_steps", "transformers 5 removed warmup_ratio; a float warmup_steps below 1 is a ratio"),
}


def unknown_key_error(name: str, fields: Iterable[str], where: str) -> ConfigError:
    if name in _REPLACED_FIELDS:
        replacement, why = _REPLACED_FIELDS[name]
        return ConfigError(f"unknown config key {name!r} {where}; did you mean {replacement!r}? ({why})")
    suggestion = nearest_key(name, fields)
    hint = f"did you mean {suggestion!r}?" if suggestion else "run the recipe with --help to list the valid fields."
    return ConfigError(f"unknown config key {name!r} {where}; {hint}")


def describe_type(annotation: Any) -> str:
    """A readable name for a type annotation: `float`, `int or null`, `one of 'a', 'b'`."""
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return "any value"
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if any(isinstance(a, type) and issubclass(a, enum.Enum) for a in args):
            args = tuple(a for a in args if a is not str)
        return " or ".join(describe_type(a) for a in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in annotation)
    if origin in (list, tuple, Sequence):
        args = typing.get_args(annotation)
        return f"list of {describe_type(args[0])}" if args else "list"
    if origin is dict:
        return "mapping"
    return getattr(annotation, "__name__", str(annotation))


_NO_MATCH = object()


def coerce_value(value: Any, annotation: Any) -> Any:
    """Return `value` as the annotation's type, or `_NO_MATCH`.

    Lenient only where YAML is surprising: `1e-6` is a string to YAML 1.1 but a float to everyone,
    and an int is a fine float.
    """
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if any(isinstance(a, type) and issubclass(a, enum.Enum) for a in args):
            # `SchedulerType | str` means "the enum, or its value as text": check against the enum
            args = tuple(a for a in args if a is not str)
        # exact matches first, so that `str | None` keeps a string and `float | str` a float
        for arg in args:
            if _is_exact(value, arg):
                return value
        for arg in args:
            result = coerce_value(value, arg)
            if result is not _NO_MATCH:
                return result
        return _NO_MATCH
    if annotation is type(None):
        return None if value is None else _NO_MATCH
    if origin is typing.Literal:
        return value if value in typing.get_args(annotation) else _NO_MATCH
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        values = {m.value: m.value for m in annotation} | {m: m.value for m in annotation}
        return values.get(value, _NO_MATCH) if isinstance(value, (str, enum.Enum)) else _NO_MATCH
    if annotation is bool:
        return value if isinstance(value, bool) else _NO_MATCH
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return _NO_MATCH
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return _NO_MATCH
        return _NO_MATCH
    if annotation is str:
        if isinstance(value, str):
            return value
        # `model_revision: 2024` or `resume_from_checkpoint: true` are strings to the trainer
        if isinstance(value, (int, float, bool)):
            return str(value).lower() if isinstance(value, bool) else str(value)
        return _NO_MATCH
    if origin in (list, Sequence) or annotation is list:
        if not isinstance(value, (list, tuple)):
            value = [value]  # `lora_target_modules: q_proj` means a list of one
        (item_type,) = typing.get_args(annotation) or (Any,)
        items = [coerce_value(v, item_type) for v in value]
        return _NO_MATCH if any(i is _NO_MATCH for i in items) else items
    if origin is dict or annotation is dict:
        return value if isinstance(value, dict) else _NO_MATCH
    if isinstance(annotation, type):
        return value if isinstance(value, annotation) else _NO_MATCH
    return value


def _is_exact(value: Any, annotation: Any) -> bool:
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation in (int, float):
        return isinstance(value, annotation) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    return False


def check_yaml_values(values: dict[str, Any], fields: dict[str, FieldInfo], source: str) -> dict[str, Any]:
    """Validate names and types of the YAML values; return them coerced."""
    checked: dict[str, Any] = {}
    for name, value in values.items():
        if name not in fields:
            raise unknown_key_error(name, fields, f"in {source}")
        coerced = coerce_value(value, fields[name].annotation)
        if coerced is _NO_MATCH:
            raise ConfigError(
                f"config key {name!r} in {source} expects {describe_type(fields[name].annotation)}, "
                f"got {value!r} ({type(value).__name__})"
            )
        checked[name] = coerced
    return checked


def _structured(annotation: Any) -> bool:
    """Fields argparse cannot take as a string (a list of mappings, a bare mapping)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return str not in args and any(_structured(a) for a in args)
    if origin is list:
        (item,) = typing.get_args(annotation) or (Any,)
        if typing.get_origin(item) in (typing.Union, types.UnionType):  # `list[dict | str]`
            return any(typing.get_origin(arg) is dict or arg is dict for arg in typing.get_args(item))
        return typing.get_origin(item) is dict or item is dict
    return origin is dict or annotation is dict


def split_cli_overrides(
    args: list[str], fields: dict[str, FieldInfo]
) -> tuple[list[str], dict[str, Any]]:
    """Check every `--flag` names a field; take out structured fields (given as YAML/JSON text).

    Returns the flags for argparse and the structured values, already parsed.
    """
    plain: list[str] = []
    structured: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            if arg.startswith("-") and not _is_number(arg):
                raise ConfigError(f"unexpected argument {arg!r}: fields are given as --name value")
            if not plain:
                raise ConfigError(
                    f"unexpected argument {arg!r}: give the config file as a .yaml path and fields as --name value"
                )
            plain.append(arg)
            i += 1
            continue
        flag, _, inline_value = arg[2:].partition("=")
        name = flag.replace("-", "_")
        base = name[3:] if name.startswith("no_") and name[3:] in fields else name
        if base not in fields:
            raise unknown_key_error(name, fields, "on the command line")
        if _structured(fields[base].annotation):
            if inline_value:
                text, i = inline_value, i + 1
            elif i + 1 < len(args):
                text, i = args[i + 1], i + 2
            else:
                raise ConfigError(f"--{name} needs a value (YAML or JSON text)")
            try:
                structured[base] = yaml.safe_load(text)
            except yaml.YAMLError as err:
                raise ConfigError(f"--{name} must be YAML or JSON text: {err}") from None
            continue
        if not inline_value and i + 1 < len(args) and args[i + 1].startswith("-") and _is_number(args[i + 1]):
            # argparse takes `-1e-4` for a flag ("expected one argument"): pass it as `--flag=-1e-4`
            plain.append(f"{arg}={args[i + 1]}")
            i += 2
            continue
        plain.append(arg)
        i += 1
    return plain, structured


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _set_env(env: Any, source: str) -> None:
    if not isinstance(env, dict):
        raise ConfigError(f"'env' in {source} must be a mapping of VARIABLE: value")
    for key, value in env.items():
        if is_credential(str(key)):
            raise ConfigError(
                f"'env' in {source} sets {key}, which looks like a credential; secrets come from the "
                f"environment (export {key}=... in your shell or job script), never from a config file"
            )
        os.environ[str(key)] = str(value)


# --------------------------------------------------------------------------------------------
# The parser


CheckFn = Callable[[dict[str, Any], set[str]], None]


@dataclasses.dataclass
class ParsedConfig:
    """What `parse_config` returns: the dataclass instances in the order asked for, plus provenance."""

    instances: tuple[Any, ...]
    config_path: str | None
    explicit: set[str]  # fields set by the YAML or the command line
    values: dict[str, Any]  # the merged values the dataclasses were built from


def parse_config(
    dataclass_types: Sequence[type],
    argv: Sequence[str] | None = None,
    checks: Sequence[CheckFn] = (),
) -> ParsedConfig:
    """Parse `[CONFIG.yaml] [--field value ...]` into instances of `dataclass_types`.

    `checks` receive the merged values (every field, defaults included) and the names set
    explicitly, may adjust values in place (e.g. CPU defaults) and raise ConfigError; they run
    before any dataclass is built, so before TRL's own validation and before any model loads.
    """
    from transformers import HfArgumentParser

    argv = list(sys.argv[1:] if argv is None else argv)
    if "-h" in argv or "--help" in argv:
        HfArgumentParser(list(dataclass_types)).print_help()
        raise SystemExit(0)
    config_path, cli_args = split_config_path(argv)
    fields = collect_fields(dataclass_types)

    yaml_values: dict[str, Any] = {}
    if config_path is not None:
        raw = load_yaml(config_path)
        if _ENV_KEY in raw:
            _set_env(raw.pop(_ENV_KEY), config_path)
        yaml_values = check_yaml_values(raw, fields, config_path)

    plain_args, structured = split_cli_overrides(cli_args, fields)
    yaml_values.update(check_yaml_values(structured, fields, "the command line"))

    parser = HfArgumentParser(list(dataclass_types))
    parser.error = _raise_config_error  # one clear line instead of argparse's page of usage
    for action in parser._actions:
        if action.dest in yaml_values:
            action.default = yaml_values[action.dest]
            action.required = False
    namespace, remaining = parser.parse_known_args(plain_args)
    if remaining:
        raise ConfigError(f"arguments not understood: {' '.join(remaining)}")
    values = vars(namespace)
    explicit = set(yaml_values) | _flags_given(plain_args, fields)

    if (problem := field_problem(values, dataclass_types)) is not None:  # ranges and choices, before any check uses them
        raise ConfigError(problem)
    for check in checks:
        check(values, explicit)
    _move_credentials_to_env(values)

    instances = []
    for dtype in dataclass_types:
        keys = {f.name for f in dataclasses.fields(dtype) if f.init}
        try:
            instances.append(dtype(**{k: v for k, v in values.items() if k in keys}))
        except ValueError as err:  # the dataclass's own validation: TRL's, transformers' or ours
            raise ConfigError(one_line(str(err))) from None
    return ParsedConfig(tuple(instances), config_path, explicit, dict(values))


def _move_credentials_to_env(values: dict[str, Any]) -> None:
    """A credential field (`--hub_token`) goes to the environment variable its library also reads.

    The Trainer pickles its arguments into `training_args.bin` of output_dir and of every
    checkpoint, so a token left in them would be written to disk in plain text.
    """
    for name, variable in _CREDENTIAL_ENV.items():
        if values.get(name):
            os.environ[variable] = str(values[name])
            values[name] = None
            logger.info("%s is passed to the hub through $%s, so that no file written holds it", name, variable)
def one_line(message: str) -> str:
    """A multi-line library message as the one line a ConfigError prints."""
    return " ".join(message.split())


def _raise_config_error(message: str) -> typing.NoReturn:
    raise ConfigError(f"command line: {message}")


def _flags_given(args: list[str], fields: dict[str, FieldInfo]) -> set[str]:
    given = set()
    for arg in args:
        if arg.startswith("--"):
            name = arg[2:].partition("=")[0].replace("-", "_")
            given.add(name[3:] if name.startswith("no_") and name[3:] in fields else name)
    return given


# Fields a trainer fills in from another one when left unset (GRPOConfig: generation_batch_size =
# per-device batch × processes × steps_per_generation); the saved config keeps only the source.
_DERIVED_FIELDS = {"generation_batch_size": "steps_per_generation"}


def to_yaml_dict(*instances: Any) -> dict[str, Any]:
    """The resolved configuration as plain YAML-able values, for saving into output_dir."""
    resolved: dict[str, Any] = {}
    for obj in instances:
        data = obj.to_dict() if hasattr(obj, "to_dict") else dataclasses.asdict(obj)
        # TrainingArguments.to_dict masks every `*_token` field (eos_token: '<EOS_TOKEN>'): take the
        # real values, credentials are left out below
        data.update({key: getattr(obj, key) for key in data if key.endswith("_token") and hasattr(obj, key)})
        for key, value in data.items():
            resolved.setdefault(key, _plain(value))
    if resolved.get("overwrite_output_dir"):
        resolved["overwrite_output_dir"] = False  # rerunning the saved config must not delete the run it describes
    for derived, source in _DERIVED_FIELDS.items():
        if resolved.get(derived) is not None and resolved.get(source) is not None:
            resolved[derived] = None  # the trainer derives it again; both set is an error on re-run
    # credentials are left out (not redacted) so that the saved config re-runs as it is
    return {key: value for key, value in resolved.items() if not is_credential(key)}


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


@contextlib.contextmanager
def exit_on_config_error() -> typing.Iterator[None]:
    """In a recipe's `__main__`: a ConfigError is one line on stderr and exit code 2, no traceback."""
    try:
        yield
    except ConfigError as err:
        print(f"{Path(sys.argv[0]).name}: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
