r"""`xml`: `<reasoning>…</reasoning>` then `<answer>…</answer>`, the GRPO-from-scratch recipe's format.

The reference recipe (GRPO on Qwen2.5-1.5B-Instruct, one 24 GB GPU) asks for this shape with the
system prompt below, reads the answer from the `<answer>` tag and pays a per-tag format reward.
Here the answer is read by the grader like every format's (an `<answer>` block without a box is
its content; several blocks must all agree, so a hedge is never saved by which tag came last),
and `xml_format` pays per tag, with the rest held back for a real answer.
"""

from __future__ import annotations

import re

from rl_math.grading.batch import batch_texts, check_int, column, score_each
from rl_math.grading.grader import MAX_TEXT_CHARS, final_answers, prompt_text
from rl_math.tasks.formats.base import PromptFormat, is_placeholder_answer, is_reasoning

_TAGS = ("<reasoning>", "</reasoning>", "<answer>", "</answer>")
_SHAPE = re.compile(r"\s*<reasoning>(.*?)</reasoning>\s*<answer>(.*?)</answer>(.*)", re.DOTALL)


def xml_format(completions, prompts=None, *, min_words: int = 5, **kwargs) -> list[float]:
    r"""0.125 for each of the four tags present exactly once; 1.0 for the whole shape with real content.

    The full score needs, in order and nothing else: `<reasoning>` opening the completion, at least
    `min_words` words of reasoning (not placeholder wording, not a copy of the prompt), `</reasoning>`,
    then one `<answer>` block holding exactly one non-empty answer that is not template wording,
    and nothing but whitespace after `</answer>`. Tags alone earn at most 0.5, below any honest,
    well-formed answer.

    >>> good = "<reasoning>\nAva has 3 apples and gets 5 more, so 3 + 5 = 8.\n</reasoning>\n<answer>\n8\n</answer>"
    >>> xml_format([good, "<reasoning>reasoning here</reasoning><answer>answer here</answer>"])
    [1.0, 0.5]
    >>> xml_format([good + " and more", good.replace("8\n</answer>", "8\n</answer><answer>9</answer>"), "8"])
    [0.5, 0.25, 0.0]
    """
    texts = batch_texts(completions)
    prompt_column = [None] * len(texts) if prompts is None else column(prompts, len(texts), "prompts", "xml_format")

    def score(text: str, prompt: object) -> float:
        if len(text) > MAX_TEXT_CHARS:
            return 0.0
        tags = sum((0.125 for tag in _TAGS if text.count(tag) == 1), 0.0)
        shape = _SHAPE.fullmatch(text) if tags == 0.5 else None
        if shape is None:
            return tags
        reasoning, answer, trailing = shape.groups()
        found = final_answers(text)
        if (trailing.strip() or not is_reasoning(reasoning, prompt_text(prompt), min_words)
                or found.single is None or is_placeholder_answer(found.single) or not answer.strip()):
            return tags
        return 1.0

    return score_each("xml_format", zip(texts, prompt_column), score)


FORMAT = PromptFormat(
    name="xml",
    system_prompt=(
        "Respond in the following format:\n<reasoning>\n...\n</reasoning>\n<answer>\n...\n</answer>"
    ),
    description="<reasoning>...</reasoning><answer>...</answer> (the GRPO-from-scratch recipe's format)",
    format_reward="xml_format",
    target_template="<reasoning>\n{reasoning}\n</reasoning>\n<answer>\n{answer}\n</answer>",
    reward=xml_format,
    check_reward_params=lambda params: check_int(params, "min_words", minimum=0, reward="xml_format"),
)
