r"""Math answer extraction and equivalence: the grader every reward and the evaluation share.

Where the final answer is
-------------------------
1. **Answer region.** With a think block, the text after the *last* ``</think>``; an unclosed
   ``<think>`` (a truncated completion, or a new ``<think>`` after the last ``</think>``) means there
   is no answer region at all. Without think tags, the whole completion.
2. **Answer blocks (r1 format).** If the region holds ``<answer>…</answer>`` blocks, only their
   content counts (an unclosed ``<answer>`` means no answer). A block without a box is itself the
   answer: ``<answer>18</answer>`` answers 18.
3. **Boxes.** Otherwise the answers are the contents of the top-level ``\boxed{…}`` in the region,
   with balanced braces. Accepted spellings: ``\boxed{…}``, ``\boxed {…}`` and ``\fbox{…}``
   (``\boxed 18`` without braces is not an answer). A box nested in a box is part of its content:
   ``\boxed{\boxed{18}}`` is one answer, 18. An unbalanced box (``\boxed{18``) is a malformed answer.

An empty box (``\boxed{}``, the instruction's placeholder echoed back) is no answer at all.
Several answers in the region must all equal the gold answer: ``\boxed{18} … \boxed{19}`` is a
hedge and scores 0, ``\boxed{18} … \boxed{18.0}`` is fine for correctness (but not well-formed).

When two answers are equal
--------------------------
Equality is mathematical, decided by a fast exact path first: the answer is cleaned of
presentation (``\$``, ``$…$``, ``\%``, degrees, ``\text{…}``/``\textbf{…}``/``\mathrm{…}``
wrappers, ``\left``/``\right``, LaTeX spaces, thousands separators ``1,080``/``1\,080``/``1\, 080``/
``1 080``, trailing words such as units ``18 apples`` or ``12 m²``, a leading label ``x =`` or
``The answer is``), then
evaluated exactly with :class:`fractions.Fraction` (``+ - * / ^``, ``\frac``/``\dfrac``/``\tfrac``
including ``\frac12``, parentheses and braces, decimals, ``1.8e1``, mixed numbers ``2 1/2``).

Only what this path cannot read -- an answer with a symbolic command such as ``\sqrt`` or ``\pi``,
or a gold answer that is not a number -- goes to math-verify, and only when it is short, a single
expression (no words, no lists, no ``or``) and free of expressions that could make sympy hang
(towers of powers, factorials, huge literals). The fallback's verdict counts only if it parsed
the answer as a single sympy expression (never a set or a relation).

Conventions a careful human might argue with (all tested):

* ``1.080`` is one point zero eight, never one thousand and eighty (no European separators).
* The percent sign is dropped, the number compared as written: ``50\%`` equals gold ``50`` but
  not gold ``0.5`` (GSM8K golds are written in the unit the question asks for).
* Comparisons are exact: ``0.33`` does not equal ``1/3``.
* Trailing words are units and ignored (``18 dollars``), unless they contain a digit
  (``18 or 19``), a conjunction or a fraction word (``18 and a half``); a scale word multiplies
  (``1.5 million``); ``dozen`` is a unit, not 12.
* ``x = 18`` is 18; in ``2 \times 9 = 18`` every side must agree, else the answer is rejected.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

__all__ = [
    "FinalAnswers",
    "Verdict",
    "answer_region",
    "answers_equal",
    "assistant_message",
    "completion_text",
    "final_answers",
    "grade",
    "grade_with",
    "gold_is_gradable",
    "normalize_gold",
    "parse_number",
    "prompt_text",
]

# Bounds on the work done per completion: everything below is linear in these.
MAX_TEXT_CHARS = 1_000_000  # longer completions are not graded at all (no answer)
MAX_REGION_CHARS = 100_000  # only the last this-many characters of the answer region are scanned
MAX_ANSWER_CHARS = 1_000  # a longer candidate answer is not a final answer
MAX_DISTINCT_ANSWERS = 16  # more distinct boxed values than this is spam: not correct
MAX_FALLBACK_CHARS = 100  # math-verify only sees answers at most this long
_MAX_NESTING = 64
_MAX_BITS = 4096  # bigger numerators/denominators are not evaluated

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"


# --------------------------------------------------------------------------------------------
# Message text: the one place a prompt or completion, in any shape, becomes text


def completion_text(completion: object) -> str:
    """The text of a completion, whatever shape TRL (or a user) hands over; never raises.

    A string is itself; a conversational completion (a list of messages) is the content of its
    assistant messages (tool messages are not the model's words); a single message is its
    content; bytes are decoded leniently; anything else (None included) is "".

    >>> completion_text([{"role": "assistant", "content": "The answer is \\\\boxed{18}."}])
    'The answer is \\\\boxed{18}.'
    >>> completion_text(None)
    ''
    """
    return _messages_text(completion, roles=("assistant",))


def prompt_text(prompt: object) -> str:
    """The text of a prompt: a string, or the content of every message of a conversational prompt.

    The same shapes as :func:`completion_text`, all roles kept; never raises.

    >>> prompt_text([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}])
    'Be brief.\\nWhat is 2+2?'
    """
    return _messages_text(prompt, roles=None)


def assistant_message(text: str) -> list[dict[str, str]]:
    """A completion's text as TRL's conversational completion: the inverse of :func:`completion_text`.

    >>> assistant_message("so \\\\boxed{4}")
    [{'role': 'assistant', 'content': 'so \\\\boxed{4}'}]
    """
    return [{"role": "assistant", "content": text}]


def _messages_text(value: object, roles: tuple[str, ...] | None) -> str:
    """The contents of the messages in `value` whose role is in `roles` (None: every role), joined."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, dict):
        return _message_content(value.get("content"))
    if hasattr(value, "tolist") and not isinstance(value, (list, tuple)):  # parquet gives numpy arrays of dicts
        try:
            value = value.tolist()
        except Exception:  # noqa: BLE001 - not an array after all: no text
            return ""
    if isinstance(value, (list, tuple)):
        parts = [
            _message_content(message.get("content"))
            for message in value
            if isinstance(message, dict) and (roles is None or message.get("role", "assistant") in roles)
        ]
        return "\n".join(part for part in parts if part)
    return ""


