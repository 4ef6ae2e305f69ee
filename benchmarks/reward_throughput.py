"""Throughput and verdicts of the `correctness` reward against a math-verify-only grader.

Builds a realistic mix of GSM8K completions (right, wrong, formatted, unboxed, think-wrapped,
hedged, truncated, long), each labelled with the verdict a careful human gives under the
reward's rules, then scores them with rl-math's `correctness` and with the math-verify grader
public recipes use (open-r1 / TRL `accuracy_reward` style: `parse(gold)`,
`parse(completion, extraction_config=[LatexExtractionConfig(...)])`, `verify`), in one run.

    python benchmarks/reward_throughput.py            # 3000 completions from ../shared/data/gsm8k/test.jsonl
    python benchmarks/reward_throughput.py --n 6000 --data path/to/test.jsonl
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import sys
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from _common import cpu_model, version  # benchmarks/ is on sys.path when run as a script; adds src/ too

from rl_math.grading import grader
from rl_math.grading.grader import normalize_gold
from rl_math.rewards import correctness
from rl_math.tasks.gsm8k import solution_reasoning

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "gsm8k" / "test.jsonl"


@dataclass(frozen=True)
class Case:
    variant: str
    completion: str
    gold: str  # the dataset's `answer` column: the full GSM8K solution
    human_correct: bool  # what a careful human says, under the reward's rules


@dataclass(frozen=True)
class Variant:
    weight: int  # share of the mix
    template: str  # str.format fields: reasoning, gold, wrong, plus_one, double, thousands, thin, dotted
    human_correct: bool


FILLER = "Let me check this again carefully. " * 80
VARIANTS = {
    "right, boxed": Variant(8, "{reasoning}\nThe answer is \\boxed{{{gold}}}.", True),
    "wrong, boxed": Variant(8, "{reasoning}\nThe answer is \\boxed{{{wrong}}}.", False),
    "right, 1,080 separators": Variant(2, "{reasoning}\nSo \\boxed{{{thousands}}}", True),
    "right, 1\\,080 thin space": Variant(1, "{reasoning}\nSo \\boxed{{{thin}}}", True),
    "right, \\$18.00": Variant(2, "{reasoning}\nShe makes \\boxed{{\\${thousands}.00}}.", True),
    "right, 18 \\text{ dollars}": Variant(2, "{reasoning}\nSo \\boxed{{{gold} \\text{{ dollars}}}}.", True),
    "right, \\frac{2g}{2}": Variant(1, "{reasoning}\nSo \\boxed{{\\frac{{{double}}}{{2}}}}.", True),
    "right, x = 18": Variant(1, "{reasoning}\nSo \\boxed{{x = {gold}}}.", True),
    "wrong, 1.080 for 1080": Variant(1, "{reasoning}\nSo \\boxed{{{dotted}}}.", False),
    "unboxed answer": Variant(2, "{reasoning}\nThe final answer is {gold}.", False),
    "right, think-wrapped": Variant(4, "<think>\n{reasoning}\n</think>\nThe answer is \\boxed{{{gold}}}.", True),
    "wrong, think-wrapped": Variant(3, "<think>\n{reasoning}\n</think>\nThe answer is \\boxed{{{plus_one}}}.", False),
    "box only inside think": Variant(1, "<think>\n{reasoning} so \\boxed{{{gold}}}\n</think>\nI am not sure.", False),
    "truncated think": Variant(1, "<think>\n{reasoning} so \\boxed{{{gold}}} and then", False),
    "r1 answer block": Variant(2, "<think>\n{reasoning}\n</think>\n<answer>{gold}</answer>", True),
    "hedge, right first": Variant(2, "{reasoning}\nSo \\boxed{{{gold}}}, or maybe \\boxed{{{plus_one}}}.", False),
    "hedge, right last": Variant(1, "{reasoning}\nSo \\boxed{{{plus_one}}}, or maybe \\boxed{{{gold}}}.", False),
    "repeated equal boxes": Variant(1, "{reasoning}\nSo \\boxed{{{gold}}}. Final: \\boxed{{{gold}}}", True),
    "long reasoning, right": Variant(2, FILLER + "{reasoning}\n\\boxed{{{gold}}}", True),
}


def build_cases(rows: list[dict], count: int, seed: int = 0) -> list[Case]:
    """`count` completions cycling over the problems, each of a variant drawn by the mix's weights."""
    rng = random.Random(seed)
    names = list(VARIANTS)
    weights = [VARIANTS[name].weight for name in names]
    cases = []
    for index in range(count):
        row = rows[index % len(rows)]
        gold = int(normalize_gold(row["answer"]))
        name = rng.choices(names, weights)[0]
        if name == "wrong, 1.080 for 1080" and gold == 0:  # 0.000 would be right
            name = "wrong, boxed"
        completion = VARIANTS[name].template.format(
            reasoning=solution_reasoning(row["answer"]),
            gold=gold,
            wrong=gold + rng.choice([1, -1, 10, 2 * gold + 3]),
            plus_one=gold + 1,
            double=2 * gold,
            thousands=f"{gold:,}",
            thin=f"{gold:,}".replace(",", "\\,"),
            dotted=f"{gold:,}".replace(",", ".") if abs(gold) >= 1000 else f"{gold / 1000:.3f}",
        )
        cases.append(Case(name, completion, row["answer"], VARIANTS[name].human_correct))
    return cases


