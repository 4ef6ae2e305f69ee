r"""Scoring conventions: the same completion judged as each public table judges it.

Published math accuracies come from different graders, and on the same outputs they disagree by
many points. Each convention here is a pure function ``(completion, gold) -> bool``:

=====================  ==========================================================================
convention             what it is (and which public numbers use it)
=====================  ==========================================================================
``rl_math``            rl-math's grader (the run's task's comparator: every ``\boxed{}`` answer
                       must equal the gold, by value); what the ``correctness`` reward pays
``strict_match``       lm-evaluation-harness ``gsm8k`` (the Open LLM Leaderboard's), filter
                       ``strict-match``: the first ``#### N``, then lm-eval's exact match
``flexible_extract``   the same task, filter ``flexible-extract``: the last number-like string
``cot_strict_match``   lm-eval ``gsm8k_cot_zeroshot``'s ``strict-match``: ``The answer is N.``
``math_verify``        math-verify's own call, on gold and completion alike:
                       ``verify(parse(gold), parse(completion))`` with parse's default extraction
                       config ``[LatexExtractionConfig(), ExprExtractionConfig()]`` (lighteval and
                       open-r1 build their metrics on these parsers)
``qwen_boxed``         Qwen2.5-Math's evaluation: its answer extraction (the *last* ``\boxed{}``,
                       else the text after "he answer is"/"final answer is", else the last number)
                       and its numeric comparison (relative 1e-4, the gold also as a percentage);
                       a non-numeric answer is compared by math-verify where Qwen uses
                       latex2sympy, and Qwen's ``strip_string`` clean-up is not applied
=====================  ==========================================================================

The lm-eval conventions call lm-eval's own code -- the filters its task YAML names (built from its
filter registry) and its ``exact_match`` with the YAML's arguments (``ignore_case``,
``regexes_to_ignore``) -- reading the YAMLs of the installed, pinned lm-eval
(:data:`LM_EVAL_VERSION`, task version 3.0). lm-eval is optional (``pip install 'rl-math[lmeval]'``);
without it those columns are left out, with one line saying so (:data:`LM_EVAL_MISSING`).

Which apply (:func:`conventions_for`): GSM8K-style tasks (numeric golds: ``gsm8k``, ``arithmetic``)
get all six; MATH-style tasks (``math``) get ``rl_math``, ``math_verify`` and ``qwen_boxed`` (lm-eval's
number regexes mean nothing for LaTeX answers).

>>> strict_match("... so she makes 9 * 2 = 18 dollars.\n#### 18", "18")
True
>>> flexible_extract(r"The answer is \boxed{18}.", "18"), qwen_boxed(r"The answer is \boxed{18}.", "18")
(True, True)
>>> strict_match(r"The answer is \boxed{18}.", "18")  # no `#### 18`: lm-eval's strict filter finds nothing
False
"""

from __future__ import annotations

import importlib.util
import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from rl_math.grading.answers import matching_brace
from rl_math.grading.symbolic import call_math_verify, math_verify_timeout
from rl_math.grading.text import completion_text
from rl_math.tasks import get_task

logger = logging.getLogger(__name__)

LM_EVAL_VERSION = "0.4.13"  # the pinned lm-eval (setup.cfg's dev and lmeval extras)
LM_EVAL_MISSING = (
    f"lm-eval is not installed (or does not import), so the strict_match/flexible_extract/cot_strict_match columns "
    f"are left out: "
    f"pip install 'rl-math[lmeval]' (lm-eval=={LM_EVAL_VERSION})"
)
RL_MATH = "rl_math"
LM_EVAL_CONVENTIONS = ("strict_match", "flexible_extract", "cot_strict_match")
NUMERIC_TASKS = ("gsm8k", "arithmetic")


# --------------------------------------------------------------------------------------------
# lm-evaluation-harness: its own filters and exact match, as its task YAMLs define them

