"""Every shipped GRPO config parses and passes the preflight for the GPU counts it is meant for."""

import re
from pathlib import Path

import pytest

from rl_math.config import load_yaml, parse_config
from rl_math.methods import recipe_dataclasses
from rl_math.preflight import check_grpo_batch

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
GRPO_CONFIGS = sorted(CONFIGS.glob("qwen*.yaml"))
HEADER = re.compile(r"^# rl-math: accelerate_config=(?P<accelerate>\S+) gpus=(?P<gpus>[\d,]+)$", re.MULTILINE)


def intended_launch(path: Path) -> tuple[str, list[int]]:
    match = HEADER.search(path.read_text())
    assert match, f"{path.name} lacks the '# rl-math: accelerate_config=... gpus=...' header"
    return match["accelerate"], [int(g) for g in match["gpus"].split(",")]


def test_there_is_a_config_per_model_size_and_per_format_setup():
    assert [p.name for p in GRPO_CONFIGS] == [
        "qwen0.5b.yaml", "qwen1.5b-xml.yaml", "qwen1.5b.yaml", "qwen2.5-math-1.5b-r1.yaml", "qwen3b.yaml", "qwen7b-think.yaml", "qwen7b.yaml",
    ]


@pytest.mark.parametrize(("name", "prompt_format", "format_reward"),
                         [("qwen2.5-math-1.5b-r1.yaml", "r1", "think_format"), ("qwen7b-think.yaml", "think_boxed", "think_format"),
                          ("qwen1.5b-xml.yaml", "xml", "xml_format")])
def test_thinking_setups_pay_their_formats_reward(name, prompt_format, format_reward):
    values = load_yaml(CONFIGS / name)
    assert values["prompt_format"] == prompt_format
    assert format_reward in [spec["name"] for spec in values["rewards"]]


@pytest.mark.parametrize("path", GRPO_CONFIGS, ids=lambda p: p.name)
def test_config_names_an_existing_accelerate_config(path):
    accelerate, _ = intended_launch(path)
    assert (CONFIGS.parent / accelerate).is_file()


@pytest.mark.parametrize("path", GRPO_CONFIGS, ids=lambda p: p.name)
def test_config_passes_preflight_for_each_intended_gpu_count(path):
    _, gpus = intended_launch(path)
    for world_size in gpus:
        parse_config(
            recipe_dataclasses("grpo"),
            [str(path), "--bf16", "false"],  # this CPU machine cannot check bf16
            checks=[lambda values, explicit, n=world_size: check_grpo_batch(values, explicit, world_size=n)],
        )


@pytest.mark.parametrize("path", GRPO_CONFIGS, ids=lambda p: p.name)
def test_config_makes_practitioner_choices(path):
    values = load_yaml(path)
    assert values["num_generations"] >= 8
    assert values["max_completion_length"] >= 512
    assert 1e-7 <= float(values["learning_rate"]) <= 5e-6
    assert values["bf16"] is True
    assert any(r["name"] == "correctness" for r in values["rewards"])
