"""Learning benchmark v2: does RL teach math that SFT with the same compute does not, on facts it never saw?

    python benchmarks/learning.py --seeds 6 7 8 --variant clean --split validation   # tuning (tuning seeds)
    python benchmarks/learning.py --seeds 6 --calibrate                              # time each stage alone
    python benchmarks/learning.py --reporting --variant flawed --json flawed.json   # the frozen protocol, once
    python benchmarks/learning.py --quick --seeds 6 --stages grpo                    # the CI test's short form

The protocol is frozen in `benchmarks/learning_protocol_v2.json` (task, variants, seeds, splits, and
the sha256 of each stage config in `configs/learning/*.yaml`); its own sha256 goes into the JSON.
Everything runs offline on CPU through the project's recipes. A tiny Qwen2 model
(`rl-math:tiny-qwen2?seed=S`, a different initialisation per seed) is trained from scratch by SFT
on two-digit worked addition until validation accuracy passes a middle level; from that SFT model
every later stage starts (the table `STAGES`: name → recipe, config, overrides):

- `sft_matched`: SFT continued on the same demonstrations for GRPO's wall time (calibrated steps);
- `ei`: expert iteration (sample, keep correct finished answers, SFT on them), GRPO's wall time;
- `grpo`: GRPO with the shipped reward mix;
- `negated`: the same GRPO with correctness's weight negated (must fall);
- `null`: the same GRPO with a seeded coin flip per completion as the reward (must not gain);
- `rloo`: RLOO (recipes/rloo.py) with grpo's budget. Protocol v2 runs it on the validation split
  with tuning seeds only (`validation_only_stages`); it joins the reported table in a new version.

Every stage runs its full length (no health stop) and its last step is scored, greedy, on each
split of the mode: `--split validation` (tuning: validation's held-out facts, and trained facts) or
`--split test` (reporting: test's held-out facts, `test_ood` operands outside the trained range,
and trained facts). Variants: `clean` (correct worked solutions) and `flawed` (60 % of the train
split's carry problems have the carry dropped in the worked line; the gold stays right).
Each seed runs in its own process with one thread, `--workers` seeds at a time (default 1: the
matched budgets are step counts, but the seconds reported are only comparable on a quiet machine).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import copy
import hashlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from _common import ROOT, header_lines, load_average, offline_env, table
from _stats import gain_vs_level, paired, pooled_bootstrap

CONFIGS = ROOT / "configs" / "learning"
PROTOCOL_FILE = ROOT / "benchmarks" / "learning_protocol_v2.json"
# FLOPs per token (the usual estimate): a forward pass is 2·params, forward + backward 6·params.
GENERATE_FLOPS_PER_PARAM, TRAIN_FLOPS_PER_PARAM = 2, 6


def negated_rewards(config: dict[str, Any], seed: int) -> dict[str, Any]:
    """GRPO's reward list with correctness's weight negated."""
    return {"rewards": [dict(s, weight=-s.get("weight", 1.0), negative_weight_ok=True) if s["name"] == "correctness"
                        else s for s in config["rewards"]]}


def coin_flip_rewards(config: dict[str, Any], seed: int) -> dict[str, Any]:
    """One reward: a fair coin per completion, seeded by the model seed."""
    return {"rewards": [{"name": "coin_flip", "weight": 1.0, "seed": seed}]}


@dataclass(frozen=True)
class Stage:
    """A stage of the protocol: a recipe run with a config (plus overrides) from the `start` model."""

    recipe: str                     # recipes/<recipe>.py
    config: str                     # configs/learning/<config>
    start: str = "sft"              # the model it starts from: "base" or "sft"
    overrides: Callable[[dict[str, Any], int], dict[str, Any]] | None = None  # (its config, seed) → fields


# The stages, in the order they run (base is the random initialisation, evaluated only). A new
# method is one entry; it runs on validation only until a protocol version reports it.
STAGES: dict[str, Stage] = {
    "sft": Stage("sft", "sft.yaml", start="base"),
    "sft_matched": Stage("sft", "sft_matched.yaml"),
    "ei": Stage("expert_iteration", "ei.yaml"),
    "grpo": Stage("grpo", "grpo.yaml"),
    "negated": Stage("grpo", "grpo.yaml", overrides=negated_rewards),
    "null": Stage("grpo", "grpo.yaml", overrides=coin_flip_rewards),
    "rloo": Stage("rloo", "rloo.yaml"),
}
ONLINE_RL = {"grpo", "rloo"}  # recipes that generate what they train on
AFTER_SFT = [name for name, stage in STAGES.items() if stage.start == "sft"]
# Each split mode: the JSON key → (split, questions). Tuning never touches a test split.
SPLITS: dict[str, dict[str, tuple[str, int]]] = {
    "validation": {"accuracy": ("validation", 500), "accuracy_trained": ("train", 500)},
    "test": {"accuracy": ("test", 1000), "accuracy_ood": ("test_ood", 500), "accuracy_trained": ("train", 500)},
}
# (a, b): a − b, paired per seed.
COMPARISONS = [("grpo", "sft"), ("grpo", "sft_matched"), ("grpo", "ei"), ("ei", "sft_matched"), ("null", "sft"),
               ("negated", "sft"), ("rloo", "sft"), ("rloo", "grpo")]
# --quick: the CI test's form: fewer questions, shorter post-SFT stages; validation only.
QUICK: dict[str, dict[str, Any]] = {
    "eval": {"max_eval_samples": 200},
    "grpo": {"max_steps": 60},
    "rloo": {"max_steps": 60},
    "sft_matched": {"max_steps": 180},
    "ei": {"ei_rounds": 1, "ei_questions_per_round": 256, "max_steps": 60},
}
# --calibrate: each matched stage alone, long enough to time a step.
CALIBRATION: dict[str, dict[str, Any]] = {
    "sft_matched": {"max_steps": 200},
    "ei": {"ei_rounds": 1},
}


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_protocol(path: Path = PROTOCOL_FILE) -> dict[str, Any]:
    """The frozen protocol and its sha256."""
    protocol = json.loads(path.read_text())
    return protocol | {"sha256": sha256_file(path)}


def config_hashes() -> dict[str, str]:
    """sha256 of each stage config as it is now."""
    return {path.name: sha256_file(path) for path in sorted(CONFIGS.glob("*.yaml"))}


def deviations(protocol: dict[str, Any], hashes: dict[str, str] | None = None) -> list[str]:
    """Stage configs whose sha256 (now, or `hashes` recorded by a run) differs from the protocol's: each
    one makes a run not the protocol."""
    hashes = config_hashes() if hashes is None else hashes
    found = []
    for name, expected in protocol["config_sha256"].items():
        actual = hashes.get(name, "missing")
        if actual != expected:
            found.append(f"configs/learning/{name}: sha256 {actual[:12]} ≠ frozen {expected[:12]}")
    return found


def with_seed(model_name: str, seed: int) -> str:
    """`rl-math:tiny-qwen2?hidden_size=96` → `rl-math:tiny-qwen2?hidden_size=96&seed=3`."""
    base, _, query = model_name.partition("?")
    params = [p for p in query.split("&") if p and not p.startswith("seed=")]
    return f"{base}?{'&'.join([*params, f'seed={seed}'])}"


def stage_config(stage: str) -> dict[str, Any]:
    name = "eval.yaml" if stage == "eval" else STAGES[stage].config
    return yaml.safe_load((CONFIGS / name).read_text())


def fields_for(stage: str, seed: int, settings: dict[str, dict[str, Any]], variant_options: str) -> dict[str, Any]:
    """What a stage runs with besides its config: its overrides, the variant's task, --quick and --set."""
    config = stage_config(stage)
    fields: dict[str, Any] = {}
    if stage in STAGES and STAGES[stage].overrides:
        fields |= STAGES[stage].overrides(config, seed)
    fields["dataset_name"] = config["dataset_name"] + variant_options
    for scope in ("all", stage):
        fields |= settings.get(scope, {})
    return fields


