"""Which GRPO groups carry a learning signal, and what kind: computed from the rewards themselves.

GRPO normalises each question's rewards within its group of ``num_generations`` completions. A
group whose total reward is the same for every completion gives no gradient; a group whose
``correctness`` is the same for every completion (all right or all wrong) but whose total still
varies trains the model on the shaping rewards alone — on format, not on answers (the reward trap).

TRL logs ``frac_reward_zero_std`` by testing ``isclose(std, 0)`` on float32 sums: with weights
1.0/0.2/0.2, eight identical completions can give a std of ~3e-8 and the group is counted as having
signal. :func:`group_signal` compares values in float64 with a relative tolerance instead, per
reward and for the weighted total, and :class:`GroupSignalRecorder` logs it every step through
TRL's ``log_metric`` (averaged over the logging window and across processes):

================================  ===================================================================
metric                            meaning
================================  ===================================================================
``groups/no_signal``              share of groups whose weighted total reward is constant
``groups/no_signal/<reward>``     share of groups where that reward is constant
``groups/shape_only``             share of groups whose correctness is constant but total varies
================================  ===================================================================

The health monitor's ``reward_trap`` reads ``groups/no_signal`` (falling back to TRL's metric) and
``shape_only`` reads ``groups/shape_only``.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

CORRECTNESS = "correctness"
_TOLERANCE = 1e-6  # relative to the values' scale: float32 sums differ by ~1e-7, real rewards by far more


def is_constant(values: Sequence[float], tolerance: float = _TOLERANCE) -> bool:
    """Whether a group's values are all the same, up to float rounding.

    >>> is_constant([1.4, 1.4000000238, 1.4]), is_constant([1.4, 1.2])
    (True, False)
    """
    low, high = min(values), max(values)
    return high - low <= tolerance * max(1.0, abs(low), abs(high))


def _number(value: Any) -> float:
    """A reward value as TRL sums it: None (abstained) and NaN count as 0."""
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
        return 0.0
    return float(value)


def group_signal(scores: Mapping[str, Sequence[Any]], weights: Sequence[float], group_size: int,
                 correctness: str = CORRECTNESS) -> dict[str, float]:
    """The `groups/*` shares of one batch; `scores` maps each reward's name to its values in batch order.

    Completions of one question are `group_size` consecutive entries, as GRPOTrainer lays them out.

    >>> group_signal({"correctness": [0, 0, 1, 0], "boxed_format": [1, 0, 1, 1]}, [1.0, 0.2], group_size=2)
    {'groups/no_signal': 0.0, 'groups/no_signal/correctness': 0.5, 'groups/no_signal/boxed_format': 0.5, 'groups/shape_only': 0.5}
    """
    names = list(scores)
    n = len(next(iter(scores.values()), []))
    if group_size < 1 or n == 0 or n % group_size:
        return {}
    columns = {name: [_number(v) for v in scores[name]] for name in names}
    totals = [sum(w * columns[name][i] for name, w in zip(names, weights)) for i in range(n)]
    groups = [range(start, start + group_size) for start in range(0, n, group_size)]

    def share(values: Sequence[float]) -> float:
        return sum(is_constant([values[i] for i in group]) for group in groups) / len(groups)

    result = {"groups/no_signal": share(totals)}
    result.update({f"groups/no_signal/{name}": share(columns[name]) for name in names})
    if correctness in columns:
        shape_only = sum(
            is_constant([columns[correctness][i] for i in group]) and not is_constant([totals[i] for i in group])
            for group in groups
        )
        result["groups/shape_only"] = shape_only / len(groups)
    return result


class GroupSignalRecorder:
    """Wraps a run's reward functions; once every reward has scored a batch, logs its `groups/*` shares.

    TRL calls each reward with the same `completions` list for one batch, and passes `log_metric`.
    The wrappers keep each reward's name (`rewards/<name>/mean` is unchanged) and return its values
    untouched. Asynchronous reward functions are left unwrapped (and then nothing is logged).
    """

    def __init__(self, names: Sequence[str], weights: Sequence[float], group_size: int) -> None:
        self.names = list(names)
        self.weights = list(weights)
        self.group_size = group_size
        self.pending: dict[int, dict[str, Sequence[Any]]] = {}

    def wrap(self, funcs: Sequence[Callable]) -> list[Callable]:
        if any(inspect.iscoroutinefunction(getattr(f, "func", f)) for f in funcs):
            return list(funcs)
        return [self._wrap_one(func, name) for func, name in zip(funcs, self.names)]

    def _wrap_one(self, func: Callable, name: str) -> Callable:
        @functools.wraps(func)
        def recorded(*args, **kwargs):
            values = func(*args, **kwargs)
            self.record(id(kwargs.get("completions")), name, values, kwargs.get("log_metric"))
            return values

        recorded.__name__ = name  # TRL logs rewards/<__name__>/mean
        return recorded

    def record(self, batch: int, name: str, values: Sequence[Any], log_metric: Callable | None) -> None:
        batch_scores = self.pending.setdefault(batch, {})
        batch_scores[name] = values
        if len(batch_scores) < len(self.names):
            return
        del self.pending[batch]
        signal = group_signal({n: batch_scores[n] for n in self.names}, self.weights, self.group_size)
        if log_metric is not None:
            for metric, value in signal.items():
                log_metric(metric, value)
