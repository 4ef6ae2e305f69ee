"""`rl-math calibrate CONFIG.yaml`: how long the starting model's completions are, before a run is launched.

A limit that truncates most completions stops GRPO from learning (a public report: Qwen2.5-0.5B-
Instruct, 57 % of completions truncated at 256 tokens, no learning), and nothing shows it until the
run has been paid for. This samples the config's starting model on N training prompts with the
run's sampling settings (``num_generations``, ``temperature``, ``top_p``, seed) through the same
sampler as evaluation (:func:`rl_math.sampling.sample_dataset`), with the token limit raised
to ``probe_factor`` × ``max_completion_length`` so that the lengths past the limit are seen, and
reports:

* the completion-length distribution (p50/p90/p99, in tokens, the stop token included; a
  quantile at the probe cap reads "≥ cap"),
* the fraction that would be truncated at ``max_completion_length`` (no stop token within it),
* at step 0, the completions cut at the limit as GRPO would see them: the reward mix's mean and
  the share of groups whose rewards are all equal (:func:`rl_math.train.group_signal.group_signal`:
  ``groups/no_signal``, no gradient there),
* a suggested limit: p99 of the lengths of the completions that ended within the probe cap, rounded
  up to a multiple of 64 -- or none when more than 10 % do not end even there (the model does not
  stop: more tokens will not fix that). A few that never end (loops) are reported beside it: no
  limit fixes those; the ``termination`` reward or a repetition penalty does.

An expert-iteration config (one that sets an ``ei_`` field) is measured with its round-0 sampling
instead: ``ei_samples_per_question``, ``ei_temperature``, ``ei_top_p`` and the limit
``ei_max_new_tokens``; a truncated sample has no final answer, so it rarely passes the filter.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rl_math.config import load_yaml, parse_config
from rl_math.errors import ConfigError
from rl_math.eval.evaluate import score_generations
from rl_math.methods import recipe_dataclasses
from rl_math.models import load_tokenizer
from rl_math.rewards import build_rewards, reward_mix
from rl_math.sampling import Generations, SamplingSettings, finish_completion, sample_dataset
from rl_math.tasks.loading import load_prompt_dataset
from rl_math.train.group_signal import group_signal

PROBE_FACTOR = 4
ROUND_TO = 64
MAX_UNFINISHED = 0.1  # more completions than this still running at the probe cap: no limit is suggested


def quantile(values: Sequence[float], q: float) -> float:
    """The nearest-rank quantile (a length that some completion has).

    >>> quantile([10, 20, 30, 40], 0.5), quantile([10, 20, 30, 40], 0.99)
    (20, 40)
    """
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def suggested_limit(lengths: Sequence[int], unfinished: float, round_to: int = ROUND_TO) -> int | None:
    """p99 of the ended completions' `lengths` rounded up to `round_to`; None when too many never ended.

    >>> suggested_limit([100] * 98 + [300, 500], unfinished=0.0), suggested_limit([48] * 10, unfinished=0.5)
    (320, None)
    """
    if not lengths or unfinished > MAX_UNFINISHED:
        return None
    return max(round_to, math.ceil(quantile(lengths, 0.99) / round_to) * round_to)


def cut_at_limit(token_ids: Sequence[int], stop_ids: Sequence[int], limit: int) -> tuple[list[int], bool, bool]:
    """A probe completion as a run limited to `limit` tokens would have produced it: (ids, ended, truncated).

    >>> cut_at_limit([5, 6, 7, 2], stop_ids=[2], limit=3), cut_at_limit([5, 2], stop_ids=[2], limit=3)
    (([5, 6, 7], False, True), ([5, 2], True, False))
    """
    return finish_completion(list(token_ids)[:limit], stop_ids, limit)


@dataclass
class RunSampling:
    """How a config's run samples at its start: the method, its data, its model and its settings."""

    method: str  # "grpo" or "expert_iteration"
    script_args: Any  # RecipeArguments: the data, the prompt format and the reward mix
    model_path: str
    dtype: str | None
    trust_remote_code: bool
    settings: SamplingSettings  # at the run's own token limit
    seed: int


def method_of(config: str) -> str:
    """`expert_iteration` when the YAML sets an `ei_` field, else `grpo`."""
    return "expert_iteration" if any(str(key).startswith("ei_") for key in load_yaml(config)) else "grpo"


def run_sampling(config: str, model: str | None = None) -> RunSampling:
    """The sampling a run of `config` starts with: GRPO's `num_generations`, `temperature`, `top_p`,
    `max_completion_length`; expert iteration's `ei_samples_per_question`, `ei_temperature`, `ei_top_p`,
    `ei_max_new_tokens` (its round 0)."""
    method = method_of(config)
    argv = [config] + (["--model_name_or_path", model] if model else [])
    parsed = parse_config(recipe_dataclasses(method), argv).instances
    script_args, training_args, model_args = parsed[:3]
    if method == "expert_iteration":
        ei_args = parsed[3]
        settings = SamplingSettings(num_samples=ei_args.ei_samples_per_question, temperature=ei_args.ei_temperature,
                                    top_p=ei_args.ei_top_p, max_new_tokens=ei_args.ei_max_new_tokens,
                                    seed=training_args.seed)
    else:
        settings = SamplingSettings(num_samples=training_args.num_generations, temperature=training_args.temperature,
                                    top_p=training_args.top_p, max_new_tokens=training_args.max_completion_length,
                                    seed=training_args.seed)
    if not model_args.model_name_or_path:
        raise ConfigError(f"{config} names no model_name_or_path; give one with --model")
    return RunSampling(method, script_args, model_args.model_name_or_path, model_args.dtype,
                       training_args.trust_remote_code, settings, training_args.seed)


