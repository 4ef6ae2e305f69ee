r"""The YAML reward list: checked once at parse time, then turned into TRL's arguments.

A recipe lists its rewards by name, each with a weight and parameters::

    rewards:
      - {name: correctness, weight: 1.0}
      - {name: think_format, weight: 0.2, gate: correct}
      - {name: repetition_penalty, weight: 1.0, ngram_size: 5, max_penalty: -1.0}
      - {name: my_pkg.my_rewards:length_bonus, weight: 0.1}   # any importable callable

:func:`validate_reward_specs` checks a list without building anything and returns it normalised
(the entries stay plain mappings: they are the YAML a run saves with its config and re-reads);
:func:`reward_mix` is a run's mix (its list, or its format's default); :func:`build_rewards`
turns the list into GRPOTrainer's ``reward_funcs`` and ``reward_weights``.
"""

from __future__ import annotations

from collections.abc import Mapping

from rl_math.grading.batch import is_number
from rl_math.rewards.builtin import gate_on_correct
from rl_math.rewards.registry import RewardFunc, get_reward, resolve
from rl_math.tasks.formats import default_reward_specs

# `negative_weight_ok: true` says a negative weight on correctness is meant (a control run), not a typo;
# `gate: correct` makes a shaping reward count only on correct completions (see gate_on_correct)
SPEC_KEYS = ("name", "weight", "negative_weight_ok", "gate")
GATES = ("correct",)
# an `ei_filter` entry: a reward and the bounds a sample must meet
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
    return resolve(name).parameters or ()


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

