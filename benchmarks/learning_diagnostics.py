"""What the online RL stages of a learning benchmark run logged, per seed: why GRPO gains or loses.

    python benchmarks/learning_diagnostics.py OUT_A OUT_B --keep earlier.json --json diagnostics.json

Reads each `seed_N/<stage>/trainer_state.json` that `benchmarks/learning.py` left in its --out
folders (the report JSON keeps accuracies and costs, not the training logs) and writes, per seed and
stage: the training reward's correctness at the first and last logged steps, the share of groups
with no reward signal (`groups/no_signal`: every completion scored alike, zero advantage),
completion length, entropy, and seconds per optimizer step; and, from the test split's greedy
completions (`seed_N/eval_test/completions.jsonl`), each model's accuracy on carry and no-carry
problems and how often its worked line is right (`a + b = c` with c = a + b) and agrees with its box.
Seeds are grouped by the protocol's variant (from the task options their result.json ran with), and
`summary` holds each variant's means over its seeds: the figures BENCHMARKS.md §0 quotes.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path
from typing import Any

STAGES = ("grpo", "rloo", "negated", "null", "sft_matched")


def summary(state: dict[str, Any]) -> dict[str, Any]:
    """First and last logged values of the signals that explain an online RL run."""
    logs = [e for e in state["log_history"] if "loss" in e]
    found: dict[str, Any] = {"optimizer_steps": state["global_step"], "logged_steps": len(logs)}
    for key, name in (("rewards/correctness/mean", "train_correctness"), ("groups/no_signal", "groups_no_signal"),
                      ("completions/mean_length", "completion_tokens"), ("entropy", "entropy"),
                      ("step_time", "seconds_per_step"), ("loss", "loss"), ("mean_token_accuracy", "token_accuracy")):
        values = [e[key] for e in logs if key in e]
        if values:
            found[name] = {"first": values[0], "last": values[-1], "mean": sum(values) / len(values)}
    return found


WORKED = re.compile(r"(\d+) \+ (\d+) = (\d+)")
BOXED = re.compile(r"\\boxed\{(\d+)\}")


def worked_lines(completions: Path) -> dict[str, dict[str, Any]]:
    """Per model: accuracy on carry / no-carry questions, and the worked line's correctness and agreement."""
    counts: dict[str, dict[str, int]] = {}
    for line in completions.read_text().splitlines():
        row = json.loads(line)
        a, b = (int(x) for x in re.findall(r"\d+", row["prompt"][-1]["content"])[:2])
        carry = (a % 10 + b % 10) >= 10
        c = counts.setdefault(row["model"], dict.fromkeys(
            ("carry", "carry_correct", "no_carry", "no_carry_correct", "worked", "worked_right", "worked_agrees_with_box"), 0))
        c["carry" if carry else "no_carry"] += 1
        c["carry_correct" if carry else "no_carry_correct"] += int(bool(row["correct"]))
        if (worked := WORKED.search(row["completion"])) is not None:
            c["worked"] += 1
            c["worked_right"] += int(int(worked[1]) + int(worked[2]) == int(worked[3]))
            box = BOXED.search(row["completion"])
            c["worked_agrees_with_box"] += int(box is not None and box[1] == worked[3])
    return {model: {"accuracy_carry": c["carry_correct"] / max(c["carry"], 1),
                    "accuracy_no_carry": c["no_carry_correct"] / max(c["no_carry"], 1),
                    "worked_line_right": c["worked_right"] / max(c["worked"], 1),
                    "worked_line_agrees_with_box": c["worked_agrees_with_box"] / max(c["worked"], 1),
                    "carry_questions": c["carry"], "no_carry_questions": c["no_carry"]} for model, c in counts.items()}


MODEL_NAMES = {"round_2/model": "ei"}  # EI's last round is the `ei` stage; the base model is named by its source


def model_name(name: str) -> str:
    return "base" if name.startswith("rl-math:") else MODEL_NAMES.get(name, name)


def variant_of(result: dict[str, Any], protocol: dict[str, Any]) -> str:
    """The protocol's name for the task options a seed's result.json ran with."""
    options = result.get("options", {}).get("variant_options", "")
    names = [name for name, value in protocol["variants"].items() if value == options]
    return names[0] if names else f"options {options!r}"


