r"""Evaluation: score sampled completions, summarise them per model, compare models side by side.

Each completion is graded by :func:`rl_math.grading.grader.grade` and scored by the reward list (the
config's ``rewards`` or the prompt format's default mix), then lands in exactly one bucket:

=====================  ==========================================================================
bucket                 meaning
=====================  ==========================================================================
``correct``            correct and well-formed
``correct_malformed``  correct (the ``correctness`` reward pays 1.0) but not well-formed, e.g.
                       ``\boxed{18} … \boxed{18.0}``, or a think_boxed answer without ``<think>``
``wrong``              well-formed, wrong answer
``malformed``          not well-formed and not correct: no final answer, several different
                       answers, an unbalanced box, a truncated think block
=====================  ==========================================================================

*Well-formed* means exactly one final answer (the grader's ``well_formed``) in the shape the
prompt format asks for (its format reward, ``boxed_format`` or ``think_format``, scores 1.0). The
four buckets sum to 1; accuracy = ``correct`` + ``correct_malformed`` (what ``correctness`` pays).
A separate ``correct_malformed`` bucket shows how much accuracy a strict format check would cost.

Per model (``k`` = samples per question):

- ``accuracy``: mean correctness over all samples (pass@1 estimated from k samples);
- ``pass@k``: fraction of questions with at least one correct sample (k > 1);
- ``maj@k``: fraction of questions whose most frequent extracted answer is correct; answers are
  compared by value (``18``, ``18.0`` and ``\$18`` are one vote), samples without an answer do not
  vote, and a tie goes to the answer that appeared first (lowest sample index) (k > 1);
- ``buckets``; ``rewards`` (mean of each component, Nones left out) and ``reward`` (the weighted
  total, None counting 0, as GRPOTrainer sums);
- ``eos_rate`` (ended with a stop token), ``truncation_rate`` (hit ``max_new_tokens`` without one),
  ``mean_completion_tokens`` (the stop token included);
- per question: the mean and sample standard deviation of the total reward over its k samples
  (as GRPO's group statistics); ``mean_group_reward_std`` averages the std over questions and
  ``zero_std_rate`` is the fraction of questions whose k samples all score the same total reward:
  GRPO learns nothing from those (TRL logs the same as ``frac_reward_zero_std``).
  ``zero_std_correctness_rate`` counts questions all-right or all-wrong (k > 1).
"""

import json
import logging
import math
import re
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rl_math.grading.grader import parse_number
from rl_math.rewards import build_rewards, get_reward, reward_call
from rl_math.sampling import SamplingSettings, sample_dataset
from rl_math.tasks import get_task
from rl_math.tasks.formats import get_prompt_format

if TYPE_CHECKING:
    from rl_math.tasks.formats import PromptFormat

logger = logging.getLogger(__name__)

BUCKETS = ("correct", "correct_malformed", "wrong", "malformed")
BUCKET_HELP = {
    "correct": "correct and well-formed",
    "correct_malformed": "correct answer, but not one final answer in the asked format",
    "wrong": "well-formed, wrong answer",
    "malformed": "no single final answer in the asked format, and not correct",
}
METRICS_FILE = "metrics.json"
COMPLETIONS_FILE = "completions.jsonl"
FIGURE_FILE = "evaluation.png"


# --------------------------------------------------------------------------------------------
# The evaluation recipe's own fields (they replace TRL's ModelConfig and SFTConfig there)


