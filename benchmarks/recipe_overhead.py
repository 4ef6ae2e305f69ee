"""Recipe overhead: one GRPO step of `recipes/grpo.py` vs a bare GRPOTrainer script, same everything.

    python benchmarks/recipe_overhead.py                       # configs/smoke.yaml, 3 rounds × 20 steps
    python benchmarks/recipe_overhead.py --steps 2 --repeats 1 # quick check that it runs

Both sides train the offline tiny model on the same data with the same rewards and GRPOConfig
(read from the same YAML; see benchmarks/bare_grpo.py for the baseline), same seed, one BLAS
thread each. Default (--mode interleaved): per round ONE process runs both, taking turns step by
step (benchmarks/_interleaved.py), so a change in the machine's load hits both alike; --mode
processes runs each in a fresh process instead, alternating ours/bare, bare/ours, ... The step
time is one whole optimizer step, from one `on_step_begin` to the next: generation, rewards,
forward/backward, optimizer, every callback (rl-math's health monitor and preemption callback
included) and logging. The first --warmup steps of each run are left out. Reported: the median
step of each side (median over all measured steps of all rounds), the spread of the per-round
medians, their ratio (target ≤ 1.03), TRL's own logged `step_time` (training_step only, so it
does not see callbacks), and the time measured inside rl-math's callbacks alone. Unless --no-aa,
each round also runs the bare script a second time: the bare/bare ("A/A") ratio is the noise
floor of the machine, the size of a difference this benchmark cannot tell from zero.
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

TARGET_RATIO = 1.03


def run_worker(variant: str, config: str, steps: int, workdir: Path, threads: int, extra: list[str]) -> dict:
    """One fresh process training `steps` optimizer steps; returns what the worker measured."""
    out = workdir / f"{variant}-{time.monotonic_ns()}.json"
    log = out.with_suffix(".log")
    argv = [
        config, "--max_steps", str(steps), "--output_dir", str(workdir / f"out-{variant}"),
        "--save_strategy", "no", "--logging_steps", "1", "--report_to", "none",
        "--eval_accuracy_steps", "0",  # in-run evaluation is a feature with its own cost, not recipe overhead
        *extra,
    ]
    started = time.time()
    with log.open("w") as handle:
        result = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "_worker.py"), variant, str(out), *argv],
            cwd=ROOT, env=offline_env(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads)),
            stdout=handle, stderr=subprocess.STDOUT, timeout=900,
        )
    if result.returncode != 0:
        tail = log.read_text()[-3000:]
        raise SystemExit(f"{variant} run failed (exit {result.returncode}); log tail:\n{tail}")
    data = json.loads(out.read_text())
    data["process_start"] = started
    return data


def periods(run: dict) -> list[float]:
    """Every full optimizer step's duration, from one on_step_begin to the next (the last step has none)."""
    if "busy" in run:  # interleaved: the time between taking the baton and handing it on
        return run["busy"][:-1]
    begins = run["step_begins"]
    return [b - a for a, b in zip(begins, begins[1:])]


def step_times(run: dict, warmup: int) -> list[float]:
    """Full optimizer-step periods, warm-up steps dropped."""
    return periods(run)[warmup:]


def section_per_step(run: dict, name: str, warmup: int) -> list[float]:
    steps = range(warmup, len(periods(run)))
    return [run["sections"].get(str(s), {}).get(name, 0.0) for s in steps]


def run_interleaved(config: str, steps: int, workdir: Path, threads: int, aa: bool, extra: list[str]) -> dict[str, dict]:
    """One process in which ours and bare (and bare again) take turns step by step; see _interleaved.py."""
    out = workdir / f"interleaved-{time.monotonic_ns()}.json"
    log = out.with_suffix(".log")
    command = [sys.executable, str(ROOT / "benchmarks" / "_interleaved.py"), str(out), config, str(steps)]
    command += (["--aa"] if aa else []) + ["--", *extra]
    with log.open("w") as handle:
        result = subprocess.run(
            command, cwd=ROOT, env=offline_env(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads)),
            stdout=handle, stderr=subprocess.STDOUT, timeout=1800,
        )
    if result.returncode != 0:
        raise SystemExit(f"interleaved run failed (exit {result.returncode}); log tail:\n{log.read_text()[-3000:]}")
    return json.loads(out.read_text())


