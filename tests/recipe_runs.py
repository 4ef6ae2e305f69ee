"""Helpers to run a recipe as users do (a subprocess), offline, and read what it logged."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def offline_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        WANDB_MODE="disabled",
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join([str(FIXTURES), env.get("PYTHONPATH", "")]),
    )
    env.pop("ACCELERATE_USE_CPU", None)  # would silently turn DeepSpeed launches into plain DDP
    env.update(extra)
    return env


def ok(result):
    """A finished recipe run that exited 0, else the tails of its output in the failure."""
    assert result.returncode == 0, f"recipe failed:\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}"
    return result


def run_recipe(recipe: str, *args: str, **kwargs):
    """Run `recipes/<recipe>.py ARGS` from the repository root; return the CompletedProcess."""
    return run_script(REPO_ROOT / "recipes" / f"{recipe}.py", *args, **kwargs)


def run_probe(recipe: str, *args: str, **kwargs):
    """Run a recipe under tests/fixtures/recipe_probe.py (writes per-rank reports to $PROBE_DIR)."""
    return run_script(FIXTURES / "recipe_probe.py", str(REPO_ROOT / "recipes" / f"{recipe}.py"), *args, **kwargs)


def run_script(script, *args: str, launcher: tuple[str, ...] = (sys.executable,), timeout: int = 600, env=None):
    command = [*launcher, str(script), *args]
    return subprocess.run(
        command, cwd=REPO_ROOT, env=env or offline_env(), capture_output=True, text=True, timeout=timeout
    )


def log_history(output_dir) -> list[dict]:
    return json.loads((Path(output_dir) / "trainer_state.json").read_text())["log_history"]


def metric_series(output_dir, name: str) -> list[float]:
    return [entry[name] for entry in log_history(output_dir) if name in entry]


def accelerate_launch(num_processes: int, port: int, config_file: str | None = None) -> tuple[str, ...]:
    """`accelerate launch` for N local processes; a DeepSpeed config file, or CPU data-parallel."""
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(num_processes),
                "--num_machines", "1", "--main_process_port", str(port)]
    if config_file:
        launcher += ["--config_file", config_file]
    else:
        launcher += ["--multi_gpu", "--mixed_precision", "no", "--dynamo_backend", "no"]
    return tuple(launcher)
