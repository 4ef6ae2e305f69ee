"""`rl-math plot`: training curves and health alarms from a run's output directory.

The Trainer saves its log history in ``OUTPUT_DIR/trainer_state.json`` at the end of training and
in every ``checkpoint-N/trainer_state.json`` on the way; the health monitor's alarms are in the
same history as ``health/<condition>`` keys. :func:`plot_runs` draws one PNG with a panel per concern
(held-out accuracy from :mod:`rl_math.eval.in_run` among them, and the loss for SFT runs),
several runs overlaid::

    runs = [load_run("outputs/qwen0.5b-grpo"), load_run("outputs/qwen1.5b-grpo")]
    plot_runs(runs, "curves.png")

The completions a run logged are shown by :mod:`rl_math.tools.samples`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TRAINER_STATE = "trainer_state.json"
ALARM_PREFIX = "health/"

# (panel id, title, y label): the order they are drawn in, row by row
PANELS: tuple[tuple[str, str, str], ...] = (
    ("reward", "reward: total and per component (mean)", "reward"),
    ("accuracy", "accuracy (rewards/correctness/mean)", "fraction correct"),
    ("length", "completion length (tokens)", "tokens"),
    ("clipped_ratio", "truncated at max_completion_length", "completions/clipped_ratio"),
    ("entropy_kl", "policy entropy and KL to the reference", "entropy"),
    ("zero_std", "groups with zero reward std (no signal)", "frac_reward_zero_std"),
    ("loss", "training loss (SFT, GRPO)", "loss"),
    ("grad_norm", "gradient norm (before clipping)", "grad_norm"),
    ("held_out", "held-out accuracy, greedy (eval_accuracy)", "fraction correct"),
)

# One colour per health condition, the same in every figure (runs use C0, C1, ...)
ALARM_COLORS = {
    "reward_trap": "tab:red",
    "shape_only": "gold",
    "all_truncated": "tab:purple",
    "zero_loss": "black",
    "entropy_blowup": "tab:brown",
    "kl_runaway": "tab:pink",
    "format_hacking": "tab:olive",
    "non_finite": "tab:gray",
    "accuracy_drop": "darkorange",
}


class RunLogError(Exception):
    """A run directory has nothing to read: the message says what is missing and why."""


# ------------------------------------------------------------------------------------------------
# Reading a run


@dataclass
class RunLog:
    """A run's training log: one dict per logging step or in-run evaluation (the final summary dropped)."""

    name: str
    path: Path  # the trainer_state.json read
    history: list[dict[str, Any]]
    alarms: list[tuple[int, str]] = field(default_factory=list)  # (step, condition)

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """Steps and values of `key` where it was logged as a finite number."""
        steps, values = [], []
        for entry in self.history:
            value = entry.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                steps.append(entry["step"])
                values.append(float(value))
        return steps, values

    def reward_components(self) -> list[str]:
        """The reward names logged as `rewards/<name>/mean`, in first-seen order."""
        names: dict[str, None] = {}
        for entry in self.history:
            for key in entry:
                if match := re.fullmatch(r"rewards/(.+)/mean", key):
                    names.setdefault(match.group(1))
        return list(names)


def find_trainer_state(output_dir: str | Path) -> Path:
    """`OUTPUT_DIR/trainer_state.json`, else the one in the newest `checkpoint-N`.

    A path to a trainer_state.json itself is returned as is.
    """
    path = Path(output_dir)
    if path.is_file() and path.name.endswith(".json"):
        return path
    if not path.is_dir():
        raise RunLogError(f"no such directory: {path}")
    if (path / TRAINER_STATE).is_file():
        return path / TRAINER_STATE
    checkpoints = [
        (int(match.group(1)), candidate / TRAINER_STATE)
        for candidate in path.glob("checkpoint-*")
        if (match := re.fullmatch(r"checkpoint-(\d+)", candidate.name)) and (candidate / TRAINER_STATE).is_file()
    ]
    if not checkpoints:
        raise RunLogError(f"no {TRAINER_STATE} in {path} — did the run log anything?")
    return max(checkpoints)[1]


