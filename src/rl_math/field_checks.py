"""Every numeric and enumerated field of every recipe, checked before any model loads.

A field's allowed values have exactly one home:

- its type (`bool`, an `Enum` or `Literal`): `rl_math.config.coerce_value` refuses anything else;
- its own dataclass's `__post_init__` (rl-math's `HealthArguments`, `InRunEvalArguments`, ...;
  TRL's `GRPOConfig` checks `num_generations`), which `parse_config` turns into one sentence;
  `CHECKED_BY_DATACLASS` names those fields with a value they refuse;
- else the declared range below (`RANGES`), or the choices a library lists only in its help text
  (`CHOICES`) or in the field's `choices` metadata (which argparse applies to flags, not YAML values).

`tests/test_field_checks.py` walks every field of every recipe and tries a bad value for each, so
a new numeric field without a check fails CI. DeepSpeed configs are validated by DeepSpeed's own
pydantic model of `zero_optimization` (a misspelled key is refused without any distributed set-up),
a JSON syntax error names the file, line and column.

>>> print(check_range("beta", -0.1))
beta is -0.1; allowed [0, inf) (the KL coefficient; 0 drops the reference model); give a value in [0, inf)
>>> check_range("learning_rate", 1e-6) is None
True
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rl_math.errors import ConfigError, nearest_key

logger = logging.getLogger(__name__)


class FieldProblem(ConfigError):
    """A field's value that no run can use: one sentence, exit 2 (`rl_math.config.parse_config` raises it)."""


_INTERVAL = re.compile(r"^([\[(])\s*(-?inf|[-+0-9.e]+)\s*,\s*(-?inf|[-+0-9.e]+)\s*([\])])$")


@dataclasses.dataclass(frozen=True)
class Range:
    """An interval in the usual notation, `[0, 1)`, with what the field means (for the message)."""

    interval: str
    why: str = ""

    def bounds(self) -> tuple[float, float, bool, bool]:
        """(low, high, low included, high included).

        >>> Range("(0, 1]").bounds()
        (0.0, 1.0, False, True)
        """
        match = _INTERVAL.match(self.interval)
        if not match:
            raise ValueError(f"not an interval: {self.interval!r}")
        left, low, high, right = match.groups()
        return float(low), float(high), left == "[", right == "]"

    def contains(self, value: float) -> bool:
        low, high, low_in, high_in = self.bounds()
        if isinstance(value, float) and math.isnan(value):
            return False
        above = value >= low if low_in else value > low
        below = value <= high if high_in else value < high
        return above and below

    def outside(self) -> float:
        """A value this range refuses (the field walk's bad value).

        >>> Range("[1, inf)").outside(), Range("(0, 1]").outside(), Range("(-inf, 1]").outside()
        (0.0, 0.0, 2.0)
        """
        low, high, low_in, _ = self.bounds()
        if math.isfinite(low):
            return low - 1 if low_in else low
        return high + 1


POSITIVE = "(0, inf)"
NON_NEGATIVE = "[0, inf)"
AT_LEAST_ONE = "[1, inf)"
FRACTION = "[0, 1]"
PORT = "[1, 65535]"

