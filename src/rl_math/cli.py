"""The `rl-math` command: tools around a run's output directory.

    rl-math plot outputs/qwen0.5b-grpo                       # → outputs/qwen0.5b-grpo/curves.png
    rl-math plot outputs/run-a outputs/run-b -o compare.png  # runs overlaid, legend by run name
    rl-math samples outputs/qwen0.5b-grpo --step 40 --n 8    # completions logged at step 40
    rl-math plan configs/qwen1.5b.yaml --gpus 8 --zero 2      # GPU memory per GPU, before renting them
    rl-math regrade outputs/eval/completions.jsonl            # every scoring convention, no model needed
    rl-math calibrate configs/qwen0.5b.yaml --questions 64    # completion lengths before launching a run
    rl-math data configs/learning/sft.yaml --split test --jsonl test.jsonl  # the rows a run would use
    rl-math config configs/qwen7b.yaml model_name_or_path use_vllm launch.gpus   # fields as a run reads them

A problem with the input (a missing trainer_state.json, no logged completions, a config that
names no model) is one line on stderr and exit code 2, never a traceback.

Adding a subcommand: write `_add_<name>_arguments(parser)` and `_run_<name>(args) -> int`, and
append a `Subcommand` to `SUBCOMMANDS`. Heavy imports (matplotlib, pandas) stay inside the run
functions so `rl-math --help` is instant. `python -m rl_math.cli` is the same command.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rl_math.config import recipe_values
from rl_math.errors import ConfigError, nearest_key
from rl_math.methods import recipe_dataclasses
from rl_math.tools.calibrate import calibrate, format_calibration
from rl_math.tools.curves import RunLogError, load_run, plot_runs, unique_names
from rl_math.tools.data import config_rows, write_rows
from rl_math.tools.memory_plan import (
    ZERO_CHOICES,
    PlanError,
    format_report,
    judged_plans,
    plan_config,
    read_launch_header,
    report_as_json,
)
from rl_math.tools.regrade import RegradeError
from rl_math.tools.regrade import run as run_regrade
from rl_math.tools.samples import find_completions, print_samples

EXIT_USAGE = 2  # bad input, as argparse uses for bad arguments


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit code 2."""


@dataclass(frozen=True)
class Subcommand:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# ------------------------------------------------------------------------------------------------
# rl-math plot


def _add_plot_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output_dirs", nargs="+", metavar="OUTPUT_DIR", help="run output directories (or trainer_state.json files)")
    parser.add_argument(
        "-o", "--output", metavar="FILE.png", help="where to write the figure (default: OUTPUT_DIR/curves.png for one run, ./curves.png for several)"
    )
    parser.add_argument("--title", help="figure title (default: the run names)")


def _run_plot(args: argparse.Namespace) -> int:

    try:
        runs = [load_run(d) for d in args.output_dirs]
    except RunLogError as err:
        raise CliError(str(err)) from None
    for run, name in zip(runs, unique_names([r.name for r in runs], [Path(d) for d in args.output_dirs])):
        run.name = name
    if args.output:
        out = Path(args.output)
    elif len(runs) == 1 and Path(args.output_dirs[0]).is_dir():
        out = Path(args.output_dirs[0]) / "curves.png"
    else:
        out = Path("curves.png")
    metadata = plot_runs(runs, out, title=args.title)
    alarms = metadata["rl_math:alarms"]
    print(f"wrote {out} ({len(runs)} run{'s' if len(runs) > 1 else ''}, alarms: {alarms.replace(';', ', ') or 'none'})")
    return 0


# ------------------------------------------------------------------------------------------------
# rl-math samples


def _add_samples_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output_dir", metavar="OUTPUT_DIR", help="run output directory (with completions/)")
    parser.add_argument("--step", type=int, help="the logging step to show (default: the newest)")
    parser.add_argument("--n", type=_positive_int, default=8, metavar="K", help="how many completions (default: 8)")
    parser.add_argument(
        "--max-chars", type=_positive_int, default=1200, help="shorten longer completions, keeping head and tail (default: 1200)"
    )


