"""Prompt formats: how a question becomes a conversational prompt, what answer shape is asked for,
and what that shape means everywhere else -- the one place that says it.

Each format is one module of this package defining ``FORMAT`` (a :class:`PromptFormat`): its
default system prompt (overridable in the YAML with `system_prompt`), the reward that checks its
shape (``format_reward``, and the function itself when the format defines it), the default reward
mix (:meth:`PromptFormat.default_reward_specs`), what "well-formed" means
(:meth:`PromptFormat.is_well_formed`: evaluation's buckets, expert iteration's default filter, the
health monitor) and how an SFT target is written in it (:meth:`PromptFormat.sft_target`).

========================  ====================================================================
module                    the shape asked for
========================  ====================================================================
``boxed``                 reasoning, then the final answer in ``\\boxed{}`` (Qwen2.5-Math's)
``think_boxed``           ``<think>…</think>``, then ``\\boxed{}``
``r1``                    ``<think>…</think><answer>…</answer>`` (DeepSeek-R1's)
``xml``                   ``<reasoning>…</reasoning><answer>…</answer>`` (the GRPO-from-scratch recipe's)
========================  ====================================================================

A format's reward lives with the format, not in the reward registry's module: the shape it pays
for is the format's definition, so a new format is one file. The registry
(:mod:`rl_math.rewards`) registers every format's reward under its name, typed parameters and
gating included. Where a completion's final answer is read is the grader's (``\\boxed{}`` in the
answer region, or an ``<answer>`` block), the same for every format.

>>> sorted(PROMPT_FORMATS)
['boxed', 'r1', 'think_boxed', 'xml']
"""

from __future__ import annotations

import importlib
import pkgutil

from rl_math.tasks.formats.base import PromptFormat


def _discover() -> dict[str, PromptFormat]:
    formats = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        if info.name != "base":
            fmt = importlib.import_module(f"{__name__}.{info.name}").FORMAT
            formats[fmt.name] = fmt
    return formats


PROMPT_FORMATS: dict[str, PromptFormat] = _discover()


def get_prompt_format(name: str) -> PromptFormat:
    """Return the prompt format called `name`, or raise a ValueError listing the known ones."""
    try:
        return PROMPT_FORMATS[name]
    except KeyError:
        known = ", ".join(sorted(PROMPT_FORMATS))
        raise ValueError(f"unknown prompt_format {name!r}; choose one of: {known}") from None


def build_prompt(question: str, system_prompt: str | None) -> list[dict[str, str]]:
    """The conversational prompt TRL expects: optional system message, then the user question.

    >>> build_prompt("What is 2+2?", "Box it.")
    [{'role': 'system', 'content': 'Box it.'}, {'role': 'user', 'content': 'What is 2+2?'}]
    """
    messages = []
    if system_prompt:
        messages.append({"role": "system", "content": system_prompt})
    messages.append({"role": "user", "content": question})
    return messages


# The rewards that check a format's shape (the health monitor watches them against correctness).
FORMAT_REWARDS: tuple[str, ...] = tuple(dict.fromkeys(fmt.format_reward for fmt in PROMPT_FORMATS.values()))


def default_reward_specs(prompt_format: str) -> list[dict]:
    """The default reward mix of the format called `prompt_format` (see :meth:`PromptFormat.default_reward_specs`)."""
    return get_prompt_format(prompt_format).default_reward_specs()