def write_config(stage: str, fields: dict[str, Any], path: Path) -> list[str]:
    """The stage's config with `fields` merged in, written to `path` (re-runnable as is); the recipe's argv."""
    config = stage_config(stage) | {k: str(v) if isinstance(v, Path) else v for k, v in fields.items()}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return [str(path)]


def _recipe(name: str):
    """The recipe's body: recipes/<name>.py runs rl_math.methods.<name>.main (heavy: imported per worker)."""
    import importlib

    return importlib.import_module(f"rl_math.methods.{name}")


# --------------------------------------------------------------------------------------------
# What a trained stage logged: steps, tokens, time


def trainer_states(stage_dir: Path) -> list[dict[str, Any]]:
    """Every trainer_state.json a stage wrote (one; expert iteration: one per round), in order."""
    return [json.loads(p.read_text()) for p in sorted(stage_dir.rglob("trainer_state.json"))
            if "checkpoint-" not in str(p)]


def logged_tokens(state: dict[str, Any]) -> float:
    """Tokens the trainer processed (TRL's `num_tokens`, extrapolated from the last log to the last step).

    >>> logged_tokens({"global_step": 100, "log_history": [{"step": 50, "num_tokens": 1000.0}, {"step": 100}]})
    2000.0
    """
    logs = [e for e in state["log_history"] if "num_tokens" in e]
    if not logs:
        return 0.0
    last = logs[-1]
    return last["num_tokens"] * state["global_step"] / max(last["step"], 1)