def _message_content(content: object) -> str:
    """A message's content: a string, or a list of parts like {"type": "text", "text": ...}."""
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        texts = [part.get("text") for part in content if isinstance(part, dict)]
        return "".join(text for text in texts if isinstance(text, str))
    return ""


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


# --------------------------------------------------------------------------------------------
# The fast exact path: clean the LaTeX, then evaluate with Fractions

_UNICODE = str.maketrans(
    {
        "\u2212": "-",  # minus sign
        "\ufe63": "-",
        "\uff0d": "-",
        "\u00d7": "*",  # multiplication sign
        "\u22c5": "*",
        "\u00f7": "/",
        "\u00b0": " ",  # degree sign
        "\u00a0": " ",  # no-break and thin spaces
        "\u2009": " ",
        "\u202f": " ",
        "\u2002": " ",
        "\u2003": " ",
        "\u20ac": "",  # euro, pound, yen, rupee, cent
        "\u00a3": "",
        "\u00a5": "",
        "\u20b9": "",
        "\u00a2": "",
    }
)
_SUPERSCRIPT_DIGITS = "⁰¹²³⁴⁵⁶⁷⁸⁹"
# `m²`, `cm³`, `10⁶`: a run of superscript digits is a power, written as the fast path reads it.
_SUPERSCRIPT = re.compile(f"[{_SUPERSCRIPT_DIGITS}]+")
_FROM_SUPERSCRIPT = str.maketrans(_SUPERSCRIPT_DIGITS, "0123456789")
_WRAPPER = re.compile(
    r"\\(?:text|textbf|textit|textrm|textsf|texttt|textnormal|textup|emph|mbox|hbox|"
    r"mathrm|mathbf|mathit|mathsf|mathtt|mathnormal|mathbb|boldsymbol|bm|operatorname|"
    r"underline|boxed|fbox)\s*\{"
)
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\circ(?![A-Za-z])|\\degree(?![A-Za-z])")
_DROPPED_COMMANDS = re.compile(
    r"\\(?:left|right|big|Big|bigg|Bigg)[lrm]?(?![A-Za-z])|\\(?:displaystyle|textstyle)(?![A-Za-z])|\\!"
)
# A run of LaTeX and ordinary spaces is one space: `1\\, 000` is `1 000`, a thousands separator.
_SPACES = re.compile(r"(?:\s*(?:\\[,:;> ]|\\q?quad(?![A-Za-z])|~))+\s*")
_FRAC_ALIASES = re.compile(r"\\[dtc]frac(?![A-Za-z])")
_TIMES = re.compile(r"\\(?:cdot|times|ast)(?![A-Za-z])")
_DIV = re.compile(r"\\div(?![A-Za-z])")
_FRAC = re.compile(r"\\frac(?![A-Za-z])")
_SCIENTIFIC = re.compile(r"(?<![\d.])(\d+(?:\.\d*)?|\.\d+)[eE]([-+]?\d{1,3})(?![\d.])")


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


