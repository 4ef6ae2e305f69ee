"""`think_boxed`: reasoning inside `<think>…</think>`, then the final answer in `\\boxed{}`.

Its reward, `think_format`, also checks the `r1` format (which names it).
"""

from __future__ import annotations

from rl_math.grading.batch import batch_texts, check_int, column, score_each
from rl_math.grading.grader import MAX_TEXT_CHARS, final_answers, prompt_text
from rl_math.tasks.formats.base import PromptFormat, is_reasoning


def think_format(completions, prompts=None, *, min_words: int = 5, **kwargs) -> list[float]:
    r"""1.0 when the completion opens with one `<think>` block of real reasoning, then the answer.

    The completion must start (after whitespace) with exactly one `<think>…</think>` (any other
    `<think>`/`</think>` tag scores 0.0) whose content has at least `min_words` words (default 5)
    besides placeholder wording like "reasoning process here", and is not a copy of the prompt
    (`prompts`, conversational or string: think content that appears verbatim in it, compared
    case- and punctuation-insensitively). After `</think>` there must be exactly one final answer
    (one non-empty boxed answer or `<answer>` block; an answer repeated over and over is not "the
    answer"). Tags alone earn nothing.

    >>> good = r"<think>Janet has 16 eggs, eats 3 and bakes 4, so she sells 9 for $2 each.</think> \boxed{18}"
    >>> think_format([good, r"<think>reasoning process here</think> \boxed{18}", r"<think></think> \boxed{18}"])
    [1.0, 0.0, 0.0]
    >>> think_format([r"<think>16 - 3 - 4 = 9 and 9 * 2 = 18</think> no answer"])
    [0.0]
    >>> think_format([r"<think>16 - 3 - 4 = 9 and 9 * 2 = 18</think> \boxed{18} \boxed{18}"])
    [0.0]
    """
    texts = batch_texts(completions)
    prompt_column = [None] * len(texts) if prompts is None else column(prompts, len(texts), "prompts", "think_format")

    def score(text: str, prompt: object) -> float:
        if len(text) > MAX_TEXT_CHARS or text.count("<think>") != 1 or text.count("</think>") != 1:
            return 0.0
        opened = text.lstrip()
        if not opened.startswith("<think>"):
            return 0.0
        think = opened[len("<think>") :].split("</think>", 1)[0]
        if not is_reasoning(think, prompt_text(prompt), min_words):
            return 0.0
        return 1.0 if final_answers(text).single is not None else 0.0

    return score_each("think_format", zip(texts, prompt_column), score)



FORMAT = PromptFormat(
    name="think_boxed",
    system_prompt=(
        "First think through the problem step by step inside <think> </think> tags, "
        "then state the final answer within \\boxed{}, for example: "
        "<think> reasoning process here </think> The answer is \\boxed{answer here}."
    ),
    description="reasoning inside <think>...</think>, then the final answer in \\boxed{}",
    format_reward="think_format",
    target_template="<think>\n{reasoning}\n</think>\nThe answer is {boxed}.",
    reward=think_format,
    check_reward_params=lambda params: check_int(params, "min_words", minimum=0, reward="think_format"),
)
