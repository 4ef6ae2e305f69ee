"""`rl-math plan CONFIG.yaml`: the GPU memory a GRPO config needs per GPU, before renting the GPUs.

    rl-math plan configs/qwen7b.yaml                         # every strategy, the GPU counts in the YAML header
    rl-math plan configs/qwen1.5b.yaml --gpus 8 --zero 2     # one strategy, one GPU count
    rl-math plan configs/qwen7b.yaml --model-config ../shared/model_configs/Qwen2.5-7B-Instruct

The model's shape comes from its `config.json` (the YAML's `model_name_or_path` as a hub id or a
local folder, or `--model-config PATH`); the parameters are counted on the `meta` device, so no
weights are loaded or downloaded. Everything else comes from the YAML (TRL's defaults for what it
leaves out). The estimate is an upper bound for the worst case: every prompt `max_prompt_tokens`
long (`--prompt-tokens` to change) and every completion `max_completion_length` long.

What is counted, per GPU, in GB (10⁹ bytes); Ψ = parameters, N = GPUs, a = bytes per activation
element (2 under bf16), L/h/f = layers/hidden/ffn size, T = prompt + completion tokens:

* **model states** -- DDP: weights, gradients and AdamW m+v all in the model's dtype (`dtype:`,
  TRL's default float32), plus DDP's gradient buckets (a second gradient copy) when N > 1.
  ZeRO (bf16): DeepSpeed's own estimators (`estimate_zero2/3_model_states_mem_needs`): ZeRO-2
  2Ψ + 18Ψ/N (bf16 weights; bf16 + fp32 gradient partitions, fp32 master + Adam m + v), ZeRO-3
  18Ψ/N + 4 × largest layer (the gathered layer and its gradient), ZeRO-3 offload 4 × largest
  layer. LoRA: the frozen base in its dtype (sharded under ZeRO-3), the adapters as above.
* **communication buffers** -- ZeRO-2 4.5 × (reduce + allgather bucket) × 2 bytes, ZeRO-3
  4.5 × (reduce + prefetch bucket) × 2 bytes (the buckets of `ds_configs/*.json`, "auto" = h², 0.9 h²).
* **reference model** (beta > 0, not LoRA): DDP a copy in the model dtype; ZeRO-2 a replicated
  bf16 copy; ZeRO-3 sharded, 2Ψ/N.
* **vLLM colocate**: `vllm_gpu_memory_utilization` × GPU memory, reserved for the whole run.
* **generation** (transformers `generate`, i.e. not vLLM): the KV cache of the whole local
  generation batch, `per_device_train_batch_size × steps_per_generation` sequences × T tokens ×
  2·L·kv_heads·head_dim·a bytes; the last-token logits for sampling (3 fp32 copies of V per
  sequence); one layer of prefill; under ZeRO-3 the gathered full weights, 2Ψ
  (`ds3_gather_for_generation`). In-run evaluation (`eval_accuracy_steps`) generates between
  steps with `eval_generation_batch_size` sequences of prompt + `eval_max_new_tokens`: only what
  its KV cache and logits exceed training generation's by is added (the two never coexist); with
  vLLM it uses the trainer's engine and costs nothing extra.
* **activations** of one training micro-batch (B = `per_device_train_batch_size` sequences × T),
  measured tensor by tensor on transformers' Qwen2 with sdpa (see tests/tools/test_memory_plan.py):
  per layer and token 8h + 8ah + 4af + 4·heads + 8 bytes (two RMSNorms keep an fp32 copy of their
  input, q and the head-repeated k/v, attention output, log-sum-exp, four ffn-sized tensors),
  plus the attention bias B·T²·a per layer; with gradient checkpointing only the layer input
  (a·h per token and layer) stays, plus one layer recomputed during the backward pass.
* **log-probs/loss**: TRL 1.16 never materialises the B × T × V logits: its fused LM head
  (`trl.kernels.ChunkedLogProbFunction`) projects 4096 tokens × 32768 vocabulary at a time.
  What it does hold: that tile, a copy of the completion hidden states, and in the backward an
  fp32 gradient of the LM-head weight (V·h·4 bytes) and of the hidden states.

The allocator peak is the larger of the generation phase (what stays resident, without DDP's
gradients, which the Trainer frees after each step, + generation) and the training phase
(everything resident + one micro-batch); the total adds 5 % allocator fragmentation and the CUDA context (and NCCL
buffers on several GPUs), and is compared with the GPU memory (80 GB by default).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rl_math.config import field_defaults, recipe_values
from rl_math.methods import recipe_dataclasses
from rl_math.models import resolve_model

GB = 1e9

STRATEGIES = ("ddp", "zero2", "zero3", "zero3_offload")
STRATEGY_NAMES = {
    "ddp": "DDP (no DeepSpeed)",
    "zero2": "DeepSpeed ZeRO-2",
    "zero3": "DeepSpeed ZeRO-3",
    "zero3_offload": "DeepSpeed ZeRO-3 + CPU offload",
}
ZERO_CHOICES = {"0": "ddp", "ddp": "ddp", "2": "zero2", "3": "zero3", "3_offload": "zero3_offload"}

# TRL 1.16 / rl-math defaults for the keys a YAML may leave out (tests check them against the dataclasses).
@functools.cache
def grpo_defaults() -> dict[str, Any]:
    """The GRPO recipe's field defaults (TRL's and rl-math's): what an unset YAML key means."""
    return field_defaults(recipe_dataclasses("grpo"))