# Declared ranges, for the fields whose own dataclass does not check them. `why` is said in the message.
RANGES: dict[str, Range] = {
    # optimisation (transformers' TrainingArguments: it checks none of these)
    "learning_rate": Range("(0, 0.1]", "a step size; above 0.1 training diverges at once (1e-6 is usual for RL, 1e-5 for SFT)"),
    "weight_decay": Range(NON_NEGATIVE),
    "adam_beta1": Range("[0, 1)"),
    "adam_beta2": Range("[0, 1)"),
    "adam_epsilon": Range("(0, 1)"),
    "max_grad_norm": Range(NON_NEGATIVE, "0 turns clipping off"),
    "warmup_steps": Range(NON_NEGATIVE, "a step count, or a fraction of the run below 1"),
    "label_smoothing_factor": Range("[0, 1)"),
    "neftune_noise_alpha": Range(POSITIVE),
    "num_train_epochs": Range(NON_NEGATIVE),
    "max_steps": Range("[-1, inf)", "-1 trains num_train_epochs epochs"),
    "per_device_train_batch_size": Range(AT_LEAST_ONE),
    "per_device_eval_batch_size": Range(AT_LEAST_ONE),
    "gradient_accumulation_steps": Range(AT_LEAST_ONE),
    "eval_accumulation_steps": Range(AT_LEAST_ONE),
    "logging_steps": Range(POSITIVE, "a step count, or a fraction of the run below 1"),
    "save_steps": Range(POSITIVE, "a step count, or a fraction of the run below 1"),
    "eval_steps": Range(POSITIVE, "a step count, or a fraction of the run below 1"),
    "eval_delay": Range(NON_NEGATIVE),
    "save_total_limit": Range(AT_LEAST_ONE, "null keeps every checkpoint"),
    "seed": Range("[0, 4294967295]", "numpy seeds are 32-bit"),
    "data_seed": Range("[0, 4294967295]", "numpy seeds are 32-bit"),
    "local_rank": Range("[-1, inf)", "set by the launcher"),
    "ddp_timeout": Range(AT_LEAST_ONE, "seconds"),
    "ddp_bucket_cap_mb": Range(AT_LEAST_ONE),
    "dataloader_num_workers": Range(NON_NEGATIVE),
    "dataloader_prefetch_factor": Range(AT_LEAST_ONE),
    "dataset_num_proc": Range(AT_LEAST_ONE),
    "torch_empty_cache_steps": Range(AT_LEAST_ONE),
    "router_aux_loss_coef": Range(NON_NEGATIVE),
    "pad_to_multiple_of": Range(AT_LEAST_ONE),
    # GRPO (TRL's GRPOConfig checks only the batch arithmetic and num_generations)
    "beta": Range(NON_NEGATIVE, "the KL coefficient; 0 drops the reference model"),
    "epsilon": Range("(0, 1)", "the ratio is clipped to [1 - epsilon, 1 + epsilon]"),
    "epsilon_high": Range(POSITIVE, "the upper clip is 1 + epsilon_high"),
    "delta": Range("(1, inf)", "the two-sided clip's upper bound on the ratio"),
    "num_iterations": Range(AT_LEAST_ONE, "optimisation passes over each generation"),
    "steps_per_generation": Range(AT_LEAST_ONE),
    "generation_batch_size": Range(AT_LEAST_ONE),
    "num_generations_eval": Range(AT_LEAST_ONE),
    "max_completion_length": Range(AT_LEAST_ONE, "the completion needs room for at least one token"),
    "temperature": Range(POSITIVE, "GRPO samples each group; 1.0 is usual"),
    "top_p": Range("(0, 1]"),
    "top_k": Range(NON_NEGATIVE, "0 turns it off"),
    "min_p": Range(FRACTION),
    "repetition_penalty": Range(POSITIVE, "1.0 is none"),
    "ref_model_mixup_alpha": Range(FRACTION),
    "ref_model_sync_steps": Range(AT_LEAST_ONE),
    "top_entropy_quantile": Range(FRACTION),
    "entropy_coef": Range(NON_NEGATIVE),
    "entropy_coef_delta": Range(NON_NEGATIVE),
    "entropy_coef_min": Range(NON_NEGATIVE),
    "entropy_coef_max": Range(NON_NEGATIVE),
    "entropy_target": Range(NON_NEGATIVE),
    "sapo_temperature_neg": Range(POSITIVE),
    "sapo_temperature_pos": Range(POSITIVE),
    "vespo_k_neg": Range(NON_NEGATIVE),
    "vespo_k_pos": Range(NON_NEGATIVE),
    "vespo_lambda_neg": Range(NON_NEGATIVE),
    "vespo_lambda_pos": Range(NON_NEGATIVE),
    "off_policy_mask_threshold": Range(NON_NEGATIVE),
    "max_tool_calling_iterations": Range(AT_LEAST_ONE),
    "num_completions_to_print": Range(NON_NEGATIVE),
    "vllm_gpu_memory_utilization": Range("(0, 1]", "a fraction of the GPU's memory"),
    "vllm_tensor_parallel_size": Range(AT_LEAST_ONE),
    "vllm_max_model_length": Range(AT_LEAST_ONE),
    "vllm_max_model_len": Range(AT_LEAST_ONE),
    "vllm_server_port": Range(PORT),
    "vllm_group_port": Range(PORT),
    "vllm_server_timeout": Range(POSITIVE, "seconds"),
    "vllm_importance_sampling_cap": Range(POSITIVE),
    "vllm_importance_sampling_clip_min": Range(NON_NEGATIVE),
    "vllm_importance_sampling_clip_max": Range(POSITIVE),
    # SFT
    "max_length": Range(AT_LEAST_ONE, "null keeps every row"),
    # LoRA (TRL's ModelConfig)
    "lora_r": Range(AT_LEAST_ONE),
    "lora_alpha": Range(AT_LEAST_ONE),
    "lora_dropout": Range("[0, 1)"),
    # rl-math's data fields
    "max_prompt_tokens": Range(AT_LEAST_ONE, "null keeps every prompt"),
    "max_train_samples": Range(AT_LEAST_ONE, "null uses the whole split"),
    "max_eval_samples": Range(AT_LEAST_ONE, "null uses the whole split"),
    # evaluate.py's EvalArguments (its sampling settings are also checked by SamplingSettings)
    "num_samples": Range(AT_LEAST_ONE),
    "max_new_tokens": Range(AT_LEAST_ONE),
    "eval_batch_size": Range(AT_LEAST_ONE),
    # expert iteration's ExpertIterationArguments
    "ei_rounds": Range(AT_LEAST_ONE),
    "ei_samples_per_question": Range(AT_LEAST_ONE),
    "ei_questions_per_round": Range(AT_LEAST_ONE, "null uses every question"),
    "ei_temperature": Range(NON_NEGATIVE, "0 is greedy"),
    "ei_top_p": Range("(0, 1]"),
    "ei_max_new_tokens": Range(AT_LEAST_ONE),
    "ei_generation_batch_size": Range(AT_LEAST_ONE),
    "ei_max_accepted_per_question": Range(AT_LEAST_ONE, "null keeps every correct sample"),
    "ei_vllm_gpu_memory_utilization": Range("(0, 1]", "a fraction of the GPU's memory"),
}

