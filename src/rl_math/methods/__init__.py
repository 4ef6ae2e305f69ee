"""Training methods, one module each: what a recipe parses, checks and trains.

========================  ====================================================================
module                    what
========================  ====================================================================
``sft``                   supervised fine-tuning on the task's worked solutions (TRL SFTTrainer)
``grpo``                  GRPO with the reward registry, health alarms, dynamic sampling
``rloo``                  RLOO (TRL RLOOTrainer), the same rewards, alarms and evaluation as GRPO
``expert_iteration``      rounds of sample → keep checked samples → SFT
``evaluate``              score one or more models on a split, side by side
========================  ====================================================================

Each module defines ``DATACLASSES`` (what its YAML is parsed into, in order), ``CHECKS`` (run on
the merged values before anything loads) and ``main(argv)``; the recipe's ``__main__`` is
``rl_math.train.session.run_recipe(main)`` (exit statuses: :mod:`rl_math.exit_status`). The recipes in ``recipes/`` are those
three lines; the ritual around a trainer is :mod:`rl_math.train.session`.
Adding a method: one module here with those three names, plus ``recipes/<name>.py``.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def available_methods() -> list[str]:
    """Every method module of this package.

    >>> available_methods()
    ['evaluate', 'expert_iteration', 'grpo', 'rloo', 'sft']
    """
    return sorted(info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_"))


def get_method(name: str) -> ModuleType:
    """The method module called `name` (a ValueError naming the known ones otherwise)."""
    if name not in available_methods():
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(available_methods())}")
    return importlib.import_module(f"{__name__}.{name}")


def recipe_dataclasses(method: str) -> list[type]:
    """The dataclasses a method's YAML is parsed into (asked for by recipes, tools and tests)."""
    return list(get_method(method).DATACLASSES)
