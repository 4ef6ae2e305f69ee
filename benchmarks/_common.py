"""What every benchmark prints and computes: the machine, the versions, medians and spreads."""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import sys
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))  # a checkout without `pip install -e .`

PACKAGES = ("rl-math", "torch", "transformers", "trl", "accelerate", "deepspeed", "datasets", "peft", "math-verify")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def header_lines(packages: Sequence[str] = PACKAGES) -> list[str]:
    """Date, machine, load and versions: the first lines of every benchmark's output."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        f"date         {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"machine      {cpu_model()}, {os.cpu_count()} cores ({usable} usable), {platform.system()} {platform.release()}",
        f"load average {load_average()} (1, 5, 15 min) at start",
        "versions     python " + platform.python_version() + ", " + ", ".join(f"{p} {version(p)}" for p in packages),
    ]


def print_header(packages: Sequence[str] = PACKAGES) -> None:
    for line in header_lines(packages):
        print(line)
    sys.stdout.flush()


def print_footer() -> None:
    print(f"load average {load_average()} (1, 5, 15 min) at end")


def median(values: Iterable[float]) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


def spread(values: Iterable[float]) -> str:
    """`min-max` of a sample, for the 'spread' columns."""
    values = list(values)
    if not values:
        return "n/a"
    return f"{min(values):.3f}-{max(values):.3f}"


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    """A plain aligned text table (first column left-aligned, the rest right-aligned)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells):
        return "  ".join(str(c).ljust(widths[0]) if i == 0 else str(c).rjust(widths[i]) for i, c in enumerate(cells))

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def offline_env(**extra: str) -> dict[str, str]:
    """The environment the benchmark's subprocesses run in: offline, quiet, one BLAS thread each."""
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        WANDB_MODE="disabled",
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]),
    )
    env.pop("ACCELERATE_USE_CPU", None)
    env.update(extra)
    return env
