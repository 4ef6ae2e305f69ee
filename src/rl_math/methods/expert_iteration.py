r"""Expert iteration (rejection-sampling fine-tuning): sample, keep what the rewards accept, SFT, repeat.

One round, in ``OUTPUT_DIR/round_N/``:

1. sample ``ei_samples_per_question`` completions for each of ``ei_questions_per_round`` training
   questions with the current model (vLLM when installed, else batched HF generate) →
   ``samples.jsonl`` (every sample, with each filter reward's score and whether it was accepted);
2. keep the samples the filter accepts, drop duplicates (same text once whitespace is collapsed,
   per question; the first sample is kept), optionally cap them per question → ``accepted.jsonl``;
3. SFT on them (TRL SFTTrainer, the YAML's SFTConfig, LoRA merged) → ``model/``; the Trainer's
   log history stays in ``train/trainer_state.json``;
4. evaluate the new model greedily on the test split (``max_eval_samples`` questions) →
   ``eval_completions.jsonl``;
5. write ``metrics.json``: the round is finished.

**Filter semantics.** ``ei_filter`` is a list of rewards with bounds, e.g.
``[{name: correctness, min: 1.0}, {name: boxed_format, min: 1.0}]``. A sample is accepted when
every listed reward scores it, not None, within ``min <= score <= max`` (either bound may be left
out, not both). Other keys are the reward's parameters (``{name: repetition_penalty, ngram_size: 4,
min: -0.1}``); ``termination`` gets the stop tokens and ``ei_max_new_tokens`` as GRPO's does. The
default is correct, well-formed and finished: ``correctness``, the prompt format's format reward
and ``termination`` all at least 1.0. A sample cut off at the token limit is never kept by
default, since the chat template would close it with ``<|im_end|>`` and teach stopping mid-way.

**Resume semantics.** A round is finished when its ``metrics.json`` exists (written last,
atomically). A run picks up after the last finished round (counting 1, 2, … without gaps), from
the model that round produced (``metrics.json``'s ``model_path``). An unfinished round is redone,
but reuses its ``samples.jsonl`` when it is complete (generation is the expensive part), and its
SFT resumes from the newest complete ``train/checkpoint-*``. Raising ``ei_rounds`` and rerunning
continues a finished run; other changed settings (``RERUN_MAY_CHANGE`` aside) are named in a warning
and apply from the next round on (each round's ``rl_math_config.yaml`` records what it ran with), and
are an error before anything loads when every round is already finished. A round with no accepted sample trains nothing: its model is the previous one
(``model/`` is a symlink to it) and the eval is carried over.
"""

import copy
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from trl import ModelConfig, SFTConfig

from rl_math import preflight
from rl_math.config import RecipeArguments, parse_config, to_yaml_dict
from rl_math.errors import ConfigError, is_credential
from rl_math.eval.evaluate import evaluate_model, headline
from rl_math.models import load_tokenizer, resolve_model
from rl_math.rewards import build_rewards, get_reward, reward_call
from rl_math.runtime import world_size_from_env
from rl_math.sampling import SamplingSettings, resolve_use_vllm, sample_dataset, stop_token_ids
from rl_math.tasks.formats import default_reward_specs
from rl_math.tasks.loading import load_prompt_dataset
from rl_math.train.export import save_for_generation
from rl_math.train.lifecycle import (
    RESOLVED_CONFIG_FILE,
    keep_checkpoint_settings,
    last_checkpoint,
    log_config_to_trackers,
    logged_mean_loss,
    model_init_kwargs,
    quiet_tied_weights_warning,
    run_training,
    setup_logging,
)
from rl_math.train.preemption import PreemptionCallback
from rl_math.train.sft_data import drop_overlong, samples_to_sft

logger = logging.getLogger(__name__)

SAMPLES_FILE = "samples.jsonl"
ACCEPTED_FILE = "accepted.jsonl"
MODEL_DIR = "model"
TRAIN_DIR = "train"
ROUND_METRICS_FILE = "metrics.json"
EVAL_COMPLETIONS_FILE = "eval_completions.jsonl"
SUMMARY_FILE = "rounds.json"
_BOUND_KEYS = ("min", "max")
_ROUND_DIR = re.compile(r"^round_(\d+)$")


