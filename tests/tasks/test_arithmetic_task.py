"""`rl-math:arithmetic?…`: the difficulty-controlled offline task of the learning benchmark."""

import pytest

from rl_math.config import RecipeArguments
from rl_math.errors import ConfigError
from rl_math.tasks.arithmetic import ArithmeticOptions, arithmetic_split, synthetic_split
from rl_math.tasks.gsm8k import TASK as GSM8K
from rl_math.tasks.loading import load_problems, load_prompt_dataset

TASK = "rl-math:arithmetic"


def test_splits_never_share_a_question():
    options = ArithmeticOptions(train_size=2000, validation_size=500, test_size=1000)
    train, validation, test = ({p["question"] for p in arithmetic_split(split, options)}
                               for split in ("train", "validation", "test"))
    assert (len(train), len(validation), len(test)) == (2000, 500, 1000)
    assert not train & test and not train & validation and not validation & test


def test_splits_are_deterministic_and_sized_by_the_options():
    options = ArithmeticOptions(train_size=30, validation_size=4, test_size=7)
    assert arithmetic_split("train", options) == arithmetic_split("train", options)
    assert [len(arithmetic_split(split, options)) for split in ("train", "validation", "test")] == [30, 4, 7]


def test_golds_are_the_right_arithmetic_for_every_operation():
    options = ArithmeticOptions(operations=["add", "sub", "mul"], max_operand=20, worked=True, train_size=300, test_size=1)
    for problem in arithmetic_split("train", options):
        expression = problem["answer"].split("<<")[1].split("=")[0]
        assert str(eval(expression)) == GSM8K.gold(problem["answer"])  # noqa: S307 - our own digits
        assert int(GSM8K.gold(problem["answer"])) >= 0


def test_operands_stay_in_range():
    options = ArithmeticOptions(operations=["add"], min_operand=3, max_operand=4, train_size=50, validation_size=5, test_size=10)
    assert {int(GSM8K.gold(p["answer"])) for p in arithmetic_split("train", options)} <= {6, 7, 8}


def test_answer_only_gold_has_no_worked_solution():
    problem = arithmetic_split("test", ArithmeticOptions(train_size=1, test_size=1))[0]
    assert problem["answer"].startswith("#### ")


def test_worked_gold_carries_the_calculation():
    problem = arithmetic_split("test", ArithmeticOptions(worked=True, train_size=1, test_size=1))[0]
    assert " + " in problem["answer"].splitlines()[0]


def test_options_come_from_the_dataset_name():
    dataset = load_problems(f"{TASK}?operations=mul&max_operand=3&train_size=12&test_size=5", "test")
    assert len(dataset) == 5
    assert all("boxes" in q for q in dataset["question"])


def test_the_recipe_dataset_has_prompts_and_golds():
    args = RecipeArguments(dataset_name=f"{TASK}?train_size=20&test_size=5")
    dataset = load_prompt_dataset(args, "train")
    assert len(dataset) == 20 and dataset[0]["prompt"][-1]["role"] == "user"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (f"{TASK}?max_operan=3", "did you mean 'max_operand'"),
        (f"{TASK}?max_operand=x", "expects int"),
        (f"{TASK}?operations=div", "operations must be some of add, sub, mul"),
        (f"{TASK}?max_operand=2&train_size=5000", "too many distinct questions"),
        (f"{TASK}?worked", "has no value"),
    ],
)
def test_a_bad_option_is_a_config_error_at_parse_time(name, message):
    with pytest.raises(ConfigError, match=message):
        RecipeArguments(dataset_name=name)


def test_synthetic_test_split_has_no_train_question():
    train = {p["question"] for p in synthetic_split("train")}
    assert not train & {p["question"] for p in synthetic_split("test")}
