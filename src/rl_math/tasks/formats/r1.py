"""`r1`: `<think>…</think><answer>…</answer>` (DeepSeek-R1 style); its shape is `think_format`'s."""

from __future__ import annotations

from rl_math.tasks.formats.base import PromptFormat

FORMAT = PromptFormat(
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
    format_reward="think_format",  # defined by think_boxed
    # the box stays inside <answer> so that boxed_format and TRL's accuracy_reward pay it too
    target_template="<think>\n{reasoning}\n</think>\n<answer>{boxed}</answer>",
)
