"""Does the pipeline teach math? base → SFT → expert iteration / GRPO, with controls that must fail.

    python benchmarks/learning.py                                  # 5 seeds, the answer-only task
    python benchmarks/learning.py --seeds 1 2 3 --json results.json
    python benchmarks/learning.py --variant worked                 # worked solution before the box
    python benchmarks/learning.py --quick --seeds 1                # the CI test's shortened protocol
    python benchmarks/learning.py --set grpo.learning_rate=3e-4    # any field of any stage

Everything runs offline on CPU through the project's own recipes and configs
(`configs/learning/*.yaml`): a tiny Qwen2 model (`rl-math:tiny-qwen2?seed=S`, a different
initialisation per seed) is trained from scratch with SFT on `rl-math:arithmetic` word problems,
then, from that SFT model,

- `ei`: expert iteration (configs/learning/ei.yaml);
- `grpo`: GRPO with the real reward mix (correctness 1.0, boxed_format 0.2, termination 0.2);
- `negated`: the same GRPO with correctness's weight negated — must lose accuracy;
- `shuffled`: the same GRPO on a copy of the train split whose gold answers are permuted among
  the questions — must not gain beyond noise.

Every model (the random `base` too) is evaluated by recipes/evaluate.py on the same held-out test
questions, greedy. Each seed runs in its own process with one thread; `--workers` seeds at a time.
Prints one table (accuracy mean ± sample std and [min, max] over seeds per stage, gain over SFT,
EOS and truncation rates, wall time per stage) and writes `--json` (per seed and stage: accuracy as
a fraction, rates, seconds) and `--figure` (held-out accuracy per stage, one line per seed).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from _common import ROOT, header_lines, offline_env, table

CONFIGS = ROOT / "configs" / "learning"
STAGES = ("base", "sft", "ei", "grpo", "negated", "shuffled")
TRAINED_FROM_SFT = ("ei", "grpo", "negated", "shuffled")
# Variants change the task and the token budgets; every other field comes from the configs.
VARIANTS: dict[str, dict[str, dict[str, Any]]] = {
    "answer-only": {},
    # most GRPO groups all wrong: where shaping rewards can pay for format alone (the reward trap)
    "hard": {
        "all": {"dataset_name": "rl-math:arithmetic?operations=add,sub,mul&max_operand=12&train_size=2000&test_size=1000"},
    },
    "worked": {
        "all": {"dataset_name": "rl-math:arithmetic?operations=add&max_operand=9&worked=true&train_size=2000&test_size=1000"},
        "grpo": {"max_completion_length": 40},
        "ei": {"ei_max_new_tokens": 40},
        "eval": {"max_new_tokens": 40},
    },
}
# --quick: the CI test's protocol: one seed, fewer GRPO steps, a smaller held-out set.
QUICK: dict[str, dict[str, Any]] = {
    "eval": {"max_eval_samples": 400},
    # checkpoints every 25 steps, keeping 1: the best-accuracy one must survive the pruning
    "grpo": {"max_steps": 100, "save_strategy": "steps", "save_steps": 25, "save_total_limit": 1},
}


def stage_config(stage: str) -> Path:
    return CONFIGS / {"sft": "sft.yaml", "ei": "ei.yaml", "eval": "eval.yaml"}.get(stage, "grpo.yaml")


def with_seed(model_name: str, seed: int) -> str:
    """`rl-math:tiny-qwen2?hidden_size=96` → `rl-math:tiny-qwen2?hidden_size=96&seed=3`."""
    base, _, query = model_name.partition("?")
    params = [p for p in query.split("&") if p and not p.startswith("seed=")]
    return f"{base}?{'&'.join([*params, f'seed={seed}'])}"


def overrides_for(stage: str, settings: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The fields a stage gets from the variant, --quick and --set (later ones win)."""
    family = "grpo" if stage in ("grpo", "negated", "shuffled") else stage
    merged: dict[str, Any] = {}
    for scope in ("all", family, stage):
        merged.update(settings.get(scope, {}))
    return merged


def stage_value(stage: str, key: str, settings: dict[str, dict[str, Any]]) -> Any:
    """One field as the stage runs it: overridden (variant, --quick, --set), else from its config."""
    overrides = overrides_for(stage, settings)
    return overrides[key] if key in overrides else yaml.safe_load(stage_config(stage).read_text())[key]


