"""Expert iteration on GSM8K: rounds of sample → keep what the rewards accept → SFT → evaluate.

    python recipes/expert_iteration.py configs/ei_smoke.yaml                  # CPU, offline, 1 round
    python recipes/expert_iteration.py configs/ei_qwen1.5b.yaml               # one GPU
    python recipes/expert_iteration.py configs/ei_qwen1.5b.yaml --ei_rounds 5 # continue a finished run

Each round lives in OUTPUT_DIR/round_N/ (samples.jsonl, accepted.jsonl, model/, metrics.json);
rerunning the same command resumes after the last finished round. Filter and resume semantics:
`rl_math.train.expert_iteration`. One process: sampling and training take turns on the same GPU.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import yaml
from trl import ModelConfig, SFTConfig

from rl_math import preflight, run_checks
from rl_math.config import ConfigError, RecipeArguments, exit_on_config_error, parse_config, to_yaml_dict
from rl_math.tasks.formats import default_reward_specs
from rl_math.tasks.loading import load_prompt_dataset
from rl_math.train.expert_iteration import (
    EI_SAMPLING_KEYS,
    ExpertIterationArguments,
    RoundContext,
    changed_settings,
    default_filter,
    describe_filter,
    evaluate_start,
    resume_point,
    round_dir,
    run_round,
    validate_filter,
    warn_if_worse_than_start,
)
from rl_math.train.generation import SamplingSettings, resolve_use_vllm
from rl_math.train.lifecycle import RESOLVED_CONFIG_FILE, load_tokenizer, setup_logging

logger = logging.getLogger("rl_math.expert_iteration")


def check_ei(values: dict, explicit: set[str]) -> None:
    if preflight.world_size_from_env() > 1:
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
        [RecipeArguments, SFTConfig, ModelConfig, ExpertIterationArguments], argv,
        checks=[
            preflight.apply_cpu_defaults,
            preflight.check_training_length,
            preflight.warn_pure_bf16_training,
            check_ei,
            *preflight.INPUT_CHECKS,
            run_checks.ownership_check("expert_iteration"),
            run_checks.ownership_record("expert_iteration"),
        ],
    )
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

    tokenizer = load_tokenizer(model_args, training_args.trust_remote_code)
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


if __name__ == "__main__":
    with exit_on_config_error():
        main(sys.argv[1:])
