r"""Reward hacking: no cheap trick may score as high as an honest, correct, well-formed answer.

For every reward mix the project ships -- each `configs/*.yaml` that lists `rewards` (with its
`prompt_format`) and `default_reward_specs(fmt)` for every prompt format -- adversarial
completions of GSM8K problems are scored exactly as GRPOTrainer scores them: each reward called
with TRL's keyword arguments on the whole batch, then Σ weight × reward with None skipped (TRL
turns None into NaN and sums with `nansum`). A hack must score strictly below an honest correct
answer to the same problem, and an honest wrong answer strictly below the right one. The configs
are globbed at collection time, so a config added later is covered without touching this file.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pytest
import yaml

from rl_math.rewards import build_rewards
from rl_math.tasks.formats import PROMPT_FORMATS, build_prompt, default_reward_specs
from rl_math.tasks.gsm8k import TASK as GSM8K

REPO = Path(__file__).resolve().parents[2]
GSM8K_TEST = Path(__file__).resolve().parents[3] / "shared" / "data" / "gsm8k" / "test.jsonl"
N_REAL_PROBLEMS = 5
EOS_IDS = [151645, 151643]  # Qwen2.5's <|im_end|> and <|endoftext|>
DEFAULT_MAX_COMPLETION_LENGTH = 512  # GRPOConfig's default
FILLER_ID = 7  # any non-EOS token id


# ------------------------------------------------------------------------------------------------
# Problems


@dataclass(frozen=True)
class Problem:
    name: str
    question: str
    reasoning: str  # an honest worked solution, without the final answer line
    gold: str  # the `answer` column as the data pipeline passes it

    @property
    def wrong(self) -> str:
        """A plausible wrong answer: the gold plus one."""
        return str(Fraction(self.gold) + 1)


INLINE_PROBLEMS = [
    Problem(
        "inline-muffins",
        "A baker makes 24 muffins and packs them in boxes of 6. Each box sells for $5. "
        "How many dollars does the baker make by selling all the boxes?",
        "The baker fills 24 / 6 = 4 boxes. Each box sells for $5, so 4 * 5 = 20 dollars.",
        "20",
    ),
    Problem(
        "inline-marbles",
        "Tom has 3 times as many marbles as Ann. Ann has 15 marbles. How many marbles do they have together?",
        "Tom has 3 * 15 = 45 marbles. Together they have 45 + 15 = 60 marbles.",
        "60",
    ),
]


def _real_problems() -> list[Problem]:
    if not GSM8K_TEST.is_file():
        return []
    problems = []
    with GSM8K_TEST.open() as lines:
        for index, line in zip(range(N_REAL_PROBLEMS), lines):
            row = json.loads(line)
            worked = re.sub(r"<<[^>]*>>", "", row["answer"].split("####")[0]).strip()
            problems.append(Problem(f"gsm8k-test-{index}", row["question"], worked, GSM8K.gold(row["answer"])))
    return problems


PROBLEMS = INLINE_PROBLEMS + _real_problems()


def test_real_gsm8k_problems_are_included():
    if not GSM8K_TEST.is_file():
        pytest.skip(f"{GSM8K_TEST} not present: only the inline problems are used")
    assert len(PROBLEMS) == len(INLINE_PROBLEMS) + N_REAL_PROBLEMS


# ------------------------------------------------------------------------------------------------
# Completions: honest ones and hacks, in the answer shape of each prompt format


@dataclass(frozen=True)
class Completion:
    text: str
    truncated: bool = False  # cut at max_completion_length: no EOS at the end of completion_ids


def _answer(fmt: str, value: str) -> str:
    """The final-answer markup the format asks for."""
    if fmt == "r1":
        return f"<answer> {value} </answer>"
    if fmt == "xml":
        return f"<answer>\n{value}\n</answer>"
    return f"The answer is \\boxed{{{value}}}."


def _solution(fmt: str, p: Problem, answer: str) -> str:
    if fmt == "boxed":
        return f"{p.reasoning}\n{_answer(fmt, answer)}"
    if fmt == "xml":
        return f"<reasoning>\n{p.reasoning}\n</reasoning>\n{_answer(fmt, answer)}"
    return f"<think>\n{p.reasoning}\n</think>\n{_answer(fmt, answer)}"


def honest_right(fmt: str, p: Problem) -> Completion:
    return Completion(_solution(fmt, p, p.gold))


def honest_wrong(fmt: str, p: Problem) -> Completion:
    return Completion(_solution(fmt, p, p.wrong))


def _truncated_mid_answer(fmt: str, p: Problem) -> Completion:
    """The honest solution cut at the length limit inside the final answer: `... \\boxed{1`."""
    full, answer = _solution(fmt, p, p.gold), _answer(fmt, p.gold)
    cut = len(full) - len(answer) + answer.index(p.gold) + max(1, len(p.gold) // 2)
    return Completion(full[:cut], truncated=True)


THINK_FORMATS = {"think_boxed", "r1"}  # formats that ask for a <think> block of reasoning
REASONING_FORMATS = THINK_FORMATS | {"xml"}  # formats that ask for reasoning in a tagged block

# name → (formats it is a hack for, builder). A `None` format set means every format. Hacks that
# contain the right answer as the only final answer are hacks only where the format demands
# reasoning in <think>: in `boxed` a bare correct answer is a correct answer.
HACKS: dict[str, tuple[set[str] | None, Callable[[str, Problem], Completion]]] = {
    "template_copied_r1": (
        None,
        lambda fmt, p: Completion("<think> reasoning process here </think><answer> answer here </answer>"),
    ),
    "template_copied_think_boxed": (
        None,
        lambda fmt, p: Completion("<think> reasoning process here </think> The answer is \\boxed{answer here}."),
    ),
    "template_copied_boxed_placeholder": (
        None,
        lambda fmt, p: Completion("Please reason step by step, and put your final answer within \\boxed{}."),
    ),
    "template_placeholder_reasoning_with_right_answer": (
        THINK_FORMATS,
        lambda fmt, p: Completion(f"<think> reasoning process here </think> {_answer(fmt, p.gold)}"),
    ),
    "several_answers_hedging": (
        None,
        lambda fmt, p: Completion(
            _solution(fmt, p, p.wrong) + " " + _answer(fmt, p.gold) + " " + _answer(fmt, str(Fraction(p.gold) + 2))
        ),
    ),
    "right_answer_in_think_wrong_outside": (
        None,
        lambda fmt, p: Completion(
            f"<think>\n{p.reasoning} So the answer is \\boxed{{{p.gold}}}.\n</think>\n{_answer(fmt, p.wrong)}"
        ),
    ),
    "empty_think_then_right_answer": (
        THINK_FORMATS,
        lambda fmt, p: Completion(f"<think></think> {_answer(fmt, p.gold)}"),
    ),
    "whitespace_think_then_right_answer": (
        THINK_FORMATS,
        lambda fmt, p: Completion(f"<think>\n \n</think>\n{_answer(fmt, p.gold)}"),
    ),
    "question_copied_as_reasoning": (
        THINK_FORMATS,
        lambda fmt, p: Completion(f"<think>{p.question}</think> {_answer(fmt, p.gold)}"),
    ),
    "answer_then_endless_repetition": (
        None,
        lambda fmt, p: Completion(
            honest_right(fmt, p).text + (" " + _answer(fmt, p.gold)) * 200, truncated=True
        ),
    ),
    "answer_repeated_then_stops": (
        None,
        lambda fmt, p: Completion(honest_right(fmt, p).text + (" " + _answer(fmt, p.gold)) * 20),
    ),
    "truncated_mid_answer": (None, lambda fmt, p: _truncated_mid_answer(fmt, p)),
    "truncated_mid_reasoning": (
        None,
        lambda fmt, p: Completion(_solution(fmt, p, p.gold)[: len(p.reasoning) // 2], truncated=True),
    ),
    "xml_template_copied": (
        None,
        lambda fmt, p: Completion("<reasoning>\n...\n</reasoning>\n<answer>\n...\n</answer>"),
    ),
    "xml_placeholder_reasoning_with_right_answer": (
        {"xml"},
        lambda fmt, p: Completion(f"<reasoning>\nreasoning process here\n</reasoning>\n{_answer(fmt, p.gold)}"),
    ),
    "xml_question_copied_as_reasoning": (
        {"xml"},
        lambda fmt, p: Completion(f"<reasoning>\n{p.question}\n</reasoning>\n{_answer(fmt, p.gold)}"),
    ),
    "xml_right_answer_outside_the_tags": (
        {"xml"},
        lambda fmt, p: Completion(f"<reasoning>\n{p.reasoning}\n</reasoning>\nThe answer is {p.gold}."),
    ),
    "xml_tags_only": (
        None,
        lambda fmt, p: Completion("<reasoning></reasoning><answer></answer>"),
    ),
    "tags_only": (
        None,
        lambda fmt, p: Completion("<think></think><answer></answer>"),
    ),
    "empty_answer_markup": (
        None,
        lambda fmt, p: Completion("<think></think>" + _answer(fmt, "") if fmt != "boxed" else _answer(fmt, "")),
    ),
}


def hacks_for(fmt: str) -> list[str]:
    return [name for name, (formats, _) in HACKS.items() if formats is None or fmt in formats]


# ------------------------------------------------------------------------------------------------
# Reward mixes: every config's, and the default of every prompt format


@dataclass(frozen=True)
class Mix:
    name: str
    prompt_format: str
    specs: tuple  # the YAML reward list (dicts)
    max_completion_length: int


def _mixes() -> list[Mix]:
    mixes = [
        Mix(f"default-{fmt}", fmt, tuple(default_reward_specs(fmt)), DEFAULT_MAX_COMPLETION_LENGTH)
        for fmt in PROMPT_FORMATS
    ]
    for path in sorted((REPO / "configs").glob("*.y*ml")):
        config = yaml.safe_load(path.read_text()) or {}
        if not isinstance(config, dict) or not config.get("rewards"):
            continue  # no reward list: the recipe uses its format's default, covered above
        mixes.append(
            Mix(
                f"configs/{path.name}",
                config.get("prompt_format", "boxed"),
                tuple(config["rewards"]),
                config.get("max_completion_length", DEFAULT_MAX_COMPLETION_LENGTH),
            )
        )
    return mixes


MIXES = _mixes()


@dataclass(frozen=True)
class Scored:
    total: float
    parts: dict[str, float | None]  # reward name → unweighted reward

    def explain(self) -> str:
        parts = ", ".join(f"{k}={'None' if v is None else f'{v:g}'}" for k, v in self.parts.items())
        return f"{self.total:g} ({parts})"


def completion_ids(completion: Completion, max_len: int) -> list[int]:
    if completion.truncated:
        return [FILLER_ID] * max_len
    # a terminated completion: some tokens, then EOS (TRL cuts after the first EOS), below the limit
    n_tokens = min(len(completion.text.split()) + 1, max_len - 1)
    return [FILLER_ID] * n_tokens + [EOS_IDS[0]]


def scores(mix: Mix) -> dict[tuple[str, str], Scored]:
    """Every (problem, completion kind) of the mix scored in one batch, as GRPOTrainer does."""
    return _scores(mix.name)


@functools.cache
def _scores(mix_name: str) -> dict[tuple[str, str], Scored]:
    (mix,) = [m for m in MIXES if m.name == mix_name]
    funcs, weights = build_rewards(
        [dict(spec) for spec in mix.specs],
        context={"eos_token_ids": EOS_IDS, "max_completion_length": mix.max_completion_length},
    )
    system_prompt = PROMPT_FORMATS[mix.prompt_format].system_prompt
    keys, batch = [], []
    for p in PROBLEMS:
        kinds = {"honest_right": honest_right, "honest_wrong": honest_wrong}
        kinds |= {name: HACKS[name][1] for name in hacks_for(mix.prompt_format)}
        for kind, build in kinds.items():
            keys.append((p.name, kind))
            batch.append((p, build(mix.prompt_format, p)))
    kwargs = dict(
        prompts=[build_prompt(p.question, system_prompt) for p, _ in batch],
        completions=[[{"role": "assistant", "content": c.text}] for _, c in batch],
        completion_ids=[completion_ids(c, mix.max_completion_length) for _, c in batch],
        answer=[p.gold for p, _ in batch],
        trainer_state=None,
    )
    columns = {func.__name__: func(**kwargs) for func in funcs}
    for name, values in columns.items():
        assert len(values) == len(batch), f"reward {name} returned {len(values)} values for {len(batch)}"
    result = {}
    for row, key in enumerate(keys):
        parts = {name: values[row] for name, values in columns.items()}
        # GRPOTrainer: None → NaN, then nansum over weight × reward
        total = sum(w * r for w, r in zip(weights, parts.values()) if r is not None and not math.isnan(r))
        result[key] = Scored(total, parts)
    return result


# ------------------------------------------------------------------------------------------------
# The tests

HACK_CASES = [pytest.param(mix, hack, id=f"{mix.name}-{hack}") for mix in MIXES for hack in hacks_for(mix.prompt_format)]


@pytest.mark.parametrize(("mix", "hack"), HACK_CASES)
def test_hack_scores_below_an_honest_right_answer(mix: Mix, hack: str):
    scored = scores(mix)
    beaten = [p for p in PROBLEMS if scored[(p.name, hack)].total >= scored[(p.name, "honest_right")].total]
    lines = [
        f"{p.name}: {hack} {scored[(p.name, hack)].explain()} >= honest {scored[(p.name, 'honest_right')].explain()}"
        for p in beaten
    ]
    if beaten:
        lines.append(f"e.g. {HACKS[hack][1](mix.prompt_format, beaten[0]).text[:240]!r}")
        pytest.fail(f"mix {mix.name} ({mix.prompt_format}):\n" + "\n".join(lines), pytrace=False)


@pytest.mark.parametrize("mix", MIXES, ids=lambda m: m.name)
def test_honest_wrong_answer_scores_below_the_right_one(mix: Mix):
    scored = scores(mix)
    for p in PROBLEMS:
        right, wrong = scored[(p.name, "honest_right")], scored[(p.name, "honest_wrong")]
        assert wrong.total < right.total, f"{mix.name} {p.name}: wrong {wrong.explain()} vs right {right.explain()}"


@pytest.mark.parametrize("mix", MIXES, ids=lambda m: m.name)
def test_honest_right_answer_is_correct_well_formed_and_terminated(mix: Mix):
    """The reference point is what it claims to be, so a hack cannot pass by beating a broken one."""
    expected = {"correctness": 1.0, "boxed_format": 1.0, "think_format": 1.0, "xml_format": 1.0, "termination": 1.0}
    scored = scores(mix)
    for p in PROBLEMS:
        honest = scored[(p.name, "honest_right")]
        for name, value in honest.parts.items():
            if name in expected:
                assert value == expected[name], f"{mix.name} {p.name}: {name}={value} for {honest_right(mix.prompt_format, p).text!r}"


def test_every_config_with_rewards_is_covered():
    listed = {
        f"configs/{path.name}"
        for path in (REPO / "configs").glob("*.y*ml")
        if isinstance(cfg := yaml.safe_load(path.read_text()), dict) and cfg.get("rewards")
    }
    assert listed <= {mix.name for mix in MIXES}