def argv_for(stage: str, fields: dict[str, Any], folder: Path) -> list[str]:
    """Write the stage's config with the fields merged in (folder/STAGE.yaml, re-runnable as is); its argv."""
    config = yaml.safe_load(stage_config(stage).read_text())
    config.update({key: str(value) if isinstance(value, Path) else value for key, value in fields.items()})
    path = folder / f"{stage}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return [str(path)]


def negated_rewards(settings: dict[str, dict[str, Any]]) -> list[dict]:
    """The GRPO stage's reward list (its config's, or --set grpo.rewards) with correctness's weight negated."""
    specs = stage_value("grpo", "rewards", settings)
    return [dict(s, weight=-s.get("weight", 1.0), negative_weight_ok=True) if s["name"] == "correctness" else s
            for s in specs]


def write_shuffled_split(dataset_name: str, folder: Path, seed: int) -> str:
    """The task as files, its train split's gold answers permuted among questions (the same questions,
    wrong labels); the validation and test splits keep their true answers."""
    from rl_math.tasks.loading import load_problems

    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "validation", "test"):
        rows = load_problems(dataset_name, split).to_list()
        answers = [r["answer"] for r in rows]
        if split == "train":
            random.Random(seed).shuffle(answers)
        with open(folder / f"{split}.jsonl", "w") as f:
            for row, answer in zip(rows, answers):
                f.write(json.dumps({"question": row["question"], "answer": answer}) + "\n")
    return str(folder)


# --------------------------------------------------------------------------------------------
# One seed, in its own process