@dataclass
class ExpertIterationArguments:
    """Expert iteration's own fields (the SFT step of each round uses SFTConfig/ModelConfig as is)."""

    ei_rounds: int = field(default=3, metadata={"help": "Rounds of sample → filter → SFT → evaluate."})
    ei_samples_per_question: int = field(default=4, metadata={"help": "k: completions sampled per question."})
    ei_questions_per_round: int | None = field(
        default=None, metadata={"help": "Training questions sampled per round (a new random subset each round); null: all."}
    )
    ei_filter: list[dict] | None = field(
        default=None,
        metadata={
            "help": "Rewards a sample must pass, e.g. [{name: correctness, min: 1.0}, {name: boxed_format, min: 1.0}]; "
            "null: correctness, the format's reward and termination all >= 1.0."
        },
    )
    ei_temperature: float = field(default=1.0, metadata={"help": "Sampling temperature (0: greedy)."})
    ei_top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling for the samples; 1.0 is off."})
    ei_max_new_tokens: int = field(default=512, metadata={"help": "Token limit per sample and per eval completion."})
    ei_generation_batch_size: int = field(
        default=64, metadata={"help": "Sequences per HF generate call (vLLM batches by itself)."}
    )
    ei_max_accepted_per_question: int | None = field(
        default=None, metadata={"help": "Keep at most this many distinct accepted samples per question; null: all."}
    )
    ei_accumulate: bool = field(
        default=False, metadata={"help": "Train each round on the accepted samples of all rounds so far."}
    )
    ei_restart_from_base: bool = field(
        default=False,
        metadata={"help": "Fine-tune the base model every round (ReST-EM) instead of continuing from the last round."},
    )
    ei_eval: bool = field(default=True, metadata={"help": "Evaluate each round's model on the test split (greedy)."})
    ei_use_vllm: bool | None = field(
        default=None, metadata={"help": "Sample with vLLM; null: when installed and a GPU is present."}
    )
    ei_vllm_gpu_memory_utilization: float = field(
        default=0.85, metadata={"help": "vLLM's share of GPU memory (the trainer is not loaded while it samples)."}
    )
    ei_keep_checkpoints: bool = field(
        default=False, metadata={"help": "Keep a finished round's train/checkpoint-* folders (model/ has the weights)."}
    )

    def sampling(self, seed: int) -> "SamplingSettings":
        """How each round samples its training completions."""

        return SamplingSettings.from_config(vars(self), EI_SAMPLING_KEYS, seed=seed)

    def eval_sampling(self, seed: int) -> "SamplingSettings":
        """How each round's model is evaluated: one greedy completion per question."""

        return SamplingSettings.greedy_once(self.ei_max_new_tokens, seed)


# The sampling settings (rl_math.sampling.SamplingSettings) the ei_* fields hold.
EI_SAMPLING_KEYS = {
    "num_samples": "ei_samples_per_question",
    "temperature": "ei_temperature",
    "top_p": "ei_top_p",
    "max_new_tokens": "ei_max_new_tokens",
}


# --------------------------------------------------------------------------------------------
# The filter


def default_filter(prompt_format: str) -> list[dict]:
    """Correct, in the asked format, and finished with a stop token.

    >>> [f["name"] for f in default_filter("think_boxed")]
    ['correctness', 'think_format', 'termination']
    """

    # full marks on every reward of the format's default mix
    return [{"name": spec["name"], "min": 1.0} for spec in default_reward_specs(prompt_format)]