# convention → (lm-eval task YAML under lm_eval/tasks/gsm8k/, filter name in its filter_list)
LM_EVAL_FILTERS: dict[str, tuple[str, str]] = {
    "strict_match": ("gsm8k", "strict-match"),
    "flexible_extract": ("gsm8k", "flexible-extract"),
    "cot_strict_match": ("gsm8k-cot-zeroshot", "strict-match"),
}


def lm_eval_installed() -> bool:
    """Whether lm-eval's filters and exact match import.

    lm-eval installed without its dependencies (sacrebleu, ...) counts as missing: its columns would
    otherwise read 0 % on every completion (each scoring call failing), not be left out with a line.
    """
    return lm_eval_import_error() is None


@cache
def lm_eval_import_error() -> str | None:
    """Why lm-eval's scoring code does not import (None: it does)."""
    if importlib.util.find_spec("lm_eval") is None:
        return "not installed"
    try:
        # optional dependency (the lmeval extra): its scoring modules, imported once to check them
        import lm_eval.api.metrics  # noqa: F401
        import lm_eval.filters  # noqa: F401
    except ImportError as err:
        return str(err)
    return None


@cache
def lm_eval_task_config(name: str) -> dict[str, Any]:
    """The installed lm-eval's task YAML `lm_eval/tasks/gsm8k/<name>.yaml`, as a dict."""
    from importlib.resources import files

    import yaml

    return yaml.safe_load((files("lm_eval") / "tasks" / "gsm8k" / f"{name}.yaml").read_text())


@cache
def _lm_eval_pipeline(convention: str) -> tuple[list, dict[str, Any]]:
    """(the filter objects, exact_match's keyword arguments) of a convention, built by lm-eval itself."""
    # lm-eval is an optional dependency (the lmeval extra): imported only when its conventions are asked for
    import lm_eval.filters  # noqa: F401 - importing it registers lm-eval's filters
    from lm_eval.api.registry import get_filter

    task_file, filter_name = LM_EVAL_FILTERS[convention]
    config = lm_eval_task_config(task_file)
    steps = next(f["filter"] for f in config["filter_list"] if f["name"] == filter_name)
    filters = [get_filter(step["function"])(**{k: v for k, v in step.items() if k != "function"}) for step in steps]
    metric = next(m for m in config["metric_list"] if m["metric"] == "exact_match")
    kwargs = {k: v for k, v in metric.items() if k not in ("metric", "aggregation", "higher_is_better")}
    return filters, kwargs


def lm_eval_extract(convention: str, completion: str) -> str:
    """What lm-eval's filters keep of a completion (`[invalid]` when the regex finds nothing).

    >>> lm_eval_extract("flexible_extract", "It costs $1,200. Then 3 more.")
    '3'
    """
    filters, _ = _lm_eval_pipeline(convention)
    responses: Any = [[completion]]  # one document, one response (repeats: 1)
    for step in filters:
        responses = step.apply(responses, [None])
    return list(responses)[0]


def lm_eval_exact_match(convention: str, prediction: str, gold: str) -> bool:
    """lm-eval's `exact_match` of a filtered prediction and a gold (a GSM8K solution or its answer)."""
    # optional dependency (the lmeval extra), as above
    from lm_eval.api.metrics import exact_match_hf_evaluate

    _, kwargs = _lm_eval_pipeline(convention)
    return float(exact_match_hf_evaluate(predictions=[prediction], references=[gold], **kwargs)["exact_match"]) == 1.0


def _lm_eval_convention(convention: str) -> Callable[[Any, Any], bool]:
    def score(completion: Any, gold: Any) -> bool:
        return lm_eval_exact_match(convention, lm_eval_extract(convention, completion_text(completion)), str(gold))

    score.__name__ = convention
    score.__doc__ = f"lm-eval {LM_EVAL_VERSION}: filter {LM_EVAL_FILTERS[convention]}, then exact_match."
    return score


