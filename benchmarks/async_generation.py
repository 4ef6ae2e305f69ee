"""Synchronous vs asynchronous GRPO on the learning benchmark's GRPO stage, on the same 2 cores.

    python benchmarks/async_generation.py --json results.json                 # seeds 1-3, 150 GRPO steps
    python benchmarks/async_generation.py --quick --seeds 1 2 3 --json r.json # 50 GRPO steps
    python benchmarks/async_generation.py --quick --seeds 2 3 --sync-threads 1  # skip the 2-thread sync run

Per seed, one after another (each run needs both cores): the learning benchmark's SFT model
(configs/learning/sft.yaml from `rl-math:tiny-qwen2?seed=S`), then its GRPO stage
(configs/learning/grpo.yaml) three times from that model with the same data, steps and seed:

- synchronous with 1 and with 2 OpenMP threads (for a model this small 2 can be slower than 1;
  the faster one is the synchronous time compared against; ``--sync-threads 1`` skips the 2-thread
  run where it was measured slower already);
- asynchronous (``async_generation: true``, ``max_staleness: 1``): trainer and sampler process one
  thread each.

Recorded per run: wall time of the recipe's `main()` (model load, training, in-run evaluation,
saving: what a user waits for), the synchronous steps' split into generation + scoring (TRL's
``_generate_and_score_completions``) and training (the rest of ``training_step``), the asynchronous
trainer's wait for rollouts and the sampler's wait for work (``async_rollouts.jsonl``), the largest
rollout age, and the last held-out accuracy on the VALIDATION split (200 questions, greedy, the
in-run evaluation the GRPO config runs; the test split belongs to the learning benchmark). The
ideal overlap bound is max(gen, train) / (gen + train) of the synchronous split.

The JSON (``--json``) is ``{"seeds": {"<seed>": {"sync": {"seconds", "accuracy"}, "async": {"seconds",
"accuracy", "trainer_wait_s", "sampler_wait_s", "max_staleness_seen"}}}, "ratio", "bound"}`` plus
``"details"`` (per seed: both thread settings, the split, step-loop times; machine and load).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from _common import ROOT, header_lines, load_average, offline_env, table
from learning import CONFIGS as LEARNING_CONFIGS
from learning import with_seed

# measured (BENCHMARKS.md section 7) on the learning benchmark v1 configs, kept under configs/learning/v1
CONFIGS = LEARNING_CONFIGS / "v1"
QUICK = {"max_steps": 50, "eval_accuracy_steps": 25}
RUNS = ("sync_1_thread", "sync_2_threads", "async")


def grpo_config(folder: Path, name: str, sft_dir: Path, seed: int, quick: bool) -> Path:
    config = yaml.safe_load((CONFIGS / "grpo.yaml").read_text())
    config.update(model_name_or_path=str(sft_dir), seed=seed, output_dir=str(folder / name))
    if quick:
        config.update(QUICK)
    if name == "async":
        config.update(async_generation=True, max_staleness=1)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run(command: list[str], log: Path, threads: int) -> None:
    env = offline_env(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    with open(log, "w") as handle:
        done = subprocess.run(command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed (exit {done.returncode}); see {log}")


# --------------------------------------------------------------------------------------------
# One GRPO run, instrumented, in its own process


def worker(config: Path, timing_file: Path) -> None:
    """Run recipes/grpo.py CONFIG in this process, timing generation + scoring and training steps."""
    import importlib.util

    import torch
    import trl

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    timing = {"generate_s": 0.0, "train_step_s": 0.0}
    original_generate = trl.GRPOTrainer._generate_and_score_completions
    original_step = trl.GRPOTrainer.training_step

    def generate(self, inputs):
        started = time.perf_counter()
        try:
            return original_generate(self, inputs)
        finally:
            if self.model.training:
                timing["generate_s"] += time.perf_counter() - started

    def training_step(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return original_step(self, *args, **kwargs)
        finally:
            timing["train_step_s"] += time.perf_counter() - started

    trl.GRPOTrainer._generate_and_score_completions = generate
    trl.GRPOTrainer.training_step = training_step
    spec = importlib.util.spec_from_file_location("recipe_grpo", ROOT / "recipes" / "grpo.py")
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    started = time.perf_counter()
    recipe.main([str(config)])
    timing["seconds"] = time.perf_counter() - started
    timing_file.write_text(json.dumps(timing))


def held_out_curve(folder: Path) -> list[list]:
    """[[step, eval_accuracy], ...] as the run logged its in-run evaluations."""
    state = json.loads((folder / "trainer_state.json").read_text())
    return [[e["step"], e["eval_accuracy"]] for e in state["log_history"] if "eval_accuracy" in e]


def result_of(folder: Path) -> dict[str, Any]:
    """What one run measured: wall seconds, validation accuracy, the step split, async waits."""
    timing = json.loads((folder / "timing.json").read_text())
    curve = held_out_curve(folder) or [[None, float("nan")]]
    out = {
        "seconds": round(timing["seconds"], 2),
        "accuracy": curve[-1][1],
        "generate_s": round(timing["generate_s"], 2),  # async: the trainer's wait + scoring + IS forward
        "train_s": round(timing["train_step_s"] - timing["generate_s"], 2),
        "loop_s": round(timing["train_step_s"], 2),
        "curve": curve,
    }
    records_file = folder / "async_rollouts.jsonl"
    if records_file.exists():
        records = [json.loads(line) for line in records_file.read_text().splitlines()]
        out.update(
            trainer_wait_s=round(sum(r["trainer_wait_s"] for r in records), 2),
            sampler_wait_s=round(sum(r["sampler_wait_s"] for r in records), 2),
            sampler_generate_s=round(sum(r["generate_s"] for r in records), 2),
            max_staleness_seen=max(r["age"] for r in records),
            log_ratio_max=max(r["log_ratio_max"] for r in records),
            clipped_frac=statistics.fmean(r["clipped_frac"] for r in records),
        )
    return out


def run_seed(seed: int, out: Path, quick: bool, sync_threads: tuple[int, ...] = (1, 2)) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    sft = yaml.safe_load((CONFIGS / "sft.yaml").read_text())
    sft.update(model_name_or_path=with_seed(sft["model_name_or_path"], seed), seed=seed, output_dir=str(out / "sft"))
    (out / "sft.yaml").write_text(yaml.safe_dump(sft, sort_keys=False))
    run([sys.executable, str(ROOT / "recipes" / "sft.py"), str(out / "sft.yaml")], out / "sft.log", threads=1)
    results = {}
    skipped = {f"sync_{t}_thread{'s' if t > 1 else ''}" for t in (1, 2) if t not in sync_threads}
    for name in (n for n in RUNS if n not in skipped):
        config = grpo_config(out, name, out / "sft", seed, quick)
        load_before = load_average()
        threads = 2 if name == "sync_2_threads" else 1
        run([sys.executable, str(Path(__file__).resolve()), "--worker", str(config), "--out", str(out / name)],
            out / f"{name}.log", threads)
        results[name] = {**result_of(out / name), "load_before": load_before, "load_after": load_average()}
        print(f"seed {seed} {name}: {results[name]['seconds']:.1f} s, validation accuracy "
              f"{100 * results[name]['accuracy']:.1f} %", flush=True)
    return results


def overlap_bound(generate_s: float, train_s: float) -> float:
    """The best async/sync wall-time ratio perfect overlap allows: max(gen, train) / (gen + train).

    >>> overlap_bound(7.2, 2.8)
    0.72
    """
    return max(generate_s, train_s) / (generate_s + train_s)


def fastest_sync(runs: dict[str, Any]) -> dict[str, Any]:
    """The faster of the synchronous runs measured (1 and/or 2 threads)."""
    return min((runs[name] for name in RUNS[:2] if name in runs), key=lambda r: r["seconds"])


def summarise(per_seed: dict[int, dict[str, Any]]) -> dict[str, Any]:
    seeds, details, ratios, bounds = {}, {}, [], []
    for seed, runs in per_seed.items():
        sync = fastest_sync(runs)
        asyn = runs["async"]
        seeds[str(seed)] = {
            "sync": {"seconds": sync["seconds"], "accuracy": sync["accuracy"]},
            "async": {key: asyn[key] for key in ("seconds", "accuracy", "trainer_wait_s", "sampler_wait_s",
                                                 "max_staleness_seen")},
        }
        details[str(seed)] = runs
        ratios.append(asyn["seconds"] / sync["seconds"])
        bounds.append(overlap_bound(sync["generate_s"], sync["train_s"]))
    return {"seeds": seeds, "ratio": round(statistics.fmean(ratios), 3), "bound": round(statistics.fmean(bounds), 3),
            "details": details}


def format_table(report: dict[str, Any]) -> str:
    rows = []
    for seed, runs in report["details"].items():
        s1, s2, a, sync = runs.get("sync_1_thread"), runs.get("sync_2_threads"), runs["async"], fastest_sync(runs)
        rows.append([seed, f"{s1['seconds']:.1f}" if s1 else "-", f"{s2['seconds']:.1f}" if s2 else "-",
                     f"{a['seconds']:.1f}", f"{sync['generate_s']:.1f} / {sync['train_s']:.1f}",
                     f"{a['trainer_wait_s']:.1f}", f"{a['sampler_wait_s']:.1f}", str(a["max_staleness_seen"]),
                     f"{100 * sync['accuracy']:.1f}", f"{100 * a['accuracy']:.1f}"])
    return table(rows, ["seed", "sync 1 thr s", "sync 2 thr s", "async s", "fastest sync gen / train s",
                        "trainer wait s", "sampler wait s", "max age", "sync acc %", "async acc %"])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="model seeds (default 1-3)")
    parser.add_argument("--quick", action="store_true", help=f"GRPO shortened to {QUICK['max_steps']} steps")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "async-generation-benchmark")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--sync-threads", type=int, nargs="+", choices=(1, 2), default=[1, 2],
                        help="OpenMP threads of the synchronous runs (default both: the faster counts)")
    parser.add_argument("--merge", type=Path, nargs="+", help="summarise earlier --json files together, run nothing")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        worker(args.worker, args.out / "timing.json")
        return {}

    if args.merge:
        parts = [json.loads(path.read_text()) for path in args.merge]
        per_seed = {seed: runs for part in parts for seed, runs in part["details"].items() if seed.isdigit()}
        report = summarise(per_seed)
        report["details"]["parts"] = [{key: part["details"].get(key) for key in ("header", "load_at_end", "quick")}
                                      for part in parts]
    else:
        header = header_lines()
        print("\n".join(header), flush=True)
        per_seed = {seed: run_seed(seed, args.out / f"seed_{seed}", args.quick, tuple(args.sync_threads))
                    for seed in args.seeds}
        report = summarise(per_seed)
        report["details"]["header"] = header
        report["details"]["load_at_end"] = load_average()
        report["details"]["quick"] = args.quick
    details = {k: v for k, v in report["details"].items() if k.isdigit()}
    print("\n" + format_table({"details": details}))
    print(f"ratio async/sync wall time (mean over seeds) {report['ratio']:.3f}; ideal overlap bound {report['bound']:.3f}")
    print(f"load average {load_average()} (1, 5, 15 min) at end")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return report


if __name__ == "__main__":
    main()