def seed_diagnostics(seed_dir: Path, result: dict[str, Any]) -> dict[str, Any]:
    """One seed's training-log summaries per online stage, costs per step (from its `result`), and its test
    completions' analysis."""
    found: dict[str, Any] = {}
    for stage in STAGES:
        state = seed_dir / stage / "trainer_state.json"
        if state.is_file():
            found[stage] = summary(json.loads(state.read_text()))
    found["train_seconds_per_step"] = {
        stage: r["train_seconds"] / r["optimizer_steps"]
        for stage, r in result["stages"].items() if r.get("optimizer_steps") and r.get("train_seconds")}
    if (completions := seed_dir / "eval_test" / "completions.jsonl").is_file():
        found["test_completions"] = {model_name(m): v for m, v in worked_lines(completions).items()}
    return found


def mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def summarise(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Means over a variant's seeds of the figures BENCHMARKS.md quotes in "Where GRPO loses"."""
    seeds = list(runs.values())

    def over(*path: str) -> float | None:
        values = []
        for run in seeds:
            value: Any = run
            for key in path:
                value = value.get(key) if isinstance(value, dict) else None
            if isinstance(value, (int, float)):
                values.append(float(value))
        return mean(values)

    found: dict[str, Any] = {"seeds": sorted(runs, key=int)}
    for stage in ("grpo", "null", "negated"):
        found[stage] = {
            "train_correctness_first": over(stage, "train_correctness", "first"),
            "train_correctness_last": over(stage, "train_correctness", "last"),
            "groups_no_signal": over(stage, "groups_no_signal", "mean"),
            "completion_tokens_last": over(stage, "completion_tokens", "last"),
        }
    found["train_seconds_per_step"] = {stage: over("train_seconds_per_step", stage) for stage in ("sft_matched", "ei", "grpo")}
    # the median of each seed's ratio: one stage run while the shared machine was busy skews a mean of seconds
    ratios = [run["train_seconds_per_step"]["grpo"] / run["train_seconds_per_step"]["sft_matched"]
              for run in seeds if {"grpo", "sft_matched"} <= set(run.get("train_seconds_per_step", {}))]
    if ratios:
        found["grpo_step_over_sft_step_median"] = statistics.median(ratios)
    found["test_completions"] = {
        model: {key: over("test_completions", model, key)
                for key in ("accuracy_carry", "accuracy_no_carry", "worked_line_right", "worked_line_agrees_with_box")}
        for model in ("sft", "sft_matched", "ei", "grpo", "null")}
    # where a gap between two stages sits: paired over seeds, carry and no-carry questions apart
    found["paired_test_completions"] = {}
    for a, b in (("grpo", "sft_matched"), ("grpo", "ei")):
        for key in ("accuracy_carry", "accuracy_no_carry"):
            diffs = [run["test_completions"][a][key] - run["test_completions"][b][key]
                     for run in seeds if {a, b} <= set(run.get("test_completions", {}))]
            found["paired_test_completions"][f"{a}-{b}_{key.removeprefix('accuracy_')}"] = {
                "mean": mean(diffs), "positive": sum(diff > 0 for diff in diffs), "n": len(diffs)}
    return found


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outs", nargs="*", type=Path, metavar="OUT", help="a learning.py --out folder (seed_N/ inside)")
    parser.add_argument("--keep", type=Path, help="an earlier diagnostics JSON: its seeds stay unless OUT has them again "
                        "(the training logs of a seed need not outlive the report)")
    parser.add_argument("--protocol", type=Path, default=Path(__file__).with_name("learning_protocol_v2.json"))
    parser.add_argument("--json", type=Path, help="write the report here")
    args = parser.parse_args(argv)
    protocol = json.loads(args.protocol.read_text())
    runs: dict[str, dict[str, Any]] = json.loads(args.keep.read_text())["runs"] if args.keep else {}
    for out in args.outs:
        for seed_dir in out.glob("seed_*"):
            if not (seed_dir / "result.json").is_file():
                continue  # a seed still running or cut off
            result = json.loads((seed_dir / "result.json").read_text())
            runs.setdefault(variant_of(result, protocol), {})[seed_dir.name.removeprefix("seed_")] = seed_diagnostics(
                seed_dir, result)
    runs = {  # seeds in numeric order, whichever folder or earlier report they came from
variant: dict(sorted(seeds.items(), key=lambda item: int(item[0]))) for variant, seeds in sorted(runs.items())}
    report = {"summary": {variant: summarise(seeds) for variant, seeds in runs.items()}, "runs": runs}
    text = json.dumps(report, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    else:
        print(text)
    return report


if __name__ == "__main__":
    main()
