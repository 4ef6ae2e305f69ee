"""BENCHMARKS.md §0's headline: the three claims of issue 20, each with its verdict, from the reports' JSON.

    python benchmarks/learning_headline.py benchmarks/results/learning-v2-flawed.json \\
        benchmarks/results/learning-v2-clean.json --markdown headline.md

A verdict is read off the 95 % Student-t interval of the paired mean over seeds alone: above 0, the
claim holds (or GRPO wins); below 0, GRPO loses; across 0, not shown. It says "so far" while a
report has fewer seeds than its protocol's reporting seeds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

# (claim, comparison, variants it is stated for, what "above 0" means)
CLAIMS = (
    ("1. GRPO with the shipped rewards improves over its SFT start", "grpo-sft", ("flawed", "clean"), "holds"),
    ("2. With flawed demonstrations, GRPO beats SFT given the same wall time", "grpo-sft_matched", ("flawed",),
     "GRPO wins"),
    ("3a. GRPO against expert iteration, same budget", "grpo-ei", ("flawed", "clean"), "GRPO beats expert iteration"),
    ("3b. GRPO against continued SFT with clean demonstrations", "grpo-sft_matched", ("clean",),
     "GRPO beats continued SFT"),
)


def cell(comparison: dict[str, Any]) -> str:
    low, high = comparison["ci95"]
    boot_low, boot_high = comparison["pooled_bootstrap"]["ci95"]
    return (f"{100 * comparison['mean']:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}] "
            f"(bootstrap [{100 * boot_low:+.1f}, {100 * boot_high:+.1f}]), "
            f"{comparison['positive']}/{comparison['n']} seeds > 0")


def verdict(comparison: dict[str, Any], above: str, complete: bool) -> str:
    """The claim's verdict from the t interval: above 0, below 0, or across it."""
    low, high = comparison["ci95"]
    so_far = "" if complete else ", so far"
    seeds = f"({comparison['positive']}/{comparison['n']} seeds > 0)"
    if low > 0:
        return f"{above}{so_far}: the 95 % interval is above 0 {seeds}"
    if high < 0:
        return f"GRPO loses{so_far}: the 95 % interval is below 0 {seeds}"
    return f"not shown{so_far}: the interval includes 0 {seeds}"


def headline(reports: dict[str, dict[str, Any]]) -> str:
    """The headline table's markdown, one row per claim, one column per variant."""
    variants = ("flawed", "clean")
    lines = [f"| claim | comparison | {' | '.join(f'`{v}`' for v in variants)} | verdict |", "|---" * 5 + "|"]
    for claim, name, stated_for, above in CLAIMS:
        cells, verdicts = [], []
        for variant in variants:
            report = reports.get(variant)
            if variant not in stated_for or report is None or name not in report["comparisons"]:
                cells.append("")
                continue
            comparison = report["comparisons"][name]
            complete = comparison["n"] >= len(report["protocol"]["reporting_seeds"])
            cells.append(cell(comparison))
            verdicts.append((variant, verdict(comparison, above, complete)))
        said = verdicts[0][1] if len(verdicts) == 1 else "; ".join(f"{v}: {text}" for v, text in verdicts)
        lines.append(f"| {claim} | {name.replace('-', ' − ')} | {' | '.join(cells)} | {said} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", nargs="+", type=Path, metavar="REPORT", help="a learning.py --json report (one per variant)")
    parser.add_argument("--markdown", type=Path, help="write the table here (else print it)")
    args = parser.parse_args(argv)
    reports = {}
    for path in args.reports:
        report = json.loads(path.read_text())
        reports[report["protocol"]["variant"]] = report
    text = headline(reports)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    else:
        print(text)
    return text


if __name__ == "__main__":
    main()
