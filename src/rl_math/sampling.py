"""Sampling completions for conversational prompts: vLLM when installed, else batched HF `generate`.

Shared by expert iteration (k samples per training question) and evaluation. Both backends take
the same settings and return the same :class:`Generations`: for prompt ``i`` and sample ``j`` the
entry ``i * num_samples + j`` holds the decoded text (special tokens skipped, as TRL decodes), the
completion's token ids (cut after the first stop token, which is kept, as TRL passes
``completion_ids`` to rewards), whether it ended with a stop token (``eos``) and whether it hit
``max_new_tokens`` without one (``truncated``).

Stop tokens are the tokenizer's EOS, every id of the model's ``generation_config.eos_token_id``
(what GRPOTrainer stops on) and the chat template's end-of-turn token (``<|im_end|>``), which a
base model's generation config may not list although SFT taught the model to emit it.

Sampling is what GRPO does by default: ``temperature`` (0 = greedy), ``top_p``, no top-k and no
repetition penalty, whatever the model's own generation_config suggests.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rl_math.models import load_tokenizer, resolve_model
from rl_math.runtime import VLLM_MISSING, vllm_installed
from rl_math.tasks.loading import dataset_task

logger = logging.getLogger(__name__)

_TURN_PROBE = "rl-math-end-of-turn-probe"


# --------------------------------------------------------------------------------------------
# Results


@dataclass
class Generations:
    """Completions in prompt-major order: entry ``i * num_samples + j`` is sample j of prompt i."""

    num_samples: int
    texts: list[str] = field(default_factory=list)
    token_ids: list[list[int]] = field(default_factory=list)
    eos: list[bool] = field(default_factory=list)
    truncated: list[bool] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)

    def index(self, prompt_index: int, sample_index: int) -> int:
        return prompt_index * self.num_samples + sample_index


def finish_completion(ids: Sequence[int], stop_ids: Sequence[int], max_new_tokens: int) -> tuple[list[int], bool, bool]:
    """(ids cut after the first stop token, ended with a stop token, hit the limit without one).

    >>> finish_completion([5, 6, 2, 0, 0], stop_ids=[2], max_new_tokens=5)
    ([5, 6, 2], True, False)
    >>> finish_completion([5, 6, 7], stop_ids=[2], max_new_tokens=3)
    ([5, 6, 7], False, True)
    """
    stops = set(stop_ids)
    ids = [int(i) for i in ids]
    for position, token in enumerate(ids):
        if token in stops:
            return ids[: position + 1], True, False
    return ids, False, len(ids) >= max_new_tokens


# --------------------------------------------------------------------------------------------
# Stop tokens


def end_of_turn_token_id(tokenizer) -> int | None:
    """The special token the chat template puts right after an assistant message (Qwen: `<|im_end|>`)."""
    if getattr(tokenizer, "chat_template", None) is None:
        return None
    try:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": "q"}, {"role": "assistant", "content": _TURN_PROBE}], tokenize=False
        )
    except Exception:  # noqa: BLE001 - an odd template: fall back to the EOS ids alone
        return None
    rest = text[text.rfind(_TURN_PROBE) + len(_TURN_PROBE) :]
    ids = tokenizer(rest, add_special_tokens=False)["input_ids"] if rest else []
    special = set(tokenizer.all_special_ids)
    return ids[0] if ids and ids[0] in special else None


def _eos_token_ids(tokenizer, model_path: str) -> list[int]:
    """Every id that ends a completion: the tokenizer's EOS plus the generation config's (as TRL stops on)."""
    from transformers import GenerationConfig

    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    try:
        generation = GenerationConfig.from_pretrained(resolve_model(model_path))
        extra = generation.eos_token_id
        ids.update(extra if isinstance(extra, list) else [extra] if extra is not None else [])
    except (OSError, ValueError):
        pass  # no generation_config.json: the tokenizer's EOS is all there is
    return sorted(ids)



def stop_token_ids(tokenizer, model_path: str) -> list[int]:
    """Every id that ends a completion: tokenizer EOS, generation_config EOS ids, end of turn.

    The one stop set: generation stops on it, and the `termination` reward (GRPO, evaluation and
    expert iteration alike) counts a completion as finished when it ends with one of these.
    """
    ids = set(_eos_token_ids(tokenizer, model_path))
    if (turn := end_of_turn_token_id(tokenizer)) is not None:
        ids.add(turn)
    if not ids:
        raise ValueError(f"{model_path}: the tokenizer has no EOS token and the chat template no end-of-turn token")
    return sorted(ids)


# --------------------------------------------------------------------------------------------
# Backends


def resolve_use_vllm(use_vllm: bool | None) -> bool:
    """`None` means vLLM when it is installed and a GPU is present; `True` requires it."""
    import torch

    if use_vllm is None:
        return vllm_installed() and torch.cuda.is_available()
    if use_vllm and not vllm_installed():

        raise ImportError(VLLM_MISSING)
    return bool(use_vllm)


# What each sampling setting must be (checked here once, for every config that sets one).
_SAMPLING_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "num_samples": (lambda v: v >= 1, "it must be at least 1"),
    "temperature": (lambda v: v >= 0, "it must be >= 0 (0 is greedy)"),
    "top_p": (lambda v: 0 < v <= 1, "it must be in (0, 1] (1.0 turns nucleus sampling off)"),
    "max_new_tokens": (lambda v: v >= 1, "it must be at least 1"),
}


@dataclass
class SamplingSettings:
    """How completions are sampled: the one set of sampling settings of evaluation, expert iteration
    and in-run evaluation, whatever their YAML keys are called (:meth:`from_config`).

    >>> SamplingSettings.from_config({"ei_temperature": 0.7, "ei_top_p": 0.9}, {"temperature": "ei_temperature",
    ...                              "top_p": "ei_top_p"}, seed=3)
    SamplingSettings(num_samples=1, temperature=0.7, top_p=0.9, max_new_tokens=512, seed=3)
    >>> SamplingSettings.from_config({"ei_temperature": -1}, {"temperature": "ei_temperature"})
    Traceback (most recent call last):
    ValueError: ei_temperature is -1; it must be >= 0 (0 is greedy)
    """

    num_samples: int = 1
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    max_new_tokens: int = 512
    seed: int = 0

    def __post_init__(self) -> None:
        check_sampling(vars(self))

    @classmethod
    def from_config(
        cls, values: Mapping[str, Any], keys: Mapping[str, str] | None = None, **given: Any
    ) -> SamplingSettings:
        """The settings a config's `values` hold; `keys` maps a setting to the config key that holds it
        (default: the setting's own name), `given` sets one directly. A setting neither holds keeps
        its default. A bad value is a ValueError that names the config key."""
        keys = dict(keys or {})
        settings = {
            name: values[keys.get(name, name)]
            for name in ("num_samples", "temperature", "top_p", "max_new_tokens", "seed")
            if keys.get(name, name) in values
        }
        settings.update(given)
        check_sampling(settings, keys)
        return cls(**settings)

    @classmethod
    def greedy_once(cls, max_new_tokens: int, seed: int = 0) -> SamplingSettings:
        """One greedy completion per prompt: how every evaluation during or between training rounds samples."""
        return cls(num_samples=1, temperature=0.0, top_p=1.0, max_new_tokens=max_new_tokens, seed=seed)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def check_sampling(settings: Mapping[str, Any], keys: Mapping[str, str] | None = None) -> None:
    """Raise ValueError, naming the config key (`keys`: setting → key), for a sampling setting out of range.

    >>> check_sampling({"top_p": 0}, {"top_p": "ei_top_p"})
    Traceback (most recent call last):
    ValueError: ei_top_p is 0; it must be in (0, 1] (1.0 turns nucleus sampling off)
    """
    keys = keys or {}
    for name, (ok, rule) in _SAMPLING_RULES.items():
        if name in settings and not ok(settings[name]):
            raise ValueError(f"{keys.get(name, name)} is {settings[name]:g}; {rule}")


def render_prompts(tokenizer, prompts: Sequence[Any]) -> list[list[int]]:
    """Token ids of each prompt as the model sees it: chat template with the generation prompt."""
    rendered = []
    for prompt in prompts:
        if isinstance(prompt, str):
            ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
        else:
            ids = tokenizer.apply_chat_template(list(prompt), tokenize=True, add_generation_prompt=True)
            ids = ids["input_ids"] if hasattr(ids, "keys") else ids
        rendered.append(list(ids))
    return rendered


class HFGenerator:
    """Batched `model.generate` with left padding, on the GPU when there is one."""

    backend = "transformers"

    def __init__(self, model_path: str, tokenizer, *, dtype: str | None = "auto", attn_implementation: str | None = None,
                 trust_remote_code: bool = False, revision: str | None = None, batch_size: int = 32):
        import torch
        from transformers import AutoModelForCausalLM

        self.tokenizer = tokenizer
        self.batch_size = max(1, batch_size)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        kwargs = {"dtype": dtype or "auto", "trust_remote_code": trust_remote_code}
        if attn_implementation:
            kwargs["attn_implementation"] = attn_implementation
        if revision:
            kwargs["revision"] = revision
        self.model = AutoModelForCausalLM.from_pretrained(model_path, **kwargs).to(self.device)
        self.model.eval()
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.show_progress = True

    @classmethod
    def for_loaded_model(cls, model, tokenizer, batch_size: int = 32) -> HFGenerator:
        """Generate with a model already in memory (a trainer's, for in-run evaluation); nothing is loaded."""
        generator = cls.__new__(cls)
        generator.tokenizer = tokenizer
        generator.batch_size = max(1, batch_size)
        generator.model = model
        generator.device = model.device
        generator.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        generator.show_progress = False
        return generator

    def generate(self, prompt_ids: list[list[int]], settings: SamplingSettings, stop_ids: list[int],
                 desc: str = "generating") -> Generations:
        import torch
        from tqdm.auto import tqdm

        jobs = [(p, s) for p in range(len(prompt_ids)) for s in range(settings.num_samples)]
        jobs.sort(key=lambda job: -len(prompt_ids[job[0]]))  # longest first: an OOM shows up at once
        out_ids: dict[tuple[int, int], list[int]] = {}
        sampling = (
            dict(do_sample=True, temperature=settings.temperature, top_p=settings.top_p, top_k=0)
            if not settings.greedy
            else dict(do_sample=False, temperature=None, top_p=None, top_k=None)
        )
        torch.manual_seed(settings.seed)
        with tqdm(total=len(jobs), desc=desc, unit="seq", disable=not self.show_progress) as progress, torch.inference_mode():
            for start in range(0, len(jobs), self.batch_size):
                batch = jobs[start : start + self.batch_size]
                prompts = [prompt_ids[p] for p, _ in batch]
                width = max(len(p) for p in prompts)
                input_ids = torch.tensor([[self.pad_id] * (width - len(p)) + p for p in prompts], device=self.device)
                attention = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.device)
                generated = self.model.generate(
                    input_ids=input_ids,
                    attention_mask=attention,
                    max_new_tokens=settings.max_new_tokens,
                    eos_token_id=stop_ids,
                    pad_token_id=self.pad_id,
                    repetition_penalty=1.0,
                    num_return_sequences=1,
                    **sampling,
                )
                for job, row in zip(batch, generated[:, width:].tolist()):
                    out_ids[job] = row
                progress.update(len(batch))
        return collect_generations(out_ids, len(prompt_ids), settings, stop_ids, self.tokenizer)

    def close(self) -> None:
        del self.model
        _free_memory()


class VLLMGenerator:
    """vLLM's offline engine (one process; `tensor_parallel_size` GPUs)."""

    backend = "vllm"

    def __init__(self, model_path: str, tokenizer, *, dtype: str | None = "auto", trust_remote_code: bool = False,
                 revision: str | None = None, gpu_memory_utilization: float = 0.85, tensor_parallel_size: int = 1,
                 max_model_len: int | None = None, seed: int = 0):
        from vllm import LLM

        self.tokenizer = tokenizer
        self.llm = LLM(
            model=model_path,
            dtype=dtype or "auto",
            trust_remote_code=trust_remote_code,
            revision=revision,
            gpu_memory_utilization=gpu_memory_utilization,
            tensor_parallel_size=tensor_parallel_size,
            max_model_len=max_model_len,
            seed=seed,
        )

    def generate(self, prompt_ids: list[list[int]], settings: SamplingSettings, stop_ids: list[int],
                 desc: str = "generating") -> Generations:
        from vllm import SamplingParams

        params = SamplingParams(
            n=settings.num_samples,
            temperature=settings.temperature,
            top_p=settings.top_p if not settings.greedy else 1.0,
            max_tokens=settings.max_new_tokens,
            stop_token_ids=list(stop_ids),
            repetition_penalty=1.0,
            skip_special_tokens=True,
        )  # no per-request seed (every prompt would draw the same random stream): the engine's seed is used
        logger.info("%s: %d prompts x %d samples with vLLM", desc, len(prompt_ids), settings.num_samples)
        outputs = self.llm.generate([{"prompt_token_ids": ids} for ids in prompt_ids], params, use_tqdm=True)
        out_ids: dict[tuple[int, int], list[int]] = {}
        for p, request in enumerate(outputs):
            for s, completion in enumerate(request.outputs):
                ids = list(completion.token_ids)
                if completion.finish_reason == "stop" and (not ids or ids[-1] not in stop_ids):
                    ids.append(stop_ids[0])  # vLLM left the stop token out: keep `ids` ending in it
                out_ids[(p, s)] = ids
        return collect_generations(out_ids, len(prompt_ids), settings, stop_ids, self.tokenizer)

    def close(self) -> None:
        engine = getattr(self.llm, "llm_engine", None)
        core = getattr(engine, "engine_core", None)
        try:
            if core is not None and hasattr(core, "shutdown"):
                core.shutdown()  # V1: the engine process exits and frees its GPU memory
        except Exception as err:  # noqa: BLE001 - freeing memory is best effort
            logger.warning("vLLM shutdown: %r", err)
        del self.llm
        _free_memory()


def collect_generations(out_ids: dict, n_prompts: int, settings: SamplingSettings, stop_ids: list[int], tokenizer) -> Generations:
    """Generated ids by (prompt, sample) → :class:`Generations`: cut after the first stop token, decoded."""
    result = Generations(num_samples=settings.num_samples)
    for p in range(n_prompts):
        for s in range(settings.num_samples):
            ids, eos, truncated = finish_completion(out_ids[(p, s)], stop_ids, settings.max_new_tokens)
            result.token_ids.append(ids)
            result.eos.append(eos)
            result.truncated.append(truncated)
            result.texts.append(tokenizer.decode(ids, skip_special_tokens=True))
    return result


def _free_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def load_generator(model_path: str, tokenizer, *, use_vllm: bool | None = None, dtype: str | None = "auto",
                   attn_implementation: str | None = None, trust_remote_code: bool = False,
                   revision: str | None = None, batch_size: int = 32, seed: int = 0,
                   vllm_gpu_memory_utilization: float = 0.85, vllm_tensor_parallel_size: int = 1,
                   vllm_max_model_len: int | None = None):
    """An HFGenerator or VLLMGenerator for `model_path`; call `.close()` to free its memory."""
    model_path = resolve_model(model_path)
    if resolve_use_vllm(use_vllm):
        return VLLMGenerator(
            model_path, tokenizer, dtype=dtype, trust_remote_code=trust_remote_code, revision=revision,
            gpu_memory_utilization=vllm_gpu_memory_utilization, tensor_parallel_size=vllm_tensor_parallel_size,
            max_model_len=vllm_max_model_len, seed=seed,
        )
    return HFGenerator(
        model_path, tokenizer, dtype=dtype, attn_implementation=attn_implementation,
        trust_remote_code=trust_remote_code, revision=revision, batch_size=batch_size,
    )


@dataclass
class DatasetSamples:
    """What :func:`sample_dataset` returns: the rows it answered and the completions, prompt-major."""

    prompts: list
    golds: list
    task: str | None  # the rows' task (its comparator grades them); None: the default task, GSM8K
    stop_ids: list[int]
    generations: Generations
    backend: str


def sample_dataset(model_path: str, dataset, settings: SamplingSettings, *, desc: str,
                   trust_remote_code: bool = False, **generator_options) -> DatasetSamples:
    """`settings.num_samples` completions for every row of a prompt dataset (`prompt`, `answer`, `task`) from `model_path`.

    Evaluation and expert iteration's sampling both come through here. The model is unloaded before
    returning (its memory freed), so models can be sampled one after another. `generator_options`
    go to :func:`load_generator`.
    """

    tokenizer = load_tokenizer(model_path, trust_remote_code=trust_remote_code, padding_side="left")
    stops = stop_token_ids(tokenizer, model_path)
    prompts, golds = list(dataset["prompt"]), list(dataset["answer"])
    generator = load_generator(model_path, tokenizer, trust_remote_code=trust_remote_code, seed=settings.seed,
                               **generator_options)
    try:
        generations = generator.generate(render_prompts(tokenizer, prompts), settings, stops, desc=desc)
    finally:
        generator.close()
    return DatasetSamples(prompts, golds, dataset_task(dataset), stops, generations, generator.backend)