def validate_filter(specs: object) -> list[dict]:
    """Check an `ei_filter` list; return it normalised to `[{name, min, max, **params}]`.

    >>> validate_filter([{"name": "correctness", "min": 1}])
    [{'name': 'correctness', 'min': 1.0, 'max': None}]
    """

    if not isinstance(specs, (list, tuple)) or not specs:
        raise ValueError("ei_filter must be a non-empty list like [{name: correctness, min: 1.0}]")
    normalised = []
    for index, spec in enumerate(specs):
        if isinstance(spec, str) or not isinstance(spec, Mapping) or "name" not in spec:
            raise ValueError(f"ei_filter[{index}]: expected a mapping with a 'name' and a 'min' and/or 'max', got {spec!r}")
        bounds = {}
        for key in _BOUND_KEYS:
            value = spec.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ValueError(f"ei_filter[{index}] ({spec['name']}): {key} must be a number, got {value!r}")
            bounds[key] = None if value is None else float(value)
        if bounds["min"] is None and bounds["max"] is None:
            raise ValueError(f"ei_filter[{index}] ({spec['name']}): give a 'min' and/or a 'max' the reward must meet")
        if bounds["min"] is not None and bounds["max"] is not None and bounds["min"] > bounds["max"]:
            raise ValueError(f"ei_filter[{index}] ({spec['name']}): min {bounds['min']} is above max {bounds['max']}")
        if "weight" in spec:
            raise ValueError(f"ei_filter[{index}] ({spec['name']}): a filter has bounds (min/max), not a weight")
        params = {k: v for k, v in spec.items() if k not in ("name", *_BOUND_KEYS)}
        try:
            get_reward(spec["name"], **params)
        except ValueError as err:
            raise ValueError(f"ei_filter[{index}]: {err}") from None
        normalised.append({"name": str(spec["name"]).strip(), **bounds, **params})
    names = [f["name"] for f in normalised]
    if len(set(names)) != len(names):
        raise ValueError(f"ei_filter lists a reward twice: {names}")
    return normalised


def describe_filter(specs: Sequence[Mapping[str, Any]]) -> str:
    """The filter as one readable line.

    >>> describe_filter([{"name": "correctness", "min": 1.0, "max": None}, {"name": "x", "min": -1, "max": 0}])
    'correctness >= 1 and -1 <= x <= 0'
    """
    parts = []
    for spec in specs:
        low, high = spec.get("min"), spec.get("max")
        text = spec["name"]
        if low is not None:
            text = f"{low:g} <= {text}" if high is not None else f"{text} >= {low:g}"
        if high is not None:
            text = f"{text} <= {high:g}"
        parts.append(text)
    return " and ".join(parts)


@dataclass
class RewardFilter:
    name: str
    func: Any
    min: float | None
    max: float | None

    def accepts(self, score: float | None) -> bool:
        if score is None or score != score:  # None or NaN: not scored, not accepted
            return False
        return (self.min is None or score >= self.min) and (self.max is None or score <= self.max)


def build_filter(specs: Sequence[Mapping[str, Any]], context: Mapping[str, Any] | None = None) -> list[RewardFilter]:
    """The filter's rewards, with context values (stop tokens, token limit) bound where accepted."""

    checked = validate_filter(specs)
    reward_specs = [{k: v for k, v in f.items() if k not in _BOUND_KEYS} for f in checked]
    funcs, _ = build_rewards(reward_specs, context=context)
    return [RewardFilter(f["name"], func, f["min"], f["max"]) for f, func in zip(checked, funcs)]


def apply_filter(samples: list[dict], filters: Sequence[RewardFilter]) -> None:
    """Score every sample with each filter reward (as GRPO calls them); set `scores` and `accepted`."""

    call = reward_call(
        [s["prompt"] for s in samples],
        [s["completion"] for s in samples],
        [s["gold"] for s in samples],
        [s.get("completion_ids") or [] for s in samples],
        tasks=[s.get("task") for s in samples],  # the task's comparator grades (None: the default task, GSM8K)
    )
    scores = {f.name: f.func(**call) if samples else [] for f in filters}
    for i, sample in enumerate(samples):
        sample["scores"] = {name: values[i] for name, values in scores.items()}
        sample["passed"] = {f.name: f.accepts(scores[f.name][i]) for f in filters}
        sample["accepted"] = all(sample["passed"].values())


def _dedup_key(text: str) -> str:
    return " ".join(text.split())