def _unwrap_wrappers(text: str) -> str | None:
    r"""Replace `\text{X}`, `\textbf{X}`, `\boxed{X}`, … by `X`; None if unbalanced."""
    for _ in range(_MAX_NESTING):
        wrapper = _WRAPPER.search(text)
        if wrapper is None:
            return text
        close = matching_brace(text, wrapper.end() - 1)
        if close is None:
            return None
        text = text[: wrapper.start()] + text[wrapper.end() : close] + text[close + 1 :]
    return None


def _latex_argument(text: str, position: int) -> tuple[str, int] | None:
    r"""The argument of a command at `position`: a `{group}`, a `\command` or a single character."""
    while position < len(text) and text[position] == " ":
        position += 1
    if position >= len(text):
        return None
    if text[position] == "{":
        close = matching_brace(text, position)
        return None if close is None else (text[position + 1 : close], close + 1)
    if text[position] == "\\":
        command = re.match(r"\\[A-Za-z]+", text[position:])
        return None if command is None else (command.group(), position + command.end())
    if text[position] in "}":
        return None
    return text[position], position + 1


def _expand_fractions(text: str, depth: int = 0) -> str | None:
    r"""`\frac{a}{b}` and `\frac12` → `((a)/(b))`; None if malformed or nested too deep."""
    if depth > _MAX_NESTING:
        return None
    pieces = []
    position = 0
    while (frac := _FRAC.search(text, position)) is not None:
        pieces.append(text[position : frac.start()])
        numerator = _latex_argument(text, frac.end())
        if numerator is None:
            return None
        denominator = _latex_argument(text, numerator[1])
        if denominator is None:
            return None
        inner_numerator = _expand_fractions(numerator[0], depth + 1)
        inner_denominator = _expand_fractions(denominator[0], depth + 1)
        if inner_numerator is None or inner_denominator is None:
            return None
        pieces.append(f"(({inner_numerator})/({inner_denominator}))")
        position = denominator[1]
    pieces.append(text[position:])
    return "".join(pieces)


def _clean_latex(answer: str) -> str | None:
    r"""Presentation removed, fractions expanded, braces turned into parentheses.

    >>> _clean_latex(r"\$\text{1,080}.00 \left( \dfrac12 \right)")
    '1,080.00 ( ((1)/(2)) )'
    """
    text = answer.translate(_UNICODE)
    text = _SUPERSCRIPT.sub(lambda power: f"^({power.group().translate(_FROM_SUPERSCRIPT)})", text)
    text = _unwrap_wrappers(text)
    if text is None:
        return None
    text = _DEGREES.sub(" ", text)
    text = _DROPPED_COMMANDS.sub("", text)
    text = _SPACES.sub(" ", text)
    text = text.replace("\\$", "").replace("$", "").replace("\\%", "").replace("%", "")
    text = text.replace("{,}", ",")
    text = _FRAC_ALIASES.sub(r"\\frac", text)
    text = _TIMES.sub("*", text)
    text = _DIV.sub("/", text)
    text = _expand_fractions(text)
    if text is None or "\\" in text:  # an unknown command: not a plain number
        return None
    return text.replace("{", "(").replace("}", ")").replace("[", "(").replace("]", ")")


_TOKEN = re.compile(r"\s*(?:(\d+\.?\d*|\.\d+)|(\*\*|[-+*/^()]))")


