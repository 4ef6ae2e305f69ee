"""`rl-math plot` and `rl-math samples` on synthetic run directories laid out as the Trainer and TRL write them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from rl_math.cli import main

PANELS = "reward,accuracy,length,clipped_ratio,entropy_kl,zero_std,loss,grad_norm,held_out"


def grpo_log(step: int, **extra) -> dict:
    """One log_history entry as GRPOTrainer + Trainer 5.23 save it."""
    return {
        "loss": 0.01,
        "grad_norm": 0.5,
        "learning_rate": 1e-6,
        "completions/mean_length": 100.0 + step,
        "completions/mean_terminated_length": 90.0 + step,
        "completions/clipped_ratio": 0.1,
        "rewards/correctness/mean": 0.1 + 0.01 * step,
        "rewards/correctness/std": 0.3,
        "rewards/boxed_format/mean": 0.5,
        "rewards/boxed_format/std": 0.5,
        "reward": 0.2 + 0.01 * step,
        "reward_std": 0.3,
        "frac_reward_zero_std": 0.2,
        "entropy": 0.7,
        "kl": 0.001 * step,
        "epoch": step / 100,
        "step": step,
        **extra,
    }


def write_run(directory: Path, steps=range(1, 11), alarms: dict[int, str] | None = None) -> Path:
    alarms = alarms or {}
    history = [grpo_log(s, **({f"health/{alarms[s]}": 1.0} if s in alarms else {})) for s in steps]
    history.append({"eval_loss": 0.3, "epoch": 0.1, "step": 10})  # an eval entry: not a training curve
    history.append({"train_runtime": 12.5, "train_loss": 0.01, "epoch": 0.1, "step": 10})  # the final summary
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "trainer_state.json").write_text(json.dumps({"global_step": max(steps), "log_history": history}))
    return directory


def png_text(path: Path) -> dict[str, str]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return dict(image.text)


# ------------------------------------------------------------------------------------------------
# plot


def test_plot_writes_a_png_with_every_panel(tmp_path, capsys):
    run = write_run(tmp_path / "run-a")
    assert main(["plot", str(run), "-o", str(tmp_path / "curves.png")]) == 0
    text = png_text(tmp_path / "curves.png")
    assert text["rl_math:panels"] == PANELS
    assert text["rl_math:runs"] == "run-a"
    assert f"wrote {tmp_path / 'curves.png'}" in capsys.readouterr().out


def test_plot_draws_the_held_out_accuracy_the_run_logged(tmp_path):
    run = write_run(tmp_path / "run-a")
    history = json.loads((run / "trainer_state.json").read_text())
    history["log_history"][:0] = [{"eval_accuracy": 0.25, "step": 0}]
    history["log_history"].insert(-1, {"eval_accuracy": 0.5, "eval_seconds": 3.0, "step": 10})  # in-run evaluations
    (run / "trainer_state.json").write_text(json.dumps(history))
    assert main(["plot", str(run), "-o", str(tmp_path / "c.png")]) == 0
    assert "held_out" not in png_text(tmp_path / "c.png")["rl_math:not_logged"].split(",")


def test_plot_defaults_to_curves_png_in_the_output_dir(tmp_path):
    run = write_run(tmp_path / "run-a")
    assert main(["plot", str(run)]) == 0
    assert png_text(run / "curves.png")["rl_math:runs"] == "run-a"


def test_plot_records_alarm_positions(tmp_path, capsys):
    run = write_run(tmp_path / "run-a", alarms={4: "reward_trap", 9: "all_truncated"})
    main(["plot", str(run), "-o", str(tmp_path / "c.png")])
    assert png_text(tmp_path / "c.png")["rl_math:alarms"] == "run-a:reward_trap@4;run-a:all_truncated@9"
    assert "alarms: run-a:reward_trap@4, run-a:all_truncated@9" in capsys.readouterr().out


def test_plot_overlays_two_runs_named_by_directory(tmp_path):
    a = write_run(tmp_path / "lr1e-6", alarms={3: "kl_runaway"})
    b = write_run(tmp_path / "lr3e-6", steps=range(1, 6))
    assert main(["plot", str(a), str(b), "-o", str(tmp_path / "both.png")]) == 0
    text = png_text(tmp_path / "both.png")
    assert text["rl_math:runs"] == "lr1e-6,lr3e-6"
    assert text["rl_math:alarms"] == "lr1e-6:kl_runaway@3"


def test_plot_tells_apart_runs_with_the_same_name(tmp_path):
    a = write_run(tmp_path / "sweep1" / "grpo")
    b = write_run(tmp_path / "sweep2" / "grpo")
    main(["plot", str(a), str(b), "-o", str(tmp_path / "both.png")])
    assert png_text(tmp_path / "both.png")["rl_math:runs"] == "sweep1/grpo,sweep2/grpo"


def test_plot_reads_the_newest_checkpoint_when_training_has_not_finished(tmp_path):
    run = tmp_path / "run"
    write_run(run / "checkpoint-9", steps=range(1, 10))
    write_run(run / "checkpoint-10", steps=range(1, 11), alarms={10: "zero_loss"})  # newest: 10 > 9, not "10" < "9"
    main(["plot", str(run), "-o", str(tmp_path / "c.png")])
    assert png_text(tmp_path / "c.png")["rl_math:alarms"] == "run:zero_loss@10"


def test_plot_draws_a_run_without_kl_or_correctness(tmp_path):
    run = tmp_path / "sft"
    run.mkdir()
    history = [{"loss": 2.0 - 0.1 * s, "grad_norm": 1.0, "step": s} for s in range(1, 6)]
    (run / "trainer_state.json").write_text(json.dumps({"log_history": history}))
    assert main(["plot", str(run), "-o", str(tmp_path / "c.png")]) == 0
    assert png_text(tmp_path / "c.png")["rl_math:panels"] == PANELS


def test_every_health_condition_has_its_own_alarm_colour():
    from rl_math.tools.curves import ALARM_COLORS
    from rl_math.train.health import CONDITIONS

    assert set(ALARM_COLORS) == set(CONDITIONS)
    assert len(set(ALARM_COLORS.values())) == len(ALARM_COLORS)


def test_plot_without_trainer_state_exits_2_with_a_clear_message(tmp_path, capsys):
    empty = tmp_path / "empty-run"
    empty.mkdir()
    assert main(["plot", str(empty)]) == 2
    err = capsys.readouterr().err
    assert err == f"rl-math plot: error: no trainer_state.json in {empty} — did the run log anything?\n"


def test_plot_of_a_missing_directory_exits_2(tmp_path, capsys):
    assert main(["plot", str(tmp_path / "nope")]) == 2
    assert "no such directory" in capsys.readouterr().err


def test_plot_of_a_run_with_no_training_logs_yet_exits_2(tmp_path, capsys):
    run = tmp_path / "early"
    run.mkdir()
    (run / "trainer_state.json").write_text(json.dumps({"log_history": []}))
    assert main(["plot", str(run)]) == 2
    assert "holds no training logs yet" in capsys.readouterr().err


def test_console_script_reports_without_a_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "rl_math.cli", "plot", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "did the run log anything?" in result.stderr
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------------------------------------
# samples


def write_completions(run: Path, step: int, n: int = 4, completion: str | None = None) -> Path:
    """A parquet with the columns GRPOTrainer._log writes: step, prompt, completion, <rewards>, advantage."""
    table = {
        "step": [step] * n,
        "prompt": [
            [
                {"role": "system", "content": "Please reason step by step, and put your final answer within \\boxed{}."},
                {"role": "user", "content": f"Question {i}: what is {i} + 9?"},
            ]
            for i in range(n)
        ],
        "completion": [
            [{"role": "assistant", "content": completion or f"{i} + 9 = {i + 9}, so [the answer] is \\boxed{{{i + 9}}}."}]
            for i in range(n)
        ],
        "correctness": [1.0, 0.0, 1.0, None][:n] + [0.0] * max(0, n - 4),
        "boxed_format": [1.0] * n,
        "advantage": [0.8660, -0.8660, 0.8660, -0.8660][:n] + [0.0] * max(0, n - 4),
    }
    folder = run / "completions"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"completions_{step:05d}.parquet"
    pd.DataFrame(table).to_parquet(path)
    return path


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    """rich wraps to the terminal width (80 without a terminal): make room so texts stay on one line."""
    monkeypatch.setenv("COLUMNS", "220")


def test_samples_shows_completions_rewards_and_advantages(tmp_path, capsys):
    write_completions(tmp_path, step=3)
    assert main(["samples", str(tmp_path), "--n", "3"]) == 0
    out = capsys.readouterr().out
    assert "step 3: 3 of 4 completions (completions_00003.parquet)" in out
    assert "Question 2: what is 2 + 9?" in out
    assert "[the answer]" in out  # brackets are text, not rich markup
    assert "\\boxed{11}" in out
    for header in ("correctness", "boxed_format", "advantage"):
        assert header in out
    assert "-0.866" in out
    assert "Question 3" not in out  # --n 3


def test_samples_shows_a_missing_reward_as_none(tmp_path, capsys):
    write_completions(tmp_path, step=3)
    main(["samples", str(tmp_path)])
    assert "None" in capsys.readouterr().out


def test_samples_defaults_to_the_newest_step(tmp_path, capsys):
    write_completions(tmp_path, step=9)
    write_completions(tmp_path, step=10)
    main(["samples", str(tmp_path)])
    assert "step 10:" in capsys.readouterr().out


def test_samples_picks_the_step_asked_for(tmp_path, capsys):
    write_completions(tmp_path, step=9)
    write_completions(tmp_path, step=10)
    main(["samples", str(tmp_path), "--step", "9"])
    assert "step 9:" in capsys.readouterr().out


def test_samples_for_an_unlogged_step_lists_the_logged_ones(tmp_path, capsys):
    write_completions(tmp_path, step=5)
    write_completions(tmp_path, step=10)
    assert main(["samples", str(tmp_path), "--step", "7"]) == 2
    assert "no completions for step 7" in capsys.readouterr().err


def test_samples_wraps_and_shortens_a_looping_completion(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    write_completions(tmp_path, step=1, completion="The answer is \\boxed{18}. " * 300)
    main(["samples", str(tmp_path), "--n", "1", "--max-chars", "400"])
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 100
    assert "chars] …" in out  # head and tail kept, the middle elided


def test_samples_at_80_columns_prints_each_completion_as_full_width_text(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")  # what a redirected output gets too
    write_completions(tmp_path, step=3)
    main(["samples", str(tmp_path), "--n", "2"])
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "── #1  correctness 0  boxed_format 1  advantage -0.866" in out
    assert "prompt (end): Question 1: what is 1 + 9?" in out
    assert "1 + 9 = 10, so [the answer] is \\boxed{10}." in out


def test_samples_without_logged_completions_says_how_to_get_them(tmp_path, capsys):
    assert main(["samples", str(tmp_path)]) == 2
    assert "set log_completions: true" in capsys.readouterr().err