def select_training_samples(samples: Sequence[dict], max_per_question: int | None = None) -> list[dict]:
    """The accepted samples, without duplicates per question (first kept), at most `max_per_question` each.

    >>> rows = [dict(question_index=0, sample_index=i, completion=t, accepted=a)
    ...         for i, (t, a) in enumerate([("a  b", True), ("a b", True), ("c", False), ("d", True)])]
    >>> [r["sample_index"] for r in select_training_samples(rows)]
    [0, 3]
    >>> [r["sample_index"] for r in select_training_samples(rows, max_per_question=1)]
    [0]
    """
    seen: dict[int, set[str]] = {}
    selected = []
    for sample in sorted(samples, key=lambda s: (s["question_index"], s["sample_index"])):
        if not sample.get("accepted"):
            continue
        keys = seen.setdefault(sample["question_index"], set())
        key = _dedup_key(sample["completion"])
        if key in keys or (max_per_question is not None and len(keys) >= max_per_question):
            continue
        keys.add(key)
        selected.append(sample)
    return selected


def round_counts(samples: Sequence[dict], selected: Sequence[dict], n_questions: int) -> dict[str, Any]:
    """How the round's sampling went: accepted counts, questions covered, each filter's pass rate.

    >>> s = [dict(question_index=q, accepted=a, passed={"correctness": a}) for q, a in [(0, True), (0, False), (1, False), (1, False)]]
    >>> c = round_counts(s, s[:1], n_questions=2)
    >>> c["questions_with_accepted"], c["frac_questions_with_accepted"], c["filter_pass_rate"]
    (1, 0.5, {'correctness': 0.25})
    """
    covered = {s["question_index"] for s in samples if s.get("accepted")}
    names = list(dict.fromkeys(name for s in samples for name in s.get("passed", {})))
    return {
        "n_questions": n_questions,
        "n_samples": len(samples),
        "n_accepted": sum(1 for s in samples if s.get("accepted")),
        "n_selected": len(selected),
        "questions_with_accepted": len(covered),
        "frac_questions_with_accepted": len(covered) / n_questions if n_questions else 0.0,
        "filter_pass_rate": {
            name: sum(1 for s in samples if s["passed"].get(name)) / len(samples) for name in names
        },
    }


# --------------------------------------------------------------------------------------------
# Round folders and resume


def round_dir(output_dir: str | Path, round_index: int) -> Path:
    return Path(output_dir) / f"round_{round_index}"