def train_runtime(state: dict[str, Any]) -> float:
    return next((e["train_runtime"] for e in reversed(state["log_history"]) if "train_runtime" in e), 0.0)


def model_path(stage: str, stage_dir: Path) -> str:
    """The stage's final model: the output_dir, or expert iteration's last round's model."""
    rounds = stage_dir / "rounds.json"
    return json.loads(rounds.read_text())[-1]["model_path"] if rounds.is_file() else str(stage_dir)


def sampled_tokens(stage_dir: Path, prompt_tokens: float) -> float:
    """Tokens expert iteration generated (its samples' completions plus their prompts)."""
    total = 0.0
    for path in stage_dir.rglob("samples.jsonl"):
        for line in path.read_text().splitlines():
            total += json.loads(line).get("n_tokens", 0) + prompt_tokens
    return total


def cost_record(stage: str, stage_dir: Path, params: int, prompt_tokens: float) -> dict[str, Any]:
    """optimizer_steps, trained/generated tokens and estimated FLOPs of one stage."""
    states = trainer_states(stage_dir)
    trained = sum(logged_tokens(s) for s in states)
    recipe = STAGES[stage].recipe
    generated = trained if recipe in ONLINE_RL else sampled_tokens(stage_dir, prompt_tokens) if recipe == "expert_iteration" else 0.0
    record: dict[str, Any] = {
        "optimizer_steps": sum(s["global_step"] for s in states),
        "train_seconds": round(sum(train_runtime(s) for s in states), 1),
        "trained_tokens": round(trained),
        "generated_tokens": round(generated),
        "flops": float(params * (TRAIN_FLOPS_PER_PARAM * trained + GENERATE_FLOPS_PER_PARAM * generated)),
    }
    final = stage_dir / "final_metrics.json"
    if final.is_file() and (reason := json.loads(final.read_text()).get("stop_reason")):
        record["stop_reason"] = reason
    return record


# --------------------------------------------------------------------------------------------
# One seed, in its own process