# The kernel constants of TRL 1.16's fused LM head (trl/kernels/chunked_logprob.py).
LOGPROB_TOKEN_CHUNK = 4096
LOGPROB_VOCAB_CHUNK = 32768
# The DeepSpeed buffer rule of thumb: overlap_comm keeps ~4.5 × the bucket sizes.
DS_BUFFER_FACTOR = 4.5
FRAGMENTATION = 0.05
CUDA_CONTEXT_GB = 1.0  # CUDA context, cuBLAS workspace: not in torch.cuda.max_memory_allocated
NCCL_GB = 0.5  # NCCL communicator buffers, several GPUs only
TIGHT_FRACTION = 0.9
_PEFT_DEFAULT_TARGETS = {"qwen2": ["q_proj", "v_proj"]}  # peft's mapping, for lora_target_modules: null
_HEADER = re.compile(r"#\s*rl-math:\s*(.*)")
_NAMED_ACCELERATE_CONFIG = re.compile(r"configs/accelerate/[\w.-]+\.ya?ml")


class PlanError(ValueError):
    """A problem with the plan's inputs, printed as one line."""


# --------------------------------------------------------------------------------------------
# The model


@dataclasses.dataclass(frozen=True)
class ModelShape:
    """What the memory arithmetic needs to know about a causal LM."""

    name: str
    params: int  # unique parameters (tied embeddings once)
    largest_layer_params: int  # the largest module's own parameters (DeepSpeed's "largest layer")
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied_embeddings: bool
    linear_shapes: tuple[tuple[str, int, int], ...] = ()  # (module name, in, out) of every nn.Linear but the head

    def lora_params(self, rank: int, targets: Sequence[str] | str | None, model_type: str = "qwen2") -> int:
        """Trainable LoRA parameters: rank × (in + out) for every targeted linear layer."""
        if targets is None:
            targets = _PEFT_DEFAULT_TARGETS.get(model_type, ["q_proj", "v_proj"])
        if isinstance(targets, str):
            targets = [targets]
        every = "all-linear" in targets
        return sum(rank * (n_in + n_out) for name, n_in, n_out in self.linear_shapes if every or name.rsplit(".", 1)[-1] in targets)


