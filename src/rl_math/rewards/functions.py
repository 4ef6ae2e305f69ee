r"""Reward functions for GRPO, their registry, and the YAML reward list → TRL arguments.

A recipe lists its rewards by name, each with a weight and parameters::

    rewards:
      - {name: correctness, weight: 1.0}
      - {name: think_format, weight: 0.2}
      - {name: repetition_penalty, weight: 1.0, ngram_size: 5, max_penalty: -1.0}
      - {name: my_pkg.my_rewards:length_bonus, weight: 0.1}   # any importable callable

:func:`build_rewards` turns the list into GRPOTrainer's ``reward_funcs`` and ``reward_weights``;
:func:`get_reward` gives one reward callable; :func:`validate_reward_specs` checks the list
without building anything (the config layer calls it at parse time).

Every reward follows TRL's calling convention: ``completions`` as strings or as conversational
message lists, dataset columns and ``completion_ids``/``prompts`` as keyword arguments, always
``**kwargs``, one float or None per completion. None of them raises, whatever it is given.

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
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from rl_math.errors import ConfigError, nearest_key
from rl_math.grading.batch import as_list, batch_texts, check_int, column, is_int, is_number, score_each, warn_once
from rl_math.grading.grader import assistant_message, completion_text
from rl_math.rewards.isolation import IsolatedReward, RewardTypeError, RewardValueError
from rl_math.tasks import get_task
from rl_math.tasks.formats import PROMPT_FORMATS, default_reward_specs

__all__ = [
    "check_reward_columns",
    "REWARDS",
    "available_rewards",
    "boxed_format",
    "build_rewards",
    "coin_flip",
    "completion_text",
    "correctness",
    "gate_on_correct",
    "get_reward",
    "repetition_penalty",
    "reward_call",
    "reward_name",
    "required_columns",
    "reward_mix",
    "termination",
    "think_format",
    "validate_reward_specs",
]

RewardFunc = Callable[..., list]

# Keyword arguments GRPOTrainer passes to every reward itself: never dataset columns, never parameters.
TRL_ARGUMENTS = frozenset(
    {"prompts", "completions", "completion_ids", "trainer_state", "log_extra", "log_metric", "environments"}
)
# `negative_weight_ok: true` says a negative weight on correctness is meant (a control run), not a typo;
# `gate: correct` makes a shaping reward count only on correct completions (see gate_on_correct)
SPEC_KEYS = ("name", "weight", "negative_weight_ok", "gate")
GATES = ("correct",)
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


def _register(*, required_columns: Iterable[str] = (), check_params: Callable[[dict], None] | None = None):
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


# --------------------------------------------------------------------------------------------
# Shared plumbing: robust inputs, one-time warnings


# --------------------------------------------------------------------------------------------
# The rewards


@_register(required_columns={"answer"})
def correctness(completions, answer=None, task=None, **kwargs) -> list[float | None]:
    r"""1.0 if the completion's final answer equals the gold answer, else 0.0.

    The gold answer is the dataset column `answer`: a bare value ("1080") or a full GSM8K
    solution ending in `#### 1,080`. The final answer is the boxed answer in the answer region
    (after `</think>`; the `<answer>` block in r1 format) and equality is mathematical: see
    `rl_math.grading.grader`. Several boxed answers must all equal the gold (a hedge scores 0.0).
    A gold answer that cannot be read scores None (and warns once per process), never 1.0.
    The optional `task` column names the task whose comparator decides (see `rl_math.tasks`;
    without it, the grader's: GSM8K's).

    >>> correctness([r"So 1080 in total: \boxed{1,080}", r"\boxed{1080} or \boxed{1081}"], answer=["#### 1080"] * 2)
    [1.0, 0.0]
    >>> correctness([[{"role": "assistant", "content": r"<think>9 * 2</think> \boxed{\$18.00}"}]], answer=["18"])
    [1.0]
    """
    texts = batch_texts(completions)
    if answer is None:
        warn_once("correctness:no-answer", "reward 'correctness' got no 'answer' column; every completion scored None")
        return [None] * len(texts)
    golds = column(answer, len(texts), "answer", "correctness")
    task_names = column(task, len(texts), "task", "correctness")

    def score(text: str, gold: object, task_name: str | None) -> float | None:
        verdict = get_task(task_name).grade(text, gold)  # no task column: the default task, GSM8K
        if not verdict.gold_parseable:
            warn_once(
                "correctness:unparseable-gold",
                f"reward 'correctness' cannot read the gold answer {str(gold)[:200]!r}; such completions score None "
                "(this warning is shown once)",
            )
            return None
        return 1.0 if verdict.correct else 0.0

    return score_each("correctness", zip(texts, golds, task_names), score)


# Each prompt format's shape reward lives with its format (rl_math.tasks.formats) and is registered here.
for _format in PROMPT_FORMATS.values():
    if _format.reward is not None:
        assert _format.reward.__name__ == _format.format_reward, _format.name
        _register(check_params=_format.check_reward_params)(_format.reward)
boxed_format = REWARDS["boxed_format"].func
think_format = REWARDS["think_format"].func


MAX_REPETITION_WORDS = 10_000  # only the last this-many words of a completion are examined


def _check_repetition_penalty(params: dict) -> None:
    check_int(params, "ngram_size", minimum=1, reward="repetition_penalty")
    if "max_penalty" in params:
        max_penalty = params["max_penalty"]
        if not is_number(max_penalty) or max_penalty > 0:
            raise ValueError(
                f"reward 'repetition_penalty': max_penalty must be a number <= 0, got {max_penalty!r}"
            )


@_register(check_params=_check_repetition_penalty)
def repetition_penalty(completions, *, ngram_size: int = 3, max_penalty: float = -1.0, **kwargs) -> list[float]:
    r"""A penalty in [max_penalty, 0] proportional to the share of repeated word n-grams.

    penalty = (1 - unique n-grams / total n-grams) * max_penalty, over lower-cased
    whitespace-separated words (the last 10 000 of them), like TRL's
    `get_repetition_penalty_reward` but on words. `ngram_size` defaults to 3 (as in TRL);
    a completion with fewer words than `ngram_size` scores 0.0.

    >>> repetition_penalty(["the cat sat on the mat", "go go go go go", "too short"])
    [0.0, -0.6666666666666667, 0.0]
    >>> repetition_penalty(["a b a b a b"], ngram_size=2, max_penalty=-0.5)
    [-0.3]
    """

    def score(text: str) -> float:
        words = text[-MAX_REPETITION_WORDS * 20 :].lower().split()[-MAX_REPETITION_WORDS:]
        if len(words) < ngram_size:
            return 0.0
        ngrams = list(zip(*(words[start:] for start in range(ngram_size))))
        repeated_share = 1 - len(set(ngrams)) / len(ngrams)
        return repeated_share * max_penalty if repeated_share else 0.0

    return score_each("repetition_penalty", ((text,) for text in batch_texts(completions)), score)


def _check_termination(params: dict) -> None:
    eos = params.get("eos_token_ids")
    if eos is not None and not (is_int(eos) or (isinstance(eos, (list, tuple)) and all(map(is_int, eos)))):
        raise ValueError(f"reward 'termination': eos_token_ids must be an int or a list of ints, got {eos!r}")
    if params.get("max_completion_length") is not None:
        check_int(params, "max_completion_length", minimum=1, reward="termination")
    for name in ("terminated_reward", "truncated_penalty"):
        if name in params and not is_number(params[name]):
            raise ValueError(f"reward 'termination': {name} must be a number, got {params[name]!r}")


@_register(check_params=_check_termination)
def termination(
    completions,
    completion_ids=None,
    *,
    eos_token_ids: int | list[int] | None = None,
    max_completion_length: int | None = None,
    terminated_reward: float = 1.0,
    truncated_penalty: float = -1.0,
    **kwargs,
) -> list[float | None]:
    r"""Reward completions that ended with an EOS token, penalise those cut off at the length limit.

    `terminated_reward` (1.0) if the last of `completion_ids` is one of `eos_token_ids` (TRL cuts
    completions after their first EOS); `truncated_penalty` (-1.0) if there is no EOS and the
    completion is at least `max_completion_length` long; 0.0 otherwise. `eos_token_ids` and
    `max_completion_length` come from the tokenizer and the trainer config through
    `build_rewards(..., context=...)` unless the YAML sets them. Without `completion_ids` or
    EOS ids, every completion scores None (with a warning, once).

    >>> ids = [[5, 2], [5, 5, 5], [5]]  # ended with EOS 2, cut at the limit of 3, stopped early
    >>> termination(["a", "b", "c"], completion_ids=ids, eos_token_ids=[2], max_completion_length=3)
    [1.0, -1.0, 0.0]
    """
    count = len(as_list(completions))
    eos_ids = {eos_token_ids} if is_int(eos_token_ids) else set(eos_token_ids or ())
    if completion_ids is None or not eos_ids:
        warn_once(
            "termination:missing",
            "reward 'termination' needs completion_ids and eos_token_ids (bind them with "
            "build_rewards(..., context={'eos_token_ids': ...})); every completion scored None",
        )
        return [None] * count
    if max_completion_length is None:
        warn_once(
            "termination:no-max-length",
            "reward 'termination' has no max_completion_length: completions without EOS score 0.0",
        )

    def score(ids: object) -> float | None:
        if ids is None:
            return None
        if len(ids) and int(ids[-1]) in eos_ids:
            return float(terminated_reward)
        if max_completion_length is not None and len(ids) >= max_completion_length:
            return float(truncated_penalty)
        return 0.0

    ids_column = column(completion_ids, count, "completion_ids", "termination")
    return score_each("termination", ((ids,) for ids in ids_column), score)


@_register(check_params=lambda params: check_int(params, "seed", minimum=0, reward="coin_flip"))
def coin_flip(completions, trainer_state=None, *, seed: int = 0, **kwargs) -> list[float]:
    """A null control: 1.0 or 0.0 by a fair coin per completion, whatever it says.

    The flips come from `seed` and the training step (TRL's `trainer_state.global_step`; 0
    without it): fresh at every step, the same in a rerun, independent of the text. A GRPO run on
    it gets advantages of the usual size carrying no information, so it must not gain accuracy
    beyond noise (a constant reward gives zero advantage and could not fail).

    >>> coin_flip(["a"] * 8, seed=123)
    [1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0]
    >>> coin_flip(["something else"] * 8, seed=123) == coin_flip(["a"] * 8, seed=123)
    True
    >>> coin_flip(None), coin_flip(42)
    ([], [])
    """
    step = getattr(trainer_state, "global_step", 0)
    stream = random.Random(f"coin_flip:{seed}:{step if isinstance(step, int) else 0}")
    return [float(stream.random() < 0.5) for _ in as_list(completions)]


# --------------------------------------------------------------------------------------------
# Parameter checks


# --------------------------------------------------------------------------------------------
# Registry: names and import paths → callables


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
class _Resolved:
    func: RewardFunc
    display_name: str
    parameters: tuple[str, ...] | None  # None: cannot be checked
    check_params: Callable[[dict], None] | None


def _resolve(name: object) -> _Resolved:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a reward name must be a non-empty string, got {name!r}")
    name = name.strip()
    if name in REWARDS:
        entry = REWARDS[name]
        return _Resolved(entry.func, name, entry.parameters, entry.check_params)
    if ":" in name or "." in name:
        func, display_name = _import_reward(name)
        return _Resolved(func, display_name, _custom_parameters(func), None)
    raise ValueError(
        f"unknown reward {name!r}.{_did_you_mean(name, REWARDS)} Known rewards: {', '.join(available_rewards())} "
        "(or an import path such as 'my_pkg.my_rewards:my_reward')."
    )


def _check_parameter_names(reward: str, resolved: _Resolved, params: Mapping) -> None:
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
    resolved = _resolve(name)
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

# --------------------------------------------------------------------------------------------
# The YAML list


FILTER_KEYS = ("name", "min", "max")


def validate_reward_specs(specs: object, *, field: str = "rewards", bounds: bool = False) -> list[dict]:
    """Check a YAML reward list and return it normalised; the one parser of reward lists.

    A training mix (`rewards`) becomes `[{name, weight, **params}, ...]` (a bare string is
    `{name: s, weight: 1.0}`; a missing weight is 1.0; `gate` and `negative_weight_ok` kept when
    set). With ``bounds=True`` it is a filter (`ei_filter`): `[{name, min, max, **params}]`, at
    least one bound, no weight. Raises ValueError naming `field[index]` for a list that is not a
    list or is empty, a spec that is not a mapping with `name`, a weight or bound that is not a
    number, an unknown reward or parameter, an invalid parameter value, an import path that does
    not import, or a reward listed twice (TRL logs rewards by name). Loads no model.

    >>> validate_reward_specs(["correctness", {"name": "repetition_penalty", "weight": 0.5, "ngram_size": 5}])
    [{'name': 'correctness', 'weight': 1.0}, {'name': 'repetition_penalty', 'weight': 0.5, 'ngram_size': 5}]
    >>> validate_reward_specs([{"name": "correctness", "min": 1}], field="ei_filter", bounds=True)
    [{'name': 'correctness', 'min': 1.0, 'max': None}]
    """
    example = "[{name: correctness, min: 1.0}]" if bounds else "[{name: correctness, weight: 1.0}]"
    if isinstance(specs, (str, Mapping)) or not isinstance(specs, (list, tuple)):
        raise ValueError(f"{field}: expected a list of rewards like {example}, got {type(specs).__name__}")
    if not specs:
        raise ValueError(f"{field}: the list is empty: list at least one reward, e.g. {example}")
    normalised: list[dict] = []
    for index, spec in enumerate(specs):
        where = f"{field}[{index}]"
        if isinstance(spec, str) and not bounds:
            spec = {"name": spec}
        if not isinstance(spec, Mapping):
            raise ValueError(f"{where}: expected a mapping with a 'name' like {example[1:-1]}, got {spec!r}")
        if "name" not in spec:
            raise ValueError(f"{where}: missing 'name' in {dict(spec)!r}")
        name = str(spec["name"]).strip()
        keys = FILTER_KEYS if bounds else SPEC_KEYS
        params = {key: value for key, value in spec.items() if key not in keys}
        if bounds and "weight" in spec:
            raise ValueError(f"{where} ({name}): a filter has bounds (min/max), not a weight")
        try:
            get_reward(spec["name"], **params)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
        head = _filter_bounds(spec, where, name) if bounds else _mix_entry(spec, where, name)
        normalised.append({"name": name, **head, **params})
    names = [spec["name"] for spec in normalised]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(
            f"{field}: reward(s) listed more than once: {', '.join(duplicates)} "
            "(TRL logs rewards by name, so they would collide)"
        )
    return normalised


def reward_mix(specs: object, prompt_format: str) -> list[dict]:
    """A run's reward mix: the YAML's `rewards` (checked), or, when it sets none, its format's default.

    >>> [spec["name"] for spec in reward_mix(None, "boxed")]
    ['correctness', 'boxed_format', 'termination']
    """
    return validate_reward_specs(specs) if specs else default_reward_specs(prompt_format)


def _mix_entry(spec: Mapping, where: str, name: str) -> dict:
    """A training mix entry's weight, gate and negative_weight_ok, checked."""
    weight = spec.get("weight", 1.0)
    if not is_number(weight):
        raise ValueError(f"{where} ({name!r}): weight must be a number, got {weight!r}")
    if not isinstance(spec.get("negative_weight_ok", False), bool):
        raise ValueError(f"{where} ({name!r}): negative_weight_ok must be true or false")
    entry: dict = {"weight": float(weight)}
    if spec.get("negative_weight_ok"):
        entry["negative_weight_ok"] = True
    if "gate" in spec:
        if spec["gate"] not in GATES:
            raise ValueError(f"{where} ({name!r}): gate must be one of {', '.join(GATES)}, got {spec['gate']!r}")
        if name == "correctness":
            raise ValueError(f"{where}: correctness is what gates the others; it takes no gate")
        entry["gate"] = spec["gate"]
    return entry