# evaluate.py's temperature may be 0 (greedy), unlike GRPO's: per recipe where a name means two things.
RANGES_BY_OWNER: dict[str, dict[str, Range]] = {
    "EvalArguments": {"temperature": Range(NON_NEGATIVE, "0 is greedy"), "seed": RANGES["seed"]},
}

# Fields whose own dataclass refuses a bad value in `__post_init__` (the one home of their range):
# a value it refuses, for the field walk.
CHECKED_BY_DATACLASS: dict[str, Any] = {
    "num_generations": 1,  # TRL's GRPOConfig: at least 2
    "eval_accuracy_steps": -1, "eval_questions": 0, "eval_max_new_tokens": 0, "eval_generation_batch_size": 0,
    "eval_stop_at_accuracy": 1.5,  # rl-math's InRunEvalArguments
    "dynamic_sampling_max_rounds": 0,  # DynamicSamplingArguments
    "health_patience": 0, "health_zero_std_threshold": 1.5, "health_clipped_ratio_threshold": 1.5,
    "health_zero_tolerance": -1.0, "health_entropy_blowup_factor": 0.0, "health_baseline_logs": 0,
    "health_kl_threshold": 0.0, "health_hacking_window": 0, "health_hacking_min_change": 0.0,
    "health_shape_only_threshold": 1.5, "health_accuracy_drop": 1.5,  # HealthArguments
    "step_timeout_s": -1.0,  # RecipeArguments (the step watchdog; 0 is off)
    "max_staleness": -1,  # AsyncGenerationArguments
}

# Text fields with a fixed set of values that the library lists only in its help text, by owner.
CHOICES: dict[str, tuple[str, ...]] = {
    "GRPOConfig.loss_type": ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo"),
    "SFTConfig.loss_type": ("nll", "dft"),
    "GRPOConfig.vllm_mode": ("server", "colocate"),
    "GRPOConfig.vllm_model_impl": ("transformers", "vllm"),
    "GRPOConfig.importance_sampling_level": ("token", "sequence"),
    "GRPOConfig.scale_rewards": ("group", "batch", "none", "true", "false"),
    "GRPOConfig.multi_objective_aggregation": ("sum_then_normalize", "normalize_then_sum"),
    "GRPOConfig.include_num_input_tokens_seen": ("all", "non_padding", "no", "true", "false"),
    "GRPOConfig.vllm_importance_sampling_mode": ("token_truncate", "token_mask", "sequence_truncate", "sequence_mask"),
    "SFTConfig.include_num_input_tokens_seen": ("all", "non_padding", "no", "true", "false"),
    "RLOOConfig.include_num_input_tokens_seen": ("all", "non_padding", "no", "true", "false"),
    "RLOOConfig.vllm_mode": ("server", "colocate"),
    "RLOOConfig.vllm_model_impl": ("transformers", "vllm"),
}


def check_range(name: str, value: Any, owner: str | None = None) -> str | None:
    """The sentence refusing `value` for `name`, or None when it is in range (or the field has no range)."""
    allowed = RANGES_BY_OWNER.get(owner or "", {}).get(name) or RANGES.get(name)
    if allowed is None or value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if allowed.contains(value):
        return None
    why = f" ({allowed.why})" if allowed.why else ""
    return f"{name} is {value!r}; allowed {allowed.interval}{why}; give a value in {allowed.interval}"