def _tokenize(text: str) -> list[str] | None:
    tokens = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        token = _TOKEN.match(text, position)
        if token is None:
            return None
        tokens.append(token.group(1) or ("^" if token.group(2) == "**" else token.group(2)))
        position = token.end()
    return tokens


class _Arithmetic:
    """Exact evaluation of `+ - * / ^` and parentheses over Fractions, with size limits.

    Grammar: expr := term (("+"|"-") term)* ; term := unary (("*"|"/") unary)* ;
    unary := ("+"|"-") unary | power ; power := atom ("^" unary)? ; atom := NUMBER | "(" expr ")".
    """

    def __init__(self, tokens: list[str]):
        self.tokens = tokens
        self.position = 0
        self.depth = 0

    def evaluate(self) -> Fraction | None:
        try:
            value = self._expression()
        except (ArithmeticError, _NotANumber, RecursionError, ValueError):
            return None
        return value if self.position == len(self.tokens) else None

    def _peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self) -> str:
        token = self._peek()
        if token is None:
            raise _NotANumber
        self.position += 1
        return token

    def _expression(self) -> Fraction:
        value = self._term()
        while self._peek() in ("+", "-"):
            value = _bounded(value + self._term() if self._take() == "+" else value - self._term())
        return value

    def _term(self) -> Fraction:
        value = self._unary()
        while self._peek() in ("*", "/"):
            value = _bounded(value * self._unary() if self._take() == "*" else value / self._unary())
        return value

    def _unary(self) -> Fraction:
        if self._peek() in ("+", "-"):
            sign = self._take()
            self._enter()
            value = self._unary()
            self.depth -= 1
            return -value if sign == "-" else value
        return self._power()

    def _power(self) -> Fraction:
        base = self._atom()
        if self._peek() != "^":
            return base
        self._take()
        self._enter()
        exponent = self._unary()
        self.depth -= 1
        if exponent.denominator != 1 or abs(exponent) > 64 or (base == 0 and exponent < 0):
            raise _NotANumber
        return _bounded(base ** int(exponent))

    def _atom(self) -> Fraction:
        token = self._take()
        if token == "(":
            self._enter()
            value = self._expression()
            self.depth -= 1
            if self._take() != ")":
                raise _NotANumber
            return value
        if token[0].isdigit() or token[0] == ".":
            return Fraction(token)
        raise _NotANumber

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > _MAX_NESTING:
            raise _NotANumber


class _NotANumber(Exception):
    """The text is not an arithmetic expression the fast path evaluates."""


def _bounded(value: Fraction) -> Fraction:
    if value.numerator.bit_length() > _MAX_BITS or value.denominator.bit_length() > _MAX_BITS:
        raise _NotANumber
    return value


_THOUSANDS_COMMAS = re.compile(r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?![\d,])")
_THOUSANDS_SPACES = re.compile(r"(?<![\d.])\d{1,3}(?: \d{3})+(?!\d| \d)")
_MIXED_NUMBER = re.compile(r"\s*([-+]?)\s*(\d+)\s+(\d+)\s*/\s*(\d+)\s*")
_MIXED_FRACTION = re.compile(r"\s*([-+]?)\s*(\d+)\s*\(\((\d+)\)/\((\d+)\)\)\s*")
_LEADING_PHRASE = re.compile(r"^\s*[A-Za-z][A-Za-z\s']*?(?:\bis(?![A-Za-z])\s*:?|:)\s*(?=[-+.(\d])")
_FIRST_LETTER = re.compile(r"[A-Za-z]")
_UNIT_POWER = re.compile(r"(?<=[A-Za-z])\^\(?[23]\)?")
_WORD = re.compile(r"[A-Za-z]+")
_NOT_UNIT_WORDS = frozenset(
    "or and plus minus over half halves quarter quarters third thirds fourth fourths "
    "fifth fifths tenth tenths point".split()
)
_SCALE_WORDS = {
    "hundred": 100,
    "thousand": 1000,
    "million": 10**6,
    "billion": 10**9,
    "trillion": 10**12,
}
_LABEL_SUBSCRIPT = re.compile(r"_\(?[A-Za-z0-9]+\)?")
_LABEL = re.compile(r"[A-Za-z][A-Za-z\s']*")