def _filter_bounds(spec: Mapping, where: str, name: str) -> dict:
    """A filter entry's min and max, checked (at least one; min not above max)."""
    found = {}
    for key in ("min", "max"):
        value = spec.get(key)
        if value is not None and not is_number(value):
            raise ValueError(f"{where} ({name}): {key} must be a number, got {value!r}")
        found[key] = None if value is None else float(value)
    if found["min"] is None and found["max"] is None:
        raise ValueError(f"{where} ({name}): give a 'min' and/or a 'max' the reward must meet")
    if found["min"] is not None and found["max"] is not None and found["min"] > found["max"]:
        raise ValueError(f"{where} ({name}): min {found['min']} is above max {found['max']}")
    return found


def _context_parameters(name: str) -> tuple[str, ...]:
    """Parameters a context value may fill: a built-in's keyword-only arguments, a custom one's named ones."""
    return _resolve(name).parameters or ()


def build_rewards(specs: object, context: Mapping | None = None) -> tuple[list[RewardFunc], list[float]]:
    """The YAML reward list → GRPOTrainer's `reward_funcs` and `reward_weights`.

    `context` holds values known only once the run is set up, e.g.
    `{"eos_token_ids": tokenizer-derived ids, "max_completion_length": 512}`; each value is bound
    into the rewards whose signature accepts it, unless the YAML set it (or it is None).

    >>> funcs, weights = build_rewards(
    ...     [{"name": "correctness"}, {"name": "termination", "weight": 0.5}],
    ...     context={"eos_token_ids": [2], "max_completion_length": 256},
    ... )
    >>> [func.__name__ for func in funcs], weights, funcs[1].keywords
    (['correctness', 'termination'], [1.0, 0.5], {'eos_token_ids': [2], 'max_completion_length': 256})
    """
    reward_funcs: list[RewardFunc] = []
    reward_weights: list[float] = []
    for spec in validate_reward_specs(specs):
        params = {key: value for key, value in spec.items() if key not in SPEC_KEYS}
        accepted = _context_parameters(spec["name"])
        for key, value in (context or {}).items():
            if key in accepted and key not in params and value is not None:
                params[key] = value
        func = get_reward(spec["name"], **params)
        reward_funcs.append(gate_on_correct(func) if spec.get("gate") == "correct" else func)
        reward_weights.append(spec["weight"])
    return reward_funcs, reward_weights


