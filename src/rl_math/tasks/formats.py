"""Prompt formats: how a question becomes a conversational prompt, what answer shape is asked for,
and what that shape means everywhere else -- the one place that says it.

A format owns its default system prompt (overridable in the YAML with `system_prompt`), the reward
that checks its shape (`format_reward`), the default reward mix (:meth:`PromptFormat.default_reward_specs`),
what "well-formed" means (:meth:`PromptFormat.is_well_formed`, used by the evaluation's buckets
and, through the reward mix, by expert iteration's default filter and the health monitor) and how
an SFT target is written in it (:meth:`PromptFormat.sft_target`). The `think_boxed` and `r1`
prompts show the expected shape with placeholder wording; the `think_format` reward refuses a
`<think>` block that only copies that wording back.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PromptFormat:
    name: str
    system_prompt: str
    description: str
    format_reward: str  # the registry name of the reward that checks this shape
    target_template: str  # an SFT target: `{reasoning}` then the gold answer as `{boxed}`

    def sft_target(self, reasoning: str, gold: str) -> str:
        r"""The completion text that teaches this format: the reasoning, then the boxed gold answer.

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
        return self.target_template.format(reasoning=reasoning.strip(), boxed=f"\\boxed{{{gold}}}").strip()

    def is_well_formed(self, verdict, format_score: float | None) -> bool:
        """Exactly one final answer (the grader's `well_formed`), in the shape this format's reward pays for."""
        return bool(verdict.well_formed) and format_score is not None and format_score >= 1.0

    def default_reward_specs(self) -> list[dict]:
        """The reward mix used when a config names none: correctness, plus shaping that counts only on correct answers.

        The format reward and `termination` are gated on correctness (`gate: correct`): in a group whose
        answers are all wrong they give GRPO no signal, so the model is never trained on format alone,
        and on correct answers they still prefer the well-formed, finished one. On the learning benchmark
        (BENCHMARKS.md, section 0b) it ties with the ungated mix over 5 seeds (+22.1 vs +22.0 points).

        >>> [(spec["name"], spec.get("gate")) for spec in get_prompt_format("boxed").default_reward_specs()]
        [('correctness', None), ('boxed_format', 'correct'), ('termination', 'correct')]
        """
        return [
            {"name": "correctness", "weight": 1.0},
            {"name": self.format_reward, "weight": 0.2, "gate": "correct"},
            {"name": "termination", "weight": 0.2, "gate": "correct"},
        ]


PROMPT_FORMATS: dict[str, PromptFormat] = {
    fmt.name: fmt
    for fmt in (
        PromptFormat(
            name="boxed",
            system_prompt=(
                "Please reason step by step, and put your final answer within \\boxed{}."
            ),
            description="reasoning, then the final answer in \\boxed{}",
            format_reward="boxed_format",
            target_template="{reasoning}\nThe answer is {boxed}.",
        ),
        PromptFormat(
            name="think_boxed",
            system_prompt=(
                "First think through the problem step by step inside <think> </think> tags, "
                "then state the final answer within \\boxed{}, for example: "
                "<think> reasoning process here </think> The answer is \\boxed{answer here}."
            ),
            description="reasoning inside <think>...</think>, then the final answer in \\boxed{}",
            format_reward="think_format",
            target_template="<think>\n{reasoning}\n</think>\nThe answer is {boxed}.",
        ),
        PromptFormat(
            name="r1",
            system_prompt=(
                "A conversation between User and Assistant. The user asks a question, and the "
                "Assistant solves it. The assistant first thinks about the reasoning process in "
                "the mind and then provides the user with the answer. The reasoning process and "
                "answer are enclosed within <think> </think> and <answer> </answer> tags, "
                "respectively, i.e., <think> reasoning process here </think><answer> answer here "
                "</answer>."
            ),
            description="<think>...</think><answer>...</answer> (DeepSeek-R1 style)",
            format_reward="think_format",
            # the box stays inside <answer> so that boxed_format and TRL's accuracy_reward pay it too
            target_template="<think>\n{reasoning}\n</think>\n<answer>{boxed}</answer>",
        ),
    )
}


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
