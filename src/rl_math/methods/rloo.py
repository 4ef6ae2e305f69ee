"""RLOO (REINFORCE leave-one-out) with TRL's RLOOTrainer: the same rewards, alarms and evaluation as GRPO.

Each completion's baseline is the mean reward of the other completions of its prompt
(`num_generations` of them), instead of GRPO's group mean and standard deviation. The YAML is
keyed by TRL's `RLOOConfig` fields (GRPO's batch, generation and KL fields; `normalize_advantages`
and `reward_clip_range` are its own). Exit statuses as GRPO's.
"""

from __future__ import annotations

from trl import ModelConfig, RLOOConfig, RLOOTrainer

from rl_math import preflight, run_checks
from rl_math.config import RecipeArguments, parse_config, to_yaml_dict
from rl_math.eval.in_run import InRunEvalArguments
from rl_math.tasks.loading import load_prompt_dataset
from rl_math.train.health import HealthArguments
from rl_math.train.session import TrainingSession, online_trainer

DATACLASSES = (RecipeArguments, RLOOConfig, ModelConfig, HealthArguments, InRunEvalArguments)
CHECKS = (
    preflight.apply_cpu_defaults,
    preflight.check_training_length,
    preflight.check_stale_build_locks,
    preflight.check_grpo_batch,  # RLOOConfig has GRPO's batch fields and rules
    *preflight.ONLINE_RL_CHECKS,
    *preflight.INPUT_CHECKS,
    *preflight.training_output_checks("rloo"),
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
    run_checks.check_dataset_fills_a_step(len(train_dataset), training_args)  # else 0 steps, exit 0
    trainer = online_trainer(RLOOTrainer, session, train_dataset, health_args)
    session.train(trainer)
    return trainer