def gate_on_correct(func: RewardFunc) -> RewardFunc:
    r"""`func`, counted only on completions that `correctness` scores 1.0 (0.0 elsewhere).

    GRPO normalises rewards per group: in a group whose answers are all wrong, correctness is
    constant and any shaping difference becomes a full-size advantage, so the model learns format
    instead of answers. Gated, a shaping reward gives no signal there, while on correct answers it
    still ranks them (a correct answer cut off at the token limit is still charged by
    `termination`, so correct-but-endless completions do not win).

    >>> gated = gate_on_correct(get_reward("boxed_format"))
    >>> gated.__name__, gated(completions=["\\boxed{4}", "\\boxed{5}", "4"], answer=["4", "4", "4"])
    ('boxed_format', [1.0, 0.0, 0.0])
    """
    @functools.wraps(func)
    def gated(*args, **kwargs):
        values = func(*args, **kwargs)
        correct = correctness(*args, **{k: v for k, v in kwargs.items() if k in ("completions", "answer", "task")})
        return [value if is_right == 1.0 else 0.0 for value, is_right in zip(values, correct)]

    gated.__name__ = reward_name(func)
    return gated


def reward_name(func: object) -> str:
    """The name TRL logs a reward under (`rewards/<name>/mean`): partials unwrapped, classes by their class name.

    >>> reward_name(get_reward("termination", eos_token_ids=[2]))
    'termination'
    """
    import functools

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

