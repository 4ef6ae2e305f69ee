"""What a prompt format is (:class:`PromptFormat`), and the shape checks formats share.

A format owns its default system prompt (overridable in the YAML with `system_prompt`), the reward
that checks its shape (`format_reward`), the default reward mix (:meth:`PromptFormat.default_reward_specs`),
what "well-formed" means (:meth:`PromptFormat.is_well_formed`, used by the evaluation's buckets
and, through the reward mix, by expert iteration's default filter and the health monitor) and how
an SFT target is written in it (:meth:`PromptFormat.sft_target`). The `think_boxed` and `r1`
prompts show the expected shape with placeholder wording; the `think_format` reward refuses a
`<think>` block that only copies that wording back.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class PromptFormat:
    name: str
    system_prompt: str
    description: str
    format_reward: str  # the registry name of the reward that checks this shape
    target_template: str  # an SFT target: `{reasoning}`, then the gold as `{boxed}` (boxed) or `{answer}` (bare)
    # The function behind `format_reward`, when this format defines it (None: another format's, by name).
    # It is registered in the reward registry under `format_reward`, with `check_reward_params`.
    reward: Callable[..., list[float]] | None = None
    check_reward_params: Callable[[dict], None] | None = None

    def sft_target(self, reasoning: str, gold: str) -> str:
        r"""The completion text that teaches this format: the reasoning, then the boxed gold answer.

        >>> from rl_math.tasks.formats import get_prompt_format
        >>> print(get_prompt_format("boxed").sft_target("16 - 3 - 4 = 9 eggs are sold.", "18"))
        16 - 3 - 4 = 9 eggs are sold.
        The answer is \boxed{18}.
        >>> print(get_prompt_format("r1").sft_target("16 - 3 - 4 = 9 eggs are sold.", "18"))
        <think>
        16 - 3 - 4 = 9 eggs are sold.
        </think>
        <answer>\boxed{18}</answer>
        >>> get_prompt_format("boxed").sft_target("", "18")  # no reasoning: the answer alone
        'The answer is \\boxed{18}.'
        """
        return self.target_template.format(reasoning=reasoning.strip(), boxed=f"\\boxed{{{gold}}}", answer=gold).strip()

    def is_well_formed(self, verdict, format_score: float | None) -> bool:
        """Exactly one final answer (the grader's `well_formed`), in the shape this format's reward pays for."""
        return bool(verdict.well_formed) and format_score is not None and format_score >= 1.0

    def default_reward_specs(self) -> list[dict]:
        """The reward mix used when a config names none: correctness, plus shaping that counts only on correct answers.

        The format reward and `termination` are gated on correctness (`gate: correct`): in a group whose
        answers are all wrong they give GRPO no signal, so the model is never trained on format alone,
        and on correct answers they still prefer the well-formed, finished one. On the learning benchmark
        (BENCHMARKS.md, section 0b) it ties with the ungated mix over 5 seeds (+22.1 vs +22.0 points).

        >>> from rl_math.tasks.formats import get_prompt_format
        >>> [(spec["name"], spec.get("gate")) for spec in get_prompt_format("boxed").default_reward_specs()]
        [('correctness', None), ('boxed_format', 'correct'), ('termination', 'correct')]
        """
        return [
            {"name": "correctness", "weight": 1.0},
            {"name": self.format_reward, "weight": 0.2, "gate": "correct"},
            {"name": "termination", "weight": 0.2, "gate": "correct"},
        ]


# --------------------------------------------------------------------------------------------
# Shape checks that several formats' rewards share

# What a box holds when the model copied the prompt's template instead of answering.
_ANSWER_PLACEHOLDERS = frozenset({"answer", "ans", "final answer", "your answer", "the answer", "result", "number"})


def is_placeholder_answer(content: str) -> bool:
    r"""A box with no answer in it: template wording (`answer here`) or no letter or digit at all.

    >>> is_placeholder_answer(r"\text{answer here}"), is_placeholder_answer("..."), is_placeholder_answer("18")
    (True, True, False)
    """
    words = _normalized(content.replace("\\text", " "))
    if not words:
        return True
    return words in _ANSWER_PLACEHOLDERS or not _PLACEHOLDER_PATTERN.sub(" ", words).strip()


# Placeholder wording system prompts show for the think block; copying it back is not reasoning.
THINK_PLACEHOLDERS = (
    "reasoning process here",
    "your reasoning process here",
    "your reasoning here",
    "reasoning here",
    "reasoning goes here",
    "thinking process here",
    "your thinking process here",
    "thought process here",
    "your thought process here",
    "your thoughts here",
    "thoughts here",
    "step by step reasoning here",
    "think step by step here",
    "your answer here",
    "final answer here",
    "answer here",
)


_PLACEHOLDER_PATTERN = re.compile(r"\b(?:" + "|".join(re.escape(p) for p in THINK_PLACEHOLDERS) + r")\b")


_WORDS = re.compile(r"[^\W_]+")


_MAX_PROMPT_CHARS = 50_000


def _normalized(text: str) -> str:
    """Lower-case words joined by single spaces: punctuation, markup and spacing ignored."""
    return " ".join(_WORDS.findall(text.lower()))


@lru_cache(maxsize=1024)
def _normalized_prompt(prompt: str) -> str:
    return f" {_normalized(prompt[:_MAX_PROMPT_CHARS])} "


def is_reasoning(think: str, prompt: str, min_words: int) -> bool:
    """Real reasoning: enough words once placeholders are removed, and not a copy of the prompt."""
    words = _normalized(think)
    if not words:
        return False
    if prompt and f" {words} " in _normalized_prompt(prompt):
        return False
    remaining = _PLACEHOLDER_PATTERN.sub(" ", words).split()
    return len(remaining) >= max(min_words, 1)

