"""`rl-math samples`: the completions a run logged, as a table.

TRL's ``log_completions: true`` writes ``OUTPUT_DIR/completions/completions_00010.parquet`` at every
logging step (columns ``step``, ``prompt``, ``completion``, one per reward, any ``log_extra``
columns, ``advantage``); :func:`print_samples` shows one of them as a table.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from rl_math.grading.grader import completion_text, prompt_text
from rl_math.tools.curves import RunLogError


def find_completions(output_dir: str | Path, step: int | None = None) -> Path:
    """The parquet TRL wrote for `step` (default: the newest) in `OUTPUT_DIR/completions/`."""
    path = Path(output_dir)
    if not path.is_dir():
        raise RunLogError(f"no such directory: {path}")
    folder = path / "completions"
    files = {
        int(match.group(1)): candidate
        for candidate in folder.glob("completions_*.parquet")
        if (match := re.fullmatch(r"completions_(\d+)\.parquet", candidate.name))
    }
    if not files:
        raise RunLogError(
            f"no completions_*.parquet in {folder} — set log_completions: true in the config to record them"
        )
    if step is None:
        return files[max(files)]
    if step not in files:
        steps = sorted(files)
        shown = ", ".join(map(str, steps[:20])) + (" ..." if len(steps) > 20 else "")
        raise RunLogError(f"no completions for step {step} in {folder}; logged steps: {shown}")
    return files[step]



def prompt_tail(prompt: Any, max_chars: int = 240) -> str:
    """The end of a prompt: the last message (the question), shortened from the left."""
    if hasattr(prompt, "tolist"):
        prompt = prompt.tolist()
    if isinstance(prompt, (list, tuple)) and prompt:
        prompt = prompt[-1]
    text = prompt_text(prompt).strip()
    return text if len(text) <= max_chars else "…" + text[-max_chars:]


def shorten(text: str, max_chars: int) -> str:
    """Keep the head and the tail of a long text (where a looping completion shows its loop).

    >>> shorten("abcdefghij", 6)
    'abcd … [4 chars] … ij'
    """
    if len(text) <= max_chars:
        return text
    head = max_chars * 2 // 3
    tail = max_chars - head
    return f"{text[:head]} … [{len(text) - max_chars} chars] … {text[-tail:]}"


SAMPLE_FIXED_COLUMNS = ("step", "prompt", "completion", "advantage", "image")
# Narrower than this (80 columns, or output redirected to a file), a table squeezes every text into
# a sliver of a column: the completions are printed one after another instead.
WIDE_TABLE_COLUMNS = 120


def print_samples(path: str | Path, n: int = 8, console=None, max_chars: int = 1200) -> int:
    """Print the first `n` completions of one parquet as a table; return how many were shown.

    Rows come in TRL's order, so the first `num_generations` rows are one prompt's group: their
    rewards and advantages side by side show whether the group disagrees (a signal) or not. On a
    console narrower than `WIDE_TABLE_COLUMNS` each completion is a block of full-width text.
    """
    import pandas as pd
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    frame = pd.read_parquet(path)
    score_columns = [c for c in frame.columns if c not in SAMPLE_FIXED_COLUMNS]
    shown = frame.head(n)
    step = int(frame["step"].iloc[0]) if "step" in frame.columns and len(frame) else None
    title = f"step {step}: {len(shown)} of {len(frame)} completions ({Path(path).name})"
    values = [c for c in [*score_columns, "advantage"] if c in frame.columns]
    if console.width < WIDE_TABLE_COLUMNS:
        _print_sample_blocks(console, title, shown, values, max_chars)
        return len(shown)
    table = Table(
        title=title,
        show_lines=True,
        expand=True,
    )
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("prompt (end)", ratio=2, overflow="fold")
    table.add_column("completion", ratio=5, overflow="fold")
    for column in [*score_columns, "advantage"]:
        if column in frame.columns:
            table.add_column(column, justify="right", overflow="fold")
    for index, row in shown.iterrows():
        cells = [str(index), prompt_tail(row.get("prompt")), shorten(completion_text(row.get("completion")), max_chars)]
        cells += [_cell(row[c]) for c in [*score_columns, "advantage"] if c in frame.columns]
        # rich reads [tags] as markup; completions are full of brackets
        table.add_row(*[_escape(c) for c in cells])
    console.print(table)
    return len(shown)


def _print_sample_blocks(console, title: str, rows, value_columns: list[str], max_chars: int) -> None:
    """Each completion as plain text the console's full width: a header line with its scores, the
    end of the prompt, the completion."""
    console.print(title, markup=False, highlight=False)
    for index, row in rows.iterrows():
        scores = "  ".join(f"{column} {_cell(row[column])}" for column in value_columns)
        console.print(f"\n── #{index}  {scores}", markup=False, highlight=False)
        console.print("prompt (end): " + prompt_tail(row.get("prompt")), markup=False, highlight=False)
        console.print(shorten(completion_text(row.get("completion")), max_chars), markup=False, highlight=False)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "None"
    if isinstance(value, float):
        return f"{value:.3g}"
    return value if isinstance(value, str) else str(value)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