@functools.cache
def _recipe(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"recipe_{name}", ROOT / "recipes" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_seed(seed: int, out: Path, settings: dict[str, dict[str, Any]], stages: list[str]) -> dict[str, Any]:
    """Train every stage for one seed and evaluate all models; returns {stage: metrics}."""
    import torch

    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    base = with_seed(stage_value("sft", "model_name_or_path", settings), seed)
    dataset_name = stage_value("grpo", "dataset_name", settings)
    seconds: dict[str, float] = {}
    models = {"base": base}

    def timed(stage: str, recipe: str, fields: dict[str, Any]) -> None:
        started = time.time()
        argv = argv_for(stage, {**overrides_for(stage, settings), **fields}, out)
        print(f"[seed {seed}] {stage}: {recipe}.py {' '.join(argv)}", flush=True)
        _recipe(recipe).main(argv)
        seconds[stage] = round(time.time() - started, 1)

    sft_dir = out / "sft"
    timed("sft", "sft", {"model_name_or_path": base, "output_dir": sft_dir, "seed": seed})
    models["sft"] = str(sft_dir)
    common = {"model_name_or_path": str(sft_dir), "seed": seed}
    if "ei" in stages:
        timed("ei", "expert_iteration", {**common, "output_dir": out / "ei"})
        rounds = json.loads((out / "ei" / "rounds.json").read_text())
        models["ei"] = rounds[-1]["model_path"]
    if "grpo" in stages:
        timed("grpo", "grpo", {**common, "output_dir": out / "grpo"})
        models["grpo"] = str(out / "grpo")
    if "negated" in stages:
        fields = {**common, "output_dir": out / "negated", "rewards": negated_rewards(settings)}
        timed("negated", "grpo", fields)
        models["negated"] = str(out / "negated")
    if "shuffled" in stages:
        shuffled = write_shuffled_split(dataset_name, out / "shuffled_data", seed)
        timed("shuffled", "grpo", {**common, "output_dir": out / "shuffled", "dataset_name": shuffled})
        models["shuffled"] = str(out / "shuffled")

    timed("eval", "evaluate", {"model_name_or_path": list(models.values()), "output_dir": out / "eval"})
    eval_seconds = seconds.pop("eval")
    by_path = {m["path"]: m for m in json.loads((out / "eval" / "metrics.json").read_text())["models"].values()}
    results = {}
    for stage, path in models.items():
        metrics = by_path[path]
        results[stage] = {
            "accuracy": metrics["accuracy"],
            "eos_rate": metrics["eos_rate"],
            "truncation_rate": metrics["truncation_rate"],
            "well_formed_rate": metrics["well_formed_rate"],
            "mean_completion_tokens": metrics["mean_completion_tokens"],
            "seconds": seconds.get(stage, 0.0),
            **in_run_record(Path(path)),
        }
    results["_eval_seconds"] = eval_seconds
    return results


def in_run_record(model_dir: Path) -> dict[str, Any]:
    """What a trained stage logged about itself: held-out accuracy over steps, why it stopped, eval overhead."""
    state_file, final_file = model_dir / "trainer_state.json", model_dir / "final_metrics.json"
    if not state_file.is_file():
        return {}
    state = json.loads(state_file.read_text())
    history = state["log_history"]
    final = json.loads(final_file.read_text()) if final_file.is_file() else {}
    evals = [e for e in history if "eval_accuracy" in e]
    record: dict[str, Any] = {"steps": final.get("step") or max((e.get("step", 0) for e in history), default=0)}
    if evals:
        record["held_out_curve"] = [[e["step"], e["eval_accuracy"]] for e in evals]
        runtime = final.get("train_runtime")
        if runtime:
            record["eval_overhead"] = sum(e.get("eval_seconds", 0.0) for e in evals) / runtime
    if final.get("stop_reason"):
        record["stop_reason"] = final["stop_reason"]
    if state.get("best_model_checkpoint"):
        best = Path(state["best_model_checkpoint"])
        record["best_checkpoint"] = {"step": state.get("best_global_step"), "accuracy": state.get("best_metric"),
                                     "kept": best.is_dir()}
    return record


# --------------------------------------------------------------------------------------------
# Many seeds, summarised


def summarize(per_seed: dict[int, dict[str, Any]], stages: list[str]) -> dict[str, dict[str, Any]]:
    summary = {}
    for stage in stages:
        values = [r[stage]["accuracy"] for r in per_seed.values() if stage in r]
        if not values:
            continue
        row: dict[str, Any] = {
            "mean": statistics.mean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values),
            "max": max(values),
            "eos_rate": statistics.mean(r[stage]["eos_rate"] for r in per_seed.values() if stage in r),
            "truncation_rate": statistics.mean(r[stage]["truncation_rate"] for r in per_seed.values() if stage in r),
            "seconds": statistics.mean(r[stage]["seconds"] for r in per_seed.values() if stage in r),
        }
        if stage != "sft" and all("sft" in r for r in per_seed.values()):
            gains = [r[stage]["accuracy"] - r["sft"]["accuracy"] for r in per_seed.values() if stage in r]
            row |= {"gain_mean": statistics.mean(gains), "gain_min": min(gains), "gain_max": max(gains),
                    "seeds_gained": sum(g > 0 for g in gains)}
        summary[stage] = row
    return summary


def format_table(summary: dict[str, dict[str, Any]], n_seeds: int) -> str:
    rows = []
    for stage, s in summary.items():
        gain = (f"{100 * s['gain_mean']:+.1f} [{100 * s['gain_min']:+.1f}, {100 * s['gain_max']:+.1f}] "
                f"{s['seeds_gained']}/{n_seeds}") if "gain_mean" in s else ""
        rows.append([
            stage,
            f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f}",
            f"[{100 * s['min']:.1f}, {100 * s['max']:.1f}]",
            gain,
            f"{100 * s['eos_rate']:.0f}%",
            f"{100 * s['truncation_rate']:.0f}%",
            f"{s['seconds']:.0f}",
        ])
    header = ["stage", "accuracy % (mean ± std)", "[min, max]", "gain over SFT, points [min, max] seeds>0",
              "EOS", "truncated", "wall s"]
    return table(rows, header)