def math_verify_grader():
    """The math-verify-only grader public recipes use: TRL 1.16's `accuracy_reward` (from open-r1).

    The gold is parsed from the text after `####`, as a GSM8K recipe would pass it.
    """
    from latex2sympy2_extended import NormalizationConfig
    from math_verify import LatexExtractionConfig, parse, verify

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    extraction_config = [
        LatexExtractionConfig(
            normalization_config=NormalizationConfig(units=True),
            boxed_match_priority=0,
            try_extract_without_anchor=False,
        )
    ]

    def score(completion: str, gold_solution: str) -> float | None:
        gold_parsed = parse(normalize_gold(gold_solution) or "", parsing_timeout=10)
        if not gold_parsed:
            return None
        answer_parsed = parse(
            completion, extraction_config=extraction_config, extraction_mode="first_match", parsing_timeout=10
        )
        return float(verify(gold_parsed, answer_parsed, timeout_seconds=5))

    return score


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3000, help="number of completions (default 3000)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"GSM8K jsonl (default {DEFAULT_DATA})")
    parser.add_argument("--examples", type=int, default=6, help="disagreements to print (default 6)")
    args = parser.parse_args(argv)
    if not args.data.is_file():
        parser.error(f"no GSM8K data at {args.data}; pass --data PATH")
    rows = [json.loads(line) for line in args.data.read_text().splitlines() if line.strip()]
    cases = build_cases(rows, args.n)
    completions = [case.completion for case in cases]
    golds = [case.gold for case in cases]
    warnings.simplefilter("ignore")

    grader._parse_number_cached.cache_clear()
    grader._gold_text_value.cache_clear()
    start = time.perf_counter()
    ours = correctness(completions, answer=golds)
    ours_seconds = time.perf_counter() - start

    score_math_verify = math_verify_grader()
    score_math_verify("\\boxed{1}", "#### 1")  # imports and first-call set-up are not counted
    start = time.perf_counter()
    theirs = [score_math_verify(completion, gold) for completion, gold in zip(completions, golds)]
    theirs_seconds = time.perf_counter() - start

    human = [1.0 if case.human_correct else 0.0 for case in cases]
    differ = [index for index in range(len(cases)) if ours[index] != theirs[index]]
    lost = [index for index in differ if theirs[index] == human[index]]  # math-verify right, we wrong
    ours_throughput = len(cases) / ours_seconds
    theirs_throughput = len(cases) / theirs_seconds

    print(f"machine      {cpu_model()}, {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable)")
    print(
        f"versions     python {platform.python_version()}, rl-math {version('rl-math')}, "
        f"math-verify {version('math-verify')}, latex2sympy2_extended {version('latex2sympy2_extended')}, "
        f"sympy {version('sympy')}"
    )
    print(f"data         {len(cases)} completions built from {args.data} ({len(rows)} problems)\n")
    print(f"{'grader':<34}{'seconds':>9}{'completions/s':>15}{'us/completion':>15}{'agrees with human':>19}")
    for name, seconds, throughput, scores in (
        ("rl_math correctness", ours_seconds, ours_throughput, ours),
        ("math-verify only (open-r1 style)", theirs_seconds, theirs_throughput, theirs),
    ):
        agree = sum(score == label for score, label in zip(scores, human))
        print(f"{name:<34}{seconds:>9.3f}{throughput:>15,.0f}{1e6 / throughput:>15,.1f}{agree:>12}/{len(cases)}")
    print(f"\nspeed-up     {ours_throughput / theirs_throughput:,.1f}x")
    print(
        f"verdicts     {len(differ)} differ; the careful human sides with rl_math on "
        f"{len(differ) - len(lost)}, with math-verify on {len(lost)} (verdicts lost)\n"
    )
    reward_mix_rows(cases, theirs_throughput)  # the full reward mixes (appended section below)
    print()

    print(f"{'variant':<28}{'count':>7}{'human':>7}{'rl_math ok':>12}{'math-verify ok':>16}")
    counts = Counter(case.variant for case in cases)
    for variant in VARIANTS:
        members = [index for index, case in enumerate(cases) if case.variant == variant]
        if not members:
            continue
        labels = Counter(cases[index].human_correct for index in members)
        label = "1" if labels[True] == len(members) else "0" if labels[False] == len(members) else "mixed"
        ours_ok = sum(ours[index] == human[index] for index in members)
        theirs_ok = sum(theirs[index] == human[index] for index in members)
        print(f"{variant:<28}{counts[variant]:>7}{label:>7}{ours_ok:>12}{theirs_ok:>16}")

    shown = set()
    examples = []
    for index in differ:  # one example per variant first
        if cases[index].variant not in shown:
            shown.add(cases[index].variant)
            examples.append(index)
    if examples:
        print("\nexamples of disagreement (tail of the completion):")
    for index in examples[: args.examples]:
        case = cases[index]
        tail = case.completion[-90:].replace("\n", " ")
        side = "rl_math" if ours[index] == human[index] else "math-verify"
        print(
            f"  [{case.variant}] gold {normalize_gold(case.gold)}: ...{tail!r}\n"
            f"      rl_math {ours[index]}, math-verify {theirs[index]}, careful human {human[index]} -> {side}"
        )
    return 0


