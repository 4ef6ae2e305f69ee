"""The report `rl-math plan` prints (and its JSON): the plans per strategy and GPU count, judged against the GPU memory."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rl_math.tools.memory_plan.arithmetic import MemoryPlan, plan_memory
from rl_math.tools.memory_plan.model import GB, STRATEGIES, STRATEGY_NAMES, ModelShape, PlanError, model_shape
from rl_math.tools.memory_plan.settings import (
    LaunchHeader,
    RunSettings,
    _find,
    _repo_ds_config,
    load_yaml_values,
    read_launch_header,
    strategy_of_accelerate_config,
)

# --------------------------------------------------------------------------------------------
# The report (`rl-math plan` in cli.py prints it)


def _gb(value: float) -> str:
    if value != value:  # NaN
        return "—"
    return f"{value / GB:.2f}"


def format_plans(plans: list[MemoryPlan], intended: bool) -> str:
    """One table: rows are the items, columns the GPU counts of one strategy."""
    strategy = plans[0].strategy
    title = STRATEGY_NAMES[strategy] + ("   ← the config's intended setup" if intended else "")
    header = ["per GPU, GB"] + [f"{p.gpus} GPU{'s' if p.gpus > 1 else ''}" for p in plans]
    rows: list[list[str]] = []

    def add(label: str, values: list[float]) -> None:
        rows.append([label] + [_gb(v) for v in values])

    names = list(dict.fromkeys(k for p in plans for k in p.items))
    for name in names:
        add(name, [p.items.get(name, 0.0) for p in plans])
    gen_names = list(dict.fromkeys(k for p in plans for k in p.generation_phase))
    for name in gen_names:
        add(f"generation: {name}", [p.generation_phase.get(name, 0.0) for p in plans])
    train_names = list(dict.fromkeys(k for p in plans for k in p.training_phase))
    for name in train_names:
        add(f"training: {name}", [p.training_phase.get(name, 0.0) for p in plans])
    rows.append(["-"] * len(header))
    add("allocated while generating", [p.generation_phase_allocated for p in plans])
    add("allocated while training a micro-batch", [p.training_phase_allocated for p in plans])
    add("peak allocated (the larger)", [p.peak_allocated for p in plans])
    add("+ fragmentation 5 %, CUDA context, NCCL", [p.overhead for p in plans])
    add(f"total vs {plans[0].gpu_memory_gb:g} GB", [p.total for p in plans])
    rows.append(["verdict"] + [p.verdict for p in plans])
    if strategy != "ddp":
        add("cross-check: DeepSpeed estimator, model states", [p.deepspeed_states or 0.0 for p in plans])
    add("cross-check: 16 bytes/param rule, model states", [p.rule_of_thumb_states for p in plans])
    if strategy == "zero3_offload":
        add("host RAM per node (DeepSpeed estimator)", [p.host_bytes for p in plans])
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = [title, "  " + "  ".join(h.ljust(widths[0]) if i == 0 else h.rjust(widths[i]) for i, h in enumerate(header))]
    for row in rows:
        if row[0] == "-":
            lines.append("  " + "  ".join("-" * w for w in widths))
            continue
        lines.append("  " + "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)))
    for note in dict.fromkeys(n for p in plans for n in p.notes):
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def format_summary(plans: Mapping[str, list[MemoryPlan]], intended: str | None) -> str:
    """One line per strategy: total per GPU and verdict for each GPU count."""
    lines = ["summary (total per GPU in GB, verdict vs the GPU memory)"]
    for strategy, ps in plans.items():
        cells = ", ".join(f"{p.gpus} GPU{'s' if p.gpus > 1 else ''}: {p.total / GB:.1f} {p.verdict}" for p in ps)
        mark = "  ← intended" if strategy == intended else ""
        lines.append(f"  {STRATEGY_NAMES[strategy]:<32} {cells}{mark}")
    return "\n".join(lines)


def describe(shape: ModelShape, settings: RunSettings) -> str:
    tuned = f"LoRA r={settings.lora_r} ({settings.lora_target_modules or 'peft default targets'})" if settings.use_peft else "full fine-tune"
    ref = f"beta {settings.beta:g} → reference model" if settings.beta > 0 else "beta 0 (no reference model)"
    gen = (
        f"vLLM {settings.vllm_mode}" + (f" (gpu_memory_utilization {settings.vllm_gpu_memory_utilization:g})" if settings.vllm_mode == "colocate" else "")
        if settings.use_vllm
        else "transformers generate (no vLLM)"
    )
    return "\n".join(
        [
            f"model: {shape.name}: {shape.params:,} parameters, {shape.layers} layers, hidden {shape.hidden}, ffn {shape.intermediate}, "
            f"heads {shape.heads}/{shape.kv_heads}, vocab {shape.vocab}, {'tied' if shape.tied_embeddings else 'untied'} embeddings",
            f"run: {tuned}, {'bf16' if settings.bf16 else 'fp32'}, gradient checkpointing {'on' if settings.gradient_checkpointing else 'off'}, {ref}, {gen}",
            f"tokens: {settings.prompt_tokens} prompt + {settings.completion_tokens} completion per sequence (worst case); "
            f"micro-batch {settings.per_device_train_batch_size} sequences; generation batch per GPU = "
            f"per_device_train_batch_size × steps_per_generation",
        ]
    )


def plan_config(
    config: str | Path,
    gpus: Sequence[int] | None = None,
    strategies: Sequence[str] | None = None,
    model_config: str | None = None,
    gpu_memory_gb: float = 80.0,
    prompt_tokens: int | None = None,
    gpus_per_node: int = 8,
) -> tuple[ModelShape, RunSettings, LaunchHeader, str | None, dict[str, list[MemoryPlan]]]:
    """Plans for a YAML: {strategy: [plan per GPU count]}, plus what they were computed from."""
    path = Path(config)
    values = load_yaml_values(path)
    settings = RunSettings.from_yaml(values, prompt_tokens)
    header = read_launch_header(path)
    intended: str | None = None
    intended_ds: dict = {}
    if header.accelerate_config:
        found = _find(header.accelerate_config, path)
        if found is not None:
            intended, intended_ds = strategy_of_accelerate_config(found)
    source = model_config or values.get("model_name_or_path")
    if not source:
        raise PlanError(f"{path} names no model_name_or_path; pass --model-config PATH")
    shape = model_shape(str(source), name=str(values.get("model_name_or_path") or source))
    counts = list(gpus or header.gpus or (1,))
    plans: dict[str, list[MemoryPlan]] = {}
    for strategy in strategies or STRATEGIES:
        ds = intended_ds if strategy == intended and intended_ds else _repo_ds_config(strategy, path)
        plans[strategy] = [plan_memory(shape, settings, strategy, n, gpu_memory_gb, ds, gpus_per_node) for n in counts]
    return shape, settings, header, intended, plans


def format_report(
    config: str | Path, shape: ModelShape, settings: RunSettings, header: LaunchHeader, intended: str | None,
    plans: Mapping[str, list[MemoryPlan]],
) -> str:
    """What `rl-math plan` prints: the model and run, a table per strategy, the summary."""
    lines = [f"rl-math plan {config}", describe(shape, settings)]
    if header.accelerate_config:
        lines.append(f"intended: {header.accelerate_config} ({intended}) on {', '.join(map(str, header.gpus)) or '?'} GPUs")
    for strategy, ps in plans.items():
        lines += ["", format_plans(ps, intended=strategy == intended)]
    lines += ["", format_summary(plans, intended)]
    return "\n".join(lines)


def report_as_json(
    shape: ModelShape, settings: RunSettings, intended: str | None, plans: Mapping[str, list[MemoryPlan]]
) -> dict[str, Any]:
    """What `rl-math plan --json` prints."""
    return {
        "model": dataclasses.asdict(shape) | {"linear_shapes": len(shape.linear_shapes)},
        "settings": dataclasses.asdict(settings),
        "intended": intended,
        "plans": {
            s: [
                {"gpus": p.gpus, "items": p.items, "generation": p.generation_phase, "training": p.training_phase,
                 "peak_allocated": p.peak_allocated, "total": p.total, "verdict": p.verdict,
                 "deepspeed_states": p.deepspeed_states, "notes": p.notes}
                for p in ps
            ]
            for s, ps in plans.items()
        },
    }


def judged_plans(strategies: Sequence[str] | None, intended: str | None, plans: Mapping[str, list[MemoryPlan]]) -> list[MemoryPlan]:
    """The plans the verdict is about: the one strategy asked for, else the config's intended one."""
    return (plans.get(strategies[0]) if strategies else plans.get(intended or "")) or []
