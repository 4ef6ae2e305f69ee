"""The plan's constants and the model's shape, read from its config.json on the meta device (no weights)."""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rl_math.config import field_defaults
from rl_math.methods import recipe_dataclasses
from rl_math.models import resolve_model
from rl_math.runtime import hub_reachable

GB = 1e9

STRATEGY_NAMES = {
    "ddp": "DDP (no DeepSpeed)",
    "zero2": "DeepSpeed ZeRO-2",
    "zero3": "DeepSpeed ZeRO-3",
    "zero3_offload": "DeepSpeed ZeRO-3 + CPU offload",
}
STRATEGIES = tuple(STRATEGY_NAMES)
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
    if not path.exists():
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(name_or_path, "config.json"), str) and not hub_reachable():
            raise PlanError(
                f"the model config of {name_or_path!r} is not in the cache and the hub cannot be reached; "
                "pass --model-config PATH (a folder holding its config.json, or the config.json itself)"
            )
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

