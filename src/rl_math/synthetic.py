"""GSM8K-style arithmetic word problems generated offline, for the embedded smoke run and tests.

Same shape as GSM8K: a `question`, and an `answer` whose reasoning ends with `#### <number>`.
Deterministic for a given seed; train and test use different seeds so they do not overlap.

>>> problems = generate_problems(2, seed=0)
>>> problems[0]["answer"].splitlines()[-1].startswith("####")
True
"""

from __future__ import annotations

import random

_NAMES = ("Ava", "Ben", "Chloe", "Dan", "Emma", "Finn", "Grace", "Hugo", "Iris", "Jack", "Lena", "Omar")
_ITEMS = ("apples", "marbles", "stickers", "books", "pencils", "cookies", "shells", "cards", "coins", "eggs")
_SPLIT_SEEDS = {"train": 1234, "test": 5678}
DEFAULT_SIZES = {"train": 2000, "test": 200}


def _add(rng: random.Random) -> dict[str, str]:
    name, item = rng.choice(_NAMES), rng.choice(_ITEMS)
    a, b = rng.randint(2, 60), rng.randint(2, 60)
    return {
        "question": f"{name} has {a} {item}. {name} gets {b} more {item}. How many {item} does {name} have now?",
        "answer": f"{name} has {a} + {b} = <<{a}+{b}={a + b}>>{a + b} {item}.\n#### {a + b}",
    }


def _sub(rng: random.Random) -> dict[str, str]:
    name, item = rng.choice(_NAMES), rng.choice(_ITEMS)
    a = rng.randint(10, 90)
    b = rng.randint(1, a - 1)
    return {
        "question": f"{name} had {a} {item} and gave away {b} of them. How many {item} are left?",
        "answer": f"{name} has {a} - {b} = <<{a}-{b}={a - b}>>{a - b} {item} left.\n#### {a - b}",
    }


def _mul(rng: random.Random) -> dict[str, str]:
    name, item = rng.choice(_NAMES), rng.choice(_ITEMS)
    boxes, per_box = rng.randint(2, 12), rng.randint(2, 12)
    total = boxes * per_box
    return {
        "question": f"{name} buys {boxes} boxes with {per_box} {item} in each box. How many {item} does {name} buy?",
        "answer": f"{name} buys {boxes} * {per_box} = <<{boxes}*{per_box}={total}>>{total} {item}.\n#### {total}",
    }


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
    return generate_problems(n or DEFAULT_SIZES[split], _SPLIT_SEEDS[split])