def load_model_config(name_or_path: str):
    """`AutoConfig` of a hub id, a folder with config.json, or a config.json file."""
    from transformers import AutoConfig

    path = Path(name_or_path)
    if path.is_file() and path.suffix == ".json":
        path = path.parent
    if path.is_dir() and not (path / "config.json").is_file():
        raise PlanError(f"{path} has no config.json")
    if name_or_path.startswith("rl-math:"):

        path = Path(resolve_model(name_or_path))
    try:
        return AutoConfig.from_pretrained(str(path) if path.exists() else name_or_path)
    except (OSError, ValueError) as err:
        raise PlanError(
            f"cannot read the model config of {name_or_path!r} ({str(err).splitlines()[0]}); "
            "pass --model-config PATH (a folder holding config.json) when offline"
        ) from None


def model_shape(config_or_path, name: str | None = None) -> ModelShape:
    """Count parameters on the `meta` device (no memory, no download) and read the shape."""
    import torch
    from transformers import AutoModelForCausalLM

    config = load_model_config(config_or_path) if isinstance(config_or_path, (str, Path)) else config_or_path
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    params = sum({id(p): p.numel() for p in model.parameters()}.values())
    largest = max(sum(p.numel() for p in m.parameters(recurse=False)) for m in model.modules())
    head = model.get_output_embeddings()
    linears = tuple(
        (module_name, module.in_features, module.out_features)
        for module_name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and module is not head
    )
    heads = config.num_attention_heads
    return ModelShape(
        name=name or str(getattr(config, "_name_or_path", "") or config_or_path),
        params=params,
        largest_layer_params=largest,
        layers=config.num_hidden_layers,
        hidden=config.hidden_size,
        intermediate=config.intermediate_size,
        heads=heads,
        kv_heads=getattr(config, "num_key_value_heads", None) or heads,
        head_dim=getattr(config, "head_dim", None) or config.hidden_size // heads,
        vocab=config.vocab_size,
        tied_embeddings=bool(getattr(config, "tie_word_embeddings", False)),
        linear_shapes=linears,
    )


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


# --------------------------------------------------------------------------------------------
# The arithmetic


@dataclasses.dataclass
class MemoryPlan:
    """Bytes per GPU, by item, for one strategy and GPU count."""

    strategy: str
    gpus: int
    gpu_memory_gb: float
    items: dict[str, float]  # bytes
    generation_phase: dict[str, float]
    training_phase: dict[str, float]
    deepspeed_states: float | None  # DeepSpeed's estimator for the model states (ZeRO only)
    rule_of_thumb_states: float  # 16 bytes/param rule of docs/scaling.md (full fine-tune)
    host_bytes: float = 0.0  # CPU RAM per node (offload)
    notes: list[str] = dataclasses.field(default_factory=list)
    freed_before_generation: float = 0.0  # resident items that do not exist while generating (DDP gradients)

    @property
    def resident(self) -> float:
        return sum(self.items.values())

    @property
    def generation_peak(self) -> float:
        return sum(self.generation_phase.values())

    @property
    def training_peak(self) -> float:
        return sum(self.training_phase.values())

    @property
    def generation_phase_allocated(self) -> float:
        """Allocated while generating: what stays resident, plus the KV cache and friends."""
        return self.resident - self.freed_before_generation + self.generation_peak

    @property
    def training_phase_allocated(self) -> float:
        """Allocated at the worst moment of a micro-batch's forward and backward pass."""
        return self.resident + self.training_peak

    @property
    def peak_allocated(self) -> float:
        """What torch.cuda.max_memory_allocated should show."""
        return max(self.generation_phase_allocated, self.training_phase_allocated)

    @property
    def overhead(self) -> float:
        context = CUDA_CONTEXT_GB + (NCCL_GB if self.gpus > 1 else 0.0)
        return FRAGMENTATION * self.peak_allocated + context * GB

    @property
    def total(self) -> float:
        return self.peak_allocated + self.overhead

    @property
    def verdict(self) -> str:
        budget = self.gpu_memory_gb * GB
        if self.total > budget:
            return "DOES NOT FIT"
        if self.total > TIGHT_FRACTION * budget:
            return "tight"
        return "fits"

    @property
    def fits(self) -> bool:
        return self.total <= self.gpu_memory_gb * GB