def calibrate(config: str, questions: int = 64, model: str | None = None, probe_factor: int = PROBE_FACTOR) -> dict[str, Any]:
    """Sample the config's starting model (or `model`) and measure (see the module docstring)."""
    run = run_sampling(config, model)
    script_args, model_path = run.script_args, run.model_path
    limit = run.settings.max_new_tokens
    group = run.settings.num_samples
    probe = dataclasses.replace(run.settings, max_new_tokens=probe_factor * limit)
    tokenizer = load_tokenizer(model_path, trust_remote_code=run.trust_remote_code, padding_side="left")
    dataset = load_prompt_dataset(script_args, script_args.dataset_train_split, tokenizer, questions, run.seed)
    sampled = sample_dataset(model_path, dataset, probe, desc="calibrating", trust_remote_code=run.trust_remote_code,
                             dtype=run.dtype, use_vllm=None)
    lengths = [len(ids) for ids in sampled.generations.token_ids]
    unfinished = sum(sampled.generations.truncated) / len(lengths)

    at_limit = Generations(num_samples=group)
    for ids in sampled.generations.token_ids:
        cut, ended, truncated = cut_at_limit(ids, sampled.stop_ids, limit)
        at_limit.token_ids.append(cut)
        at_limit.eos.append(ended)
        at_limit.truncated.append(truncated)
        at_limit.texts.append(tokenizer.decode(cut, skip_special_tokens=True))
    specs = reward_mix(script_args.rewards, script_args.prompt_format)
    results = score_generations(sampled.prompts, sampled.golds, at_limit, prompt_format=script_args.prompt_format,
                                reward_specs=specs, stop_ids=sampled.stop_ids, max_new_tokens=limit,
                                task=sampled.task, with_conventions=False)
    _, weights = build_rewards(specs)
    names = list(results[0].rewards)
    signal = group_signal({name: [r.rewards[name] for r in results] for name in names}, weights, group)
    return {
        "config": str(config),
        "method": run.method,
        "model": model_path,
        "questions": len(dataset),
        "num_generations": group,
        "temperature": probe.temperature,
        "top_p": probe.top_p,
        "limit": limit,
        "limit_field": "ei_max_new_tokens" if run.method == "expert_iteration" else "max_completion_length",
        "probe_limit": probe.max_new_tokens,
        "lengths": {f"p{int(q * 100)}": quantile(lengths, q) for q in (0.5, 0.9, 0.99)},
        "truncated_at_limit": sum(at_limit.truncated) / len(lengths),
        "unfinished_at_probe": unfinished,
        "reward_mean": sum(r.reward for r in results) / len(results),
        "reward_means": {name: _mean([r.rewards[name] for r in results]) for name in names},
        "no_signal_groups": signal.get("groups/no_signal"),
        "suggested_limit": suggested_limit(
            [n for n, cut in zip(lengths, sampled.generations.truncated) if not cut], unfinished),
    }


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def format_calibration(report: dict[str, Any]) -> str:
    """The report as the few lines `rl-math calibrate` prints."""
    cap = report["probe_limit"]

    def tokens(value: int) -> str:
        return f"≥ {value}" if value >= cap else str(value)

    lengths = ", ".join(f"{name} {tokens(value)}" for name, value in report["lengths"].items())
    limit, field = report["limit"], report["limit_field"]
    start = "round 0" if report["method"] == "expert_iteration" else "step 0"
    lines = [
        f"{report['model']} on {report['questions']} training prompts x {report['num_generations']} "
        f"(temperature {report['temperature']:g}, top_p {report['top_p']:g}; sampled up to {cap} tokens)",
        f"completion tokens: {lengths}",
        f"truncated at {field}={limit}: {100 * report['truncated_at_limit']:.1f}%"
        + (f"; still running at {cap}: {100 * report['unfinished_at_probe']:.1f}%" if report["unfinished_at_probe"] else ""),
        f"{start} at that limit: reward mean {report['reward_mean']:.3f} ("
        + ", ".join(f"{k} {v:.3f}" for k, v in report["reward_means"].items() if v is not None)
        + f"); groups with no signal: {100 * (report['no_signal_groups'] or 0):.1f}%",
    ]
    if report["suggested_limit"] is None:
        lines.append(f"suggested limit: none -- {100 * report['unfinished_at_probe']:.1f}% of completions do not end "
                     f"within {cap} tokens; the model does not stop (SFT it first, or check its stop tokens)")
    else:
        lines.append(f"suggested {field}: {report['suggested_limit']} (p99 of the completions that ended, rounded "
                     f"up to {ROUND_TO})" + (f"; {100 * report['unfinished_at_probe']:.1f}% never end within {cap} "
                                             "tokens: no limit fixes those (termination reward, repetition penalty)"
                                             if report["unfinished_at_probe"] else ""))
    if report["truncated_at_limit"] >= 0.5:
        lines.append("warning: most completions would be truncated: " + (
            "they end without an answer, so few samples pass the filter" if report["method"] == "expert_iteration"
            else "GRPO learns little from them (the health monitor's all_truncated alarm fires at a clipped "
                 "ratio >= 0.5)"))
    return "\n".join(lines)
