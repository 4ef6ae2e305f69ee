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

import dataclasses
import enum
import logging
import os
import sys
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from rl_math.errors import ConfigError, is_credential, nearest_key, one_line
from rl_math.fields import NO_MATCH, FieldInfo, coerce_value, collect_fields, describe_type
from rl_math.rewards import validate_reward_specs
from rl_math.tasks.loading import DataArguments

logger = logging.getLogger(__name__)

_YAML_SUFFIXES = (".yaml", ".yml")
# Keys of the YAML that are not dataclass fields.
_ENV_KEY = "env"
# Credential fields whose library also reads an environment variable: the value moves there.
_CREDENTIAL_ENV = {"hub_token": "HF_TOKEN"}


@dataclasses.dataclass
class RecipeArguments(DataArguments):
    """rl-math's own fields: the data (`DataArguments`), the rewards, and the run's output_dir policy."""

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
        super().__post_init__()
        if self.rewards is not None:
            try:
                self.rewards = validate_reward_specs(self.rewards)
            except ValueError as err:
                raise ConfigError(f"rewards: {err}") from None


# --------------------------------------------------------------------------------------------
# Options carried in a reserved name: `rl-math:arithmetic?operations=add,sub&max_operand=20`


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


def check_yaml_values(values: dict[str, Any], fields: dict[str, FieldInfo], source: str) -> dict[str, Any]:
    """Validate names and types of the YAML values; return them coerced."""
    checked: dict[str, Any] = {}
    for name, value in values.items():
        if name not in fields:
            raise unknown_key_error(name, fields, f"in {source}")
        coerced = coerce_value(value, fields[name].annotation)
        if coerced is NO_MATCH:
            raise ConfigError(
                f"config key {name!r} in {source} expects {describe_type(fields[name].annotation)}, "
                f"got {value!r} ({type(value).__name__})"
            )
        checked[name] = coerced
    return checked


def field_defaults(dataclass_types: Iterable[type]) -> dict[str, Any]:
    """Every init field's default (the first dataclass that declares a name wins, as in parsing)."""
    defaults: dict[str, Any] = {}
    for dtype in dataclass_types:
        for f in dataclasses.fields(dtype):
            if f.init and f.name not in defaults:
                if f.default is not dataclasses.MISSING:
                    defaults[f.name] = f.default
                elif f.default_factory is not dataclasses.MISSING:
                    defaults[f.name] = f.default_factory()
    return defaults


def recipe_values(path: str | os.PathLike, dataclass_types: Sequence[type]) -> dict[str, Any]:
    """What a run of the YAML at `path` is built from: each field's default, the YAML's values over them.

    The one reader of a recipe YAML outside a run (`rl-math plan`, `rl-math config`, the sbatch
    script): names and types are checked as `parse_config` checks them, the `env:` block is left
    out, and nothing is built, so a GPU config reads on a CPU machine.
    """
    raw = load_yaml(path)
    raw.pop(_ENV_KEY, None)
    return field_defaults(dataclass_types) | check_yaml_values(raw, collect_fields(dataclass_types), str(path))


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