def _evaluate_side(text: str) -> Fraction | None:
    """One side of an answer: optional leading phrase, an arithmetic expression, unit words."""
    text = text.strip().rstrip(".,;").strip()
    text = _LEADING_PHRASE.sub("", text, count=1)
    text = _SCIENTIFIC.sub(r"(\1*10^(\2))", text)
    letter = _FIRST_LETTER.search(text)
    scale = 1
    if letter is not None:
        words = _UNIT_POWER.sub("", text[letter.start() :])
        if any(char.isdigit() for char in words):
            return None
        word_list = [word.lower() for word in _WORD.findall(words)]
        if any(word in _NOT_UNIT_WORDS for word in word_list):
            return None
        if word_list and word_list[0] in _SCALE_WORDS:
            scale = _SCALE_WORDS[word_list[0]]
        text = text[: letter.start()]
    text = _THOUSANDS_COMMAS.sub(lambda match: match.group().replace(",", ""), text)
    text = _THOUSANDS_SPACES.sub(lambda match: match.group().replace(" ", ""), text)
    mixed = _MIXED_NUMBER.fullmatch(text) or _MIXED_FRACTION.fullmatch(text)
    if mixed is not None:
        sign, whole, numerator, denominator = mixed.groups()
        if int(denominator) == 0:
            return None
        value = int(whole) + Fraction(int(numerator), int(denominator))
        return (-value if sign == "-" else value) * scale
    tokens = _tokenize(text)
    if not tokens:
        return None
    value = _Arithmetic(tokens).evaluate()
    return None if value is None else value * scale


def _is_label(text: str) -> bool:
    """A left-hand side that names the answer (`x`, `Total cost`, `x_1`) rather than computes it."""
    text = _LABEL_SUBSCRIPT.sub("", text).strip()
    if not text:
        return True
    return _LABEL.fullmatch(text) is not None and not any(
        word.lower() in _NOT_UNIT_WORDS for word in _WORD.findall(text)
    )


def parse_number(answer: str) -> Fraction | None:
    r"""The exact value of an answer by the fast path, or None when it cannot decide.

    >>> parse_number(r"\$1,080.00")
    Fraction(1080, 1)
    >>> parse_number(r"x = \frac{36}{2} \text{ apples}")
    Fraction(18, 1)
    >>> parse_number("18 or 19") is None
    True
    """
    if not isinstance(answer, str) or len(answer) > MAX_ANSWER_CHARS:
        return None
    return _parse_number_cached(answer)


@lru_cache(maxsize=16384)
def _parse_number_cached(answer: str) -> Fraction | None:
    text = _clean_latex(answer)
    if text is None:
        return None
    *labels, last = text.split("=")
    value = _evaluate_side(last)
    if value is None:
        return None
    for side in labels:
        if not _is_label(side) and _evaluate_side(side) != value:
            return None
    return value


# --------------------------------------------------------------------------------------------
# The math-verify fallback (symbolic answers), guarded

_SYMBOLIC_COMMANDS = frozenset("sqrt pi frac dfrac tfrac cdot times div left right".split())
_COMMAND = re.compile(r"\\([A-Za-z]+)")
_SAFE_POWER = re.compile(r"\^(?:\d(?!\d)|\{-?\d\})")
_LONG_LITERAL = re.compile(r"\d{10,}")
_MAX_FALLBACK_POWERS = 2

_logger = logging.getLogger(__name__)


def _fallback_allowed(answer: str) -> bool:
    """Whether an answer the fast path could not read may be handed to math-verify.

    Only short, single expressions with a square root, pi or one one-letter variable: no words,
    no lists, no relations, no factorials, no functions, at most two single-digit powers, no
    long literals -- the fuzzing of the fallback found sympy hanging on anything bigger.
    """
    if len(answer) > MAX_FALLBACK_CHARS or _LONG_LITERAL.search(answer):
        return False
    commands = _COMMAND.findall(answer)
    if any(command not in _SYMBOLIC_COMMANDS for command in commands):
        return False
    plain = _COMMAND.sub(" ", answer)
    if re.search(r"[A-Za-z]{2,}|[,;!=<>&|%$'_]|\\\\", plain):
        return False
    powers = answer.count("^")
    if powers > _MAX_FALLBACK_POWERS or powers != len(_SAFE_POWER.findall(answer)):
        return False
    variables = set(re.findall(r"[A-Za-z]", plain))
    return len(variables) <= 1 and ("sqrt" in commands or "pi" in commands or bool(variables))


