"""Start-up: seconds from the command to the first finished training step, split into phases.

    python benchmarks/startup.py                 # configs/smoke.yaml, 3 rounds
    python benchmarks/startup.py --repeats 1     # quick

Each round starts, in fresh processes: `recipes/grpo.py CONFIG` (ours), the bare GRPOTrainer script
on the same YAML (benchmarks/bare_grpo.py), and a few bare imports (`import rl_math`,
`import rl_math.rewards`, `import trl`, `import torch`, and the module-level imports of
recipes/grpo.py and of benchmarks/bare_grpo.py on their own), in alternating order. Phases, from
wall-clock marks the run writes (benchmarks/_worker.py):

  interpreter    command → the script's first line (python start-up, site-packages)
  imports        the recipe's imports (trl, transformers, torch, datasets, rl_math ...)
  config + data  argv/YAML parsing and checks, tokenizer, dataset, rewards (up to the trainer)
  model load     TRL's create_model_from_path inside GRPOTrainer.__init__
  trainer init   the rest of GRPOTrainer.__init__ (accelerator, reference model, callbacks)
  train setup    trainer.train() up to the first on_step_begin (optimizer, dataloader, hooks)
  first step     the first optimizer step (generation, rewards, backward, step)

The offline tiny model is built once before timing (it is cached in ~/.cache/rl_math); its
build is not part of any phase. Medians over the rounds, with min-max spread.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, median, offline_env, print_footer, print_header, spread, table  # noqa: E402

PHASES = (
    ("interpreter", "process_start", "interpreter_ready"),
    ("imports", "interpreter_ready", "imports_done"),
    ("config + data", "main_start", "trainer_init_start"),
    ("model load", "model_load_start", "model_load_end"),
    ("trainer init (rest)", None, None),
    ("train setup", "trainer_init_end", "first_step_begin"),
    ("first step", "first_step_begin", "first_step_end"),
)
IMPORTS = ("rl_math", "rl_math.rewards", "rl_math.config", "trl", "torch", "recipes/grpo.py", "benchmarks/bare_grpo.py")
HEAVY = ("torch", "transformers", "trl", "datasets", "math_verify", "sympy")
PROBE = """
import sys, time, json
start = time.perf_counter()
{statement}
seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "heavy": [m for m in {heavy!r} if m in sys.modules], "modules": len(sys.modules)}}))
"""


def run_recipe(variant: str, config: str, workdir: Path) -> dict:
    from recipe_overhead import run_worker

    return run_worker(variant, config, 1, workdir, threads=1, extra=[])


def phases(run: dict) -> dict[str, float]:
    marks = dict(run["marks"], process_start=run["process_start"])
    out = {}
    for name, start, end in PHASES:
        if start is None:
            continue
        out[name] = marks[end] - marks[start]
    init = marks["trainer_init_end"] - marks["trainer_init_start"]
    out["trainer init (rest)"] = init - out["model load"]
    out["total to first step"] = marks["first_step_end"] - marks["process_start"]
    return out


def probe_import(module: str) -> dict:
    started = time.perf_counter()
    if module.endswith(".py"):  # a script's module-level imports, as its command pays them
        statement = (
            "import importlib.util; sys.path[:0] = ['src', 'benchmarks']; "
            f"spec = importlib.util.spec_from_file_location('probe', {module!r}); "
            "spec.loader.exec_module(importlib.util.module_from_spec(spec))"
        )
    else:
        statement = f"import {module}"
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(statement=statement, heavy=HEAVY)],
        cwd=ROOT, env=offline_env(OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=300,
    )
    if result.returncode != 0:
        raise SystemExit(f"import {module} failed:\n{result.stderr[-2000:]}")
    data = json.loads(result.stdout.strip().splitlines()[-1])
    data["process"] = time.perf_counter() - started
    return data


def _importtime(code: str) -> list[tuple[str, float]]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=ROOT, env=offline_env(), capture_output=True, text=True, timeout=300,
    )
    entries = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self_us, cumulative_us, name = line[len("import time:") :].split("|", 2)
        entries.append((name.strip(), int(cumulative_us) / 1e6))
    return entries


def importtime_top(module: str, count: int = 6) -> list[tuple[str, float]]:
    """The slowest imports (cumulative s) that `import module` adds to a bare interpreter's start-up."""
    startup = {name for name, _ in _importtime("pass")}
    entries = [e for e in _importtime(f"import {module}") if e[0] not in startup]
    return sorted(entries, key=lambda e: -e[1])[:count]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/smoke.yaml", help="recipe YAML (default: configs/smoke.yaml)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds (default: 3)")
    args = parser.parse_args(argv)

    print("start-up: command → first training step, and bare imports")
    print_header()
    print(f"setup        {args.config}, {args.repeats} round(s), fresh processes, alternating order\n")
    sys.path.insert(0, str(ROOT / "src"))
    from rl_math.models.tiny_qwen2 import ensure_tiny_model

    ensure_tiny_model()  # built once, outside the timings

    workdir = Path(tempfile.mkdtemp(prefix="rl-math-startup-"))
    runs: dict[str, list[dict]] = {"ours": [], "bare": []}
    probes: dict[str, list[dict]] = {m: [] for m in IMPORTS}
    for round_index in range(args.repeats):
        order = ("ours", "bare") if round_index % 2 == 0 else ("bare", "ours")
        for variant in order:
            runs[variant].append(phases(run_recipe(variant, args.config, workdir)))
        for module in IMPORTS if round_index % 2 == 0 else reversed(IMPORTS):
            probes[module].append(probe_import(module))
        print(
            f"  round {round_index + 1}: ours {runs['ours'][-1]['total to first step']:.2f} s, "
            f"bare {runs['bare'][-1]['total to first step']:.2f} s"
        )
        sys.stdout.flush()

    names = [name for name, _, _ in PHASES] + ["total to first step"]
    rows = []
    for name in names:
        ours = [r[name] for r in runs["ours"]]
        bare = [r[name] for r in runs["bare"]]
        rows.append([name, f"{median(ours):.2f}", spread(ours), f"{median(bare):.2f}", spread(bare), f"{median(ours) - median(bare):+.2f}"])
    print()
    print(table(rows, ["phase (s)", "ours", "ours spread", "bare", "bare spread", "ours - bare"]))

    rows = []
    for module in IMPORTS:
        samples = probes[module]
        heavy = sorted({m for s in samples for m in s["heavy"]})
        rows.append([
            f"import {module}" if not module.endswith(".py") else f"{module}'s imports", f"{median(s['seconds'] for s in samples):.3f}", spread(s["seconds"] for s in samples),
            f"{median(s['process'] for s in samples):.3f}", str(samples[0]["modules"]), ", ".join(heavy) or "none",
        ])
    print()
    print(table(rows, ["import alone", "import s", "spread", "process s", "modules", "heavy modules it loads"]))

    for module in ("rl_math.rewards", "rl_math"):
        top = importtime_top(module)
        print(f"\nslowest imports under `python -X importtime -c 'import {module}'` (cumulative s):")
        for name, seconds in top:
            print(f"  {seconds:7.3f}  {name}")
    print_footer()
    import shutil

    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