@dataclass
class EvalArguments:
    """Models and sampling for recipes/evaluate.py."""

    model_name_or_path: list[str] = field(
        default_factory=list,
        metadata={"help": "One or more models (hub ids, local folders, rl-math:tiny-qwen2), compared side by side."},
    )
    dtype: str | None = field(default="auto", metadata={"help": "Weights dtype: auto, bfloat16, float16, float32."})
    attn_implementation: str | None = field(default=None, metadata={"help": "sdpa, flash_attention_2, eager."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow custom model code from the hub."})
    num_samples: int = field(default=1, metadata={"help": "k: completions per question."})
    temperature: float = field(default=0.0, metadata={"help": "0 is greedy; GRPO samples at 1.0."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling; 1.0 is off."})
    max_new_tokens: int = field(default=512, metadata={"help": "Completion token limit (truncation above it)."})
    eval_batch_size: int = field(
        default=64, metadata={"help": "Sequences per HF generate call (vLLM batches by itself)."}
    )
    output_dir: str = field(default="outputs/eval", metadata={"help": "Where metrics, completions and figure go."})
    use_vllm: bool | None = field(
        default=None, metadata={"help": "Generate with vLLM; null: when installed and a GPU is present."}
    )
    vllm_gpu_memory_utilization: float = field(default=0.85, metadata={"help": "vLLM's share of GPU memory."})
    vllm_tensor_parallel_size: int = field(default=1, metadata={"help": "GPUs per vLLM engine."})
    vllm_max_model_len: int | None = field(default=None, metadata={"help": "vLLM context length (null: the model's)."})
    seed: int = field(default=42, metadata={"help": "Sampling seed (the question subset uses it too)."})

    def sampling(self) -> "SamplingSettings":
        """The sampling settings these fields hold (the field names are the settings' own)."""

        return SamplingSettings.from_config(vars(self))


# --------------------------------------------------------------------------------------------
# One scored sample


@dataclass
class SampleResult:
    """One completion's verdicts. `rewards` maps each reward name to its score (None: not scored)."""

    question_index: int
    sample_index: int
    correct: bool
    well_formed: bool
    extracted: str | None = None
    rewards: dict[str, float | None] = field(default_factory=dict)
    reward: float = 0.0
    n_tokens: int = 0
    eos: bool = True
    truncated: bool = False

    @property
    def bucket(self) -> str:
        return bucket_of(self.correct, self.well_formed)


def bucket_of(correct: bool, well_formed: bool) -> str:
    """The one bucket a sample lands in.

    >>> bucket_of(True, True), bucket_of(True, False), bucket_of(False, True), bucket_of(False, False)
    ('correct', 'correct_malformed', 'wrong', 'malformed')
    """
    if correct:
        return "correct" if well_formed else "correct_malformed"
    return "wrong" if well_formed else "malformed"


def weighted_total(scores: Sequence[float | None], weights: Sequence[float]) -> float:
    """GRPOTrainer's total reward: the weighted sum, a None score counting 0 (nansum)."""
    return float(sum(w * s for s, w in zip(scores, weights) if s is not None and not math.isnan(s)))


# --------------------------------------------------------------------------------------------
# Pure metrics


def answer_key(answer: str | None) -> str | None:
    r"""The vote an extracted answer casts: its exact value when readable, else its trimmed text.

    >>> answer_key("18.0") == answer_key(r"\$18") == answer_key("18")
    True
    >>> answer_key("  x^2 ") , answer_key(None)
    ('x^2', None)
    """
    if answer is None or not answer.strip():
        return None
    value = parse_number(answer)
    return f"={value}" if value is not None else " ".join(answer.split())


def majority_answer(extracted: Sequence[str | None]) -> str | None:
    """The most frequent answer (by value); ties go to the earliest sample; None if no sample answered.

    Returns the first extracted text of the winning value.

    >>> majority_answer(["7", "18", "18.0", "7"])  # 7 and 18 tie at two votes; 7 came first
    '7'
    >>> majority_answer([None, "5", "6", "6"])
    '6'
    """
    counts: dict[str, int] = {}
    first: dict[str, tuple[int, str]] = {}
    for index, answer in enumerate(extracted):
        key = answer_key(answer)
        if key is None:
            continue
        counts[key] = counts.get(key, 0) + 1
        first.setdefault(key, (index, answer))
    if not counts:
        return None
    best = min(counts, key=lambda key: (-counts[key], first[key][0]))
    return first[best][1]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct (Chen et al. 2021).

    >>> pass_at_k(4, 0, 4), pass_at_k(4, 1, 4), pass_at_k(4, 1, 1), round(pass_at_k(4, 1, 2), 4)
    (0.0, 1.0, 0.25, 0.5)
    """
    if n - c < k:
        return 1.0
    return 1.0 - math.prod((n - c - i) / (n - i) for i in range(k))


def _mean(values: Sequence[float]) -> float | None:
    return float(statistics.fmean(values)) if values else None


def summarize(
    samples: Sequence[SampleResult], golds: Sequence[Any], num_samples: int, task: str | None = None
) -> dict[str, Any]:
    """Every metric of one model from its scored samples (see the module docstring).

    `golds[q]` is question q's gold answer; there must be exactly `num_samples` samples per question.
    The majority answer is compared with the gold by `task`'s comparator (None: the default task, GSM8K).
    """

    equal = get_task(task).answers_equal  # None: the default task, GSM8K
    by_question: dict[int, list[SampleResult]] = {}
    for sample in samples:
        by_question.setdefault(sample.question_index, []).append(sample)
    for question, group in by_question.items():
        if len(group) != num_samples:
            raise ValueError(f"question {question} has {len(group)} samples, expected {num_samples}")
        group.sort(key=lambda s: s.sample_index)
    n = len(samples)
    if n == 0:
        raise ValueError("no samples to summarise")

    metrics: dict[str, Any] = {
        "n_questions": len(by_question),
        "num_samples": num_samples,
        "n_samples": n,
        "accuracy": sum(s.correct for s in samples) / n,
        "buckets": {b: sum(s.bucket == b for s in samples) / n for b in BUCKETS},
        "well_formed_rate": sum(s.well_formed for s in samples) / n,
        "eos_rate": sum(s.eos for s in samples) / n,
        "truncation_rate": sum(s.truncated for s in samples) / n,
        "mean_completion_tokens": sum(s.n_tokens for s in samples) / n,
        "reward": sum(s.reward for s in samples) / n,
    }
    names = list(dict.fromkeys(name for s in samples for name in s.rewards))
    metrics["rewards"] = {
        name: _mean([s.rewards[name] for s in samples if s.rewards.get(name) is not None]) for name in names
    }

    per_question = []
    for question in sorted(by_question):
        group = by_question[question]
        totals = [s.reward for s in group]
        std = statistics.stdev(totals) if len(totals) > 1 else None
        majority = majority_answer([s.extracted for s in group])
        per_question.append(
            {
                "question_index": question,
                "n_correct": sum(s.correct for s in group),
                "reward_mean": statistics.fmean(totals),
                "reward_std": std,
                "majority_answer": majority,
                "majority_correct": majority is not None and equal(majority, golds[question]),
            }
        )
    metrics["per_question"] = per_question
    if num_samples > 1:
        k = num_samples
        metrics[f"pass@{k}"] = sum(q["n_correct"] > 0 for q in per_question) / len(per_question)
        metrics[f"maj@{k}"] = sum(q["majority_correct"] for q in per_question) / len(per_question)
        stds = [q["reward_std"] for q in per_question]
        metrics["mean_group_reward_std"] = statistics.fmean(stds)
        metrics["zero_std_rate"] = sum(math.isclose(std, 0.0, abs_tol=1e-8) for std in stds) / len(stds)
        metrics["zero_std_correctness_rate"] = sum(q["n_correct"] in (0, k) for q in per_question) / len(per_question)
    return metrics


# --------------------------------------------------------------------------------------------
# Scoring completions


def score_completions(
    prompts: Sequence[Any],
    completions: Sequence[str],
    completion_ids: Sequence[Sequence[int]],
    eos: Sequence[bool],
    truncated: Sequence[bool],
    golds: Sequence[Any],
    num_samples: int,
    reward_funcs: Sequence[Callable],
    reward_weights: Sequence[float],
    prompt_format: "PromptFormat",
    task: str | None = None,
) -> list[SampleResult]:
    """Grade and score completions in prompt-major order (`k` per prompt; `prompts`/`golds` per question).

    Rewards are called as GRPOTrainer calls them: conversational completions, `prompts`,
    `completion_ids`, the `answer` column (and the `task` column when a task is named), one row
    per completion. Completions are graded by the task's comparator; "well-formed" is the format's.
    """

    n = len(completions)
    if n != len(prompts) * num_samples:
        raise ValueError(f"{n} completions for {len(prompts)} prompts x {num_samples} samples")
    row_prompts = [prompts[i // num_samples] for i in range(n)]
    row_golds = [golds[i // num_samples] for i in range(n)]
    call = reward_call(row_prompts, completions, row_golds, completion_ids, tasks=None if task is None else [task] * n)
    scores = {func.__name__: func(**call) for func in reward_funcs}
    format_scores = get_reward(prompt_format.format_reward)(**call)
    grade_one = get_task(task).grade
    results = []
    for i, text in enumerate(completions):
        verdict = grade_one(text, row_golds[i])
        row_scores = {name: values[i] for name, values in scores.items()}
        results.append(
            SampleResult(
                question_index=i // num_samples,
                sample_index=i % num_samples,
                correct=bool(verdict.correct),
                well_formed=prompt_format.is_well_formed(verdict, format_scores[i]),
                extracted=verdict.extracted,
                rewards=row_scores,
                reward=weighted_total(list(row_scores.values()), reward_weights),
                n_tokens=len(completion_ids[i]),
                eos=bool(eos[i]),
                truncated=bool(truncated[i]),
            )
        )
    return results


def score_generations(
    prompts: Sequence[Any],
    golds: Sequence[Any],
    generations,
    *,
    prompt_format: str,
    reward_specs: Sequence[Mapping[str, Any]],
    stop_ids: Sequence[int],
    max_new_tokens: int,
    task: str | None = None,
) -> list[SampleResult]:
    """Grade a :class:`rl_math.sampling.Generations` with the reward list, the task and the format.

    Rewards get the stop tokens and the token limit as GRPO's do (`termination` needs both).
    """

    funcs, weights = build_rewards(
        reward_specs, context={"eos_token_ids": list(stop_ids), "max_completion_length": max_new_tokens}
    )
    return score_completions(
        prompts, generations.texts, generations.token_ids, generations.eos, generations.truncated, golds,
        generations.num_samples, funcs, weights, get_prompt_format(prompt_format), task,
    )


def completion_records(model: str, results: Sequence[SampleResult], prompts: Sequence[Any],
                       completions: Sequence[str], golds: Sequence[Any]) -> list[dict[str, Any]]:
    """One JSON-able row per completion, for completions.jsonl."""
    rows = []
    for i, result in enumerate(results):
        rows.append(
            {
                "model": model,
                "question_index": result.question_index,
                "sample_index": result.sample_index,
                "prompt": prompts[result.question_index],
                "completion": completions[i],
                "gold": golds[result.question_index],
                "extracted": result.extracted,
                "bucket": result.bucket,
                "correct": result.correct,
                "well_formed": result.well_formed,
                "rewards": result.rewards,
                "reward": result.reward,
                "n_tokens": result.n_tokens,
                "eos": result.eos,
                "truncated": result.truncated,
            }
        )
    return rows


# --------------------------------------------------------------------------------------------
# Generating and scoring one model


@dataclass
class ModelEvaluation:
    name: str
    path: str
    metrics: dict[str, Any]
    results: list[SampleResult]
    records: list[dict[str, Any]]


def evaluate_model(
    model_path: str,
    dataset,
    *,
    name: str | None = None,
    prompt_format: str,
    reward_specs: Sequence[Mapping[str, Any]],
    settings,
    use_vllm: bool | None = None,
    dtype: str | None = "auto",
    attn_implementation: str | None = None,
    trust_remote_code: bool = False,
    batch_size: int = 64,
    vllm_options: Mapping[str, Any] | None = None,
    desc: str | None = None,
) -> ModelEvaluation:
    """Sample `settings.num_samples` completions per row of `dataset` (prompt/answer), grade, summarise.

    `settings` is a :class:`rl_math.sampling.SamplingSettings`. The model is unloaded before
    returning (its GPU memory freed), so models can be evaluated one after another.
    """

    name = name or model_path
    sampled = sample_dataset(
        model_path, dataset, settings, desc=desc or name, trust_remote_code=trust_remote_code, use_vllm=use_vllm,
        dtype=dtype, attn_implementation=attn_implementation, batch_size=batch_size,
        **{f"vllm_{key}": value for key, value in (vllm_options or {}).items()},
    )
    prompts, golds, generations, task = sampled.prompts, sampled.golds, sampled.generations, sampled.task
    results = score_generations(prompts, golds, generations, prompt_format=prompt_format, reward_specs=reward_specs,
                                stop_ids=sampled.stop_ids, max_new_tokens=settings.max_new_tokens, task=task)
    metrics = summarize(results, golds, settings.num_samples, task)
    metrics["backend"] = sampled.backend
    records = completion_records(name, results, prompts, generations.texts, golds)
    return ModelEvaluation(name, model_path, metrics, results, records)


# --------------------------------------------------------------------------------------------
# Comparing models


_GENERIC_NAME = re.compile(r"^(model|merged|final|adapter|checkpoint-\d+)$")


def unique_model_names(paths: Sequence[str]) -> list[str]:
    """Short, distinct names: the last path part, with parents added until the names differ.

    A generic last part (`model`, `merged`, `checkpoint-N`) always gets its parent.

    >>> unique_model_names(["outputs/ei/round_1/model", "outputs/sft-7b/merged", "Qwen/Qwen2.5-0.5B-Instruct"])
    ['round_1/model', 'sft-7b/merged', 'Qwen2.5-0.5B-Instruct']
    """
    parts = [[p for p in str(path).replace("\\", "/").rstrip("/").split("/") if p] or [str(path)] for path in paths]
    depth = [2 if len(p) > 1 and _GENERIC_NAME.match(p[-1]) else 1 for p in parts]
    names = ["/".join(p[-d:]) for p, d in zip(parts, depth)]
    for _ in range(max((len(p) for p in parts), default=1)):
        clashes = {n for n in names if names.count(n) > 1}
        if not clashes:
            break
        for i, n in enumerate(names):
            if n in clashes and depth[i] < len(parts[i]):
                depth[i] += 1
        names = ["/".join(p[-d:]) for p, d in zip(parts, depth)]
    seen: dict[str, int] = {}
    for i, n in enumerate(names):  # the same path given twice
        seen[n] = seen.get(n, 0) + 1
        if seen[n] > 1:
            names[i] = f"{n} ({seen[n]})"
    return names


def table_rows(metrics_by_model: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, list[str]]]:
    """(metric, one formatted value per model) for the side-by-side table."""

    def pct(value):
        return "-" if value is None else f"{100 * value:.1f}%"

    def num(value, digits=3):
        return "-" if value is None else f"{value:.{digits}f}"

    models = list(metrics_by_model.values())
    k = max(m["num_samples"] for m in models)
    rows = [("questions x samples", [f"{m['n_questions']} x {m['num_samples']}" for m in models])]
    rows.append(("accuracy (pass@1)", [pct(m["accuracy"]) for m in models]))
    if k > 1:
        rows.append((f"pass@{k}", [pct(m.get(f"pass@{k}")) for m in models]))
        rows.append((f"maj@{k}", [pct(m.get(f"maj@{k}")) for m in models]))
    for bucket in BUCKETS:
        rows.append((f"  {bucket}", [pct(m["buckets"][bucket]) for m in models]))
    rows.append(("reward (weighted total)", [num(m["reward"]) for m in models]))
    names = list(dict.fromkeys(name for m in models for name in m["rewards"]))
    for name in names:
        rows.append((f"  {name}", [num(m["rewards"].get(name)) for m in models]))
    rows.append(("ended with EOS", [pct(m["eos_rate"]) for m in models]))
    rows.append(("truncated", [pct(m["truncation_rate"]) for m in models]))
    rows.append(("mean completion tokens", [num(m["mean_completion_tokens"], 1) for m in models]))
    if k > 1:
        rows.append(("mean group reward std", [num(m.get("mean_group_reward_std")) for m in models]))
        rows.append(("zero-std groups (reward)", [pct(m.get("zero_std_rate")) for m in models]))
        rows.append(("all-right/all-wrong groups", [pct(m.get("zero_std_correctness_rate")) for m in models]))
    return rows


def print_comparison(metrics_by_model: Mapping[str, Mapping[str, Any]], title: str, console=None) -> None:
    """The side-by-side table on the terminal (rich)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=False)
    table.add_column("metric", style="bold")
    for name in metrics_by_model:
        table.add_column(name, justify="right")
    for metric, values in table_rows(metrics_by_model):
        table.add_row(metric, *values)
    console = console or Console(width=max(100, 30 + 24 * len(metrics_by_model)))
    console.print(title, style="bold", markup=False)
    console.print(table)


# --------------------------------------------------------------------------------------------
# Writing the results


def write_results(
    output_dir: str | Path, evaluations: Sequence[ModelEvaluation], run_info: Mapping[str, Any]
) -> dict[str, Any]:
    """metrics.json (every model side by side, plus the table) and completions.jsonl."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics_by_model = {e.name: e.metrics for e in evaluations}
    summary = {
        **run_info,
        "models": {e.name: {"path": e.path, **e.metrics} for e in evaluations},
        "table": [{"metric": metric.strip(), **dict(zip(metrics_by_model, values))}
                  for metric, values in table_rows(metrics_by_model)],
        "bucket_definitions": BUCKET_HELP,
    }
    (out / METRICS_FILE).write_text(json.dumps(summary, indent=2, default=str))
    with open(out / COMPLETIONS_FILE, "w") as handle:
        for e in evaluations:
            for record in e.records:
                handle.write(json.dumps(record, default=str) + "\n")
    return summary


def headline(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The few numbers worth a log line: accuracy, pass@k, maj@k, truncation, zero-std."""
    keys = ["accuracy", "well_formed_rate", "eos_rate", "truncation_rate", "mean_completion_tokens", "reward"]
    keys += [k for k in metrics if k.startswith(("pass@", "maj@"))] + ["zero_std_rate"]
    return {k: metrics[k] for k in keys if k in metrics}
