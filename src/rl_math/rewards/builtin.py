r"""The built-in rewards: pure functions in TRL's calling convention, registered by name.

``correctness`` (the answer, graded by the task), each prompt format's shape reward (defined with
its format in ``rl_math.tasks.formats`` and registered here), ``repetition_penalty``,
``termination``, ``coin_flip`` (the null control), and :func:`gate_on_correct`, which makes a
shaping reward count only on correct answers. None of them raises or hangs, whatever it is given.
"""

from __future__ import annotations

import functools
import random

from rl_math.grading.batch import as_list, batch_texts, check_int, column, is_int, is_number, score_each, warn_once
from rl_math.rewards.registry import REWARDS, RewardFunc, register, reward_name
from rl_math.tasks import get_task
from rl_math.tasks.formats import PROMPT_FORMATS


@register(required_columns={"answer"})
def correctness(completions, answer=None, task=None, **kwargs) -> list[float | None]:
    r"""1.0 if the completion's final answer equals the gold answer, else 0.0.

    The gold answer is the dataset column `answer`: a bare value ("1080") or a full GSM8K
    solution ending in `#### 1,080`. The final answer is the boxed answer in the answer region
    (after `</think>`; the `<answer>` block in r1 format) and equality is mathematical: see
    `rl_math.grading.grader`. Several boxed answers must all equal the gold (a hedge scores 0.0).
    A gold answer that cannot be read scores None (and warns once per process), never 1.0.
    The optional `task` column names the task whose comparator decides (see `rl_math.tasks`;
    without it, the grader's: GSM8K's).

    >>> correctness([r"So 1080 in total: \boxed{1,080}", r"\boxed{1080} or \boxed{1081}"], answer=["#### 1080"] * 2)
    [1.0, 0.0]
    >>> correctness([[{"role": "assistant", "content": r"<think>9 * 2</think> \boxed{\$18.00}"}]], answer=["18"])
    [1.0]
    """
    texts = batch_texts(completions)
    if answer is None:
        warn_once("correctness:no-answer", "reward 'correctness' got no 'answer' column; every completion scored None")
        return [None] * len(texts)
    golds = column(answer, len(texts), "answer", "correctness")
    task_names = column(task, len(texts), "task", "correctness")

    def score(text: str, gold: object, task_name: str | None) -> float | None:
        verdict = get_task(task_name).grade(text, gold)  # no task column: the default task, GSM8K
        if not verdict.gold_parseable:
            warn_once(
                "correctness:unparseable-gold",
                f"reward 'correctness' cannot read the gold answer {str(gold)[:200]!r}; such completions score None "
                "(this warning is shown once)",
            )
            return None
        return 1.0 if verdict.correct else 0.0

    return score_each("correctness", zip(texts, golds, task_names), score)


# Each prompt format's shape reward lives with its format (rl_math.tasks.formats) and is registered here.
for _format in PROMPT_FORMATS.values():
    if _format.reward is not None:
        assert _format.reward.__name__ == _format.format_reward, _format.name
        register(check_params=_format.check_reward_params)(_format.reward)
boxed_format = REWARDS["boxed_format"].func
think_format = REWARDS["think_format"].func


MAX_REPETITION_WORDS = 10_000  # only the last this-many words of a completion are examined


def _check_repetition_penalty(params: dict) -> None:
    check_int(params, "ngram_size", minimum=1, reward="repetition_penalty")
    if "max_penalty" in params:
        max_penalty = params["max_penalty"]
        if not is_number(max_penalty) or max_penalty > 0:
            raise ValueError(
                f"reward 'repetition_penalty': max_penalty must be a number <= 0, got {max_penalty!r}"
            )


@register(check_params=_check_repetition_penalty)
def repetition_penalty(completions, *, ngram_size: int = 3, max_penalty: float = -1.0, **kwargs) -> list[float]:
    r"""A penalty in [max_penalty, 0] proportional to the share of repeated word n-grams.

    penalty = (1 - unique n-grams / total n-grams) * max_penalty, over lower-cased
    whitespace-separated words (the last 10 000 of them), like TRL's
    `get_repetition_penalty_reward` but on words. `ngram_size` defaults to 3 (as in TRL);
    a completion with fewer words than `ngram_size` scores 0.0.

    >>> repetition_penalty(["the cat sat on the mat", "go go go go go", "too short"])
    [0.0, -0.6666666666666667, 0.0]
    >>> repetition_penalty(["a b a b a b"], ngram_size=2, max_penalty=-0.5)
    [-0.3]
    """

    def score(text: str) -> float:
        words = text[-MAX_REPETITION_WORDS * 20 :].lower().split()[-MAX_REPETITION_WORDS:]
        if len(words) < ngram_size:
            return 0.0
        ngrams = list(zip(*(words[start:] for start in range(ngram_size))))
        repeated_share = 1 - len(set(ngrams)) / len(ngrams)
        return repeated_share * max_penalty if repeated_share else 0.0

    return score_each("repetition_penalty", ((text,) for text in batch_texts(completions)), score)


