"""Facts about the run-time a recipe runs in: processes, hardware, the hub, optional engines.

The checks before a run (`preflight`) and the code that runs (sampling, training, in-run
evaluation) ask the same questions; the answers live here, below both.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rl_math.errors import ConfigError, nearest_key
from rl_math.fields import reserved_name_options


def world_size_from_env() -> int:
    """Processes in this job, as launchers announce them (accelerate, torchrun, deepspeed set WORLD_SIZE)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def generation_batch(
    per_device_train_batch_size: int,
    gradient_accumulation_steps: int,
    generation_batch_size: int | None,
    steps_per_generation: int | None,
    world_size: int,
) -> int:
    """The completions GRPOTrainer generates at once over all processes: `generation_batch_size`, given or derived.

    >>> generation_batch(8, 2, None, None, world_size=2), generation_batch(8, 2, 64, None, world_size=2)
    (32, 64)
    """
    if generation_batch_size is not None:
        return generation_batch_size
    return per_device_train_batch_size * world_size * (steps_per_generation or gradient_accumulation_steps)


def on_generation_boundary(step: int, gradient_accumulation_steps: int, generate_every: int) -> bool:
    """Whether optimizer step `step` ends where GRPOTrainer starts a new generation (every
    `generate_every` = steps_per_generation × num_iterations micro-batches)."""
    return (step * gradient_accumulation_steps) % generate_every == 0


VLLM_MISSING = (
    "use_vllm is true but vLLM is not installed; install the extra with `pip install -e .[vllm]` "
    "(CUDA machines only), or set use_vllm: false to generate with transformers"
)


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def deepspeed_launch() -> bool:
    return os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() in ("1", "true") or bool(
        os.environ.get("ACCELERATE_DEEPSPEED_CONFIG_FILE")
    )


def extensions_dir() -> Path:
    from torch.utils.cpp_extension import get_default_build_root

    return Path(os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root())


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _looks_local(name: str) -> bool:
    """A path rather than a hub id (`org/name`): explicit path syntax, or under a folder that exists here."""
    if name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1:
        return True
    return "/" in name and Path(name.split("/")[0]).is_dir()


def similar_paths(path: Path) -> str:
    """`; did you mean 'outputs/sft-smoke'?` when a sibling of a missing path is a near miss."""
    parent = path.parent
    if not parent.is_dir():
        return ""
    nearest = nearest_key(path.name, [p.name for p in parent.iterdir()])
    return f" (did you mean {str(parent / nearest)!r}?)" if nearest else ""


def model_source_problem(name: str, revision: str | None = None) -> str | None:
    """Why `model_name_or_path` cannot be loaded, as a sentence with the fix; None when it can (or may)."""

    if is_embedded_model(name):  # the offline model; a bad option is a ConfigError here
        return None
    path = Path(name).expanduser()
    if path.is_file():
        return f"model_name_or_path {name!r} is a file; give the model's folder (the one holding config.json) or a hub id"
    if path.is_dir():
        if not any((path / marker).is_file() for marker in ("config.json", "adapter_config.json")):
            return (
                f"model folder {name!r} holds no config.json, so it is not a saved model; give the output_dir "
                "of a finished run (or one of its checkpoint-N folders) or a hub id"
            )
        return None
    if _looks_local(name):
        return (
            f"model path {name!r} does not exist{similar_paths(path)}; give the folder of a saved model "
            "(the output_dir of a finished run) or a hub id such as Qwen/Qwen2.5-0.5B-Instruct"
        )
    if hub_offline():
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(name, "config.json", revision=revision), str):
            return (
                f"model_name_or_path {name!r} is no local folder, and as a hub id it is not in the cache while the "
                f"hub is unreachable (HF_HUB_OFFLINE=1); check the path, or download the model once with network "
                f"(`hf download {name}`)"
            )
    return None


@contextlib.contextmanager
def model_source_errors(name: str) -> Iterator[None]:
    """Loading the tokenizer (the first thing read from a model) fails as one sentence, not a traceback.

    What the preflight cannot know without the network ends here: a hub id that does not exist, or
    a hub that cannot be reached (after huggingface_hub's retries).
    """
    try:
        yield
    except OSError as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(
            f"cannot load {name!r} ({reason}); check the hub id or local path, and the network "
            "(or export HF_HUB_OFFLINE=1 to use only local folders and the cache)"
        ) from None



def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None



# ----------------------------------------------------------------------------------------
# The embedded default model's name and where its build lives (rl_math.models builds it)

TINY_MODEL_NAME = "rl-math:tiny-qwen2"


TINY_BUILD_VERSION = "1"  # bump when the recipe below changes, so caches rebuild


TINY_MODEL_SHAPE = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    max_position_embeddings=2048,
    tie_word_embeddings=True,
)


def cache_root() -> Path:
    return Path(os.environ.get("RL_MATH_CACHE", Path.home() / ".cache" / "rl_math"))


@dataclass(frozen=True)
class TinyModelOptions:
    """Shape and initialisation of `rl-math:tiny-qwen2?…`, e.g. `rl-math:tiny-qwen2?hidden_size=128&seed=3`.

    The plain name is the default shape with seed 0 (107k parameters). The learning benchmark
    picks a size and varies `seed` to show a result is not one lucky initialisation.
    """

    hidden_size: int = TINY_MODEL_SHAPE["hidden_size"]
    num_hidden_layers: int = TINY_MODEL_SHAPE["num_hidden_layers"]
    intermediate_size: int | None = None  # null: twice hidden_size
    num_attention_heads: int = TINY_MODEL_SHAPE["num_attention_heads"]
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.hidden_size, self.num_hidden_layers, self.num_attention_heads) < 1:
            raise ValueError("hidden_size, num_hidden_layers and num_attention_heads must be at least 1")
        if self.hidden_size % self.num_attention_heads or self.num_attention_heads % 2:
            raise ValueError(
                f"hidden_size {self.hidden_size} must be divisible by num_attention_heads {self.num_attention_heads}, "
                "an even number (the key/value heads are half of them)"
            )

    def shape(self) -> dict:
        heads = self.num_attention_heads
        return TINY_MODEL_SHAPE | dict(
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            intermediate_size=self.intermediate_size or 2 * self.hidden_size,
            num_attention_heads=heads,
            num_key_value_heads=heads // 2,
            head_dim=self.hidden_size // heads,
        )

    def folder_name(self) -> str:
        if self == TinyModelOptions():
            return f"tiny-qwen2-v{TINY_BUILD_VERSION}"  # the plain name keeps its folder
        shape = self.shape()
        return (
            f"tiny-qwen2-v{TINY_BUILD_VERSION}-h{shape['hidden_size']}-l{shape['num_hidden_layers']}"
            f"-i{shape['intermediate_size']}-a{shape['num_attention_heads']}-s{self.seed}"
        )


def tiny_model_options(name_or_path: str) -> TinyModelOptions | None:
    """The options of an `rl-math:tiny-qwen2[?…]` name (a ConfigError for bad ones), else None."""

    return reserved_name_options(name_or_path, TINY_MODEL_NAME, TinyModelOptions)


def tiny_model_dir(options: TinyModelOptions | None = None) -> Path:
    return cache_root() / (options or TinyModelOptions()).folder_name()



def is_embedded_model(name_or_path: str) -> bool:
    """Whether `name_or_path` names the embedded tiny model; a ConfigError for bad options of one.

    >>> is_embedded_model("rl-math:tiny-qwen2?hidden_size=128&seed=3"), is_embedded_model("Qwen/Qwen2.5-0.5B")
    (True, False)
    """
    return tiny_model_options(name_or_path) is not None