def load_run(output_dir: str | Path, name: str | None = None) -> RunLog:
    """Read a run's log history and alarms.

    >>> import tempfile, json, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp(), "my-run"); d.mkdir()
    >>> _ = (d / "trainer_state.json").write_text(json.dumps({"log_history": [
    ...     {"reward": 0.1, "step": 1}, {"reward": 0.3, "health/reward_trap": 1.0, "step": 2}]}))
    >>> run = load_run(d)
    >>> run.name, run.series("reward"), run.alarms
    ('my-run', ([1, 2], [0.1, 0.3]), [(2, 'reward_trap')])
    """
    state_path = find_trainer_state(output_dir)
    try:
        state = json.loads(state_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise RunLogError(f"cannot read {state_path}: {err}") from None
    entries = state.get("log_history") if isinstance(state, dict) else None
    if not isinstance(entries, list):
        raise RunLogError(f"{state_path} has no log_history — is it a Trainer's state file?")
    # a log with a step; the end-of-training summary (train_runtime, train_loss, ...) is no step's log.
    # In-run evaluations (eval_accuracy, ...) are kept: the held-out panel draws them.
    history = [
        e
        for e in entries
        if isinstance(e, dict)
        and isinstance(e.get("step"), int)
        and not any(k.startswith("train_") for k in e)
    ]
    if not history:
        raise RunLogError(f"{state_path} holds no training logs yet — did the run reach its first logging step?")
    alarms = sorted(
        {(e["step"], k[len(ALARM_PREFIX) :]) for e in history for k, v in e.items() if k.startswith(ALARM_PREFIX) and v}
    )
    return RunLog(name or _run_name(Path(output_dir)), state_path, history, alarms)


def _run_name(path: Path) -> str:
    path = path.resolve()
    if path.is_file():
        path = path.parent
    if re.fullmatch(r"checkpoint-\d+", path.name):
        return f"{path.parent.name}/{path.name}"
    return path.name


def unique_names(names: Sequence[str], paths: Sequence[Path]) -> list[str]:
    """Run names for the legend; equal names get their parent directory prepended."""
    result = list(names)
    for i, name in enumerate(names):
        if names.count(name) > 1:
            result[i] = f"{Path(paths[i]).resolve().parent.name}/{name}"
    return result


# ------------------------------------------------------------------------------------------------
# Drawing


def plot_runs(runs: Sequence[RunLog], out_path: str | Path, title: str | None = None) -> dict[str, str]:
    """Draw the runs' curves into one PNG at `out_path`; return the PNG metadata written.

    The metadata (PNG text chunks) lists the panels, runs and alarms, so a test or a script can
    check a figure without reading pixels: `PIL.Image.open(path).text["rl_math:panels"]`.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a cluster node
    import matplotlib.pyplot as plt

    if not runs:
        raise ValueError("plot_runs needs at least one run")
    rows = math.ceil(len(PANELS) / 2)
    fig, axes = plt.subplots(rows, 2, figsize=(14, 4 * rows), sharex=True)
    for ax in axes.flat[len(PANELS):]:
        ax.set_visible(False)
    axes_by_panel = {panel: ax for (panel, _, _), ax in zip(PANELS, axes.flat)}
    if any(run.series("kl")[0] for run in runs):
        # KL lives on another scale (0.001–1 vs entropy's ~0.1–3): its own axis on the right
        axes_by_panel["kl"] = axes_by_panel["entropy_kl"].twinx()
        axes_by_panel["kl"].set_ylabel("kl")
    many = len(runs) > 1
    for (_panel, panel_title, ylabel), ax in zip(PANELS, axes.flat):
        ax.set_title(panel_title, fontsize=10)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.ticklabel_format(axis="y", useOffset=False)  # "6.2227", not "+6.222" and 0.0007
    for index, run in enumerate(runs):
        _draw_run(axes_by_panel, run, index, many)
    empty: list[str] = []
    for panel, _, _ in PANELS:
        ax = axes_by_panel[panel]
        lines = ax.get_lines() + (axes_by_panel["kl"].get_lines() if panel == "entropy_kl" and "kl" in axes_by_panel else [])
        if lines:
            # many curves (components × runs): two columns, translucent, so the legend hides less
            ax.legend(lines, [line.get_label() for line in lines], fontsize=7, loc="best",
                      ncol=2 if len(lines) > 4 else 1, framealpha=0.7)
        else:
            empty.append(panel)
            ax.text(0.5, 0.5, "not logged", transform=ax.transAxes, ha="center", va="center", color="gray")
        if panel in ("accuracy", "clipped_ratio", "zero_std", "held_out"):
            ax.set_ylim(-0.02, 1.02)  # fractions: a fixed scale makes runs and steps comparable
    for ax in axes.flat[-2:]:
        ax.set_xlabel("step")
        ax.xaxis.set_tick_params(labelbottom=True)
    alarm_labels = _draw_alarms(fig, list(axes.flat), runs, many)
    names = [run.name for run in runs]
    fig.suptitle(title or "rl-math training curves: " + ", ".join(names))
    # fixed margins: tight_layout would cost as much as the drawing itself, for the same result
    fig.subplots_adjust(left=0.07, right=0.97, top=0.93, bottom=0.1 if alarm_labels else 0.06, hspace=0.22, wspace=0.22)
    metadata = {
        "Title": title or "rl-math training curves: " + ", ".join(names),
        "rl_math:panels": ",".join(panel for panel, _, _ in PANELS),
        "rl_math:runs": ",".join(names),
        "rl_math:not_logged": ",".join(empty),
        "rl_math:alarms": ";".join(f"{run.name}:{cond}@{step}" for run in runs for step, cond in run.alarms),
    }
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=100, metadata=metadata)
    plt.close(fig)
    return metadata


def _style(run_index: int, series_index: int, many: bool) -> dict[str, Any]:
    """One run: a colour per series. Several runs: a colour per run, a line style per series."""
    styles = ["-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1))]
    if many:
        return {"color": f"C{run_index % 10}", "linestyle": styles[series_index % len(styles)]}
    return {"color": f"C{series_index % 10}", "linestyle": "-"}


def _draw_run(axes: dict[str, Any], run: RunLog, index: int, many: bool) -> None:
    def line(panel: str, key: str, label: str, series_index: int, **extra) -> None:
        steps, values = run.series(key)
        if steps:
            label = f"{run.name}: {label}" if many else label
            axes[panel].plot(steps, values, label=label, **(_style(index, series_index, many) | extra))

    line("reward", "reward", "total", 0, linewidth=2)
    for i, name in enumerate(run.reward_components(), start=1):
        line("reward", f"rewards/{name}/mean", name, i, linewidth=1)
    line("accuracy", "rewards/correctness/mean", "correctness", 0)
    line("length", "completions/mean_length", "mean", 0)
    line("length", "completions/mean_terminated_length", "mean of terminated", 1)
    line("clipped_ratio", "completions/clipped_ratio", "clipped ratio", 0)
    line("zero_std", "frac_reward_zero_std", "frac_reward_zero_std (TRL)", 0)
    line("zero_std", "groups/no_signal", "groups/no_signal", 1)
    line("zero_std", "groups/shape_only", "groups/shape_only (format-only signal)", 2)
    line("zero_std", "dynamic_sampling/dropped_groups", "dropped by dynamic sampling", 3)
    line("entropy_kl", "entropy", "entropy", 0)
    line("loss", "loss", "loss", 0)
    line("grad_norm", "grad_norm", "grad_norm", 0)
    line("held_out", "eval_accuracy", "eval_accuracy", 0, marker="o", markersize=3)
    if "kl" in axes:
        line("kl", "kl", "kl", 1)


def _draw_alarms(fig, axes, runs: Sequence[RunLog], many: bool) -> list[str]:
    """A vertical line at every alarm on every panel, coloured by condition; one legend at the bottom."""
    handles, labels = [], []
    for run in runs:
        for step, cond in run.alarms:
            for ax in axes:
                color = ALARM_COLORS.get(cond, "tab:cyan")
                handle = ax.axvline(step, color=color, linestyle=(0, (2, 2)), linewidth=1.2, alpha=0.8)
            label = f"alarm {cond}" + (f" ({run.name})" if many else "")
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=8, frameon=False)
    return labels
