"""What the online RL stages of a learning benchmark run logged, per seed: why GRPO gains or loses.

    python benchmarks/learning_diagnostics.py outputs/learning-v2-report/flawed --json diagnostics.json

Reads each `seed_N/<stage>/trainer_state.json` that `benchmarks/learning.py` left in its --out
folders (the report JSON keeps accuracies and costs, not the training logs) and writes, per seed and
stage: the training reward's correctness at the first and last logged steps, the share of groups
with no reward signal (`groups/no_signal`: every completion scored alike, zero advantage),
completion length, entropy, and seconds per optimizer step; and, from the test split's greedy
completions (`seed_N/eval_test/completions.jsonl`), each model's accuracy on carry and no-carry
problems and how often its worked line is right (`a + b = c` with c = a + b) and agrees with its box.
"""

from __future__ import annotations

import argparse
import json
import re
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


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outs", nargs="+", type=Path, metavar="OUT", help="a learning.py --out folder (seed_N/ inside)")
    parser.add_argument("--json", type=Path, help="write the summary here")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {}
    for out in args.outs:
        for seed_dir in sorted(out.glob("seed_*"), key=lambda p: int(p.name.removeprefix("seed_"))):
            if not (seed_dir / "result.json").is_file():
                continue  # a seed still running or cut off
            seed = seed_dir.name.removeprefix("seed_")
            for stage in STAGES:
                state = seed_dir / stage / "trainer_state.json"
                if state.is_file():
                    report.setdefault(str(out), {}).setdefault(seed, {})[stage] = summary(json.loads(state.read_text()))
            if (completions := seed_dir / "eval_test" / "completions.jsonl").is_file():
                report.setdefault(str(out), {}).setdefault(seed, {})["test_completions"] = worked_lines(completions)
    text = json.dumps(report, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    else:
        print(text)
    return report


if __name__ == "__main__":
    main()
