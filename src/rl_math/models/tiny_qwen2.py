"""The offline tiny model: a randomly initialised Qwen2-architecture model and its tokenizer.

Nothing is downloaded. The tokenizer is a small byte-level BPE trained here with exactly Qwen2.5's
normaliser and pre-tokeniser, the real special tokens (`<|endoftext|>`, `<|im_start|>`,
`<|im_end|>`) and TRL's copy of the Qwen2.5 chat template, so prompts look as they do for the
real models. Both are built deterministically and cached; `model_name_or_path: rl-math:tiny-qwen2`
in a config resolves (:func:`rl_math.models.resolve_model`) to the cached folder, and `rl-math:tiny-qwen2?hidden_size=128&seed=3` to
another shape or initialisation (:class:`TinyModelOptions`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from pathlib import Path

from rl_math.runtime import TINY_BUILD_VERSION, TINY_MODEL_NAME, TINY_MODEL_SHAPE, TinyModelOptions, tiny_model_dir
from rl_math.tasks.arithmetic import generate_problems

logger = logging.getLogger(__name__)

_VOCAB_SIZE = 512
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Qwen2.5's pre-tokeniser split (from its tokenizer.json): digits are single tokens.
_QWEN_SPLIT_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


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


# The system prompts the tokenizer was first trained on, frozen: a prompt format added later must
# not change the embedded model's vocabulary (and with it every benchmark figure).
_CORPUS_SYSTEM_PROMPTS = (
    "Please reason step by step, and put your final answer within \\boxed{}.",
    "First think through the problem step by step inside <think> </think> tags, then state the final answer "
    "within \\boxed{}, for example: <think> reasoning process here </think> The answer is \\boxed{answer here}.",
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The "
    "assistant first thinks about the reasoning process in the mind and then provides the user with the answer. "
    "The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags, "
    "respectively, i.e., <think> reasoning process here </think><answer> answer here </answer>.",
)


def _tokenizer_corpus() -> list[str]:
    texts = list(_CORPUS_SYSTEM_PROMPTS)
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
        model_max_length=TINY_MODEL_SHAPE["max_position_embeddings"],
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
        json.dumps({"name": TINY_MODEL_NAME, "version": TINY_BUILD_VERSION, "vocab_fingerprint": vocab_fingerprint(tokenizer)})
    )
    return out_dir


def vocab_fingerprint(tokenizer) -> str:
    """sha256 of the vocabulary, to show two builds are the same tokenizer."""
    vocab = json.dumps(sorted(tokenizer.get_vocab().items()))
    return hashlib.sha256(vocab.encode()).hexdigest()[:16]