def math_verify_timeout() -> int | None:
    """math-verify's timeouts use SIGALRM, which only works on the main thread."""
    return 1 if threading.current_thread() is threading.main_thread() else None


def call_math_verify(function, *args, **kwargs):
    """Call math-verify, turning every failure (its TimeoutException is a BaseException) into None."""
    try:
        return function(*args, **kwargs)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # noqa: BLE001 - math-verify may raise anything, timeouts included
        _logger.debug("math-verify failed: %r", error)
        return None


@lru_cache(maxsize=4096)
def _symbolic_parse(answer: str):
    """math-verify's parse of a guarded answer, if it is a single sympy expression; else None."""
    if not _fallback_allowed(answer):
        return None
    try:
        import sympy
        from math_verify import LatexExtractionConfig, parse
    except ImportError:
        return None
    timeout = math_verify_timeout()
    if timeout is None:
        for name in ("math_verify.parser", "math_verify.grader"):
            logging.getLogger(name).setLevel(logging.ERROR)
    parsed = call_math_verify(
        parse,
        "\\boxed{" + answer + "}",
        extraction_config=[LatexExtractionConfig(boxed_match_priority=0)],
        parsing_timeout=timeout,
    )
    if not parsed or not isinstance(parsed[0], sympy.Expr):
        return None
    return parsed


def _as_sympy(value: Fraction | str):
    """math-verify's representation of an exact value or of a guarded symbolic answer; or None."""
    if isinstance(value, Fraction):
        import sympy

        return [sympy.Rational(value.numerator, value.denominator), str(value)]
    return _symbolic_parse(value.strip())


def _without_label(answer: str) -> str | None:
    r"""`x = \sqrt{2}` → `\sqrt{2}`; None when a left-hand side is not a mere label."""
    if "=" not in answer:
        return answer
    left, right = answer.rsplit("=", 1)
    cleaned_left = _clean_latex(left) if len(left) <= MAX_FALLBACK_CHARS else None
    if cleaned_left is None or not all(_is_label(side) for side in cleaned_left.split("=")):
        return None
    return right


def _symbolic_equal(gold: Fraction | str, answer: Fraction | str) -> bool:
    """math-verify's verdict, for what the fast path could not decide."""
    if isinstance(answer, str):
        answer = _without_label(answer)
        if answer is None:
            return False
    answer_parsed = _as_sympy(answer)
    gold_parsed = None if answer_parsed is None else _as_sympy(gold)
    if gold_parsed is None:
        return False
    from math_verify import verify

    return bool(call_math_verify(verify, gold_parsed, answer_parsed, timeout_seconds=math_verify_timeout()))


# --------------------------------------------------------------------------------------------
# Gold answers and grading

# A gold may be written the GSM8K way (a solution ending `#### 1,080`) or bare; every task's gold
# passes through this one reader, so grading never needs to know which task wrote it.
GOLD_MARKER = "####"


def normalize_gold(gold: object) -> str | None:
    """The gold answer as text, or None when there is none.

    A GSM8K solution is cut after its last `####`, where the answer is a number: thousands
    separators and a trailing period are dropped. A bare answer (a number from a JSON file, a
    short answer such as `(3, \\frac{\\pi}{2})`) is kept as written, stripped: its commas may be
    part of it, and the grader reads `1,080` as 1080 anyway. A bare answer on several lines is
    not an answer.

    >>> normalize_gold("48/2 = <<48/2=24>>24 clips.\\n#### 1,080"), normalize_gold(72), normalize_gold(" 1,080 ")
    ('1080', '72', '1,080')
    >>> normalize_gold("(3, 4)"), normalize_gold(""), normalize_gold("no\\nanswer"), normalize_gold(None)
    ('(3, 4)', None, None, None)
    """
    if isinstance(gold, bool) or gold is None:
        return None
    if isinstance(gold, (int, float, Fraction)):
        gold = str(gold)  # `{"answer": 18}` in a JSON file
    if not isinstance(gold, str):
        return None
    if GOLD_MARKER in gold:
        answer = gold.rsplit(GOLD_MARKER, 1)[1].strip()
        answer = answer.replace(",", "").rstrip(".").strip()
        return answer or None
    answer = gold.strip()
    return answer if answer and "\n" not in answer else None