def activation_bytes_per_token_per_layer(shape: ModelShape, act_bytes: int) -> int:
    """Bytes saved for the backward pass, per token, by one Qwen2 decoder layer (sdpa, no checkpointing)."""
    h, f = shape.hidden, shape.intermediate
    norms = 2 * (4 * h + 2 * act_bytes * h)  # fp32 copy of the input + normalised + output, twice
    attention = 4 * act_bytes * h + 4 * shape.heads  # q, repeated k and v, output; fp32 log-sum-exp per head
    mlp = 4 * act_bytes * f  # gate, silu(gate), up, product
    return norms + attention + mlp + 8  # + the two fp32 rsqrt scalars


def activation_bytes(
    shape: ModelShape, sequences: int, tokens: int, act_bytes: int, checkpointing: bool, every_n_layers: int = 1
) -> dict[str, float]:
    """Activation memory of one training micro-batch, by part."""
    n = sequences * tokens
    per_layer = activation_bytes_per_token_per_layer(shape, act_bytes) * n
    mask = sequences * tokens * tokens * act_bytes  # the float attention bias sdpa keeps per layer
    outside = (4 * shape.hidden + 2 * act_bytes * shape.hidden + 12) * n  # final norm, ids
    if checkpointing:
        checkpointed = math.ceil(shape.layers / every_n_layers)
        parts = {
            "checkpointed layer inputs": checkpointed * act_bytes * shape.hidden * n,
            "one layer recomputed": per_layer + mask,
            "final norm, ids": outside,
            "backward transients": n * (3 * act_bytes * shape.intermediate + 2 * act_bytes * shape.hidden),
        }
        if checkpointed < shape.layers:
            parts["layers not checkpointed (every_n_layers)"] = (shape.layers - checkpointed) * (per_layer + mask)
        return parts
    return {
        "layer activations": shape.layers * (per_layer + mask),
        "final norm, ids": outside,
        "backward transients": n * (3 * act_bytes * shape.intermediate + 2 * act_bytes * shape.hidden),
    }


def logprob_bytes(shape: ModelShape, sequences: int, completion_tokens: int, act_bytes: int) -> float:
    """TRL 1.16's fused, chunked LM head: tile + completion hidden copy + backward fp32 buffers."""
    completion = sequences * completion_tokens
    tile = min(completion, LOGPROB_TOKEN_CHUNK) * min(shape.vocab, LOGPROB_VOCAB_CHUNK) * act_bytes
    hidden_copy = completion * shape.hidden * act_bytes
    backward = shape.vocab * shape.hidden * 4 + completion * shape.hidden * 4
    per_token_loss_tensors = completion * 4 * 12  # logps, advantages, ratios, masks, entropy ... (fp32)
    return tile + hidden_copy + backward + per_token_loss_tensors


def _ds_estimates(strategy: str, trainable: int, largest_layer: int, gpus: int, gpus_per_node: int = 8) -> tuple[float, float]:
    """DeepSpeed's (GPU, CPU per node) model-states estimate; its formulas when DeepSpeed is absent."""
    per_node = min(gpus, gpus_per_node)
    nodes = math.ceil(gpus / per_node)
    try:
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            # importing deepspeed on a machine without a GPU prints an accelerator warning
            from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
            from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs
        if strategy == "zero2":
            cpu, gpu = estimate_zero2_model_states_mem_needs(
                trainable, num_gpus_per_node=per_node, num_nodes=nodes, cpu_offload=False
            )
            return float(gpu), float(cpu)
        offload = strategy == "zero3_offload"
        cpu, gpu, _ = estimate_zero3_model_states_mem_needs(
            trainable, largest_layer, num_gpus_per_node=per_node, num_nodes=nodes,
            cpu_offload=offload, cpu_offload_params=offload,
        )
        return float(gpu), float(cpu)
    except ImportError:  # the same formulas (deepspeed 0.19.8)
        if strategy == "zero2":
            return 2.0 * trainable + 18.0 * trainable / gpus, 4.0 * trainable * per_node * 1.5
        if strategy == "zero3":
            return 4.0 * largest_layer + 18.0 * trainable / gpus, 4.0 * largest_layer * per_node * 1.5
        return 4.0 * largest_layer, 18.0 * trainable / nodes * 1.5


