"""Prompt formats own their semantics: format reward, reward mix, well-formed, SFT target."""

import pytest

from rl_math.grading.grader import grade
from rl_math.rewards import get_reward
from rl_math.tasks.formats import FORMAT_REWARDS, PROMPT_FORMATS, get_prompt_format
from rl_math.train.health import HealthArguments, HealthCallback

FORMATS = sorted(PROMPT_FORMATS)


@pytest.mark.parametrize("name", FORMATS)
def test_a_format_target_is_well_formed_in_its_own_format(name):
    fmt = get_prompt_format(name)
    target = fmt.sft_target("Ava has 3 + 5 = 8 apples now, counted twice.", "8")
    score = get_reward(fmt.format_reward)(completions=[target], prompts=[[]])[0]
    assert score == 1.0 and fmt.is_well_formed(grade(target, "8"), score)


def test_one_answer_without_the_format_shape_is_not_well_formed():
    fmt = get_prompt_format("think_boxed")
    text = r"The answer is \boxed{8}."  # one answer, but no <think> block
    score = get_reward(fmt.format_reward)(completions=[text], prompts=[[]])[0]
    assert grade(text, "8").well_formed and not fmt.is_well_formed(grade(text, "8"), score)


@pytest.mark.parametrize("name", FORMATS)
def test_the_default_reward_mix_pays_the_format_reward_gated_on_correctness(name):
    specs = get_prompt_format(name).default_reward_specs()
    assert {"name": get_prompt_format(name).format_reward, "weight": 0.2, "gate": "correct"} in specs


def test_the_health_monitor_watches_every_format_reward_and_nothing_else():
    assert set(FORMAT_REWARDS) == {fmt.format_reward for fmt in PROMPT_FORMATS.values()}
    callback = HealthCallback(HealthArguments(), reward_names=["correctness", *FORMAT_REWARDS, "termination"])
    assert callback.monitor.format_rewards == list(FORMAT_REWARDS)
