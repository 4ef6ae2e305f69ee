"""Finding a completion's final answers: the answer region after the last think block, answer blocks, top-level boxes; bounded work per completion."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Bounds on the work done per completion: everything below is linear in these.
MAX_TEXT_CHARS = 1_000_000  # longer completions are not graded at all (no answer)
MAX_REGION_CHARS = 100_000  # only the last this-many characters of the answer region are scanned
MAX_ANSWER_CHARS = 1_000  # a longer candidate answer is not a final answer
MAX_DISTINCT_ANSWERS = 16  # more distinct boxed values than this is spam: not correct
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"


# --------------------------------------------------------------------------------------------
# Finding the final answer


def answer_region(text: str) -> str | None:
    """The part of a completion that may hold the final answer, or None if there is none.

    >>> answer_region("<think>2*9 = \\\\boxed{18}</think> So \\\\boxed{18}.")
    ' So \\\\boxed{18}.'
    >>> answer_region("<think>2*9 = 18, so the answer is") is None  # truncated mid-thought
    True
    """
    if not isinstance(text, str) or len(text) > MAX_TEXT_CHARS:
        return None
    close = text.rfind(THINK_CLOSE)
    if close == -1:
        return None if THINK_OPEN in text else text
    region = text[close + len(THINK_CLOSE) :]
    return None if THINK_OPEN in region else region


@dataclass(frozen=True)
class FinalAnswers:
    """The candidate final answers of a completion.

    `answers` holds each top-level box's content (None for an unbalanced box) or, for an
    `<answer>` block without a box, the block's content; `n_boxed` counts the boxes among them.
    """

    answers: tuple[str | None, ...] = ()
    n_boxed: int = 0

    @property
    def single(self) -> str | None:
        """The one non-empty answer when there is exactly one, else None."""
        if len(self.answers) == 1 and self.answers[0] is not None and self.answers[0].strip():
            return self.answers[0]
        return None


BOX_OPEN = re.compile(r"\\(?:boxed|fbox)\s*\{")
_BRACE_TOKEN = re.compile(r"\\\\|\\[{}]|[{}]")


def _closing_braces(text: str, start: int) -> dict[int, int]:
    """Position of the matching `}` for every `{` from `start` on, in one linear pass.

    Escaped braces `\\{`/`\\}` are literal characters, not groups.
    """
    stack: list[int] = []
    closing: dict[int, int] = {}
    for token in _BRACE_TOKEN.finditer(text, start):
        brace = token.group()
        if brace == "{":
            stack.append(token.start())
        elif brace == "}" and stack:
            closing[stack.pop()] = token.start()
    return closing


def boxed_contents(text: str) -> list[str | None]:
    r"""Contents of the top-level `\boxed{…}`/`\fbox{…}` in `text`; None for an unbalanced one.

    >>> boxed_contents(r"so \boxed{\frac{1}{2}} or \boxed {3} or \boxed{\boxed{4}} and \boxed{5")
    ['\\frac{1}{2}', '3', '\\boxed{4}', None]
    """
    first = BOX_OPEN.search(text)
    if first is None:
        return []
    closing = _closing_braces(text, first.start())
    contents: list[str | None] = []
    covered_until = -1  # end of the last top-level box: boxes before it are nested in it
    for box in BOX_OPEN.finditer(text, first.start()):
        if box.start() < covered_until:
            continue
        open_brace = box.end() - 1
        close_brace = closing.get(open_brace)
        if close_brace is None:  # unbalanced: it swallows the rest of the text
            contents.append(None)
            covered_until = len(text)
        else:
            contents.append(text[open_brace + 1 : close_brace])
            covered_until = close_brace
    return contents


def _answer_blocks(region: str) -> list[str] | None:
    """Contents of the `<answer>…</answer>` blocks; None if a block is left unclosed."""
    blocks = []
    position = 0
    while (start := region.find(ANSWER_OPEN, position)) != -1:
        end = region.find(ANSWER_CLOSE, start)
        if end == -1:
            return None
        blocks.append(region[start + len(ANSWER_OPEN) : end])
        position = end + len(ANSWER_CLOSE)
    return blocks


def _filled(boxes: list[str | None]) -> list[str | None]:
    r"""The boxes that hold something: an empty `\boxed{}` is the instruction's placeholder echoed
    back ("put your final answer within \boxed{}"), not a second, hedging answer."""
    return [box for box in boxes if box is None or box.strip()]


def final_answers(text: str) -> FinalAnswers:
    r"""The candidate final answers of a completion's text (see the module docstring).

    >>> final_answers(r"<think>so 18</think> The answer is \boxed{18}.").answers
    ('18',)
    >>> final_answers("<think>so 18</think><answer> 18 </answer>")
    FinalAnswers(answers=('18',), n_boxed=0)
    >>> final_answers(r"<think>\boxed{18}</think> I don't know.").answers  # boxes in <think> don't count
    ()
    >>> final_answers(r"Put the answer in \boxed{}: \boxed{18}").answers  # an empty box is no answer
    ('18',)
    """
    region = answer_region(text)
    if region is None:
        return FinalAnswers()
    region = region[-MAX_REGION_CHARS:]
    if ANSWER_OPEN not in region:
        boxes = _filled(boxed_contents(region))
        return FinalAnswers(tuple(boxes), len(boxes))
    blocks = _answer_blocks(region)
    if blocks is None:
        return FinalAnswers()
    answers: list[str | None] = []
    n_boxed = 0
    for block in blocks:
        boxes = _filled(boxed_contents(block))
        if boxes:
            answers.extend(boxes)
            n_boxed += len(boxes)
        else:
            answers.append(block.strip())
    return FinalAnswers(tuple(answers), n_boxed)


def matching_brace(text: str, open_brace: int) -> int | None:
    """Index of the `}` closing the `{` at `open_brace` (short strings only), or None."""
    depth = 0
    for index in range(open_brace, len(text)):
        char = text[index]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index
    return None