def run_seed(seed: int, out: Path, options: dict[str, Any]) -> dict[str, Any]:
    """Train every stage for one seed and evaluate all models on the mode's splits; {stage: metrics}."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    settings, variant_options, stages = options["settings"], options["variant_options"], options["stages"]
    base = with_seed(stage_config("sft")["model_name_or_path"], seed)
    models, seconds, costs = {"base": base}, {}, {}

    def run(stage: str, start: str) -> None:
        fields = fields_for(stage, seed, settings, variant_options) | {
            "model_name_or_path": start, "output_dir": out / stage, "seed": seed}
        argv = write_config(stage, fields, out / f"{stage}.yaml")
        print(f"[seed {seed}] {stage}: {STAGES[stage].recipe}.py {' '.join(argv)}", flush=True)
        started = time.time()
        _recipe(STAGES[stage].recipe).main(argv)
        seconds[stage] = round(time.time() - started, 1)
        models[stage] = model_path(stage, out / stage)

    if options.get("sft_model"):
        models["sft"] = options["sft_model"]
    else:
        run("sft", base)
    sft_dir = Path(models["sft"])
    params = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(sft_dir).parameters())
    tokenizer = AutoTokenizer.from_pretrained(sft_dir)
    prompt_tokens = mean_prompt_tokens(tokenizer, fields_for("grpo", seed, settings, variant_options)["dataset_name"])
    for stage in stages:
        run(stage, str(sft_dir))
    for stage in [s for s in ("sft", *stages) if (out / s).is_dir()]:
        costs[stage] = cost_record(stage, out / stage, params, prompt_tokens)

    results: dict[str, dict[str, Any]] = {stage: {} for stage in models}
    for key, (split, questions) in SPLITS[options["split"]].items():
        fields = {"model_name_or_path": list(models.values()), "output_dir": out / f"eval_{split}",
                  "dataset_test_split": split, "max_eval_samples": questions,
                  "dataset_name": fields_for("grpo", seed, settings, variant_options)["dataset_name"],
                  **settings.get("eval", {})}
        argv = write_config("eval", fields, out / f"eval_{split}.yaml")
        started = time.time()
        _recipe("evaluate").main(argv)
        seconds[f"eval_{split}"] = round(time.time() - started, 1)
        evaluated = json.loads((out / f"eval_{split}" / "metrics.json").read_text())["models"]
        name_of = {metrics["path"]: name for name, metrics in evaluated.items()}
        correct = per_question_correct(out / f"eval_{split}" / "completions.jsonl")
        suffix = key.removeprefix("accuracy")
        for stage, path in models.items():
            metrics = evaluated[name_of[path]]
            results[stage] |= {key: metrics["accuracy"], f"n_questions{suffix}": metrics["n_questions"],
                               f"correct{suffix}": correct[name_of[path]]}
            if key == "accuracy":
                results[stage] |= {k: metrics[k] for k in ("eos_rate", "truncation_rate", "mean_completion_tokens")}
    for stage in results:
        results[stage] |= {"seconds": seconds.get(stage, 0.0), **costs.get(stage, {})}
    results["sft"]["sft_stop"] = sft_stop(sft_dir)
    return {"stages": results, "params": params, "prompt_tokens": prompt_tokens,
            "eval_seconds": {k: v for k, v in seconds.items() if k.startswith("eval_")}}


def per_question_correct(completions: Path) -> dict[str, str]:
    """{model: '0110…'}: greedy correctness per question, in question order (one sample each)."""
    rows: dict[str, dict[int, int]] = {}
    for line in completions.read_text().splitlines():
        row = json.loads(line)
        rows.setdefault(row["model"], {})[row["question_index"]] = int(bool(row["correct"]))
    return {model: "".join(str(by_index[i]) for i in sorted(by_index)) for model, by_index in rows.items()}


def sft_stop(sft_dir: Path) -> dict[str, Any]:
    """Where SFT stopped and the validation accuracy that stopped it."""
    final = sft_dir / "final_metrics.json"
    data = json.loads(final.read_text()) if final.is_file() else {}
    return {"step": data.get("step"), "validation_accuracy": data.get("eval_accuracy"),
            "stop_reason": data.get("stop_reason")}


def mean_prompt_tokens(tokenizer, dataset_name: str, n: int = 200) -> float:
    """Mean chat-formatted prompt length of the train questions (for expert iteration's FLOPs)."""
    from rl_math.config import RecipeArguments
    from rl_math.tasks.loading import load_prompt_dataset

    dataset = load_prompt_dataset(RecipeArguments(dataset_name=dataset_name, max_prompt_tokens=None), "train", limit=n)
    lengths = [len(tokenizer(tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True),
                             add_special_tokens=False)["input_ids"]) for p in dataset["prompt"]]
    return sum(lengths) / len(lengths)


# --------------------------------------------------------------------------------------------
# Calibration: each matched stage alone, its seconds per optimizer step → the frozen step counts


