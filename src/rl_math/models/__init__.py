"""The models rl-math loads: a hub id or a folder as given, or the embedded default built on first use.

`rl-math:tiny-qwen2[?options]` names the embedded tiny Qwen2 model (:mod:`rl_math.models.tiny_qwen2`:
random weights, Qwen2.5's chat format, built offline and deterministically) and works wherever a
hub id or a model folder does: it is the default of the smoke configs and the learning benchmark.
The loaders pass every name through :func:`resolve_model`; checks ask
:func:`rl_math.runtime.is_embedded_model`. The one tokenizer loader is :func:`load_tokenizer`.
"""

from __future__ import annotations

from rl_math.models.tiny_qwen2 import ensure_tiny_model
from rl_math.runtime import is_embedded_model, model_source_errors, tiny_model_options

__all__ = ["ensure_tiny_model", "is_embedded_model", "load_tokenizer", "resolve_model"]


def resolve_model(name_or_path: str) -> str:
    """The folder or hub id to load: the embedded model's built-on-first-use folder, any other name as is.

    >>> resolve_model("Qwen/Qwen2.5-0.5B-Instruct")
    'Qwen/Qwen2.5-0.5B-Instruct'
    """
    options = tiny_model_options(name_or_path)
    return name_or_path if options is None else str(ensure_tiny_model(options))


def load_tokenizer(name_or_path: str, *, trust_remote_code: bool = False, revision: str | None = None,
                   padding_side: str | None = None):
    """The model's tokenizer with a pad token (the EOS when the model has none).

    Training keeps the tokenizer's padding side; batched generation asks for `padding_side="left"`.
    """
    from transformers import AutoTokenizer  # heavy: `import rl_math.models` stays cheap

    with model_source_errors(name_or_path):
        tokenizer = AutoTokenizer.from_pretrained(
            resolve_model(name_or_path), trust_remote_code=trust_remote_code, revision=revision
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if padding_side is not None:
        tokenizer.padding_side = padding_side
    return tokenizer
