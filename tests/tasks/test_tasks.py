"""The task registry: a task is one module of rl_math.tasks, chosen in the YAML or by the dataset name."""

import pytest

from rl_math.config import RecipeArguments
from rl_math.errors import ConfigError
from rl_math.tasks import available_tasks, get_task
from rl_math.tasks.loading import task_of


def test_every_task_module_names_its_task_after_itself():
    assert available_tasks() == ["arithmetic", "gsm8k", "math"]
    assert all(get_task(name).name == name for name in available_tasks())


def test_an_unknown_task_is_a_config_error_listing_the_known_ones():
    with pytest.raises(ConfigError, match="unknown task 'gsm8"):
        RecipeArguments(task="gsm8")
    with pytest.raises(ConfigError, match="choose one of: arithmetic, gsm8k, math"):
        RecipeArguments(task="loading")  # a module of the package, not a task


@pytest.mark.parametrize(
    ("dataset_name", "task"),
    [("openai/gsm8k", "gsm8k"), ("../shared/data/gsm8k", "gsm8k"), ("rl-math:synthetic", "arithmetic"),
     ("rl-math:arithmetic?max_operand=20", "arithmetic")],
)
def test_without_a_task_the_dataset_name_chooses_it(dataset_name, task):
    assert task_of(RecipeArguments(dataset_name=dataset_name)).name == task


def test_a_configured_task_wins_over_the_dataset_name():
    assert task_of(RecipeArguments(dataset_name="rl-math:synthetic", task="gsm8k")).name == "gsm8k"


def test_prompt_rows_carry_their_task_for_the_rewards():
    from rl_math.tasks.loading import load_prompt_dataset

    rows = load_prompt_dataset(RecipeArguments(dataset_name="rl-math:synthetic"), "test", limit=3)
    assert rows["task"] == ["arithmetic"] * 3
