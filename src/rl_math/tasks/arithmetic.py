"""Arithmetic word problems generated offline: `rl-math:synthetic` and `rl-math:arithmetic`.

`rl-math:synthetic` is the embedded smoke run's fixed mix (two-digit add/sub, mul, div, two-step
change problems, with worked solutions). `rl-math:arithmetic?…` is the difficulty-controlled task
of the learning benchmark (see :class:`ArithmeticOptions`).

Same shape as GSM8K: a `question`, and an `answer` whose reasoning ends with `#### <number>`.
Deterministic for a given seed; no test question is in the train split.

>>> problems = generate_problems(2, seed=0)
>>> problems[0]["answer"].splitlines()[-1].startswith("####")
True
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from rl_math.tasks.gsm8k import GSM8KTask

SYNTHETIC_DATASET = "rl-math:synthetic"
ARITHMETIC_DATASET = "rl-math:arithmetic"

_NAMES = ("Ava", "Ben", "Chloe", "Dan", "Emma", "Finn", "Grace", "Hugo", "Iris", "Jack", "Lena", "Omar")
_ITEMS = ("apples", "marbles", "stickers", "books", "pencils", "cookies", "shells", "cards", "coins", "eggs")
_SPLIT_SEEDS = {"train": 1234, "test": 5678}
DEFAULT_SIZES = {"train": 2000, "test": 200}


def add_problem(name: str, item: str, a: int, b: int) -> dict[str, str]:
    return {
        "question": f"{name} has {a} {item}. {name} gets {b} more {item}. How many {item} does {name} have now?",
        "answer": f"{name} has {a} + {b} = <<{a}+{b}={a + b}>>{a + b} {item}.\n#### {a + b}",
    }


def sub_problem(name: str, item: str, a: int, b: int) -> dict[str, str]:
    return {
        "question": f"{name} had {a} {item} and gave away {b} of them. How many {item} are left?",
        "answer": f"{name} has {a} - {b} = <<{a}-{b}={a - b}>>{a - b} {item} left.\n#### {a - b}",
    }


def mul_problem(name: str, item: str, boxes: int, per_box: int) -> dict[str, str]:
    total = boxes * per_box
    return {
        "question": f"{name} buys {boxes} boxes with {per_box} {item} in each box. How many {item} does {name} buy?",
        "answer": f"{name} buys {boxes} * {per_box} = <<{boxes}*{per_box}={total}>>{total} {item}.\n#### {total}",
    }


def _add(rng: random.Random) -> dict[str, str]:
    name, item = rng.choice(_NAMES), rng.choice(_ITEMS)
    return add_problem(name, item, rng.randint(2, 60), rng.randint(2, 60))


def _sub(rng: random.Random) -> dict[str, str]:
    name, item = rng.choice(_NAMES), rng.choice(_ITEMS)
    a = rng.randint(10, 90)
    return sub_problem(name, item, a, rng.randint(1, a - 1))


def _mul(rng: random.Random) -> dict[str, str]:
    name, item = rng.choice(_NAMES), rng.choice(_ITEMS)
    return mul_problem(name, item, rng.randint(2, 12), rng.randint(2, 12))


def _div(rng: random.Random) -> dict[str, str]:
    name, item = rng.choice(_NAMES), rng.choice(_ITEMS)
    friends, each = rng.randint(2, 9), rng.randint(2, 12)
    total = friends * each
    return {
        "question": f"{name} shares {total} {item} equally among {friends} friends. How many {item} does each friend get?",
        "answer": f"Each friend gets {total} / {friends} = <<{total}/{friends}={each}>>{each} {item}.\n#### {each}",
    }


def _two_step(rng: random.Random) -> dict[str, str]:
    name, item = rng.choice(_NAMES), rng.choice(_ITEMS)
    price, count, paid = rng.randint(2, 9), rng.randint(2, 9), 0
    cost = price * count
    paid = cost + rng.randint(1, 20)
    change = paid - cost
    return {
        "question": (
            f"{name} buys {count} {item} at ${price} each and pays with ${paid}. How much change does {name} get?"
        ),
        "answer": (
            f"The {item} cost {count} * {price} = <<{count}*{price}={cost}>>{cost} dollars.\n"
            f"The change is {paid} - {cost} = <<{paid}-{cost}={change}>>{change} dollars.\n#### {change}"
        ),
    }


_TEMPLATES = (_add, _sub, _mul, _div, _two_step)


def generate_problems(n: int, seed: int) -> list[dict[str, str]]:
    """`n` word problems with GSM8K-format answers, the same for the same seed."""
    rng = random.Random(seed)
    return [rng.choice(_TEMPLATES)(rng) for _ in range(n)]


def synthetic_split(split: str, n: int | None = None) -> list[dict[str, str]]:
    """The fixed synthetic `train` or `test` split."""
    if split not in _SPLIT_SEEDS:
        raise ValueError(f"the synthetic dataset has splits {sorted(_SPLIT_SEEDS)}, not {split!r}")
    size = n or DEFAULT_SIZES[split]
    if split == "train":
        return generate_problems(size, _SPLIT_SEEDS[split])
    # the two seeds' streams can meet: a test question that is also trained on measures nothing
    trained = {p["question"] for p in generate_problems(DEFAULT_SIZES["train"], _SPLIT_SEEDS["train"])}
    rng = random.Random(_SPLIT_SEEDS[split])
    problems: list[dict[str, str]] = []
    while len(problems) < size:
        problem = rng.choice(_TEMPLATES)(rng)
        if problem["question"] not in trained:
            problems.append(problem)
    return problems


# --------------------------------------------------------------------------------------------
# rl-math:arithmetic — the difficulty-controlled task of the learning benchmark
_OPERATIONS = {"add": add_problem, "sub": sub_problem, "mul": mul_problem}


@dataclass(frozen=True)
class ArithmeticOptions:
    """The parameters of `rl-math:arithmetic?…`, e.g. `rl-math:arithmetic?operations=add,sub&max_operand=20`.

    - `operations`: any of add, sub, mul (a problem's operation is drawn uniformly);
    - `min_operand` / `max_operand`: both operands are drawn from this range (sub orders them so
      the answer is never negative);
    - `worked`: the gold answer carries a one-line worked solution before `#### N` (SFT then
      teaches "Ava has 3 + 5 = 8 apples. The answer is \\boxed{8}."), else only `#### N`
      (SFT teaches "The answer is \\boxed{8}.");
    - `train_size` / `validation_size` / `test_size`: distinct questions per split; no question is
      in two splits (`validation` is for decisions taken during training, such as when to stop SFT,
      so that `test` stays untouched);
    - `seed`: which problems are drawn (the benchmark keeps it fixed across model seeds);
    - `hold_out_facts`: validation and test ask *facts* (operation and operands, either order)
      that no train question asks, in any wording: all facts of the range are shuffled, the first
      `test_size` are the test questions (one each), the next `validation_size` the validation
      questions, and train draws its questions from the rest only;
    - `ood_max_operand`: when above `max_operand`, a split `test_ood` of `ood_size` facts with at
      least one operand in (`max_operand`, `ood_max_operand`]: outside the trained range;
    - `flawed_carry`: the stated fraction of the train split's carry problems (a borrow for sub)
      whose worked solution drops the carry (`23 + 48 = 61`); the gold after `####` stays right
      and the questions are those of the clean train split (needs `worked=true`).
    """

    operations: list[str] = field(default_factory=lambda: ["add"])
    min_operand: int = 1
    max_operand: int = 9
    worked: bool = False
    train_size: int = 2000
    validation_size: int = 500
    test_size: int = 1000
    seed: int = 0
    hold_out_facts: bool = False
    ood_max_operand: int = 0
    ood_size: int = 500
    flawed_carry: float = 0.0

    def __post_init__(self) -> None:
        unknown = [op for op in self.operations if op not in _OPERATIONS]
        if unknown or not self.operations:
            raise ValueError(f"operations must be some of {', '.join(_OPERATIONS)}, not {self.operations}")
        if not 0 <= self.min_operand <= self.max_operand:
            raise ValueError(f"need 0 <= min_operand <= max_operand, got {self.min_operand} and {self.max_operand}")
        if min(self.train_size, self.validation_size, self.test_size) < 1:
            raise ValueError("train_size, validation_size and test_size must be at least 1")
        if not 0.0 <= self.flawed_carry <= 1.0 or (self.flawed_carry and not self.worked):
            raise ValueError(f"flawed_carry is a fraction in [0, 1] of worked solutions (needs worked=true), "
                             f"got {self.flawed_carry}")
        if self.ood_max_operand and (self.ood_max_operand <= self.max_operand or self.ood_size < 1):
            raise ValueError(f"ood_max_operand must be above max_operand ({self.max_operand}) and ood_size at least 1, "
                             f"got {self.ood_max_operand} and {self.ood_size}")
        if self.hold_out_facts:
            facts = len(all_facts(self.operations, self.min_operand, self.max_operand))
            if self.test_size + self.validation_size > facts // 2:
                raise ValueError(
                    f"hold_out_facts: test_size + validation_size = {self.test_size + self.validation_size} held-out "
                    f"facts leave too few of the {facts} facts in this range for training; widen the range or ask fewer"
                )
            trainable = (facts - self.test_size - self.validation_size) * len(_NAMES) * len(_ITEMS)
            if self.train_size > trainable // 2:
                raise ValueError(f"train_size = {self.train_size} is too many distinct questions for the "
                                 f"{facts - self.test_size - self.validation_size} trainable facts; ask fewer")
            return
        available = len(_NAMES) * len(_ITEMS) * (self.max_operand - self.min_operand + 1) ** 2 * len(self.operations)
        if self.total > available // 2:
            raise ValueError(
                f"train_size + validation_size + test_size = {self.total} is too many distinct questions for "
                f"these operands and operations (about {available} exist); widen the operand range or ask fewer"
            )

    @property
    def total(self) -> int:
        return self.test_size + self.validation_size + self.train_size


def arithmetic_problem(rng: random.Random, options: ArithmeticOptions) -> dict[str, str]:
    """One word problem: a random operation on two operands from the options' range."""
    operation = _OPERATIONS[rng.choice(options.operations)]
    name, item = rng.choice(_NAMES), rng.choice(_ITEMS)
    a, b = rng.randint(options.min_operand, options.max_operand), rng.randint(options.min_operand, options.max_operand)
    if operation is sub_problem and b > a:
        a, b = b, a
    problem = operation(name, item, a, b)
    if not options.worked:
        problem["answer"] = problem["answer"].rsplit("\n", 1)[1]  # only "#### N"
    return problem


def arithmetic_split(split: str, options: ArithmeticOptions) -> list[dict[str, str]]:
    """The `train`, `validation` or `test` split: one seeded stream of distinct questions, cut in three.

    Drawing every split from one stream of distinct question texts (test first, then validation,
    then train) is what guarantees that no test question is ever trained on or selected on.

    >>> opts = ArithmeticOptions(train_size=5, validation_size=2, test_size=3)
    >>> train, test = arithmetic_split("train", opts), arithmetic_split("test", opts)
    >>> len(train), len(test), {p["question"] for p in train} & {p["question"] for p in test}
    (5, 3, set())
    >>> test[0]["answer"].startswith("####")
    True
    """
    bounds = {
        "test": (0, options.test_size),
        "validation": (options.test_size, options.test_size + options.validation_size),
        "train": (options.test_size + options.validation_size, options.total),
    }
    if options.hold_out_facts or split == "test_ood":
        return _held_out_split(split, options)
    if split not in bounds:
        raise ValueError(f"{ARITHMETIC_DATASET} has splits {', '.join(bounds)}, not {split!r}")
    rng = random.Random(options.seed)
    seen: set[str] = set()
    problems: list[dict[str, str]] = []
    while len(problems) < options.total:
        problem = arithmetic_problem(rng, options)
        if problem["question"] not in seen:
            seen.add(problem["question"])
            problems.append(problem)
    start, end = bounds[split]
    return with_flaws(problems[start:end], options) if split == "train" else problems[start:end]


# --------------------------------------------------------------------------------------------
# Held-out facts, the out-of-range split, flawed worked solutions

Fact = tuple[str, int, int]  # (operation, smaller operand, larger operand): the same fact in either order


def all_facts(operations: list[str], low: int, high: int) -> list[Fact]:
    """Every fact with both operands in [low, high], in a fixed order.

    >>> all_facts(["add"], 1, 3)
    [('add', 1, 1), ('add', 1, 2), ('add', 1, 3), ('add', 2, 2), ('add', 2, 3), ('add', 3, 3)]
    """
    return [(op, a, b) for op in operations for a in range(low, high + 1) for b in range(a, high + 1)]


def fact_problem(rng: random.Random, fact: Fact, options: ArithmeticOptions) -> dict[str, str]:
    """One word problem asking `fact`, in a random wording and (add, mul) operand order."""
    op, low, high = fact
    name, item = rng.choice(_NAMES), rng.choice(_ITEMS)
    a, b = (high, low) if op == "sub" or rng.random() < 0.5 else (low, high)
    problem = _OPERATIONS[op](name, item, a, b)
    if not options.worked:
        problem["answer"] = problem["answer"].rsplit("\n", 1)[1]
    return problem


def ood_facts(options: ArithmeticOptions) -> list[Fact]:
    """The facts with at least one operand in (max_operand, ood_max_operand]: none is in any other split."""
    return [f for f in all_facts(options.operations, options.min_operand, options.ood_max_operand)
            if f[2] > options.max_operand]


def _held_out_split(split: str, options: ArithmeticOptions) -> list[dict[str, str]]:
    """A split of the held-out-facts task, or `test_ood` (also without `hold_out_facts`).

    >>> opts = ArithmeticOptions(min_operand=10, max_operand=30, hold_out_facts=True, train_size=50,
    ...                          validation_size=5, test_size=20, ood_max_operand=40, ood_size=10)
    >>> [len(_held_out_split(s, opts)) for s in ("train", "validation", "test", "test_ood")]
    [50, 5, 20, 10]
    """
    if split == "test_ood":
        if not options.ood_max_operand:
            raise ValueError(f"{ARITHMETIC_DATASET} has a split test_ood only with ood_max_operand set")
        facts = ood_facts(options)
        random.Random(options.seed + 1).shuffle(facts)
        if options.ood_size > len(facts):
            raise ValueError(f"ood_size = {options.ood_size} but only {len(facts)} out-of-range facts exist")
        rng = random.Random(options.seed + 2)
        return [fact_problem(rng, fact, options) for fact in facts[:options.ood_size]]
    facts = all_facts(options.operations, options.min_operand, options.max_operand)
    random.Random(options.seed).shuffle(facts)
    held = {"test": facts[:options.test_size],
            "validation": facts[options.test_size:options.test_size + options.validation_size]}
    rng = random.Random(options.seed + 3)
    if split in held:
        return [fact_problem(rng, fact, options) for fact in held[split]]
    if split != "train":
        raise ValueError(f"{ARITHMETIC_DATASET} has splits train, validation, test, test_ood, not {split!r}")
    trainable = facts[options.test_size + options.validation_size:]
    seen: set[str] = set()
    problems: list[dict[str, str]] = []
    while len(problems) < options.train_size:
        problem = fact_problem(rng, rng.choice(trainable), options)
        if problem["question"] not in seen:
            seen.add(problem["question"])
            problems.append(problem)
    return with_flaws(problems, options)


_WORKED = re.compile(r"(?P<a>\d+) (?P<op>[-+]) (?P<b>\d+) = <<(?P=a)(?P=op)(?P=b)=(?P<c>\d+)>>(?P=c)")


def drop_carry(answer: str) -> str | None:
    """The worked solution with the units carry (add) or borrow (sub) dropped; None if it has none.

    >>> drop_carry("Ava has 23 + 48 = <<23+48=71>>71 apples.\\n#### 71")
    'Ava has 23 + 48 = <<23+48=61>>61 apples.\\n#### 71'
    >>> drop_carry("Ava had 52 - 17 = <<52-17=35>>35 apples left.\\n#### 35")
    'Ava had 52 - 17 = <<52-17=45>>45 apples left.\\n#### 35'
    >>> drop_carry("Ava has 21 + 48 = <<21+48=69>>69 apples.\\n#### 69") is None
    True
    """
    match = _WORKED.search(answer)
    if match is None:
        return None
    a, b, op = int(match["a"]), int(match["b"]), match["op"]
    if op == "+" and a % 10 + b % 10 >= 10:
        wrong = a + b - 10
    elif op == "-" and a % 10 < b % 10:
        wrong = a - b + 10
    else:
        return None
    line = f"{a} {op} {b} = <<{a}{op}{b}={wrong}>>{wrong}"
    return answer[:match.start()] + line + answer[match.end():]


def with_flaws(problems: list[dict[str, str]], options: ArithmeticOptions) -> list[dict[str, str]]:
    """The train split with `flawed_carry` of its carry problems' worked solutions wrong (golds kept).

    Exactly round(fraction × carry problems) are flawed, chosen by a stream of their own so that the
    questions (and the other solutions) are those of the clean split.
    """
    if not options.flawed_carry:
        return problems
    carries = [i for i, p in enumerate(problems) if drop_carry(p["answer"]) is not None]
    random.Random(options.seed + 4).shuffle(carries)
    flawed = set(carries[:round(options.flawed_carry * len(carries))])
    return [dict(p, answer=drop_carry(p["answer"])) if i in flawed else p for i, p in enumerate(problems)]


def is_arithmetic_dataset(dataset_name: str) -> bool:
    """Whether a dataset name is one of the offline generators (then the task is `arithmetic`).

    >>> is_arithmetic_dataset("rl-math:synthetic"), is_arithmetic_dataset("rl-math:arithmetic?operations=mul")
    (True, True)
    >>> is_arithmetic_dataset("openai/gsm8k")
    False
    """
    return dataset_name == SYNTHETIC_DATASET or dataset_name.split("?", 1)[0] == ARITHMETIC_DATASET


# GSM8K-shaped rows (`question`, `answer` ending in `#### N`): graded and rendered as GSM8K is.
TASK = GSM8KTask(
    name="arithmetic",
    question_column="question",
    answer_column="answer",
    solution_column="answer",
    answer_help="a solution ending in '#### <number>' or the number itself",
)