def finished_rounds(output_dir: str | Path) -> list[int]:
    """Round numbers with a metrics.json, in order."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _ROUND_DIR.match(child.name)
        if match and (child / ROUND_METRICS_FILE).is_file():
            found.append(int(match.group(1)))
    return sorted(found)


def resume_point(output_dir: str | Path, base_model: str) -> tuple[int, str, list[dict]]:
    """(next round to run, the model it starts from, the finished rounds' metrics)."""
    done = finished_rounds(output_dir)
    history = []
    model = base_model
    expected = 1
    for index in done:
        if index != expected:
            logger.warning("round_%d is finished but round_%d is not: resuming at round %d", index, expected, expected)
            break
        metrics = json.loads((round_dir(output_dir, index) / ROUND_METRICS_FILE).read_text())
        history.append(metrics)
        saved = round_dir(output_dir, index) / MODEL_DIR  # found even if output_dir moved since
        model = str(saved) if saved.is_dir() else metrics["model_path"]
        expected += 1
    return expected, model, history


# What a rerun may change in an existing output_dir without a word: the rounds (raise it to
# continue), where the run lives, and how it is reported.
RERUN_MAY_CHANGE = frozenset(
    {"ei_rounds", "output_dir", "logging_dir", "resume_from_checkpoint", "overwrite_output_dir", "report_to",
     "run_name", "disable_tqdm", "ei_keep_checkpoints"}
)


def changed_settings(saved: Mapping[str, Any], resolved: Mapping[str, Any]) -> list[str]:
    """`name: old → new` for each setting a rerun changed, besides those it may change freely.

    >>> changed_settings({"learning_rate": 1e-3, "ei_rounds": 1}, {"learning_rate": 5e-4, "ei_rounds": 3})
    ['learning_rate: 0.001 → 0.0005']
    """

    # credentials are never saved (older runs saved them as "<redacted>"): not a setting to compare
    return [
        f"{name}: {saved[name]!r} → {value!r}"
        for name, value in resolved.items()
        if name in saved and name not in RERUN_MAY_CHANGE and saved[name] != value and not is_credential(name)
    ]


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def write_jsonl_atomic(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as handle:
        for row in rows:
            handle.write(json.dumps(row, default=str) + "\n")
    os.replace(tmp, path)


def read_jsonl(path: Path) -> list[dict]:
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


# --------------------------------------------------------------------------------------------
# One round


@dataclass
class RoundContext:
    """Everything a round needs besides its number and starting model."""

    output_dir: Path
    base_model: str
    questions: Any  # Dataset with prompt/answer
    eval_set: Any  # Dataset with prompt/answer, or None
    script_args: Any
    training_args: Any
    model_args: Any
    ei_args: ExpertIterationArguments
    filter_specs: list[dict]
    reward_specs: list[dict]
    history: list[dict] = field(default_factory=list)
    resolved_config: dict[str, Any] = field(default_factory=dict)  # what the trackers get beside the SFT arguments


def round_questions(questions, ei_args: ExpertIterationArguments, seed: int, round_index: int):
    """The round's questions: a fresh random subset each round, or all of them."""
    limit = ei_args.ei_questions_per_round
    if limit is None or limit >= len(questions):
        return questions
    return questions.shuffle(seed=seed + round_index).select(range(limit))


def sample_round(ctx: RoundContext, model_path: str, questions, round_index: int) -> list[dict]:
    """k completions per question from `model_path`, one row each (prompt-major)."""

    args = ctx.ei_args
    settings = args.sampling(ctx.training_args.seed + round_index)
    sampled = sample_dataset(
        model_path, questions, settings, desc=f"round {round_index} sampling",
        trust_remote_code=ctx.training_args.trust_remote_code, use_vllm=args.ei_use_vllm, dtype=ctx.model_args.dtype,
        attn_implementation=ctx.model_args.attn_implementation, batch_size=args.ei_generation_batch_size,
        vllm_gpu_memory_utilization=args.ei_vllm_gpu_memory_utilization,
    )
    prompts, golds, generations, task = sampled.prompts, sampled.golds, sampled.generations, sampled.task
    rows = []
    for q, (prompt, gold) in enumerate(zip(prompts, golds)):
        for s in range(settings.num_samples):
            i = generations.index(q, s)
            rows.append({
                "round": round_index, "question_index": q, "sample_index": s, "prompt": prompt, "gold": gold,
                "task": task, "completion": generations.texts[i], "completion_ids": generations.token_ids[i],
                "n_tokens": len(generations.token_ids[i]), "eos": generations.eos[i], "truncated": generations.truncated[i],
            })
    return rows


def filter_context(model_path: str, ei_args: ExpertIterationArguments, trust_remote_code: bool = False) -> dict:

    tokenizer = load_tokenizer(model_path, trust_remote_code=trust_remote_code, padding_side="left")
    return {"eos_token_ids": stop_token_ids(tokenizer, model_path), "max_completion_length": ei_args.ei_max_new_tokens}


def train_round(ctx: RoundContext, start_model: str, rows: list[dict], rdir: Path) -> tuple[str, dict[str, Any]] | None:
    """SFT `start_model` on the rows; save the merged model to rdir/model. None if preempted."""
    from trl import SFTTrainer, get_peft_config


    args = copy.deepcopy(ctx.training_args)
    args.output_dir = str(rdir / TRAIN_DIR)
    args.model_init_kwargs = model_init_kwargs(ctx.model_args, ctx.training_args)
    model_args = copy.deepcopy(ctx.model_args)
    model_args.model_name_or_path = start_model
    tokenizer = load_tokenizer(start_model, trust_remote_code=args.trust_remote_code, revision=model_args.model_revision)
    dataset = drop_overlong(samples_to_sft(rows), tokenizer, args.max_length)
    checkpoint = last_checkpoint(args.output_dir)
    if checkpoint:
        logger.info("resuming this round's SFT from %s", checkpoint)
        keep_checkpoint_settings(args, checkpoint)
    preemption = PreemptionCallback()
    trainer = SFTTrainer(
        model=resolve_model(start_model), args=args, train_dataset=dataset, processing_class=tokenizer,
        peft_config=get_peft_config(ctx.model_args), callbacks=[preemption],
    )
    log_config_to_trackers(trainer, ctx.resolved_config)
    quiet_tied_weights_warning(trainer)
    result_metrics = run_training(trainer, checkpoint)
    if preemption.stopped:
        return None
    trainer.save_state()
    model_path = save_for_generation(trainer, tokenizer, str(rdir / MODEL_DIR))
    history = [e for e in trainer.state.log_history if "loss" in e]
    train_metrics = {
        # after a resume the Trainer's train_loss covers only the steps since; the logged losses cover all
        "train_loss": logged_mean_loss(trainer.state.log_history) if checkpoint else result_metrics.get("train_loss"),
        "first_loss": history[0]["loss"] if history else None,
        "last_loss": history[-1]["loss"] if history else None,
        "steps": trainer.state.global_step,
        "train_rows": len(dataset),
    }
    del trainer
    _free()
    if not ctx.ei_args.ei_keep_checkpoints:
        for stale in Path(args.output_dir).glob("checkpoint-*"):
            shutil.rmtree(stale, ignore_errors=True)
    return model_path, train_metrics


def evaluate_round(ctx: RoundContext, model_path: str, rdir: Path, round_index: int) -> dict[str, Any]:
    """Greedy accuracy of the round's model on the eval questions."""

    args = ctx.ei_args
    settings = args.eval_sampling(ctx.training_args.seed)
    evaluation = evaluate_model(
        model_path, ctx.eval_set, name=f"round_{round_index}", prompt_format=ctx.script_args.prompt_format,
        reward_specs=ctx.reward_specs, settings=settings, use_vllm=args.ei_use_vllm, dtype=ctx.model_args.dtype,
        attn_implementation=ctx.model_args.attn_implementation, trust_remote_code=ctx.training_args.trust_remote_code,
        batch_size=args.ei_generation_batch_size,
        vllm_options={"gpu_memory_utilization": args.ei_vllm_gpu_memory_utilization},
        desc=f"round {round_index} eval",
    )
    write_jsonl_atomic(rdir / EVAL_COMPLETIONS_FILE, evaluation.records)
    metrics = headline(evaluation.metrics)
    metrics["n_questions"] = evaluation.metrics["n_questions"]
    metrics["buckets"] = evaluation.metrics["buckets"]
    return metrics


START_EVAL_FILE = "start_eval.json"


def evaluate_start(ctx: RoundContext) -> dict[str, Any]:
    """The starting model's held-out accuracy (round 0), once per output_dir: the bar every round must clear."""
    path = ctx.output_dir / START_EVAL_FILE
    if path.is_file():
        return json.loads(path.read_text())
    start_dir = ctx.output_dir / "start"
    start_dir.mkdir(parents=True, exist_ok=True)
    metrics = {"model_path": ctx.base_model, "eval": evaluate_round(ctx, ctx.base_model, start_dir, 0)}
    write_json_atomic(path, metrics)
    logger.info("start: eval accuracy %.4f on %d questions (the bar for every round)", metrics["eval"]["accuracy"],
                metrics["eval"]["n_questions"])
    return metrics


def warn_if_worse_than_start(ctx: RoundContext, tolerance: float = 0.05) -> None:
    """Say loudly when the last round answers fewer held-out questions than the starting model did."""
    path = ctx.output_dir / START_EVAL_FILE
    last = next((m["eval"] for m in reversed(ctx.history) if m.get("eval")), None)
    if not path.is_file() or last is None:
        return
    start = json.loads(path.read_text())["eval"]["accuracy"]
    if last["accuracy"] < start - tolerance:
        logger.warning(
            "the last round's held-out accuracy %.4f is below the starting model's %.4f: expert iteration made the "
            "model worse; look at the accepted samples (round_N/accepted.jsonl) and the filter", last["accuracy"], start,
        )


def run_round(ctx: RoundContext, round_index: int, model_path: str) -> dict[str, Any] | None:
    """Run (or finish) one round from `model_path`; return its metrics (None if preempted)."""
    args = ctx.ei_args
    started = time.time()
    rdir = round_dir(ctx.output_dir, round_index)
    rdir.mkdir(parents=True, exist_ok=True)
    questions = round_questions(ctx.questions, args, ctx.training_args.seed, round_index)
    n_expected = len(questions) * args.ei_samples_per_question

    samples_path = rdir / SAMPLES_FILE
    samples = read_jsonl(samples_path) if samples_path.is_file() else []
    if samples and len(samples) == n_expected:
        logger.info("round %d: reusing the %d samples in %s", round_index, len(samples), samples_path)
    else:
        samples = sample_round(ctx, model_path, questions, round_index)
    filters = build_filter(ctx.filter_specs, filter_context(model_path, args, ctx.training_args.trust_remote_code))
    apply_filter(samples, filters)
    write_jsonl_atomic(samples_path, samples)
    selected = select_training_samples(samples, args.ei_max_accepted_per_question)
    write_jsonl_atomic(rdir / ACCEPTED_FILE, selected)
    counts = round_counts(samples, selected, len(questions))
    logger.info(
        "round %d: %d/%d questions had at least one accepted sample (%d of %d samples accepted, %d distinct kept)",
        round_index, counts["questions_with_accepted"], counts["n_questions"], counts["n_accepted"],
        counts["n_samples"], counts["n_selected"],
    )

    rows = list(selected)
    if args.ei_accumulate:
        for earlier in range(1, round_index):
            path = round_dir(ctx.output_dir, earlier) / ACCEPTED_FILE
            rows = (read_jsonl(path) if path.is_file() else []) + rows
    start_model = ctx.base_model if args.ei_restart_from_base else model_path
    metrics: dict[str, Any] = {"round": round_index, "start_model": start_model, **counts, "train_rows": len(rows)}
    if rows:
        trained = train_round(ctx, start_model, rows, rdir)
        if trained is None:
            return None
        new_model, train_metrics = trained
        metrics.update(trained=True, model_path=new_model, train=train_metrics)
        logger.info("round %d: SFT on %d rows, %d steps, loss %.4f → %.4f", round_index, len(rows),
                    train_metrics["steps"], train_metrics["first_loss"], train_metrics["last_loss"])
    else:
        logger.warning("round %d: no sample was accepted; the model stays %s", round_index, model_path)
        new_model = model_path
        metrics.update(trained=False, model_path=model_path, train=None)
        link = rdir / MODEL_DIR
        if not link.exists() and Path(model_path).is_dir():
            link.symlink_to(Path(model_path).resolve(), target_is_directory=True)

    if ctx.eval_set is not None:
        previous = ctx.history[-1] if ctx.history else None
        if not metrics["trained"] and previous is not None and previous.get("eval") and previous["model_path"] == new_model:
            metrics["eval"] = {**previous["eval"], "carried_over_from_round": previous["round"]}
        else:
            metrics["eval"] = evaluate_round(ctx, new_model, rdir, round_index)
        logger.info("round %d: eval accuracy %.4f on %d questions", round_index, metrics["eval"]["accuracy"],
                    metrics["eval"]["n_questions"])
    metrics["seconds"] = round(time.time() - started, 1)
    write_json_atomic(rdir / ROUND_METRICS_FILE, metrics)
    ctx.history.append(metrics)
    write_json_atomic(ctx.output_dir / SUMMARY_FILE, ctx.history)
    return metrics


def _free() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# --------------------------------------------------------------------------------------------
# The recipe



def check_ei(values: dict, explicit: set[str]) -> None:
    if world_size_from_env() > 1:
        raise ConfigError("expert_iteration.py runs as one process (sampling and SFT take turns); launch it with python")
    for name in ("ei_rounds", "ei_generation_batch_size"):
        if values[name] < 1:
            raise ConfigError(f"{name} must be at least 1, got {values[name]}")
    try:
        SamplingSettings.from_config(values, EI_SAMPLING_KEYS)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if values["ei_filter"] is not None:
        try:
            validate_filter(values["ei_filter"])
        except ValueError as err:
            raise ConfigError(str(err)) from None
    try:
        resolve_use_vllm(values["ei_use_vllm"])
    except ImportError as err:
        raise ConfigError(f"ei_use_vllm: {err}") from None


def main(argv: list[str] | None = None) -> list[dict]:
    parsed = parse_config(
DATACLASSES, argv, checks=CHECKS    )
    script_args, training_args, model_args, ei_args = parsed.instances
    setup_logging(training_args)
    output_dir = Path(training_args.output_dir)
    base_model = model_args.model_name_or_path

    filter_specs = validate_filter(ei_args.ei_filter or default_filter(script_args.prompt_format))
    reward_specs = script_args.rewards or default_reward_specs(script_args.prompt_format)
    resolved = to_yaml_dict(script_args, model_args, ei_args, training_args)
    resolved.update(ei_filter=filter_specs, rewards=reward_specs)
    saved = output_dir / RESOLVED_CONFIG_FILE
    changes = changed_settings(yaml.safe_load(saved.read_text()) or {}, resolved) if saved.is_file() else []

    next_round, model_path, history = resume_point(output_dir, base_model)
    if history:
        logger.info("rounds 1-%d are finished; resuming at round %d from %s", len(history), next_round, model_path)
    if next_round > ei_args.ei_rounds:
        if changes:  # nothing would run with them: say so rather than report "finished"
            raise ConfigError(
                f"all {ei_args.ei_rounds} rounds in {output_dir} are finished with other settings "
                f"({'; '.join(changes)}); raise ei_rounds to run more rounds with these, or give another --output_dir"
            )
        logger.info("all %d rounds are finished in %s (raise ei_rounds to continue)", ei_args.ei_rounds, output_dir)
        return history
    if changes:
        logger.warning(
            "settings changed since the earlier rounds (%s): rounds from %d on use the new ones; each round's "
            "%s records what it ran with", "; ".join(changes), next_round, RESOLVED_CONFIG_FILE,
        )

    tokenizer = load_tokenizer(model_args.model_name_or_path, trust_remote_code=training_args.trust_remote_code,
                               revision=model_args.model_revision)
    questions = load_prompt_dataset(
        script_args, script_args.dataset_train_split, tokenizer, script_args.max_train_samples, training_args.seed
    )
    eval_set = None
    if ei_args.ei_eval:
        eval_set = load_prompt_dataset(
            script_args, script_args.dataset_test_split, tokenizer, script_args.max_eval_samples, training_args.seed
        )
    logger.info("filter: a sample is kept when %s", describe_filter(filter_specs))

    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / RESOLVED_CONFIG_FILE).write_text(yaml.safe_dump(resolved, sort_keys=True))

    ctx = RoundContext(
        output_dir=output_dir, base_model=base_model, questions=questions, eval_set=eval_set,
        script_args=script_args, training_args=training_args, model_args=model_args, ei_args=ei_args,
        filter_specs=filter_specs, reward_specs=reward_specs, history=history, resolved_config=resolved,
    )
    if eval_set is not None:
        evaluate_start(ctx)
    for round_index in range(next_round, ei_args.ei_rounds + 1):
        round_dir(output_dir, round_index).mkdir(parents=True, exist_ok=True)
        (round_dir(output_dir, round_index) / RESOLVED_CONFIG_FILE).write_text(yaml.safe_dump(resolved, sort_keys=True))
        metrics = run_round(ctx, round_index, model_path)
        if metrics is None:
            logger.info("stopped by a signal during round %d; rerun the command to resume", round_index)
            break
        model_path = metrics["model_path"]
    warn_if_worse_than_start(ctx)
    return ctx.history


DATACLASSES = (RecipeArguments, SFTConfig, ModelConfig, ExpertIterationArguments)
CHECKS = (
    preflight.apply_cpu_defaults,
    preflight.check_training_length,
    preflight.warn_pure_bf16_training,
    check_ei,
    *preflight.INPUT_CHECKS,
)
