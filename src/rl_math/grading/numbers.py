"""The fast exact path: clean an answer's LaTeX and units, then evaluate it with Fractions (parse_number)."""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache

from rl_math.grading.answers import MAX_ANSWER_CHARS, matching_brace

_MAX_NESTING = 64
_MAX_BITS = 4096  # bigger numerators/denominators are not evaluated

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
# `32,\\! 349`: a comma and a negative thin space is LaTeX's thousands separator, whatever spacing follows.
_LATEX_THOUSANDS = re.compile(r"(?<=\d),\\!\s*(?=\d{3}(?!\d))")
# A run of LaTeX and ordinary spaces is one space: `1\\, 000` is `1 000`, a thousands separator.
_SPACES = re.compile(r"(?:\s*(?:\\[,:;> ]|\\q?quad(?![A-Za-z])|~))+\s*")
_FRAC_ALIASES = re.compile(r"\\[dtc]frac(?![A-Za-z])")
_TIMES = re.compile(r"\\(?:cdot|times|ast)(?![A-Za-z])")
_DIV = re.compile(r"\\div(?![A-Za-z])")
_FRAC = re.compile(r"\\frac(?![A-Za-z])")
_SCIENTIFIC = re.compile(r"(?<![\d.])(\d+(?:\.\d*)?|\.\d+)[eE]([-+]?\d{1,3})(?![\d.])")


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
    text = _LATEX_THOUSANDS.sub(",", text)
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