def _gold_value(gold: object) -> Fraction | str | None:
    """The gold's exact value, the gold text when only math-verify can read it, or None."""
    gold_text = normalize_gold(gold)
    if gold_text is None or len(gold_text) > MAX_ANSWER_CHARS:
        return None
    return _gold_text_value(gold_text)


def gold_is_gradable(gold: object) -> bool:
    """Whether the grader can read this gold answer (if not, every completion scores 0 against it).

    >>> gold_is_gradable("#### 18"), gold_is_gradable(r"\\frac{1}{2}"), gold_is_gradable("two")
    (True, True, False)
    """
    return _gold_value(gold) is not None


@lru_cache(maxsize=16384)
def _gold_text_value(gold: str) -> Fraction | str | None:
    value = parse_number(gold)
    if value is not None:
        return value
    symbolic = _without_label(gold)
    return symbolic if symbolic is not None and _symbolic_parse(symbolic.strip()) is not None else None


def _matches(answer: str | None, gold: Fraction | str) -> bool:
    if answer is None or not answer.strip() or len(answer) > MAX_ANSWER_CHARS:
        return False
    value = parse_number(answer)
    if value is not None and isinstance(gold, Fraction):
        return value == gold
    return _symbolic_equal(gold, answer if value is None else value)


def answers_equal(answer: str, gold: object) -> bool:
    r"""Whether a bare answer (no box needed) is mathematically equal to the gold answer.

    >>> answers_equal(r"\frac{36}{2}", "18"), answers_equal("1.080", "1080")
    (True, False)
    """
    gold_value = _gold_value(gold)
    return gold_value is not None and isinstance(answer, str) and _matches(answer, gold_value)


@dataclass(frozen=True)
class Verdict:
    """The grader's decision on one completion.

    correct: every final answer equals the gold answer (and there is at least one).
    well_formed: exactly one non-empty final answer in the answer region (one box, or one
        `<answer>` block without a box).
    extracted: the last final answer (None if there is none or it is unbalanced).
    gold_parseable: the gold answer could be read; if not, `correct` is False and means nothing.
    n_answers: how many final answers the answer region holds.
    """

    correct: bool
    well_formed: bool
    extracted: str | None
    gold_parseable: bool
    n_answers: int


def grade(completion: object, gold: object) -> Verdict:
    r"""Grade one completion (text or message list) against a gold answer (bare or GSM8K solution).

    >>> grade(r"<think>9*2 = 18</think> The answer is \boxed{\$18.00}.", "#### 18")
    Verdict(correct=True, well_formed=True, extracted='\\$18.00', gold_parseable=True, n_answers=1)
    >>> grade(r"\boxed{18} or maybe \boxed{19}", "18").correct
    False
    """
    gold_value = _gold_value(gold)
    return grade_with(completion, gold_value is not None, lambda answer: _matches(answer, gold_value))


def grade_with(completion: object, gold_parseable: bool, matches: Callable[[str | None], bool]) -> Verdict:
    """Grade one completion with a task's comparator: `matches(answer)` says whether one final answer
    equals the gold (a task with non-numeric golds brings its own, see :mod:`rl_math.tasks.math`)."""
    text = completion_text(completion)
    found = final_answers(text)
    distinct = set(found.answers)
    correct = (
        gold_parseable
        and bool(found.answers)
        and len(distinct) <= MAX_DISTINCT_ANSWERS
        and all(matches(answer) for answer in distinct)
    )
    extracted = found.answers[-1].strip() if found.answers and found.answers[-1] is not None else None
    return Verdict(
        correct=correct,
        well_formed=found.single is not None,
        extracted=extracted,
        gold_parseable=gold_parseable,
        n_answers=len(found.answers),
    )
