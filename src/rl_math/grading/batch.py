"""A batch of completions in the trainer's calling convention, scored one by one without ever raising.

TRL calls a reward with lists (`completions`, dataset columns as keyword arguments); these
helpers make every reward robust to what arrives: strings or chat messages, a scalar or a short
column, a scorer that fails on one odd completion (scored None, warned once, never a crash).

>>> batch_texts([[{"role": "assistant", "content": "so 18"}], "plain"])
['so 18', 'plain']
>>> score_each("demo", [("1",), ("x",)], lambda text: float(text))
[1.0, None]
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping

from rl_math.grading.grader import completion_text

_warned: set[str] = set()


def warn_once(key: str, message: str) -> None:
    """Warn the first time `key` comes up in this process, stay silent afterwards."""
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def as_list(values: object) -> list:
    """A batch as a list: None is empty, a lone string/mapping is one item, junk is empty."""
    if values is None:
        return []
    if isinstance(values, (str, bytes, Mapping)):
        return [values]
    if isinstance(values, (list, tuple)):
        return list(values)
    try:
        return list(values)
    except Exception:  # noqa: BLE001 - not iterable: no items
        return []


def batch_texts(completions: object) -> list[str]:
    return [completion_text(completion) for completion in as_list(completions)]


def column(values: object, length: int, column: str, reward: str) -> list:
    """A dataset column aligned to the completions: a scalar is broadcast, a short column padded with None."""
    if values is None or isinstance(values, (str, bytes, int, float)):
        return [values] * length
    items = as_list(values)
    if len(items) != length:
        warn_once(
            f"{reward}:{column}-length",
            f"reward {reward!r}: column {column!r} has {len(items)} values for {length} completions; "
            "missing values are scored None",
        )
    return (items + [None] * length)[:length]


def score_each(reward: str, items: Iterable, score: Callable[..., float | None]) -> list[float | None]:
    """Apply `score` to each item; a failure scores None (and warns once) instead of raising."""
    results: list[float | None] = []
    for item in items:
        try:
            results.append(score(*item))
        except Exception as error:  # noqa: BLE001 - a reward must never crash a training step
            warn_once(f"{reward}:error", f"reward {reward!r} failed on a completion and scored it None: {error!r}")
            results.append(None)
    return results


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_int(params: dict, name: str, minimum: int, reward: str | None = None) -> None:
    if name in params and not (is_int(params[name]) and params[name] >= minimum):
        owner = f"reward {reward!r}: " if reward else ""
        raise ValueError(f"{owner}{name} must be an integer >= {minimum}, got {params[name]!r}")