def same_work(a: dict, b: dict) -> bool:
    """Both runs logged the same losses, rewards and completion lengths: they did the same computation."""
    keys = ("loss", "reward", "completions/mean_length")
    if len(a["log"]) != len(b["log"]):
        return False
    return all(abs(x.get(k, 0.0) - y.get(k, 0.0)) <= 1e-6 * max(1.0, abs(x.get(k, 0.0))) for x, y in zip(a["log"], b["log"]) for k in keys)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/smoke.yaml", help="recipe YAML (default: configs/smoke.yaml)")
    parser.add_argument(
        "--mode", choices=["interleaved", "processes"], default="interleaved",
        help="interleaved: ours and bare take turns step by step in one process per round (default); "
        "processes: a fresh process per run, alternating",
    )
    parser.add_argument("--steps", type=int, default=20, help="measured steps per run (default: 20)")
    parser.add_argument("--warmup", type=int, default=2, help="steps left out at the start of each run (default: 2)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; each round runs ours and bare once (default: 3)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS/torch threads per run (default: 1)")
    parser.add_argument("--no-aa", action="store_true", help="skip the second bare run per round (the A/A noise floor)")
    parser.add_argument("--keep", action="store_true", help="keep the runs' logs and JSON in a printed folder")
    args, extra = parser.parse_known_args(argv)
    if args.steps < 1 or args.repeats < 1 or args.warmup < 0:
        parser.error("--steps and --repeats must be ≥ 1, --warmup ≥ 0")
    total_steps = args.warmup + args.steps + 1  # +1: the last measured step ends at the next step's begin

    print("recipe overhead: recipes/grpo.py vs a bare GRPOTrainer script (benchmarks/bare_grpo.py)")
    print_header()
    how = (
        "one process per round, ours and bare taking turns step by step"
        if args.mode == "interleaved"
        else "a fresh process per run, alternating ours/bare"
    )
    print(
        f"setup        {args.config}, {args.steps} measured + {args.warmup} warm-up steps per run, "
        f"{args.repeats} round(s), {how}, {args.threads} thread(s)\n"
    )
    workdir = Path(tempfile.mkdtemp(prefix="rl-math-overhead-"))
    variants = ("ours", "bare") if args.no_aa else ("ours", "bare", "bare again")
    runs: dict[str, list[dict]] = {variant: [] for variant in variants}
    for round_index in range(args.repeats):
        if args.mode == "interleaved":
            together = run_interleaved(args.config, total_steps, workdir, args.threads, not args.no_aa, extra)
            for variant in variants:
                runs[variant].append(together[variant])
            medians = ", ".join(f"{v} {median(step_times(together[v], args.warmup)):.4f} s" for v in variants)
            print(f"  round {round_index + 1} (one process, turns): median step {medians}")
        else:
            order = variants if round_index % 2 == 0 else tuple(reversed(variants))
            for variant in order:
                run = run_worker(variant.split()[0], args.config, total_steps, workdir, args.threads, extra)
                runs[variant].append(run)
                print(f"  round {round_index + 1} {variant:<10}: median step {median(step_times(run, args.warmup)):.4f} s")
        sys.stdout.flush()

    rows = []
    stats = {}
    labels = {"ours": "recipes/grpo.py (ours)", "bare": "bare GRPOTrainer script", "bare again": "bare script again (A/A)"}
    for variant in variants:
        all_steps = [t for run in runs[variant] for t in step_times(run, args.warmup)]
        per_round = [median(step_times(run, args.warmup)) for run in runs[variant]]
        trl_step = [e["step_time"] for run in runs[variant] for e in run["log"][args.warmup :] if "step_time" in e]
        generate = [t for run in runs[variant] for t in section_per_step(run, "generate_and_score", args.warmup)]
        rewards = [t for run in runs[variant] for t in section_per_step(run, "rewards", args.warmup)]
        callbacks = [t for run in runs[variant] for t in section_per_step(run, "rl_math_callbacks", args.warmup)]
        stats[variant] = dict(step=median(all_steps), rounds=per_round, trl=median(trl_step), callbacks=median(callbacks))
        rows.append([
            labels[variant],
            f"{median(all_steps):.4f}", spread(per_round), f"{median(trl_step):.4f}",
            f"{median(generate):.4f}", f"{median(rewards) * 1e3:.2f}", f"{median(callbacks) * 1e6:.0f}",
            str(len(all_steps)),
        ])
    print()
    print(table(rows, ["", "median step s", "spread of round medians", "TRL step_time s", "generate+score s",
                       "rewards ms", "rl_math callbacks µs", "steps"]))

    ratio = stats["ours"]["step"] / stats["bare"]["step"]
    paired = [o / b for o, b in zip(stats["ours"]["rounds"], stats["bare"]["rounds"])]
    trl_ratio = stats["ours"]["trl"] / stats["bare"]["trl"]
    callback_share = stats["ours"]["callbacks"] / stats["ours"]["step"]
    identical = all(same_work(o, b) for o, b in zip(runs["ours"], runs["bare"]))
    same_data = len({r["data_fingerprint"] for rs in runs.values() for r in rs}) == 1
    print()
    print(f"ratio ours/bare, median step          {ratio:.3f}   (target ≤ {TARGET_RATIO}: {'met' if ratio <= TARGET_RATIO else 'NOT met'})")
    print(f"ratio per round (paired)              {spread(paired)}   median {median(paired):.3f}")
    print(f"ratio of TRL's step_time              {trl_ratio:.3f}   (training_step only: blind to callbacks)")
    if "bare again" in runs:
        aa = stats["bare again"]["step"] / stats["bare"]["step"]
        aa_paired = [a / b for a, b in zip(stats["bare again"]["rounds"], stats["bare"]["rounds"])]
        print(f"A/A ratio bare again/bare (noise)     {aa:.3f}   per round {spread(aa_paired)}")
    print(f"time inside rl-math callbacks         {stats['ours']['callbacks'] * 1e6:.0f} µs per step = {callback_share:.3%} of a step")
    print(f"same data (dataset fingerprint)       {'yes' if same_data else 'NO'}")
    print(f"same computation (losses, rewards)    {'yes' if identical else 'NO'}")
    print(f"callbacks ours                        {', '.join(runs['ours'][0]['callbacks'])}")
    print(f"callbacks bare                        {', '.join(runs['bare'][0]['callbacks'])}")
    print_footer()
    if args.keep:
        print(f"runs kept in {workdir}")
    else:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
