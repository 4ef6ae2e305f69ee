"""The offline tiny model: a randomly initialised Qwen2-architecture model and its tokenizer.

Nothing is downloaded. The tokenizer is a small byte-level BPE trained here with exactly Qwen2.5's
normaliser and pre-tokeniser, the real special tokens (`<|endoftext|>`, `<|im_start|>`,
`<|im_end|>`) and TRL's copy of the Qwen2.5 chat template, so prompts look as they do for the
real models. Both are built deterministically and cached; `model_name_or_path: rl-math:tiny-qwen2`
in a config resolves (:func:`rl_math.testing.resolve_model`) to the cached folder, and `rl-math:tiny-qwen2?hidden_size=128&seed=3` to
another shape or initialisation (:class:`TinyModelOptions`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

TINY_MODEL_NAME = "rl-math:tiny-qwen2"
_BUILD_VERSION = "1"  # bump when the recipe below changes, so caches rebuild
_VOCAB_SIZE = 512
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Qwen2.5's pre-tokeniser split (from its tokenizer.json): digits are single tokens.
_QWEN_SPLIT_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_MODEL_SHAPE = dict(
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

    hidden_size: int = _MODEL_SHAPE["hidden_size"]
    num_hidden_layers: int = _MODEL_SHAPE["num_hidden_layers"]
    intermediate_size: int | None = None  # null: twice hidden_size
    num_attention_heads: int = _MODEL_SHAPE["num_attention_heads"]
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
        return _MODEL_SHAPE | dict(
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            intermediate_size=self.intermediate_size or 2 * self.hidden_size,
            num_attention_heads=heads,
            num_key_value_heads=heads // 2,
            head_dim=self.hidden_size // heads,
        )

    def folder_name(self) -> str:
        if self == TinyModelOptions():
            return f"tiny-qwen2-v{_BUILD_VERSION}"  # the plain name keeps its folder
        shape = self.shape()
        return (
            f"tiny-qwen2-v{_BUILD_VERSION}-h{shape['hidden_size']}-l{shape['num_hidden_layers']}"
            f"-i{shape['intermediate_size']}-a{shape['num_attention_heads']}-s{self.seed}"
        )


def tiny_model_options(name_or_path: str) -> TinyModelOptions | None:
    """The options of an `rl-math:tiny-qwen2[?…]` name (a ConfigError for bad ones), else None."""
    from rl_math.config import reserved_name_options

    return reserved_name_options(name_or_path, TINY_MODEL_NAME, TinyModelOptions)


def tiny_model_dir(options: TinyModelOptions | None = None) -> Path:
    return cache_root() / (options or TinyModelOptions()).folder_name()


def ensure_tiny_model(options: TinyModelOptions | None = None) -> Path:
    """Build the tiny model and tokenizer once; concurrent processes (a 2-process launch) are safe."""
    options = options or TinyModelOptions()
    target = tiny_model_dir(options)
    if (target / "model.safetensors").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tiny-build-", dir=target.parent))
    try:
        build_tiny_model(staging, options)
        try:
            staging.rename(target)  # atomic: the first builder wins, the others use its result
        except OSError:
            if not (target / "model.safetensors").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("built the offline tiny model in %s", target)
    return target


def _tokenizer_corpus() -> list[str]:
    from rl_math.tasks.arithmetic import generate_problems
    from rl_math.tasks.formats import PROMPT_FORMATS

    texts = [fmt.system_prompt for fmt in PROMPT_FORMATS.values()]
    for problem in generate_problems(3000, seed=99):
        texts.append(problem["question"])
        texts.append(problem["answer"])
    texts += [
        "<think> Let me work it out step by step. </think> The answer is \\boxed{42}.",
        "<answer> 42 </answer> \\frac{1}{2} $18.00 1,080 x = 18",
        "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
    ]
    return texts


def build_tokenizer():
    """Train the tiny byte-level BPE and wrap it with Qwen2.5's special tokens and chat template."""
    import trl
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_QWEN_SPLIT_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(
        vocab_size=_VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte stays encodable
        show_progress=False,
    )
    tokenizer.train_from_iterator(_tokenizer_corpus(), trainer=trainer)
    template = (Path(trl.__file__).parent / "chat_templates" / "qwen2_5.jinja").read_text()
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",  # end of turn: generation stops here, as with Qwen2.5-Instruct
        pad_token="<|endoftext|>",
        bos_token=None,
        unk_token=None,
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
        chat_template=template,
        model_max_length=_MODEL_SHAPE["max_position_embeddings"],
        clean_up_tokenization_spaces=False,
    )


def build_tiny_model(out_dir: Path, options: TinyModelOptions | None = None) -> Path:
    """Write tokenizer, config and random weights of the tiny Qwen2 model into `out_dir`."""
    options = options or TinyModelOptions()
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    tokenizer = build_tokenizer()
    tokenizer.save_pretrained(out_dir)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        bos_token_id=None,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
        **options.shape(),
    )
    torch.manual_seed(options.seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=[tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")],
        pad_token_id=tokenizer.pad_token_id,
        do_sample=True,
    )
    model.save_pretrained(out_dir)
    (out_dir / "rl_math_tiny.json").write_text(
        json.dumps({"name": TINY_MODEL_NAME, "version": _BUILD_VERSION, "vocab_fingerprint": vocab_fingerprint(tokenizer)})
    )
    return out_dir


def vocab_fingerprint(tokenizer) -> str:
    """sha256 of the vocabulary, to show two builds are the same tokenizer."""
    vocab = json.dumps(sorted(tokenizer.get_vocab().items()))
    return hashlib.sha256(vocab.encode()).hexdigest()[:16]