def calibrate(seed: int, out: Path, options: dict[str, Any]) -> dict[str, Any]:
    """Time grpo (its config's steps), then sft_matched and one ei round alone; propose matched steps."""
    runs = {}
    for stage in ("grpo", "sft_matched", "ei"):
        stage_options = copy.deepcopy(options) | {"stages": [stage], "split": "validation"}
        stage_options["settings"].setdefault(stage, {}).update(CALIBRATION.get(stage, {}))
        result = run_seed(seed, out / stage, stage_options)
        options["sft_model"] = options.get("sft_model") or str(out / "grpo" / "sft")  # later timings start there
        runs[stage] = {k: v for k, v in result["stages"][stage].items() if not k.startswith("correct")}
    # wall time of the whole recipe run is the budget: grpo's, matched by startup + steps (ei: + sampling)
    grpo_wall = runs["grpo"]["seconds"]
    sft_step = runs["sft_matched"]["train_seconds"] / runs["sft_matched"]["optimizer_steps"]
    sft_overhead = runs["sft_matched"]["seconds"] - runs["sft_matched"]["train_seconds"]
    ei_step = runs["ei"]["train_seconds"] / max(runs["ei"]["optimizer_steps"], 1)
    ei_overhead = runs["ei"]["seconds"] - runs["ei"]["train_seconds"]  # one round: startup + sampling (counted per round)
    rounds = (stage_config("ei") | options["settings"].get("ei", {}))["ei_rounds"]
    return {
        "seed": seed, "load_average": load_average(), "runs": runs,
        "grpo": {"steps": runs["grpo"]["optimizer_steps"], "wall_seconds": grpo_wall},
        "sft_matched": {"seconds_per_step": sft_step, "overhead_seconds": sft_overhead},
        "ei": {"seconds_per_step": ei_step, "overhead_seconds_per_round": ei_overhead, "rounds": rounds},
        "proposed": {"sft_matched.max_steps": round((grpo_wall - sft_overhead) / sft_step),
                     "ei.max_steps": max(1, round((grpo_wall - rounds * ei_overhead) / (rounds * ei_step)))},
    }


# --------------------------------------------------------------------------------------------
# Many seeds: the comparisons


def comparisons(per_seed: dict[str, dict[str, Any]], keys: list[str]) -> dict[str, dict[str, Any]]:
    """Each comparison a − b per split key: paired mean, 95 % t interval, n, positive, min–max, the gain vs
    the SFT level, and the seed × question bootstrap of the pooled mean."""
    found: dict[str, dict[str, Any]] = {}
    for a, b in COMPARISONS:
        seeds = [s for s, r in per_seed.items() if a in r and b in r]
        if not seeds:
            continue
        for key in keys:
            name = f"{a}-{b}" + ("" if key == "accuracy" else key.removeprefix("accuracy"))
            diffs = [per_seed[s][a][key] - per_seed[s][b][key] for s in seeds]
            levels = [per_seed[s]["sft"][key] for s in seeds]
            suffix = key.removeprefix("accuracy")
            outcomes = [[[int(c) for c in per_seed[s][stage][f"correct{suffix}"]] for s in seeds] for stage in (a, b)]
            found[name] = paired(diffs) | {"vs_sft_level": gain_vs_level(levels, diffs),
                                            "pooled_bootstrap": pooled_bootstrap(*outcomes)}
    return found


def format_table(per_seed: dict[str, dict[str, Any]], stages: list[str], keys: list[str]) -> str:
    rows = []
    for stage in stages:
        row = [stage]
        for key in keys:
            values = [r[stage][key] for r in per_seed.values() if stage in r]
            row.append(f"{100 * sum(values) / len(values):.1f} [{100 * min(values):.1f}, {100 * max(values):.1f}]")
        steps = [r[stage].get("optimizer_steps", 0) for r in per_seed.values() if stage in r]
        secs = [r[stage]["seconds"] for r in per_seed.values() if stage in r]
        flops = [r[stage].get("flops", 0.0) for r in per_seed.values() if stage in r]
        row += [f"{sum(steps) / len(steps):.0f}", f"{sum(secs) / len(secs):.0f}", f"{sum(flops) / len(flops):.2e}"]
        rows.append(row)
    return table(rows, ["stage", *[f"{k} % mean [min, max]" for k in keys], "steps", "wall s", "FLOPs"])


def format_comparisons(found: dict[str, dict[str, Any]]) -> str:
    rows = [[name, f"{100 * c['mean']:+.1f}", f"[{100 * c['ci95'][0]:+.1f}, {100 * c['ci95'][1]:+.1f}]",
             f"{c['positive']}/{c['n']}", f"[{100 * c['min']:+.1f}, {100 * c['max']:+.1f}]",
             f"[{100 * c['pooled_bootstrap']['ci95'][0]:+.1f}, {100 * c['pooled_bootstrap']['ci95'][1]:+.1f}]",
             f"{c['vs_sft_level']['slope']:+.2f}"] for name, c in found.items()]
    return table(rows, ["comparison", "mean, points", "95% t interval", "seeds > 0", "[min, max]",
                        "95% seed×question bootstrap", "slope vs SFT level"])


