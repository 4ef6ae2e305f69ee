"""Prompt formats: how a question becomes a conversational prompt, and what answer shape is asked for.

Each format has a default system prompt (overridable in the YAML with `system_prompt`). The
`think_boxed` and `r1` prompts show the expected shape with placeholder wording; the
`think_format` reward refuses a `<think>` block that only copies that wording back.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PromptFormat:
    name: str
    system_prompt: str
    description: str
    format_reward: str  # the registry name of the reward that checks this shape


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


def default_reward_specs(prompt_format: str) -> list[dict]:
    """The reward mix used when a config names none: correctness, plus shaping that counts only on correct answers.

    The format reward and `termination` are gated on correctness (`gate: correct`): in a group whose
    answers are all wrong they give GRPO no signal, so the model is never trained on format alone,
    and on correct answers they still prefer the well-formed, finished one. On the learning benchmark
    (BENCHMARKS.md, section 0b) it ties with the ungated mix over 5 seeds (+22.1 vs +22.0 points).

    >>> [(spec["name"], spec.get("gate")) for spec in default_reward_specs("boxed")]
    [('correctness', None), ('boxed_format', 'correct'), ('termination', 'correct')]
    """
    return [
        {"name": "correctness", "weight": 1.0},
        {"name": get_prompt_format(prompt_format).format_reward, "weight": 0.2, "gate": "correct"},
        {"name": "termination", "weight": 0.2, "gate": "correct"},
    ]
