"""What the plan reads from a GRPO YAML: its values as a run parses them, the launch header, the accelerate/DeepSpeed strategy."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rl_math.config import recipe_values
from rl_math.methods import recipe_dataclasses
from rl_math.tools.memory_plan.model import _HEADER, _NAMED_ACCELERATE_CONFIG, PlanError, grpo_defaults

# --------------------------------------------------------------------------------------------
# The YAML


def load_yaml_values(path: str | Path) -> dict[str, Any]:
    """The recipe YAML's values (without its `env:` block)."""

    return recipe_values(path, recipe_dataclasses("grpo"))


@dataclasses.dataclass(frozen=True)
class LaunchHeader:
    """The `# rl-math: accelerate_config=... gpus=...` line of a shipped config."""

    accelerate_config: str | None
    gpus: tuple[int, ...]


def read_launch_header(path: str | Path) -> LaunchHeader:
    """The intended launch of a config, from its header comment (empty when there is none)."""
    for line in Path(path).read_text().splitlines():
        match = _HEADER.match(line.strip())
        if not match:
            continue
        fields = dict(item.split("=", 1) for item in match.group(1).split() if "=" in item)
        gpus = tuple(int(g) for g in fields.get("gpus", "").split(",") if g.strip().isdigit())
        return LaunchHeader(fields.get("accelerate_config"), gpus)
    # no header: an accelerate config named in any comment ("launch with configs/accelerate/zero3.yaml")
    for line in Path(path).read_text().splitlines():
        if "#" in line and (named := _NAMED_ACCELERATE_CONFIG.search(line.split("#", 1)[1])):
            return LaunchHeader(named.group(0), ())
    return LaunchHeader(None, ())


def _find(path_text: str, yaml_path: Path) -> Path | None:
    """A path from a header: relative to the working directory, else to the repository of the YAML."""
    for base in (Path.cwd(), yaml_path.resolve().parent.parent, yaml_path.resolve().parent):
        candidate = base / path_text
        if candidate.is_file():
            return candidate
    return None


def strategy_of_accelerate_config(path: Path) -> tuple[str, dict]:
    """`ddp`/`zero2`/`zero3`/`zero3_offload` and the DeepSpeed JSON of an accelerate config file."""
    import yaml

    config = yaml.safe_load(path.read_text()) or {}
    if config.get("distributed_type") != "DEEPSPEED":
        return "ddp", {}
    ds_file = (config.get("deepspeed_config") or {}).get("deepspeed_config_file")
    ds_path = _find(ds_file, path) if ds_file else None
    ds = json.loads(ds_path.read_text()) if ds_path else {}
    zero = ds.get("zero_optimization", {})
    stage = zero.get("stage", (config.get("deepspeed_config") or {}).get("zero_stage", 2))
    if stage == 3:
        offloaded = (zero.get("offload_param") or {}).get("device", "none") != "none"
        return ("zero3_offload" if offloaded else "zero3"), ds
    return "zero2", ds


def _repo_ds_config(strategy: str, yaml_path: Path) -> dict:
    """The shipped DeepSpeed JSON of a strategy (for its bucket sizes), or {}."""
    if strategy == "ddp":
        return {}
    found = _find(f"ds_configs/{strategy}.json", yaml_path)
    return json.loads(found.read_text()) if found else {}


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """The YAML values that decide memory, with TRL's defaults filled in."""

    per_device_train_batch_size: int
    gradient_accumulation_steps: int
    steps_per_generation: int
    num_generations: int
    prompt_tokens: int
    completion_tokens: int
    gradient_checkpointing: bool
    bf16: bool
    beta: float
    use_vllm: bool
    vllm_mode: str
    vllm_gpu_memory_utilization: float
    ds3_gather_for_generation: bool
    use_peft: bool
    lora_r: int
    lora_target_modules: Any
    model_dtype_bytes: int
    base_weight_bytes: float | None  # frozen base under LoRA when 4-/8-bit quantised, else None (its dtype)
    generation_batch_size: int | None = None  # all processes together, when the YAML sets it
    checkpoint_every_n_layers: int = 1  # activation_checkpointing_kwargs.every_n_layers
    eval_sequences: int = 0  # in-run evaluation: questions one GPU answers per generate call (0: off)
    eval_completion_tokens: int = 0

    @classmethod
    def from_yaml(cls, values: Mapping[str, Any], prompt_tokens: int | None = None) -> RunSettings:
        defaults = grpo_defaults()
        v = {**defaults, **{k: val for k, val in values.items() if val is not None or k not in defaults}}
        bf16 = v["bf16"] if v["bf16"] is not None else not v["fp16"]
        half = bool(bf16 or v["fp16"])
        dtype = str(v.get("dtype") or "float32").replace("torch.", "")
        dtype_bytes = {"float32": 4, "bfloat16": 2, "float16": 2, "auto": 2}.get(dtype, 4)
        base_bytes: float | None = None
        if v["load_in_4bit"]:
            base_bytes = 0.5 * 1.03  # nf4 + its scales
        elif v["load_in_8bit"]:
            base_bytes = 1.0 * 1.03
        steps_per_generation = v["steps_per_generation"] or v["gradient_accumulation_steps"]
        checkpointing = v["activation_checkpointing"] if v["activation_checkpointing"] is not None else v["gradient_checkpointing"]
        every = int(((v["activation_checkpointing_kwargs"] or {}) if isinstance(v["activation_checkpointing_kwargs"], dict) else {}).get("every_n_layers", 1) or 1)
        prompt = prompt_tokens if prompt_tokens is not None else v["max_prompt_tokens"]
        if prompt is None:
            raise PlanError("max_prompt_tokens is null; pass --prompt-tokens N (the longest prompt, in tokens)")
        return cls(
            per_device_train_batch_size=int(v["per_device_train_batch_size"]),
            gradient_accumulation_steps=int(v["gradient_accumulation_steps"]),
            steps_per_generation=int(steps_per_generation or 0),
            num_generations=int(v["num_generations"]),
            prompt_tokens=int(prompt),
            completion_tokens=int(v["max_completion_length"]),
            gradient_checkpointing=bool(checkpointing),
            bf16=half,
            beta=float(v["beta"]),
            use_vllm=bool(v["use_vllm"]),
            vllm_mode=str(v["vllm_mode"]),
            vllm_gpu_memory_utilization=float(v["vllm_gpu_memory_utilization"]),
            ds3_gather_for_generation=bool(v["ds3_gather_for_generation"]),
            use_peft=bool(v["use_peft"]),
            lora_r=int(v["lora_r"]),
            lora_target_modules=v["lora_target_modules"],
            model_dtype_bytes=dtype_bytes,
            base_weight_bytes=base_bytes,
            generation_batch_size=int(v["generation_batch_size"]) if v["generation_batch_size"] else None,
            checkpoint_every_n_layers=max(1, every),
            eval_sequences=int(v["eval_generation_batch_size"]) if v["eval_accuracy_steps"] else 0,
            eval_completion_tokens=int(v["eval_max_new_tokens"] or v["max_completion_length"]),
        )

    @property
    def tokens_per_sequence(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def generation_sequences(self, gpus: int) -> int:
        """Sequences one GPU generates at once: its slice of the generation batch."""
        if self.generation_batch_size:
            return max(1, math.ceil(self.generation_batch_size / gpus))
        return self.per_device_train_batch_size * self.steps_per_generation

