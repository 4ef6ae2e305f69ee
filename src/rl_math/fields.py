"""Typed values of dataclass fields: what a field expects, and a value coerced to it.

Used by the config parser (YAML and command line) and by the options carried in reserved names
(`rl-math:arithmetic?max_operand=9`, `rl-math:tiny-qwen2?seed=3`), which tasks and models parse
below the config layer.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any

from rl_math.errors import ConfigError, nearest_key


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
        if value is NO_MATCH:
            raise ConfigError(f"option {key!r} in {name!r} expects {describe_type(annotation)}, got {text!r}")
        values[key] = value
    try:
        return options_type(**values)
    except ValueError as err:
        raise ConfigError(f"{name!r}: {err}") from None


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


NO_MATCH = object()


def coerce_value(value: Any, annotation: Any) -> Any:
    """Return `value` as the annotation's type, or `NO_MATCH`.

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
            if result is not NO_MATCH:
                return result
        return NO_MATCH
    if annotation is type(None):
        return None if value is None else NO_MATCH
    if origin is typing.Literal:
        return value if value in typing.get_args(annotation) else NO_MATCH
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        values = {m.value: m.value for m in annotation} | {m: m.value for m in annotation}
        return values.get(value, NO_MATCH) if isinstance(value, (str, enum.Enum)) else NO_MATCH
    if annotation is bool:
        return value if isinstance(value, bool) else NO_MATCH
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return NO_MATCH
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return NO_MATCH
        return NO_MATCH
    if annotation is str:
        if isinstance(value, str):
            return value
        # `model_revision: 2024` or `resume_from_checkpoint: true` are strings to the trainer
        if isinstance(value, (int, float, bool)):
            return str(value).lower() if isinstance(value, bool) else str(value)
        return NO_MATCH
    if origin in (list, Sequence) or annotation is list:
        if not isinstance(value, (list, tuple)):
            value = [value]  # `lora_target_modules: q_proj` means a list of one
        (item_type,) = typing.get_args(annotation) or (Any,)
        items = [coerce_value(v, item_type) for v in value]
        return NO_MATCH if any(i is NO_MATCH for i in items) else items
    if origin is dict or annotation is dict:
        return value if isinstance(value, dict) else NO_MATCH
    if isinstance(annotation, type):
        return value if isinstance(value, annotation) else NO_MATCH
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

