"""What the online RL stages of a learning benchmark run logged, per seed: why GRPO gains or loses.

    python benchmarks/learning_diagnostics.py outputs/learning-v2-report/flawed --json diagnostics.json

Reads each `seed_N/<stage>/trainer_state.json` that `benchmarks/learning.py` left in its --out
folders (the report JSON keeps accuracies and costs, not the training logs) and writes, per seed and
stage: the training reward's correctness at the first and last logged steps, the share of groups
with no reward signal (`groups/no_signal`: every completion scored alike, zero advantage),
completion length, entropy, and seconds per optimizer step.
"""

from __future__ import annotations

import argparse
import json
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
    text = json.dumps(report, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    else:
        print(text)
    return report


if __name__ == "__main__":
    main()
