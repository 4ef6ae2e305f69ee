r"""math-verify, bounded: the one rule for what may be handed to sympy, and the calls that respect it.

Every task and the grader's fallback parse and compare symbolic answers here, so one bound decides
what sympy sees. sympy can hang (or fill memory) on huge literals, factorials and towers of powers,
and math-verify's own timeouts use SIGALRM, which only works on the main thread (TRL may call rewards
elsewhere): so the bound is on the text, before any parse.

>>> sympy_safe(r"\frac{\pi}{2}"), sympy_safe(r"10^{10^{10}}"), sympy_safe(r"(10^{100})!")
(True, False, False)
>>> verified_equal(verified_parse(r"\frac{\pi}{2}"), verified_parse(r"\pi/2"))
True
"""

from __future__ import annotations

import logging
import re
import threading
from functools import lru_cache

MAX_SYMBOLIC_CHARS = 160  # longer answers (and golds) are not handed to sympy
MAX_SYMBOLIC_POWERS = 12
# huge literals, factorials (`\!` is a LaTeX space), exponents of three digits or more, towers of
# powers (`^{..^`, `^9^9`, and a power of a parenthesised power such as `(2^9)^9`)
_UNSAFE = re.compile(
    r"\d{10,}|(?<!\\)!|\^\s*\{?\s*-?\d{3,}|\^\s*\{[^{}]*\^|\^\s*\d+\s*\^|\^[^()]*\)\s*\^"
)

_logger = logging.getLogger(__name__)


def sympy_safe(text: str) -> bool:
    """Whether `text` is short and free of what could make sympy hang (the one bound)."""
    return len(text) <= MAX_SYMBOLIC_CHARS and not _UNSAFE.search(text) and text.count("^") <= MAX_SYMBOLIC_POWERS


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


@lru_cache(maxsize=16384)
def verified_parse(text: str):
    """math-verify's parse of a bare answer, or None when it is unsafe or not math (never raises).

    math-verify returns the bare string when it found no expression in it: not an answer.
    """
    text = text.strip()
    if not text or not sympy_safe(text):
        return None
    from math_verify import LatexExtractionConfig, parse

    timeout = math_verify_timeout()
    if timeout is None:  # off the main thread math-verify logs every unguarded call; once is enough
        for name in ("math_verify.parser", "math_verify.grader"):
            logging.getLogger(name).setLevel(logging.ERROR)
    parsed = call_math_verify(
        parse, "\\boxed{" + text + "}", extraction_config=[LatexExtractionConfig(boxed_match_priority=0)],
        parsing_timeout=timeout,
    )
    return parsed if parsed and not isinstance(parsed[0], str) else None


def verified_equal(gold_parsed, answer_parsed) -> bool:
    """math-verify's verdict on two parses (False when either is None or it fails)."""
    if gold_parsed is None or answer_parsed is None:
        return False
    from math_verify import verify

    return bool(call_math_verify(verify, gold_parsed, answer_parsed, timeout_seconds=math_verify_timeout()))
