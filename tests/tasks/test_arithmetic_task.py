"""`rl-math:arithmetic?…`: the difficulty-controlled offline task of the learning benchmark."""

import re
from pathlib import Path

import pytest

from rl_math.config import RecipeArguments
from rl_math.errors import ConfigError
from rl_math.tasks.arithmetic import ArithmeticOptions, arithmetic_split, synthetic_split
from rl_math.tasks.gsm8k import TASK as GSM8K
from rl_math.tasks.loading import load_problems, load_prompt_dataset

TASK = "rl-math:arithmetic"
REPO_ROOT = Path(__file__).resolve().parents[2]


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


# --------------------------------------------------------------------------------------------
# Held-out facts: checked on the texts, not on the generator's internals

LEARNING_TASK = ("rl-math:arithmetic?operations=add,sub,mul&min_operand=10&max_operand=89&worked=true"
                 "&hold_out_facts=true&ood_max_operand=99&train_size=5000&validation_size=500&test_size=1000")
_QUESTION_OPERANDS = [  # the three wordings: (operation, pattern over the question text)
    ("add", re.compile(r"has (\d+) \w+\. \w+ gets (\d+) more")),
    ("sub", re.compile(r"had (\d+) \w+ and gave away (\d+) of them")),
    ("mul", re.compile(r"buys (\d+) boxes with (\d+) \w+ in each box")),
]


def fact_of(question: str) -> tuple[str, int, int]:
    """(operation, smaller operand, larger operand) read from a question's words."""
    for operation, pattern in _QUESTION_OPERANDS:
        if match := pattern.search(question):
            a, b = int(match[1]), int(match[2])
            return operation, min(a, b), max(a, b)
    raise AssertionError(f"no known wording: {question!r}")


def facts_in(dataset_name: str, split: str) -> list[tuple[str, int, int]]:
    return [fact_of(q) for q in load_problems(dataset_name, split)["question"]]


def test_held_out_facts_occur_nowhere_in_train_in_any_order_or_wording():
    train = set(facts_in(LEARNING_TASK, "train"))
    validation, test = facts_in(LEARNING_TASK, "validation"), facts_in(LEARNING_TASK, "test")
    assert len(set(test)) == len(test) == 1000 and len(set(validation)) == 500  # one question per fact
    assert not set(test) & train and not set(validation) & train and not set(test) & set(validation)
    assert {op for op, _, _ in train} == {"add", "sub", "mul"}


def test_the_benchmark_task_holds_out_at_least_800_test_facts():
    """The learning benchmark's own task, as its configs name it."""
    import yaml

    config = yaml.safe_load((REPO_ROOT / "configs" / "learning" / "sft.yaml").read_text())
    train = set(facts_in(config["dataset_name"], "train"))
    test = set(facts_in(config["dataset_name"], "test"))
    assert len(test) >= 800 and not test & train
    assert not set(facts_in(config["dataset_name"], "validation")) & train


def test_out_of_range_split_has_an_operand_outside_every_trained_question():
    trained_operands = {n for _, a, b in facts_in(LEARNING_TASK, "train") for n in (a, b)}
    ood = facts_in(LEARNING_TASK, "test_ood")
    assert len(ood) == 500 and max(trained_operands) <= 89
    assert all(b >= 90 for _, _, b in ood)


def test_worked_solutions_in_either_operand_order_are_correct():
    orders = set()
    for problem in arithmetic_split("test", ArithmeticOptions(min_operand=10, max_operand=30, worked=True,
                                                               hold_out_facts=True, train_size=50, validation_size=5,
                                                               test_size=40)):
        expression = problem["answer"].split("<<")[1].split("=")[0]
        assert str(eval(expression)) == GSM8K.gold(problem["answer"])  # noqa: S307 - our own digits
        orders.add(fact_of(problem["question"])[1] == int(re.search(r"\d+", problem["question"])[0]))
    assert orders == {True, False}


def test_flawed_solutions_drop_the_carry_in_the_stated_fraction_and_keep_gold_and_questions():
    clean_name = LEARNING_TASK.replace("add,sub,mul", "add")
    clean, flawed = load_problems(clean_name, "train"), load_problems(clean_name + "&flawed_carry=0.6", "train")
    assert clean["question"] == flawed["question"]
    carries = flawed_count = 0
    for question, clean_answer, flawed_answer in zip(clean["question"], clean["answer"], flawed["answer"]):
        _, a, b = fact_of(question)
        stated = int(re.search(r"= (\d+) ", GSM8K.reasoning(flawed_answer))[1])
        assert GSM8K.gold(flawed_answer) == GSM8K.gold(clean_answer) == str(a + b)
        carries += a % 10 + b % 10 >= 10
        flawed_count += stated != a + b
        assert stated in (a + b, a + b - 10) and (stated == a + b or a % 10 + b % 10 >= 10)
    assert flawed_count == round(0.6 * carries)
    assert load_problems(clean_name + "&flawed_carry=0.6", "test")["answer"] == load_problems(clean_name, "test")["answer"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (f"{TASK}?hold_out_facts=true&max_operand=9", "too few of the 45 facts"),
        (f"{TASK}?flawed_carry=0.5", "needs worked=true"),
        (f"{TASK}?ood_max_operand=5", "must be above max_operand"),
    ],
)
def test_a_bad_hold_out_option_is_a_config_error(name, message):
    with pytest.raises(ConfigError, match=message):
        RecipeArguments(dataset_name=name)