strict_match = _lm_eval_convention("strict_match")
flexible_extract = _lm_eval_convention("flexible_extract")
cot_strict_match = _lm_eval_convention("cot_strict_match")


# --------------------------------------------------------------------------------------------
# math-verify


@cache
def _math_verify_parse(text: str):
    """math_verify.parse(text) with its default extraction config; [] when it finds nothing or fails."""
    from math_verify import parse

    return call_math_verify(parse, text, parsing_timeout=math_verify_timeout()) or []


def math_verify(completion: Any, gold: Any) -> bool:
    r"""math-verify's documented call on gold and completion alike: `verify(parse(gold), parse(completion))`.

    >>> math_verify(r"so the answer is $\frac{1}{2}$", "0.5"), math_verify("I give up.", "18")
    (True, False)
    """
    from math_verify import verify

    gold_parsed = _math_verify_parse(str(gold))
    answer_parsed = _math_verify_parse(completion_text(completion))
    if not gold_parsed or not answer_parsed:
        return False
    return bool(call_math_verify(verify, gold_parsed, answer_parsed, timeout_seconds=math_verify_timeout()))


# --------------------------------------------------------------------------------------------
# Qwen2.5-Math's evaluation (evaluation/parser.py extract_answer, evaluation/grader.py math_equal)

_LAST_NUMBER = re.compile(r"-?\d*\.?\d+")


def qwen_extract(text: str) -> str:
    r"""Qwen2.5-Math's answer extraction: the last `\boxed{…}`, else after "he answer is" or
    "final answer is", else the last number; newlines, a leading ':' and a trailing '.' or '/' dropped.

    >>> qwen_extract(r"\boxed{3} no, \boxed{\frac{1}{2}}."), qwen_extract("The answer is 18."), qwen_extract("1,080 and 7")
    ('\\frac{1}{2}', '18', '7')
    """
    if "boxed" in text:
        tail = text.split("boxed")[-1]
        if tail.startswith("{"):
            close = matching_brace(tail, 0)
            answer = tail[1:close] if close is not None else tail[1:]  # unbalanced: Qwen keeps the rest
        else:
            answer = tail.split("$")[0].strip()
    elif "he answer is" in text:
        answer = text.split("he answer is")[-1].strip()
    elif "final answer is" in text:
        answer = text.split("final answer is")[-1].strip()
    else:
        numbers = _LAST_NUMBER.findall(text.replace(",", ""))
        answer = numbers[-1] if numbers else ""
    answer = re.sub(r"\n\s*", "", answer)
    if answer.startswith(":"):
        answer = answer[1:]
    if answer.endswith((".", "/")):
        answer = answer[:-1]
    return answer.strip()


def _qwen_number(text: str) -> float | None:
    """Qwen's parse_digits: commas dropped, a trailing percent sign divides by 100."""
    text = text.replace(",", "").strip()
    scale = 1.0
    for percent in ("\\%", "%"):
        if text.endswith(percent):
            text, scale = text[: -len(percent)], 0.01
            break
    try:
        value = float(text) * scale
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def qwen_boxed(completion: Any, gold: Any) -> bool:
    r"""Qwen2.5-Math's verdict (see the module docstring for where it is approximated).

    >>> qwen_boxed(r"\boxed{50\%}", "0.5"), qwen_boxed(r"\boxed{18.00001}", "18"), qwen_boxed("no answer", "18")
    (True, True, False)
    """
    answer = qwen_extract(completion_text(completion))
    gold_text = str(gold).rsplit("####", 1)[-1].strip()  # Qwen reads a GSM8K gold after its `####`
    if not answer:
        return False
    answer_value, gold_value = _qwen_number(answer), _qwen_number(gold_text)
    if answer_value is not None and gold_value is not None:
        return any(math.isclose(answer_value, reference, rel_tol=1e-4)
                   for reference in (gold_value / 100, gold_value, gold_value * 100))
    if answer.strip().lower() == gold_text.strip().lower():
        return True
    return math_verify("\\boxed{" + answer + "}", "\\boxed{" + gold_text + "}")