def markdown(report: dict[str, Any]) -> str:
    """BENCHMARKS.md's tables from a report (`--markdown`): every number there comes from the JSON."""
    per_seed, found = report["seeds"], report["comparisons"]
    keys = [k for k in SPLITS[report["protocol"]["split"]]]
    stages = [s for s in ("base", *STAGES) if any(s in r for r in per_seed.values())]

    def pct(values: list[float]) -> str:
        mean = sum(values) / len(values)
        return f"{100 * mean:.1f} [{100 * min(values):.1f}, {100 * max(values):.1f}]"

    lines = [f"| stage | {' | '.join(f'{k} %, mean [min, max]' for k in keys)} | optimizer steps | wall min | FLOPs |",
             "|---" * (len(keys) + 4) + "|"]
    for stage in stages:
        rows = [r[stage] for r in per_seed.values() if stage in r]
        lines.append(f"| {stage} | " + " | ".join(pct([r[k] for r in rows]) for k in keys) +
                     f" | {sum(r.get('optimizer_steps', 0) for r in rows) / len(rows):.0f}"
                     f" | {sum(r['seconds'] for r in rows) / len(rows) / 60:.1f}"
                     f" | {sum(r.get('flops', 0.0) for r in rows) / len(rows):.2e} |")
    lines += ["", "| comparison (a − b) | mean, points | 95 % t interval | seeds a > b | [min, max] | "
              "95 % seed×question bootstrap | slope on SFT level |", "|---" * 7 + "|"]
    for name, c in found.items():
        lines.append(f"| {name} | {100 * c['mean']:+.1f} | [{100 * c['ci95'][0]:+.1f}, {100 * c['ci95'][1]:+.1f}] | "
                     f"{c['positive']}/{c['n']} | [{100 * c['min']:+.1f}, {100 * c['max']:+.1f}] | "
                     f"[{100 * c['pooled_bootstrap']['ci95'][0]:+.1f}, {100 * c['pooled_bootstrap']['ci95'][1]:+.1f}] | "
                     f"{c['vs_sft_level']['slope']:+.2f} |")
    lines += ["", f"| seed | minutes (stages + evaluation) | SFT stop step | {' | '.join(stages[1:])} ({keys[0]} %) |",
              "|---" * (len(stages) + 2) + "|"]
    for seed, r in per_seed.items():
        minutes = (sum(v["seconds"] for v in r.values()) + sum(report["eval_seconds"][seed].values())) / 60
        lines.append(f"| {seed} | {minutes:.1f} | {r['sft'].get('sft_stop', {}).get('step')} | " +
                     " | ".join(f"{100 * r[s][keys[0]]:.1f}" if s in r else "–" for s in stages[1:]) + " |")
    return "\n".join(lines)