def _check_termination(params: dict) -> None:
    eos = params.get("eos_token_ids")
    if eos is not None and not (is_int(eos) or (isinstance(eos, (list, tuple)) and all(map(is_int, eos)))):
        raise ValueError(f"reward 'termination': eos_token_ids must be an int or a list of ints, got {eos!r}")
    if params.get("max_completion_length") is not None:
        check_int(params, "max_completion_length", minimum=1, reward="termination")
    for name in ("terminated_reward", "truncated_penalty"):
        if name in params and not is_number(params[name]):
            raise ValueError(f"reward 'termination': {name} must be a number, got {params[name]!r}")


@register(check_params=_check_termination)
def termination(
    completions,
    completion_ids=None,
    *,
    eos_token_ids: int | list[int] | None = None,
    max_completion_length: int | None = None,
    terminated_reward: float = 1.0,
    truncated_penalty: float = -1.0,
    **kwargs,
) -> list[float | None]:
    r"""Reward completions that ended with an EOS token, penalise those cut off at the length limit.

    `terminated_reward` (1.0) if the last of `completion_ids` is one of `eos_token_ids` (TRL cuts
    completions after their first EOS); `truncated_penalty` (-1.0) if there is no EOS and the
    completion is at least `max_completion_length` long; 0.0 otherwise. `eos_token_ids` and
    `max_completion_length` come from the tokenizer and the trainer config through
    `build_rewards(..., context=...)` unless the YAML sets them. Without `completion_ids` or
    EOS ids, every completion scores None (with a warning, once).

    >>> ids = [[5, 2], [5, 5, 5], [5]]  # ended with EOS 2, cut at the limit of 3, stopped early
    >>> termination(["a", "b", "c"], completion_ids=ids, eos_token_ids=[2], max_completion_length=3)
    [1.0, -1.0, 0.0]
    """
    count = len(as_list(completions))
    eos_ids = {eos_token_ids} if is_int(eos_token_ids) else set(eos_token_ids or ())
    if completion_ids is None or not eos_ids:
        warn_once(
            "termination:missing",
            "reward 'termination' needs completion_ids and eos_token_ids (bind them with "
            "build_rewards(..., context={'eos_token_ids': ...})); every completion scored None",
        )
        return [None] * count
    if max_completion_length is None:
        warn_once(
            "termination:no-max-length",
            "reward 'termination' has no max_completion_length: completions without EOS score 0.0",
        )

    def score(ids: object) -> float | None:
        if ids is None:
            return None
        if len(ids) and int(ids[-1]) in eos_ids:
            return float(terminated_reward)
        if max_completion_length is not None and len(ids) >= max_completion_length:
            return float(truncated_penalty)
        return 0.0

    ids_column = column(completion_ids, count, "completion_ids", "termination")
    return score_each("termination", ((ids,) for ids in ids_column), score)


@register(check_params=lambda params: check_int(params, "seed", minimum=0, reward="coin_flip"))
def coin_flip(completions, trainer_state=None, *, seed: int = 0, **kwargs) -> list[float]:
    """A null control: 1.0 or 0.0 by a fair coin per completion, whatever it says.

    The flips come from `seed` and the training step (TRL's `trainer_state.global_step`; 0
    without it): fresh at every step, the same in a rerun, independent of the text. A GRPO run on
    it gets advantages of the usual size carrying no information, so it must not gain accuracy
    beyond noise (a constant reward gives zero advantage and could not fail).

    >>> coin_flip(["a"] * 8, seed=123)
    [1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0]
    >>> coin_flip(["something else"] * 8, seed=123) == coin_flip(["a"] * 8, seed=123)
    True
    >>> coin_flip(None), coin_flip(42)
    ([], [])
    """
    step = getattr(trainer_state, "global_step", 0)
    stream = random.Random(f"coin_flip:{seed}:{step if isinstance(step, int) else 0}")
    return [float(stream.random() < 0.5) for _ in as_list(completions)]


def gate_on_correct(func: RewardFunc) -> RewardFunc:
    r"""`func`, counted only on completions that `correctness` scores 1.0 (0.0 elsewhere).

    GRPO normalises rewards per group: in a group whose answers are all wrong, correctness is
    constant and any shaping difference becomes a full-size advantage, so the model learns format
    instead of answers. Gated, a shaping reward gives no signal there, while on correct answers it
    still ranks them (a correct answer cut off at the token limit is still charged by
    `termination`, so correct-but-endless completions do not win).

    >>> gated = gate_on_correct(boxed_format)
    >>> gated.__name__, gated(completions=["\\boxed{4}", "\\boxed{5}", "4"], answer=["4", "4", "4"])
    ('boxed_format', [1.0, 0.0, 0.0])
    """
    @functools.wraps(func)
    def gated(*args, **kwargs):
        values = func(*args, **kwargs)
        correct = correctness(*args, **{k: v for k, v in kwargs.items() if k in ("completions", "answer", "task")})
        return [value if is_right == 1.0 else 0.0 for value, is_right in zip(values, correct)]

    gated.__name__ = reward_name(func)
    return gated