# ------------------------------------------------------------------------------------------------
# The full reward mix (appended): what a GRPO step really pays per completion is every reward of
# the mix, not correctness alone. Timed interleaved with correctness (median of MIX_REPEATS
# round-robin rounds, min-max spread) so that load on a shared machine hits all rows alike.

MIX_REPEATS = 5
FAKE_EOS = 2  # token ids are made up: termination only looks at the last id and the length


def _completion_ids(case: Case) -> list[int]:
    """Stand-in token ids: one per word, ending in EOS unless the completion was cut off."""
    ids = [7] * max(1, len(case.completion.split()))
    return ids if case.variant == "truncated think" else ids + [FAKE_EOS]


def reward_mix_rows(cases: list[Case], math_verify_throughput: float, repeats: int = MIX_REPEATS) -> None:
    """Print completions/s of correctness, the default mix and the shipped configs' mix, interleaved."""
    import statistics

    from rl_math.rewards import build_rewards
    from rl_math.tasks.formats import default_reward_specs

    completions = [case.completion for case in cases]
    kwargs = {"answer": [case.gold for case in cases], "completion_ids": [_completion_ids(c) for c in cases]}
    context = {"eos_token_ids": [FAKE_EOS], "max_completion_length": 768}
    shipped = default_reward_specs("boxed") + [{"name": "repetition_penalty", "weight": 0.5, "ngram_size": 4, "max_penalty": -1.0}]
    mixes = {
        "correctness alone": build_rewards([{"name": "correctness"}], context)[0],
        "default mix (correctness, boxed_format, termination)": build_rewards(default_reward_specs("boxed"), context)[0],
        "shipped qwen*.yaml mix (+ repetition_penalty)": build_rewards(shipped, context)[0],
    }
    times: dict[str, list[float]] = {name: [] for name in mixes}
    for _ in range(repeats):
        for name, funcs in mixes.items():  # round-robin: each round times every mix once
            grader._parse_number_cached.cache_clear()
            grader._gold_text_value.cache_clear()
            start = time.perf_counter()
            for func in funcs:  # as GRPOTrainer calls them: one call per reward over the batch
                func(prompts=None, completions=completions, **kwargs)
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["correctness alone"])
    print(f"reward mixes, {len(cases)} completions, median of {repeats} interleaved rounds (min-max)")
    print(f"{'rewards':<56}{'seconds':>9}{'completions/s':>15}{'time vs correctness':>21}{'vs math-verify':>16}")
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"{name:<56}{median:>9.3f}{len(cases) / median:>15,.0f}{median / base:>20.2f}x"
            f"{len(cases) / median / math_verify_throughput:>15.1f}x   ({min(values):.3f}-{max(values):.3f} s)"
        )


if __name__ == "__main__":
    sys.exit(main())
