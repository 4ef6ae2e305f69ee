"""Every numeric and enumerated field of every recipe refuses a bad value in one sentence, before any model loads.

The walk below tries a bad value for every field a recipe parses, so a new field without a check
(a declared range, its dataclass's own `__post_init__`, or its type) fails here.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
import types
import typing

import pytest

from rl_math import field_checks, preflight
from rl_math.config import check_yaml_values, parse_config
from rl_math.errors import ConfigError
from rl_math.fields import collect_fields
from rl_math.methods import available_methods, recipe_dataclasses

RECIPES = available_methods()  # grpo, rloo, sft, expert_iteration, evaluate, and any method added later
SMOKE = {"grpo": "configs/smoke.yaml", "rloo": "configs/smoke_rloo.yaml", "sft": "configs/sft_smoke.yaml",
         "expert_iteration": "configs/ei_smoke.yaml", "evaluate": "configs/eval_smoke.yaml"}


# Help text that lists a text field's values ("Must be one of ...", "Supported options are ...").
LISTS_CHOICES = re.compile(r"(?i)must be one of|supported options are|one of \[")
# Fields walked per method, counted 2026-12-07: a method losing fields (a walk gone blind) fails.
WALKED_AT_LEAST = {"grpo": 187, "rloo": 159, "sft": 121, "expert_iteration": 129, "evaluate": 15}


def _kinds(annotation) -> set[str]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if str in args:  # `str | Literal[False]` is text (an id), `SchedulerType | str` still the enum
            args = [a for a in args if typing.get_origin(a) is not typing.Literal]
        return set().union(*(_kinds(a) for a in args))
    if origin is typing.Literal or (isinstance(annotation, type) and issubclass(annotation, enum.Enum)):
        return {"enum"}
    return {"bool"} if annotation is bool else {"number"} if annotation in (int, float) else {"other"}


def _default_values(dataclass_types) -> dict:
    values = {}
    for dtype in dataclass_types:
        for f in dataclasses.fields(dtype):
            if f.init and f.name not in values:
                has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
                values[f.name] = (f.default if f.default is not dataclasses.MISSING else f.default_factory()) if has_default else None
    return values


def _refused_by_its_dataclass(owner: type, name: str, bad) -> bool:
    kwargs = {"bf16": False} if "bf16" in {f.name for f in dataclasses.fields(owner)} else {}
    if "model_name_or_path" in {f.name for f in dataclasses.fields(owner)}:
        kwargs["model_name_or_path"] = ["rl-math:tiny-qwen2"]
    try:
        owner(**kwargs, **{name: bad})
    except ValueError:
        return True
    return False


def _walk(recipe: str) -> tuple[int, list[str]]:
    """(fields walked, fields whose bad value went through)."""
    dataclass_types = recipe_dataclasses(recipe)
    fields = collect_fields(dataclass_types)
    walked, unchecked = 0, []
    for name, info in fields.items():
        kinds = _kinds(info.annotation)
        field = next(f for f in dataclasses.fields(info.owner) if f.name == name)
        choices = field_checks._choices(field, info.owner)
        if "number" in kinds:
            if name in field_checks.CHECKED_BY_DATACLASS:
                refused = _refused_by_its_dataclass(info.owner, name, field_checks.CHECKED_BY_DATACLASS[name])
            else:
                allowed = field_checks.RANGES_BY_OWNER.get(info.owner.__name__, {}).get(name) or field_checks.RANGES.get(name)
                refused = allowed is not None and field_checks.field_problem(
                    {name: allowed.outside()}, dataclass_types) is not None
        elif choices:
            refused = field_checks.field_problem({name: "not-a-choice"}, dataclass_types) is not None
        elif kinds & {"enum", "bool"}:
            try:
                check_yaml_values({name: "not-a-choice"}, fields, "the walk")
                refused = False
            except ConfigError:
                refused = True
        elif LISTS_CHOICES.search(field.metadata.get("help", "")) and "other" in kinds and not kinds & {"enum"}:
            refused = False  # text whose help text lists its values: declare them in field_checks.CHOICES
        else:
            continue  # text, paths, lists and mappings: checked where they are used (paths, rewards, ...)
        walked += 1
        if not refused:
            unchecked.append(f"{info.owner.__name__}.{name}")
    return walked, unchecked


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_numeric_and_enumerated_field_refuses_a_bad_value(recipe):
    walked, unchecked = _walk(recipe)
    print(f"{recipe}: walked {walked} numeric and enumerated fields, {len(unchecked)} without a check")
    assert unchecked == [], f"fields with no check (declare a range or choices in rl_math.field_checks): {unchecked}"
    assert walked >= WALKED_AT_LEAST.get(recipe, 1)


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_default_and_every_shipped_smoke_config_is_in_range(recipe):
    assert field_checks.field_problem(_default_values(recipe_dataclasses(recipe)), recipe_dataclasses(recipe)) is None
    parse_config(recipe_dataclasses(recipe), [SMOKE[recipe]])


@pytest.mark.parametrize(("flag", "value", "said"), [
    ("num_iterations", "0", "num_iterations is 0; allowed [1, inf)"),
    ("beta", "-0.1", "beta is -0.1; allowed [0, inf)"),
    ("epsilon", "-0.2", "epsilon is -0.2; allowed (0, 1)"),
    ("learning_rate", "1e10", "learning_rate is 10000000000.0; allowed (0, 0.1]"),
    ("loss_type", "ppo", "loss_type is 'ppo'; allowed: grpo, dr_grpo"),
])
def test_a_bad_grpo_value_is_one_sentence_before_the_recipe_checks(flag, value, said):
    with pytest.raises(ConfigError) as err:  # check_checkpoints_at_generation_boundaries divided by num_iterations
        parse_config(recipe_dataclasses("grpo"), ["configs/smoke.yaml", f"--{flag}", value],
                     checks=[preflight.check_checkpoints_at_generation_boundaries])
    assert said in str(err.value) and "\n" not in str(err.value)


def test_a_deepspeed_json_with_a_syntax_error_names_the_file(tmp_path):
    broken = tmp_path / "ds.json"
    broken.write_text('{"zero_optimization": {"stage": 2,}}')
    with pytest.raises(ConfigError, match=rf"deepspeed config {broken} is not valid JSON: .* line 1 column"):
        parse_config(recipe_dataclasses("sft"), ["configs/sft_smoke.yaml", "--deepspeed", str(broken)])


@pytest.mark.parametrize(("config", "said"), [
    ({"zero_optimization": {"stage": 2, "overlap_com": True}}, "zero_optimization.overlap_com: Extra inputs are not permitted"),
    ({"zero_optimization": {"stage": 7}}, "zero_optimization.stage: Input should be 0, 1, 2, 3"),
    ({"zero_optimisation": {"stage": 2}}, "unknown key 'zero_optimisation'; did you mean 'zero_optimization'?"),
])
def test_a_misspelled_deepspeed_key_is_refused_by_deepspeeds_own_model(tmp_path, config, said):
    path = tmp_path / "ds.json"
    path.write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=said.replace("(", r"\(").replace("?", r"\?")):
        parse_config(recipe_dataclasses("sft"), ["configs/sft_smoke.yaml", "--deepspeed", str(path)])


@pytest.mark.parametrize("shipped", ["ds_configs/zero2.json", "ds_configs/zero3.json", "ds_configs/zero3_offload.json"])
def test_the_shipped_deepspeed_configs_pass(shipped):
    field_checks.check_deepspeed_config(shipped)