def _bucket(ds: Mapping, key: str, auto: float) -> float:
    value = (ds.get("zero_optimization") or {}).get(key, "auto")
    return auto if value == "auto" or value is None else float(value)


def plan_memory(
    shape: ModelShape,
    settings: RunSettings,
    strategy: str,
    gpus: int,
    gpu_memory_gb: float = 80.0,
    ds_config: Mapping | None = None,
    gpus_per_node: int = 8,
) -> MemoryPlan:
    """The per-GPU memory of one GRPO run of `settings` on `gpus` GPUs under `strategy`."""
    if strategy not in STRATEGIES:
        raise PlanError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if gpus < 1:
        raise PlanError("--gpus must be at least 1")
    psi = shape.params
    ds = ds_config or {}
    notes: list[str] = []
    half = settings.bf16
    deepspeed = strategy != "ddp"
    # bytes of a weight on the GPU: DeepSpeed casts the module to bf16; DDP keeps the loaded dtype
    weight_bytes = 2 if (deepspeed and half) else settings.model_dtype_bytes
    act_bytes = 2 if half else 4

    lora = shape.lora_params(settings.lora_r, settings.lora_target_modules) if settings.use_peft else 0
    trainable = lora if settings.use_peft else psi
    items: dict[str, float] = {}
    ds_states: float | None = None
    host = 0.0
    freed = 0.0
    if strategy == "ddp":
        if settings.use_peft:
            items["frozen base weights"] = psi * (settings.base_weight_bytes or settings.model_dtype_bytes)
        b = settings.model_dtype_bytes if not settings.use_peft else 4  # PEFT keeps adapters in fp32 by default
        items["weights" if not settings.use_peft else "adapter weights"] = trainable * b
        items["gradients"] = trainable * b
        freed = trainable * b  # the Trainer's zero_grad(set_to_none) frees them after every optimizer step
        items["AdamW m + v"] = 2 * trainable * b
        if gpus > 1:
            items["DDP gradient buckets"] = trainable * b
        if b == 2:
            notes.append(
                "DDP trains the weights in the model's dtype: with dtype bfloat16 AdamW has no fp32 master copy, "
                "and updates below ~1/256 of a weight (lr 1e-6 is far below) are rounded away"
            )
    else:
        ds_gpu, ds_cpu = _ds_estimates(strategy, trainable, shape.largest_layer_params, gpus, gpus_per_node)
        ds_states = ds_gpu
        host = ds_cpu if strategy == "zero3_offload" else 0.0
        if settings.use_peft:
            base = psi * (settings.base_weight_bytes or weight_bytes)
            items["frozen base weights"] = base / gpus if strategy == "zero3" else (0.0 if strategy == "zero3_offload" else base)
            if strategy == "zero3_offload":
                host += base * min(gpus, gpus_per_node) / gpus  # the node's shards of the frozen base
        if strategy == "zero2":
            items["weights (bf16)" if half else "weights"] = 2.0 * trainable
            items["gradients + optimizer (sharded)"] = ds_gpu - 2.0 * trainable
        elif strategy == "zero3":
            items["weights + gradients + optimizer (sharded)"] = 18.0 * trainable / gpus
            items["gathered layer + its gradient"] = ds_gpu - 18.0 * trainable / gpus
        else:
            items["gathered layer + its gradient"] = ds_gpu
        h2 = float(shape.hidden) ** 2
        reduce_bucket = _bucket(ds, "reduce_bucket_size", h2)
        if strategy == "zero2":
            other = float((ds.get("zero_optimization") or {}).get("allgather_bucket_size", 2e8))
        else:
            other = _bucket(ds, "stage3_prefetch_bucket_size", 0.9 * h2)
        items["communication buffers"] = DS_BUFFER_FACTOR * (reduce_bucket + other) * 2
    rule_of_thumb = 16.0 * psi / (gpus if strategy in ("zero3", "zero3_offload") else 1)
    if strategy == "zero2":
        rule_of_thumb = 2.0 * psi + 14.0 * psi / gpus
    if strategy == "zero3_offload":
        rule_of_thumb = float("nan")  # the rule says nothing about what stays on the GPU

    if settings.beta > 0 and not settings.use_peft:
        if strategy == "ddp":
            items["reference model"] = psi * settings.model_dtype_bytes
        elif strategy == "zero2":
            items["reference model"] = psi * weight_bytes
        elif strategy == "zero3":
            items["reference model (sharded)"] = psi * weight_bytes / gpus
        else:
            items["reference model (offloaded)"] = 0.0

    vllm_colocate = settings.use_vllm and settings.vllm_mode == "colocate"
    if vllm_colocate:
        items["vLLM colocate reservation"] = settings.vllm_gpu_memory_utilization * gpu_memory_gb * GB

    # generation phase
    sequences = settings.generation_sequences(gpus)
    tokens = settings.tokens_per_sequence
    generation: dict[str, float] = {}
    if not settings.use_vllm:
        kv_bytes = weight_bytes if not deepspeed else (2 if half else 4)
        per_token_kv = 2 * shape.layers * shape.kv_heads * shape.head_dim * kv_bytes
        generation["KV cache"] = sequences * tokens * per_token_kv
        generation["KV cache growth (one layer re-allocated)"] = sequences * tokens * per_token_kv / shape.layers
        generation["sampling logits (3 fp32 copies)"] = sequences * shape.vocab * 4 * 3
        prompt = sequences * settings.prompt_tokens
        generation["prefill, one layer"] = prompt * (3 * act_bytes * shape.intermediate + 4 * act_bytes * shape.hidden) + (
            sequences * settings.prompt_tokens**2 * act_bytes
        )
        if strategy in ("zero3", "zero3_offload") and settings.ds3_gather_for_generation:
            generation["full weights gathered for generate"] = 2.0 * psi
        if settings.eval_sequences:
            # in-run evaluation generates greedily between steps, at another batch and length: its own
            # KV cache and logits never coexist with training generation's, so only an excess counts
            eval_sequences = settings.eval_sequences
            eval_tokens = settings.prompt_tokens + settings.eval_completion_tokens
            eval_bytes = eval_sequences * eval_tokens * per_token_kv * (1 + 1 / shape.layers) + eval_sequences * shape.vocab * 4 * 3
            train_bytes = generation["KV cache"] + generation["KV cache growth (one layer re-allocated)"] + generation[
                "sampling logits (3 fp32 copies)"]
            if eval_bytes > train_bytes:
                generation["in-run evaluation: KV cache beyond training generation's"] = eval_bytes - train_bytes
    elif settings.vllm_mode == "server":
        notes.append("vLLM server mode: generation runs on another node and costs these GPUs nothing")

    # training phase: one micro-batch forward + backward
    batch = settings.per_device_train_batch_size
    training = activation_bytes(
        shape, batch, tokens, act_bytes, settings.gradient_checkpointing, settings.checkpoint_every_n_layers
    )
    training["log-probs (TRL fused LM head)"] = logprob_bytes(shape, batch, settings.completion_tokens, act_bytes)

    return MemoryPlan(
        strategy=strategy,
        gpus=gpus,
        gpu_memory_gb=gpu_memory_gb,
        items=items,
        generation_phase=generation,
        training_phase=training,
        deepspeed_states=ds_states,
        rule_of_thumb_states=rule_of_thumb if not settings.use_peft else float("nan"),
        host_bytes=host,
        notes=notes,
        freed_before_generation=freed,
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