def plot(per_seed: dict[int, dict[str, Any]], stages: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    xs = list(range(len(stages)))
    for seed, results in sorted(per_seed.items()):
        ax.plot(xs, [100 * results[s]["accuracy"] if s in results else float("nan") for s in stages],
                marker="o", alpha=0.7, label=f"seed {seed}")
    ax.set_xticks(xs, stages)
    ax.set_ylabel("held-out accuracy, greedy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, framealpha=0.6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_sets(items: list[str]) -> dict[str, dict[str, Any]]:
    """`grpo.learning_rate=3e-4` → {"grpo": {"learning_rate": 3e-4}} (values parsed as YAML)."""
    settings: dict[str, dict[str, Any]] = {}
    for item in items:
        target, sep, value = item.partition("=")
        scope, dot, key = target.partition(".")
        if not sep or not dot or scope not in ("all", "sft", "ei", "grpo", "negated", "shuffled", "eval"):
            raise SystemExit(f"--set {item!r}: write STAGE.FIELD=VALUE with STAGE one of all, sft, ei, grpo, "
                             "negated, shuffled, eval")
        settings.setdefault(scope, {})[key] = yaml.safe_load(value)
    return settings


def merge(*layers: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for layer in layers:
        for scope, fields in layer.items():
            merged.setdefault(scope, {}).update(fields)
    return merged


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5], help="model seeds (default 1-5)")
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="answer-only")
    parser.add_argument("--stages", nargs="+", choices=TRAINED_FROM_SFT, default=list(TRAINED_FROM_SFT),
                        help="stages trained from the SFT model (base and sft always run)")
    parser.add_argument("--quick", action="store_true", help="the CI test's shortened protocol")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="STAGE.FIELD=VALUE",
                        help="override a config field of one stage (all, sft, ei, grpo, negated, shuffled, eval)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="seeds run at once")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "learning-benchmark")
    parser.add_argument("--json", type=Path, help="write per-seed, per-stage results here")
    parser.add_argument("--figure", type=Path, help="held-out accuracy per stage and seed (default OUT/learning.png)")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--settings", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker is not None:  # one seed, in this process
        results = run_seed(args.worker, args.out, json.loads(args.settings), args.stages)
        (args.out / "result.json").write_text(json.dumps(results, indent=2))
        return results

    settings = merge(VARIANTS[args.variant], QUICK if args.quick else {}, parse_sets(args.sets))
    header = header_lines()
    print("\n".join(header), flush=True)
    stages = ["base", "sft", *[s for s in TRAINED_FROM_SFT if s in args.stages]]
    started = time.time()

    def one_seed(seed: int) -> dict[str, Any]:
        out = args.out / f"seed_{seed}"
        shutil.rmtree(out, ignore_errors=True)  # the recipes refuse an output_dir that holds another run
        out.mkdir(parents=True, exist_ok=True)
        log = out / "log.txt"
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(seed), "--out", str(out),
                   "--settings", json.dumps(settings), "--stages", *args.stages]
        with open(log, "w") as f:
            done = subprocess.run(command, cwd=ROOT, env=offline_env(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1"),
                                  stdout=f, stderr=subprocess.STDOUT)
        if done.returncode != 0:
            raise RuntimeError(f"seed {seed} failed (exit {done.returncode}); see {log}")
        results = json.loads((out / "result.json").read_text())
        print(f"seed {seed}: " + ", ".join(f"{s} {100 * results[s]['accuracy']:.1f}%" for s in stages if s in results),
              flush=True)
        return results

    with concurrent.futures.ThreadPoolExecutor(max_workers=args.workers) as pool:
        per_seed = dict(zip(args.seeds, pool.map(one_seed, args.seeds)))
    wall = time.time() - started

    summary = summarize(per_seed, stages)
    n_test = "400" if args.quick else "1000"
    title = (f"rl-math learning benchmark, {args.variant}{' (quick)' if args.quick else ''}: "
             f"{len(args.seeds)} seeds, {n_test} held-out questions, greedy")
    print(f"\n{title}\n{format_table(summary, len(args.seeds))}")
    print(f"whole benchmark: {wall:.0f} s wall with {args.workers} worker(s)")
    figure = args.figure or args.out / "learning.png"
    plot(per_seed, stages, figure, title)
    print(f"figure: {figure}")
    report = {
        "title": title,
        "header": header,
        "variant": args.variant,
        "quick": args.quick,
        "settings": settings,
        "seeds": {str(seed): {s: r for s, r in results.items() if not s.startswith("_")} for seed, results in per_seed.items()},
        "eval_seconds": {str(seed): results["_eval_seconds"] for seed, results in per_seed.items()},
        "summary": summary,
        "wall_seconds": round(wall, 1),
        "workers": args.workers,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return report


if __name__ == "__main__":
    main()