def plot(per_seed: dict[str, dict[str, Any]], stages: list[str], key: str, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    xs = list(range(len(stages)))
    for seed, results in sorted(per_seed.items(), key=lambda item: int(item[0])):
        ax.plot(xs, [100 * results[s][key] if s in results else float("nan") for s in stages], marker="o", alpha=0.7,
                label=f"seed {seed}")
    ax.set_xticks(xs, stages)
    ax.set_ylabel(f"{key}, greedy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, framealpha=0.6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_sets(items: list[str]) -> dict[str, dict[str, Any]]:
    """`grpo.learning_rate=3e-4` → {"grpo": {"learning_rate": 3e-4}} (values parsed as YAML)."""
    scopes = ("all", "eval", *STAGES)
    settings: dict[str, dict[str, Any]] = {}
    for item in items:
        target, sep, value = item.partition("=")
        scope, dot, key = target.partition(".")
        if not sep or not dot or scope not in scopes:
            raise ValueError(f"--set {item!r}: write STAGE.FIELD=VALUE with STAGE one of {', '.join(scopes)}")
        settings.setdefault(scope, {})[key] = yaml.safe_load(value)
    return settings


def merge(*layers: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for layer in layers:
        for scope, fields in layer.items():
            merged.setdefault(scope, {}).update(fields)
    return merged


@dataclass
class Plan:
    """What one invocation runs: seeds, variant, stages, split mode, settings."""

    seeds: list[int]
    variant: str
    stages: list[str]
    split: str
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)


def check_plan(args: argparse.Namespace, protocol: dict[str, Any]) -> Plan:
    """The run's plan; a reporting run must be the frozen protocol exactly (exit 2 otherwise)."""
    seeds = args.seeds or (protocol["reporting_seeds"] if args.reporting else protocol["tuning_seeds"])
    split = "test" if args.reporting else args.split
    if split == "test":
        problems = deviations(protocol)
        if args.quick or args.sets or args.sft_model:
            problems.append("--quick, --set and --sft-model change the protocol")
        if not set(seeds) <= set(protocol["reporting_seeds"]):
            problems.append(f"seeds {sorted(set(seeds) - set(protocol['reporting_seeds']))} are not reporting seeds")
        if problems:
            raise ValueError(f"the test splits run only under the frozen protocol ({PROTOCOL_FILE.name}): "
                             f"{'; '.join(problems)}; tune with --split validation, or freeze a new protocol version")
    elif set(seeds) & set(protocol["reporting_seeds"]):
        raise ValueError(f"seeds {sorted(set(seeds) & set(protocol['reporting_seeds']))} are reporting seeds: "
                         f"they run once, with --reporting; tune on {protocol['tuning_seeds']}")
    validation_only = set(protocol.get("validation_only_stages", {}))
    if split == "test" and (asked := [s for s in args.stages or [] if s in validation_only]):
        raise ValueError(f"stages {asked} run on the validation split only in protocol version {protocol['version']} "
                         "(validation_only_stages); they join the test table in a new protocol version")
    stages = [s for s in AFTER_SFT if s in (args.stages or [s for s in AFTER_SFT if s not in validation_only])]
    return Plan(seeds, args.variant, stages, split, merge(QUICK if args.quick else {}, parse_sets(args.sets)))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    protocol = load_protocol()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--seeds", type=int, nargs="+", help="model seeds (default: the protocol's tuning seeds)")
    parser.add_argument("--variant", choices=sorted(protocol["variants"]), default="clean")
    parser.add_argument("--stages", nargs="+", choices=AFTER_SFT,
                        help="stages after SFT (base and sft always run; default: the protocol's reported stages, "
                             f"not {', '.join(protocol.get('validation_only_stages', {}))})")
    parser.add_argument("--split", choices=["validation"], default="validation",
                        help="score on validation (tuning); the test splits run only with --reporting")
    parser.add_argument("--reporting", action="store_true",
                        help="the frozen protocol on the reporting seeds and the test splits (once per protocol version)")
    parser.add_argument("--quick", action="store_true", help="the CI test's shortened form (validation only)")
    parser.add_argument("--calibrate", action="store_true",
                        help="time grpo, sft_matched and an ei round alone on the first seed; propose matched step counts")
    parser.add_argument("--sft-model", help="start every stage from this SFT model instead of training one (one seed)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="STAGE.FIELD=VALUE",
                        help=f"override a config field of one stage ({', '.join(['all', 'eval', *STAGES])})")
    parser.add_argument("--workers", type=int, default=1, help="seeds run at once (default 1)")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "learning-benchmark")
    parser.add_argument("--json", type=Path, help="write the report here")
    parser.add_argument("--markdown", type=Path, help="write the report's tables as markdown here (BENCHMARKS.md §0)")
    parser.add_argument("--figure", type=Path, help="figure path stem (default OUT/learning); one PNG per split")
    parser.add_argument("--merge", type=Path, nargs="+", metavar="OUT",
                        help="report seeds already run (their OUT/seed_N/result.json) instead of running them")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--options", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker is not None:  # one seed, in this process
        options = json.loads(args.options)
        results = (calibrate if options.get("calibrate") else run_seed)(args.worker, args.out, options)
        results["options"] = options
        results["config_sha256"] = config_hashes()  # what this seed ran with (a merged report checks it)
        (args.out / "result.json").write_text(json.dumps(results, indent=2))
        return results

    try:
        plan = check_plan(args, protocol)
    except ValueError as err:
        parser.error(str(err))  # exit 2
    if args.sft_model and len(plan.seeds) != 1:
        parser.error("--sft-model is one seed's SFT model; give one --seeds value")
    header = header_lines()
    print("\n".join(header), flush=True)
    variant_options = protocol["variants"][plan.variant]
    options = {"settings": plan.settings, "variant_options": variant_options, "stages": plan.stages,
               "split": plan.split, "sft_model": str(Path(args.sft_model).resolve()) if args.sft_model else None,
               "calibrate": args.calibrate}
    seeds = plan.seeds[:1] if args.calibrate else plan.seeds
    started = time.time()

    def one_seed(seed: int) -> dict[str, Any]:
        out = args.out / f"seed_{seed}"
        shutil.rmtree(out, ignore_errors=True)  # the recipes refuse an output_dir that holds another run
        out.mkdir(parents=True, exist_ok=True)
        log = out / "log.txt"
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(seed), "--out", str(out),
                   "--options", json.dumps(options)]
        with open(log, "w") as f:
            done = subprocess.run(command, cwd=ROOT, env=offline_env(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1"),
                                  stdout=f, stderr=subprocess.STDOUT)
        if done.returncode != 0:
            raise RuntimeError(f"seed {seed} failed (exit {done.returncode}); see {log}")
        return json.loads((out / "result.json").read_text())

    if args.merge:  # seeds run earlier (another invocation or session): their workers' result.json
        raw = {seed: json.loads((folder / f"seed_{seed}" / "result.json").read_text())
               for folder in args.merge for seed in seeds if (folder / f"seed_{seed}" / "result.json").is_file()}
        if missing := sorted(set(seeds) - set(raw)):
            parser.error(f"--merge: no seed_N/result.json for seeds {missing} in {', '.join(map(str, args.merge))}")
        raw = {seed: raw[seed] for seed in seeds}
    else:
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.workers) as pool:
            raw = dict(zip(seeds, pool.map(one_seed, seeds)))
    for seed, result in raw.items():
        ran = result.get("options", {})
        if ran and (ran["variant_options"], ran["split"]) != (variant_options, plan.split):
            parser.error(f"seed {seed} ran variant options {ran['variant_options']!r} on {ran['split']}, not this run's")
    wall = time.time() - started
    run_protocol = {key: protocol[key] for key in ("version", "task", "tuning_seeds", "reporting_seeds", "checkpoint_rule")}
    run_protocol |= {"variant": plan.variant, "variant_options": variant_options, "sha256": protocol["sha256"],
                     "split": plan.split, "deviations": sorted({d for r in raw.values() for d in deviations(protocol, r.get("config_sha256"))}) +
                     (["quick"] if args.quick else []) +
                     [f"--set {s}" for s in args.sets] + ([f"--sft-model {args.sft_model}"] if args.sft_model else [])}
    if args.calibrate:
        report = {"protocol": run_protocol, "header": header, "calibration": raw[seeds[0]], "wall_seconds": round(wall, 1)}
        print(json.dumps(report["calibration"], indent=2))
    else:
        per_seed = {str(seed): r["stages"] for seed, r in raw.items()}
        stages = ["base", "sft", *plan.stages]
        keys = list(SPLITS[plan.split])
        found = comparisons(per_seed, keys)
        title = (f"rl-math learning v2, {plan.variant}, {plan.split}{' (quick)' if args.quick else ''}: "
                 f"seeds {' '.join(map(str, seeds))}, greedy")
        print(f"\n{title}\n{format_table(per_seed, stages, keys)}\n\n{format_comparisons(found)}")
        print(f"whole benchmark: {wall:.0f} s wall with {args.workers} worker(s); load average {load_average()} at end")
        figures = []
        stem = args.figure or args.out / "learning"
        for key in keys:
            figure = stem.with_name(f"{stem.stem}-{plan.variant}-{plan.split}-{key}.png")
            plot(per_seed, stages, key, figure, f"{title}: {key}")
            figures.append(str(figure))
        report = {"protocol": run_protocol, "title": title, "header": header, "settings": plan.settings,
                  "seeds": per_seed, "comparisons": found,
                  "params": {str(s): r["params"] for s, r in raw.items()},
                  "eval_seconds": {str(s): r["eval_seconds"] for s, r in raw.items()},
                  "wall_seconds": round(wall, 1), "workers": args.workers, "figures": figures}
    if args.markdown and "seeds" in report:
        args.markdown.write_text(markdown(report) + "\n")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return report


if __name__ == "__main__":
    main()
