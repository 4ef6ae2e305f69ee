"""Tasks: what is asked, and what counts as right.

A task knows its columns, how a row becomes a question and a gold answer, how a completion is
graded against that gold, and how an SFT target's reasoning is rendered from a row. Each task is
one module of this package that defines ``TASK`` (a :class:`Task`); the YAML chooses it with
``task:`` (default: the task the dataset name implies, see :func:`rl_math.tasks.loading.task_name_for`).

========================  ====================================================================
module                    what
========================  ====================================================================
``gsm8k``                 GSM8K: ``question``/``answer`` (``#### N``), numeric golds, fast grader
``arithmetic``            the offline ``rl-math:synthetic`` / ``rl-math:arithmetic?…`` problems
``math``                  MATH-style: ``problem``/``answer``, non-numeric golds, math-verify
``loading``               dataset sources (hub id, local file or folder, the generators) → rows
``formats``               prompt formats: system prompt, format reward, reward mix, well-formed
========================  ====================================================================

The chosen task travels with every prompt row as its ``task`` column, which the ``correctness``
reward and the evaluation read (GRPOTrainer hands every dataset column to the rewards), so the
comparator is the task's wherever a completion is graded.

>>> get_task("gsm8k").grade(r"so \\boxed{1,080}", "#### 1080").correct
True
>>> get_task("math").grade(r"\\boxed{\\dfrac{\\pi}{2}}", r"\\frac{\\pi}{2}").correct
True
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import cache
from typing import Any

DEFAULT_TASK = "gsm8k"
_NOT_TASKS = frozenset({"loading", "formats"})


@dataclass(frozen=True)
class Task:
    """One task. Subclasses (one per module) say how golds are read and answers compared."""

    name: str
    question_column: str
    answer_column: str
    solution_column: str  # where the worked solution (SFT reasoning) is; may be the answer column
    answer_help: str  # what the answer column must hold, for error messages

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns a dataset of this task must have."""
        return (self.question_column, self.answer_column)

    def gold(self, value: object) -> str | None:
        """The normalised gold answer of a row's answer value, or None when this task cannot grade it."""
        raise NotImplementedError

    def reasoning(self, solution: str) -> str:
        """The reasoning an SFT target shows, from the row's solution text (its answer after it)."""
        raise NotImplementedError

    def grade(self, completion: object, gold: object) -> Any:
        """The :class:`rl_math.grading.grader.Verdict` of one completion against a gold answer."""
        raise NotImplementedError

    def answers_equal(self, answer: str, gold: object) -> bool:
        """Whether a bare answer (no box needed) equals the gold answer."""
        raise NotImplementedError


def available_tasks() -> list[str]:
    """The names of the tasks: the modules of this package that define `TASK`.

    >>> available_tasks()
    ['arithmetic', 'gsm8k', 'math']
    """
    return sorted(
        module.name
        for module in pkgutil.iter_modules(__path__)
        if module.name not in _NOT_TASKS and hasattr(importlib.import_module(f"{__name__}.{module.name}"), "TASK")
    )


@cache
def get_task(name: str | None) -> Task:
    """The task called `name` (None: the default, GSM8K); a ValueError listing the known ones otherwise."""
    name = name or DEFAULT_TASK
    if not isinstance(name, str) or not name.isidentifier() or name in _NOT_TASKS:
        module = None
    else:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError:
            module = None
    if module is None or not isinstance(getattr(module, "TASK", None), Task):
        raise ValueError(f"unknown task {name!r}; choose one of: {', '.join(available_tasks())}")
    return module.TASK