def _choices(field: dataclasses.Field, owner: type) -> tuple[Any, ...] | None:
    listed = field.metadata.get("choices")
    if listed is not None:
        return tuple(listed)
    return CHOICES.get(f"{owner.__name__}.{field.name}")


def field_problem(values: dict[str, Any], dataclass_types: Sequence[type]) -> str | None:
    """The sentence refusing the first value outside its field's declared range or choices, or a bad
    DeepSpeed config; None when every field is fine. `parse_config` raises it as a ConfigError."""
    try:
        check_fields(values, dataclass_types)
    except FieldProblem as problem:
        return str(problem)
    return None


def check_fields(values: dict[str, Any], dataclass_types: Sequence[type]) -> None:
    """Raise FieldProblem for a value outside its field's declared range or choices, or a bad DeepSpeed config."""
    for owner in dataclass_types:
        for field in dataclasses.fields(owner):
            if field.name not in values or not field.init:
                continue
            value = values[field.name]
            if (problem := check_range(field.name, value, owner.__name__)) is not None:
                raise FieldProblem(problem)
            choices = _choices(field, owner)
            if choices and value is not None and not isinstance(value, bool) and str(value) not in map(str, choices):
                hint = nearest_key(str(value), [str(c) for c in choices])
                raise FieldProblem(
                    f"{field.name} is {value!r}; allowed: {', '.join(map(str, choices))}"
                    + (f"; did you mean {hint!r}?" if hint else "")
                )
    if values.get("deepspeed"):
        check_deepspeed_config(values["deepspeed"])


# --------------------------------------------------------------------------------------------
# DeepSpeed configs

# DeepSpeed's own top-level keys (runtime/constants.py and its config sections): the top level is
# parsed by hand and ignores an unknown key, so a misspelled one is caught here.
def _deepspeed_top_level_keys() -> set[str]:
    import deepspeed.runtime.constants as constants  # optional heavy dependency, imported only when used

    keys = {v for k, v in vars(constants).items() if k.isupper() and isinstance(v, str) and re.fullmatch(r"[a-z0-9_]+", v)}
    return keys | {"zero_optimization", "bf16", "fp16", "optimizer", "scheduler", "activation_checkpointing",
                   "flops_profiler", "comms_logger", "tensorboard", "wandb", "csv_monitor", "aio", "autotuning",
                   "compile", "data_efficiency", "checkpoint", "zero_allow_untested_optimizer", "amp",
                   "gradient_clipping", "steps_per_print", "wall_clock_breakdown", "train_batch_size",
                   "train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "zero_force_ds_cpu_optimizer"}


def load_deepspeed_json(path: str | os.PathLike) -> dict[str, Any]:
    """A DeepSpeed JSON as a mapping; a missing file or a syntax error is one sentence naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FieldProblem(f"deepspeed config {str(path)!r} does not exist; give the path of a DeepSpeed JSON (ds_configs/zero2.json)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise FieldProblem(f"deepspeed config {path} is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}") from None
    if not isinstance(data, dict):
        raise FieldProblem(f"deepspeed config {path} must hold a JSON object of DeepSpeed settings")
    return data


def check_deepspeed_config(config: str | os.PathLike | dict) -> None:
    """DeepSpeed's own validation of `zero_optimization`, and a known name for every top-level key."""
    source = "the deepspeed config" if isinstance(config, dict) else f"deepspeed config {config}"
    data = config if isinstance(config, dict) else load_deepspeed_json(config)
    known = _deepspeed_top_level_keys()
    for key in data:
        if key not in known:
            hint = nearest_key(key, known)
            raise FieldProblem(f"{source} has an unknown key {key!r}" + (f"; did you mean {hint!r}?" if hint else "")
                              + " (DeepSpeed would ignore it silently)")
    zero = data.get("zero_optimization")
    if isinstance(zero, dict):
        from deepspeed.runtime.zero.config import DeepSpeedZeroConfig  # optional heavy dependency

        given = {k: v for k, v in zero.items() if v != "auto"}  # "auto" is filled in by transformers
        try:
            DeepSpeedZeroConfig(**given)
        except ValueError as err:  # pydantic's ValidationError
            errors = getattr(err, "errors", lambda: [])()
            if errors:
                first = errors[0]
                where = ".".join(str(p) for p in first.get("loc", ()))
                raise FieldProblem(f"{source}: zero_optimization.{where}: {first.get('msg')} "
                                  f"(got {first.get('input')!r})") from None
            raise FieldProblem(f"{source}: zero_optimization: {' '.join(str(err).split())}") from None
