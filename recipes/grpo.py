"""GRPO on GSM8K with TRL's GRPOTrainer.

    python recipes/grpo.py configs/smoke.yaml                       # CPU, offline
    accelerate launch recipes/grpo.py configs/qwen0.5b.yaml          # one GPU node
    accelerate launch --config_file configs/accelerate/zero3.yaml recipes/grpo.py configs/qwen7b.yaml

Any field can be overridden after the config: `--learning_rate 1e-6 --max_steps 50`.
"""

from __future__ import annotations

import logging
import sys

from trl import GRPOConfig, GRPOTrainer, ModelConfig, get_peft_config

from rl_math import preflight
from rl_math.config import RecipeArguments, exit_on_config_error, parse_config, to_yaml_dict
from rl_math.data import load_prompt_dataset
from rl_math.health import HealthArguments, build_health_callback
from rl_math.preemption import PreemptionCallback
from rl_math.prompts import default_reward_specs
from rl_math.rewards import build_rewards
from rl_math.tiny import resolve_model_path
from rl_math.training import (
    check_data_parallel,
    end_distributed,
    eos_token_ids,
    load_tokenizer,
    log_config_to_trackers,
    model_init_kwargs,
    quiet_tied_weights_warning,
    resolve_resume,
    save_run,
    setup_logging,
)

logger = logging.getLogger("rl_math.grpo")


def main(argv: list[str] | None = None) -> GRPOTrainer:
    parsed = parse_config(
        [RecipeArguments, GRPOConfig, ModelConfig, HealthArguments],
        argv,
        checks=[
            preflight.apply_cpu_defaults,
            preflight.check_grpo_batch,
            preflight.check_vllm,
            preflight.check_no_reward_weights,
            preflight.warn_pure_bf16_training,
            preflight.check_grpo_sampling,
            *preflight.INPUT_CHECKS,
        ],
    )
    script_args, training_args, model_args, health_args = parsed.instances
    setup_logging(training_args)
    checkpoint = resolve_resume(training_args)

    model_path = resolve_model_path(model_args.model_name_or_path)
    tokenizer = load_tokenizer(model_args, training_args.trust_remote_code)
    train_dataset = load_prompt_dataset(
        script_args, script_args.dataset_train_split, tokenizer, script_args.max_train_samples, training_args.seed
    )
    specs = script_args.rewards or default_reward_specs(script_args.prompt_format)
    reward_funcs, reward_weights = build_rewards(
        specs,
        context={
            "eos_token_ids": eos_token_ids(tokenizer, model_path),
            "max_completion_length": training_args.max_completion_length,
        },
    )
    preflight.check_reward_columns(reward_funcs, train_dataset.column_names)
    training_args.reward_weights = reward_weights
    training_args.model_init_kwargs = model_init_kwargs(model_args, training_args)
    logger.info("rewards: %s", ", ".join(f"{f.__name__}×{w:g}" for f, w in zip(reward_funcs, reward_weights)))

    preemption = PreemptionCallback()
    trainer = GRPOTrainer(
        model=model_path,
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
        callbacks=[preemption, *build_health_callback(health_args, reward_funcs)],
    )
    check_data_parallel(trainer)
    quiet_tied_weights_warning(trainer)
    resolved = to_yaml_dict(script_args, model_args, health_args, training_args)
    resolved["rewards"] = specs
    log_config_to_trackers(trainer, resolved)
    result = trainer.train(resume_from_checkpoint=checkpoint)
    if preemption.stopped:
        return trainer  # the checkpoint is saved; the requeued job resumes from it
    save_run(trainer, tokenizer, resolved, result.metrics)
    return trainer


if __name__ == "__main__":
    with exit_on_config_error():
        main(sys.argv[1:])
    end_distributed()
