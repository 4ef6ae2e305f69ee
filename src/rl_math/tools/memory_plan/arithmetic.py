"""The memory arithmetic per GPU: model states, buffers, reference model, generation, activations, log-probs (the package docstring states each term)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

from rl_math.tools.memory_plan.model import (
    CUDA_CONTEXT_GB,
    DS_BUFFER_FACTOR,
    FRAGMENTATION,
    GB,
    LOGPROB_TOKEN_CHUNK,
    LOGPROB_VOCAB_CHUNK,
    NCCL_GB,
    STRATEGIES,
    TIGHT_FRACTION,
    ModelShape,
    PlanError,
)
from rl_math.tools.memory_plan.settings import RunSettings

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