# --------------------------------------------------------------------------------------------
# Which conventions, and all of them at once


@dataclass(frozen=True)
class Convention:
    name: str
    score: Callable[[Any, Any], bool]
    source: str  # whose numbers it reproduces


def _rl_math(task: str | None) -> Callable[[Any, Any], bool]:
    grade = get_task(task).grade
    return lambda completion, gold: bool(grade(completion, gold).correct)


def conventions_for(task: str | None, with_lm_eval: bool | None = None) -> list[Convention]:
    """The conventions that apply to a task (None: the default, GSM8K), rl-math's grader first.

    `with_lm_eval`: None includes the lm-eval conventions when lm-eval is installed.

    >>> [c.name for c in conventions_for("math")]
    ['rl_math', 'math_verify', 'qwen_boxed']
    >>> [c.name for c in conventions_for("gsm8k", with_lm_eval=False)]
    ['rl_math', 'math_verify', 'qwen_boxed']
    """
    name = get_task(task).name
    found = [Convention(RL_MATH, _rl_math(name), "rl-math's grader (the correctness reward)")]
    if name in NUMERIC_TASKS and (lm_eval_installed() if with_lm_eval is None else with_lm_eval):
        found += [
            Convention("strict_match", strict_match, f"lm-eval {LM_EVAL_VERSION} gsm8k strict-match (Open LLM Leaderboard)"),
            Convention("flexible_extract", flexible_extract, f"lm-eval {LM_EVAL_VERSION} gsm8k flexible-extract"),
            Convention("cot_strict_match", cot_strict_match, f"lm-eval {LM_EVAL_VERSION} gsm8k_cot_zeroshot strict-match"),
        ]
    found += [
        Convention("math_verify", math_verify, "math-verify verify(parse(gold), parse(completion)) (lighteval/open-r1)"),
        Convention("qwen_boxed", qwen_boxed, "Qwen2.5-Math evaluation (last \\boxed{}, numeric rel. 1e-4)"),
    ]
    return found


def lm_eval_left_out(task: str | None) -> bool:
    """Whether the lm-eval columns apply to `task` but lm-eval is not installed (say so once)."""
    return get_task(task).name in NUMERIC_TASKS and not lm_eval_installed()


def score_all(completion: Any, gold: Any, conventions: Sequence[Convention]) -> dict[str, bool]:
    """Every convention's verdict on one completion; a convention that fails on an odd string says False."""
    verdicts = {}
    for convention in conventions:
        try:
            verdicts[convention.name] = bool(convention.score(completion, gold))
        except Exception as error:  # noqa: BLE001 - one odd completion must not stop an evaluation
            logger.debug("%s failed on %r: %r", convention.name, completion, error)
            verdicts[convention.name] = False
    return verdicts


def disagreements(rows: Sequence[Mapping[str, bool]]) -> dict[str, int]:
    """How many rows each pattern of disagreement covers, e.g. `rl_math, qwen_boxed ✓ | strict_match ✗`.

    Rows where every convention agrees are not counted.

    >>> disagreements([{"a": True, "b": False}, {"a": True, "b": True}, {"a": True, "b": False}])
    {'a ✓ | b ✗': 2}
    """
    kinds: dict[str, int] = {}
    for row in rows:
        if len(set(row.values())) < 2:
            continue
        right = ", ".join(name for name, ok in row.items() if ok)
        wrong = ", ".join(name for name, ok in row.items() if not ok)
        kind = f"{right} ✓ | {wrong} ✗"
        kinds[kind] = kinds.get(kind, 0) + 1
    return dict(sorted(kinds.items(), key=lambda item: -item[1]))


@cache
def warn_if_lm_eval_left_out(task: str | None) -> None:
    """One warning line per task, when lm-eval's columns apply but lm-eval is not installed."""
    if lm_eval_left_out(task):
        logger.warning(LM_EVAL_MISSING)
