"""RLOO (REINFORCE leave-one-out) with TRL's RLOOTrainer: the same rewards, alarms and evaluation as GRPO.

Each completion's baseline is the mean reward of the other completions of its prompt
(`num_generations` of them), instead of GRPO's group mean and standard deviation. The YAML is
keyed by TRL's `RLOOConfig` fields (GRPO's batch, generation and KL fields; `normalize_advantages`
and `reward_clip_range` are its own). Exit statuses as GRPO's.
"""

from __future__ import annotations

from trl import ModelConfig, RLOOConfig, RLOOTrainer, get_peft_config

from rl_math import preflight
from rl_math.config import RecipeArguments, parse_config, to_yaml_dict
from rl_math.eval.in_run import InRunEvalArguments
from rl_math.tasks.loading import load_prompt_dataset
from rl_math.train.health import HealthArguments, build_health_callback
from rl_math.train.session import TrainingSession, online_rewards

DATACLASSES = (RecipeArguments, RLOOConfig, ModelConfig, HealthArguments, InRunEvalArguments)
CHECKS = (
    preflight.apply_cpu_defaults,
    preflight.check_training_length,
    preflight.check_stale_build_locks,
    preflight.check_grpo_batch,  # RLOOConfig has GRPO's batch fields and rules
    *preflight.ONLINE_RL_CHECKS,
    *preflight.INPUT_CHECKS,
    preflight.check_output_dir,
    preflight.init_cpu_process_group,
)


def main(argv: list[str] | None = None) -> RLOOTrainer:
    script_args, training_args, model_args, health_args, eval_args = parse_config(DATACLASSES, argv, checks=CHECKS).instances
    resolved = to_yaml_dict(script_args, model_args, health_args, eval_args, training_args)
    session = TrainingSession(script_args, training_args, model_args, resolved=resolved, eval_args=eval_args)
    preflight.warn_resume_inside_generation(training_args, session.checkpoint)
    train_dataset = load_prompt_dataset(
        script_args, script_args.dataset_train_split, session.tokenizer, script_args.max_train_samples,
        training_args.seed,
    )
    reward_funcs = online_rewards(session, train_dataset)
    trainer = RLOOTrainer(
        model=session.model_path,
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=train_dataset,
        processing_class=session.tokenizer,
        peft_config=get_peft_config(model_args),
        callbacks=session.callbacks(*build_health_callback(health_args, reward_funcs)),
    )
    session.train(trainer)
    return trainer
