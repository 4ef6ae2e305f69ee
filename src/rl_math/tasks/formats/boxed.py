"""`boxed`: reasoning, then the final answer in `\\boxed{}` (Qwen2.5-Math's own prompt)."""

from __future__ import annotations

from rl_math.grading.batch import batch_texts, score_each
from rl_math.grading.grader import final_answers
from rl_math.tasks.formats.base import PromptFormat, is_placeholder_answer


def boxed_format(completions, **kwargs) -> list[float]:
    r"""1.0 when the answer region holds exactly one boxed answer, non-empty and balanced; else 0.0.

    >>> boxed_format([r"so \boxed{18}.", r"\boxed{18} or \boxed{19}", r"\boxed{}", r"\boxed{18", "18"])
    [1.0, 0.0, 0.0, 0.0, 0.0]
    >>> boxed_format([r"<think>\boxed{18}</think> 18"])  # a box inside <think> is not an answer
    [0.0]
    >>> boxed_format([r"\boxed{answer here}"])  # the prompt's template copied back is not an answer
    [0.0]
    """

    def score(text: str) -> float:
        found = final_answers(text)
        if found.n_boxed != 1 or found.single is None:
            return 0.0
        return 0.0 if is_placeholder_answer(found.single) else 1.0

    return score_each("boxed_format", ((text,) for text in batch_texts(completions)), score)



FORMAT = PromptFormat(
    name="boxed",
    system_prompt="Please reason step by step, and put your final answer within \\boxed{}.",
    description="reasoning, then the final answer in \\boxed{}",
    format_reward="boxed_format",
    target_template="{reasoning}\nThe answer is {boxed}.",
    reward=boxed_format,
)
