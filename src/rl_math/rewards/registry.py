r"""The reward registry: names and import paths → reward callables, in TRL's calling convention.

Built-in rewards register themselves with :func:`register` (``rl_math.rewards.builtin``); any
importable callable is a reward too (``my_pkg.my_rewards:length_bonus``), run in its own worker
process with a time limit per call (:class:`CheckedReward`, ``rl_math.rewards.isolation``).

Every reward follows TRL's calling convention: ``completions`` as strings or as conversational
message lists, dataset columns and ``completion_ids``/``prompts`` as keyword arguments, always
``**kwargs``, one float or None per completion.

Parameters of a built-in reward are its keyword-only arguments; :func:`get_reward` binds them
with :func:`functools.partial` (picklable) and names the result after the reward: TRL logs a
reward as ``func.__name__``, unwrapping partials to ``func.func.__name__``, and both are the
registry name.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from rl_math.errors import ConfigError, nearest_key
from rl_math.grading.batch import as_list, is_number
from rl_math.grading.grader import assistant_message
from rl_math.rewards.isolation import IsolatedReward, RewardTypeError, RewardValueError

RewardFunc = Callable[..., list]

# Keyword arguments GRPOTrainer passes to every reward itself: never dataset columns, never parameters.
TRL_ARGUMENTS = frozenset(
    {"prompts", "completions", "completion_ids", "trainer_state", "log_extra", "log_metric", "environments"}
)


# A custom reward's calls are bounded: `{name: my_pkg.mod:fn, timeout: 60}` (seconds per call; see isolation.py).
TIMEOUT_KEY = "timeout"
DEFAULT_CUSTOM_REWARD_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class RegisteredReward:
    """A built-in reward: the function, the dataset columns it reads, its parameter check."""

    func: RewardFunc
    required_columns: frozenset[str]
    check_params: Callable[[dict], None] | None = None

    @property
    def parameters(self) -> tuple[str, ...]:
        """The reward's parameters: its keyword-only arguments."""
        signature = inspect.signature(self.func)
        return tuple(
            name for name, parameter in signature.parameters.items() if parameter.kind is parameter.KEYWORD_ONLY
        )


REWARDS: dict[str, RegisteredReward] = {}


def register(*, required_columns: Iterable[str] = (), check_params: Callable[[dict], None] | None = None):
    """Add the decorated function to the registry under its own name."""

    def decorate(func: RewardFunc) -> RewardFunc:
        columns = frozenset(required_columns)
        func.required_columns = columns
        REWARDS[func.__name__] = RegisteredReward(func, columns, check_params)
        return func

    return decorate


def available_rewards() -> list[str]:
    """The names of the built-in rewards."""
    return sorted(REWARDS)


def _did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """' Did you mean 'x'?' for the nearest candidate, or '' when none is close."""
    nearest = nearest_key(word, candidates)
    return f" Did you mean {nearest!r}?" if nearest else ""


def _import_reward(path: str) -> tuple[RewardFunc, str]:
    """`pkg.module:function` or `pkg.module.function` → (the callable, its display name)."""
    if ":" in path:
        module_name, _, attribute_path = path.partition(":")
    else:
        module_name, _, attribute_path = path.rpartition(".")
    if not module_name or not attribute_path:
        raise ValueError(f"reward {path!r}: an import path must look like 'package.module:function'")
    try:
        target = importlib.import_module(module_name)
    except Exception as error:  # noqa: BLE001 - any failure while importing user code
        raise ValueError(
            f"reward {path!r}: cannot import module {module_name!r}: {type(error).__name__}: {error}"
        ) from error
    for attribute in attribute_path.split("."):
        if not hasattr(target, attribute):
            raise ValueError(f"reward {path!r}: module {module_name!r} has no attribute {attribute_path!r}")
        target = getattr(target, attribute)
    if not callable(target):
        raise ValueError(f"reward {path!r}: {attribute_path!r} is not callable (got {type(target).__name__})")
    return target, attribute_path.rsplit(".", 1)[-1]