def _run_samples(args: argparse.Namespace) -> int:

    try:
        path = find_completions(args.output_dir, args.step)
    except RunLogError as err:
        raise CliError(str(err)) from None
    print_samples(path, n=args.n, max_chars=args.max_chars)
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1, got {value}")
    return value


# ------------------------------------------------------------------------------------------------
# rl-math plan


def _add_plan_arguments(parser: argparse.ArgumentParser) -> None:

    parser.add_argument("config", metavar="CONFIG.yaml", help="a GRPO recipe config")
    parser.add_argument(
        "--gpus", type=int, action="append", metavar="N",
        help="GPUs (processes) in the run; repeat for several (default: the config's '# rl-math: ... gpus=' header, else 1)",
    )
    parser.add_argument(
        "--zero", choices=sorted(ZERO_CHOICES), metavar="{2,3,3_offload,ddp}",
        help="one strategy: ZeRO stage 2, 3, 3 with CPU offload, or ddp (default: all four)",
    )
    parser.add_argument("--model-config", metavar="PATH", help="a folder with the model's config.json (default: the config's model_name_or_path)")
    parser.add_argument("--gpu-memory-gb", type=float, default=80.0, help="memory of one GPU in GB (default: 80)")
    parser.add_argument("--gpus-per-node", type=int, default=8, help="GPUs per node, for host RAM under offload (default: 8)")
    parser.add_argument(
        "--prompt-tokens", type=int, metavar="N",
        help="the longest prompt in tokens (default: the config's max_prompt_tokens, a worst case; GSM8K prompts are < 250)",
    )
    parser.add_argument("--json", action="store_true", help="print the plans as JSON instead of tables")


def _run_plan(args: argparse.Namespace) -> int:
    """Print the plans; exit 1 when the asked (or the config's intended) setup does not fit."""
    import json


    strategies = [ZERO_CHOICES[args.zero]] if args.zero else None
    try:
        shape, settings, header, intended, plans = plan_config(
            args.config, args.gpus, strategies, args.model_config, args.gpu_memory_gb, args.prompt_tokens,
            args.gpus_per_node,
        )
    except (PlanError, OSError, ValueError) as err:  # ConfigError (a bad YAML) is a ValueError
        raise CliError(str(err)) from None
    if args.json:
        print(json.dumps(report_as_json(shape, settings, intended, plans), indent=2))
    else:
        print(format_report(args.config, shape, settings, header, intended, plans))
    return 0 if all(plan.fits for plan in judged_plans(strategies, intended, plans)) else 1


# ------------------------------------------------------------------------------------------------
# rl-math regrade


def _add_regrade_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("completions", metavar="COMPLETIONS.jsonl",
                        help="rl-math's completions.jsonl or lm-eval's --log_samples samples_*.jsonl")
    parser.add_argument("--task", help="gsm8k, math or arithmetic (default: the task in metrics.json beside the file, else gsm8k)")
    parser.add_argument("--json", metavar="FILE", help="also write {rows: [...], summary: {...}} to FILE")


def _run_regrade(args: argparse.Namespace) -> int:
    try:
        report, _ = run_regrade(args.completions, args.task, args.json)
    except RegradeError as err:
        raise CliError(str(err)) from None
    print(report)
    return 0


# ------------------------------------------------------------------------------------------------
# rl-math calibrate


def _add_calibrate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG.yaml", help="a GRPO or expert-iteration recipe config")
    parser.add_argument("--questions", type=_positive_int, default=64, metavar="N",
                        help="training prompts to sample (default: 64)")
    parser.add_argument("--model", metavar="PATH", help="the starting model (default: the config's model_name_or_path)")
    parser.add_argument("--json", metavar="FILE", help="also write the measurements to FILE")


def _run_calibrate(args: argparse.Namespace) -> int:
    try:
        report = calibrate(args.config, args.questions, args.model)
    except ConfigError as err:
        raise CliError(str(err)) from None
    print(format_calibration(report))
    if args.json:
        import json

        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