def _custom_parameters(func: Callable) -> tuple[str, ...] | None:
    """Named arguments of a custom reward that are not TRL's own; None if it has no signature."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    return tuple(
        name
        for name, parameter in signature.parameters.items()
        if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD) and name not in TRL_ARGUMENTS
    )


@dataclass(frozen=True)
class ResolvedReward:
    func: RewardFunc
    display_name: str
    parameters: tuple[str, ...] | None  # None: cannot be checked
    check_params: Callable[[dict], None] | None


def resolve(name: object) -> ResolvedReward:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a reward name must be a non-empty string, got {name!r}")
    name = name.strip()
    if name in REWARDS:
        entry = REWARDS[name]
        return ResolvedReward(entry.func, name, entry.parameters, entry.check_params)
    if ":" in name or "." in name:
        func, display_name = _import_reward(name)
        return ResolvedReward(func, display_name, _custom_parameters(func), None)
    raise ValueError(
        f"unknown reward {name!r}.{_did_you_mean(name, REWARDS)} Known rewards: {', '.join(available_rewards())} "
        "(or an import path such as 'my_pkg.my_rewards:my_reward')."
    )


def _check_parameter_names(reward: str, resolved: ResolvedReward, params: Mapping) -> None:
    for key in params:
        if not isinstance(key, str):
            raise ValueError(f"reward {reward!r}: parameter names must be strings, got {key!r}")
    if resolved.parameters is None:
        return
    for key in params:
        if key in resolved.parameters:
            continue
        if not resolved.parameters:
            raise ValueError(f"reward {reward!r} has no parameter {key!r}: it takes no parameters.")
        raise ValueError(
            f"reward {reward!r} has no parameter {key!r}.{_did_you_mean(key, resolved.parameters)} "
            f"Valid parameters: {', '.join(resolved.parameters)}."
        )


def get_reward(name: str, **params) -> RewardFunc:
    r"""The reward called `name` (a registry name or an import path), with `params` bound.

    Raises ValueError for an unknown name (with the nearest known one), an unknown or invalid
    parameter, or an import path that does not import. The result's `__name__` is the registry
    name (for an import path, the function's name), which is what TRL logs.

    >>> penalty = get_reward("repetition_penalty", ngram_size=2)
    >>> penalty.__name__, penalty(["go go go"])
    ('repetition_penalty', [-0.5])
    """
    resolved = resolve(name)
    custom = name.strip() not in REWARDS
    timeout = params.pop(TIMEOUT_KEY, DEFAULT_CUSTOM_REWARD_TIMEOUT_S) if custom else DEFAULT_CUSTOM_REWARD_TIMEOUT_S
    if not is_number(timeout) or timeout <= 0:
        raise ValueError(f"reward {name!r}: {TIMEOUT_KEY} must be a positive number of seconds, got {timeout!r}")
    _check_parameter_names(name, resolved, params)
    if resolved.check_params is not None:
        resolved.check_params(params)
    func = resolved.func
    if params:
        func = functools.partial(resolved.func, **params)
        func.__name__ = func.__qualname__ = resolved.display_name
        func.__doc__ = getattr(resolved.func, "__doc__", None)
        func.__module__ = getattr(resolved.func, "__module__", __name__)
    if not custom:
        return func
    from trl.trainer.utils import is_async_callable

    if is_async_callable(resolved.func):
        return func  # TRL awaits async rewards itself
    return CheckedReward(func, resolved.display_name, float(timeout))


class CheckedReward:
    """A custom reward, called as TRL calls it, whose every failure is an error that names it.

    Built-in rewards never raise or hang; code from an import path may: it runs in its own worker
    process with a time limit per call (`rl_math.rewards.isolation`: a reward that holds the GIL
    would defeat a thread's limit and hang every rank), completions it cannot score in time get
    None, and its result is checked, one float or None per completion, finite (a NaN would
    silently zero the advantage and the loss).
    """

    def __init__(self, func: RewardFunc, name: str, timeout_s: float) -> None:
        self.func = func
        self.__name__ = self.__qualname__ = name
        self.__doc__ = getattr(func, "__doc__", None)
        self.timeout_s = timeout_s
        self.isolated = IsolatedReward(func, name, timeout_s)

    def __call__(self, *args, **kwargs) -> list:
        result = self.isolated(*args, **kwargs)
        return self._checked(result, len(as_list(kwargs.get("completions", args[0] if args else []))))

    def _checked(self, result: object, expected: int) -> list:
        if isinstance(result, (str, bytes)) or not hasattr(result, "__len__"):
            raise RewardTypeError(
                f"reward {self.__name__!r} returned {type(result).__name__} {str(result)[:80]!r}; a reward returns "
                "a list with one float (or None) per completion"
            )
        values = list(result)
        if len(values) != expected:
            raise RewardValueError(f"reward {self.__name__!r} returned {len(values)} values for {expected} completions")
        for index, value in enumerate(values):
            if value is None:
                continue
            if isinstance(value, (bool, str, bytes)) or not hasattr(value, "__float__"):  # numpy/torch scalars too
                raise RewardTypeError(
                    f"reward {self.__name__!r} returned {value!r} ({type(value).__name__}) for completion {index}; "
                    "a reward returns a float, or None where it does not apply"
                )
            if not math.isfinite(float(value)):
                raise RewardValueError(
                    f"reward {self.__name__!r} returned {value} for completion {index}; return a finite float, "
                    "or None for a completion it cannot score"
                )
        return values


def required_columns(reward_func: Callable) -> set[str]:
    """The dataset columns a reward reads, so a recipe can check its dataset before training.

    A built-in reward declares them (`correctness` needs `answer`); for a custom reward they are
    its named arguments without a default, other than TRL's own (`prompts`, `completions`, ...),
    or its `required_columns` attribute if it has one.

    >>> required_columns(get_reward("correctness")), required_columns(get_reward("think_format"))
    ({'answer'}, set())
    """
    bound: set[str] = set()
    func = reward_func.func if isinstance(reward_func, CheckedReward) else reward_func
    while isinstance(func, functools.partial):
        bound.update(func.keywords)
        func = func.func
    declared = getattr(func, "required_columns", None)
    if declared is not None:
        return set(declared)
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return set()
    return {
        name
        for name, parameter in signature.parameters.items()
        if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
        and parameter.default is parameter.empty
        and name not in TRL_ARGUMENTS
        and name not in bound
    }


def reward_name(func: object) -> str:
    """The name TRL logs a reward under (`rewards/<name>/mean`): partials unwrapped, classes by their class name.

    >>> reward_name(get_reward("termination", eos_token_ids=[2]))
    'termination'
    """
    while isinstance(func, functools.partial):
        func = func.func
    return getattr(func, "__name__", None) or type(func).__name__


def check_reward_columns(reward_funcs: list, column_names: list[str]) -> None:
    """Every dataset column a reward reads must exist (TRL would fail mid-step with a TypeError)."""

    for func in reward_funcs:
        missing = sorted(required_columns(func) - set(column_names))
        if missing:
            raise ConfigError(
                f"reward {func.__name__!r} reads dataset column(s) {missing}, but the dataset has "
                f"{sorted(column_names)}; use a dataset with those columns or drop the reward"
            )


def reward_call(
    prompts: Sequence,
    completions: Sequence[str],
    golds: Sequence,
    completion_ids: Sequence | None = None,
    tasks: Sequence | None = None,
) -> dict[str, list]:
    """The keyword arguments GRPOTrainer gives a reward, for completions rl-math generated itself.

    One entry per completion: the prompt, the completion as a conversational assistant message,
    its token ids (cut after the stop token, as TRL passes them; left out when not known), the
    ``answer`` column and the ``task`` column (whose comparator grades; left out when not known).

    >>> call = reward_call(["What is 2+2?"], [r"\\boxed{4}"], ["4"], completion_ids=[[7, 2]])
    >>> call["completions"], call["answer"], call["completion_ids"]
    ([[{'role': 'assistant', 'content': '\\\\boxed{4}'}]], ['4'], [[7, 2]])
    >>> get_reward("correctness")(**call)
    [1.0]
    """
    call = {
        "prompts": list(prompts),
        "completions": [assistant_message(text) for text in completions],
        "answer": list(golds),
    }
    if completion_ids is not None:
        call["completion_ids"] = [list(ids) for ids in completion_ids]
    if tasks is not None:
        call["task"] = list(tasks)
    return call