# ------------------------------------------------------------------------------------------------
# rl-math data


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG.yaml", help="a recipe config (its dataset_name, task, prompt_format, ...)")
    parser.add_argument("--split", default="train", help="the split: train, validation, test, ... (default: train)")
    parser.add_argument("--jsonl", metavar="FILE", help="write the rows here (default: standard output); never overwrites")


def _run_data(args: argparse.Namespace) -> int:
    if args.jsonl and Path(args.jsonl).exists():
        raise CliError(f"{args.jsonl} exists; give a new file name (rl-math data never overwrites)")
    try:
        rows = list(config_rows(args.config, args.split))
    except (ConfigError, ValueError) as err:  # a bad config or split: the loader's one sentence
        raise CliError(str(err)) from None
    if args.jsonl:
        with open(args.jsonl, "w", encoding="utf-8") as handle:
            write_rows(iter(rows), handle)
        print(f"wrote {len(rows)} {args.split} rows to {args.jsonl}", file=sys.stderr)
    else:
        write_rows(iter(rows), sys.stdout)
    return 0


# ------------------------------------------------------------------------------------------------
# rl-math config


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG.yaml", help="a recipe config")
    parser.add_argument("fields", nargs="+", metavar="FIELD",
                        help="fields to print, one value a line (defaults filled in); "
                             "launch.accelerate_config and launch.gpus read the '# rl-math:' header")
    parser.add_argument("--method", default="grpo", help="the method whose fields the YAML holds (default: grpo)")


def _plain_value(value: object) -> str:
    """A value as a shell reads it: booleans lower-case, null empty, lists comma-separated."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ",".join(map(_plain_value, value))
    return str(value)


def _run_config(args: argparse.Namespace) -> int:
    """Print the asked fields of a recipe YAML as a run would read them (the sbatch script asks this)."""
    try:
        values = recipe_values(args.config, recipe_dataclasses(args.method))
    except ValueError as err:  # a ConfigError or an unknown method
        raise CliError(str(err)) from None
    header = read_launch_header(args.config)
    launch = {"launch.accelerate_config": header.accelerate_config, "launch.gpus": list(header.gpus)}
    for field in args.fields:
        if field not in values and field not in launch:
            hint = nearest_key(field, [*values, *launch])
            raise CliError(f"{args.config} has no field {field!r}" + (f"; did you mean {hint!r}?" if hint else ""))
        print(_plain_value(launch[field] if field in launch else values[field]))
    return 0


# ------------------------------------------------------------------------------------------------
# The command

SUBCOMMANDS: list[Subcommand] = [
    Subcommand("plot", "draw reward, accuracy, length, entropy/KL curves and health alarms into a PNG", _add_plot_arguments, _run_plot),
    Subcommand("samples", "show logged completions (log_completions: true) as a table", _add_samples_arguments, _run_samples),
    Subcommand("plan", "estimate the GPU memory a GRPO config needs per GPU under DDP and ZeRO-2/3", _add_plan_arguments, _run_plan),
    Subcommand("regrade", "re-score completions (rl-math's or lm-eval's) under every scoring convention", _add_regrade_arguments, _run_regrade),
    Subcommand("calibrate", "sample the starting model: completion lengths, truncation, reward signal at step 0", _add_calibrate_arguments, _run_calibrate),
    Subcommand("data", "write the rows (question, gold) a config's run would use for a split, as JSON lines", _add_data_arguments, _run_data),
    Subcommand("config", "print fields of a recipe YAML as a run reads them (defaults filled in)", _add_config_arguments, _run_config),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rl-math", description="Tools for rl-math runs.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for sub in SUBCOMMANDS:
        sub_parser = commands.add_parser(sub.name, help=sub.help, description=sub.help)
        sub.add_arguments(sub_parser)
        sub_parser.set_defaults(run=sub.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `rl-math` with `argv` (default: the command line); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "run", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return args.run(args)
    except CliError as err:
        print(f"rl-math {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
