"""GRPO with TRL's GRPOTrainer: the reward registry, health alarms, dynamic sampling, in-run accuracy,
asynchronous generation (a sampler process, :mod:`rl_math.train.async_rollouts`).

Exit status: 0 finished (or checkpointed on a preemption signal), 2 a config error, 3 a health
alarm with action `stop` ended the run (`stop_reason` in final_metrics.json), 4 the async sampler
died or sent no rollout within `step_timeout_s`.
"""

from __future__ import annotations

from trl import GRPOConfig, GRPOTrainer, ModelConfig

from rl_math import preflight, run_checks
from rl_math.config import RecipeArguments, parse_config, to_yaml_dict
from rl_math.eval.in_run import InRunEvalArguments
from rl_math.tasks.loading import load_prompt_dataset
from rl_math.train.async_rollouts import AsyncGenerationArguments, async_trainer_class, check_async_generation
from rl_math.train.dynamic_sampling import DynamicSamplingArguments, check_dynamic_sampling, grpo_trainer_class
from rl_math.train.health import HealthArguments
from rl_math.train.session import TrainingSession, online_trainer

DATACLASSES = (RecipeArguments, GRPOConfig, ModelConfig, HealthArguments, InRunEvalArguments, DynamicSamplingArguments,
               AsyncGenerationArguments)
CHECKS = (
    preflight.apply_cpu_defaults,
    preflight.check_training_length,
    preflight.check_stale_build_locks,
    preflight.check_grpo_batch,
    check_dynamic_sampling,
    check_async_generation,
    *preflight.ONLINE_RL_CHECKS,
    *preflight.INPUT_CHECKS,
    *preflight.training_output_checks("grpo"),
)


def main(argv: list[str] | None = None) -> GRPOTrainer:
    parsed = parse_config(DATACLASSES, argv, checks=CHECKS)
    script_args, training_args, model_args, health_args, eval_args, sampling_args, async_args = parsed.instances
    # what runs, as the user can give it again: taken before the recipe fills in TRL's own fields
    resolved = to_yaml_dict(script_args, model_args, health_args, eval_args, sampling_args, async_args, training_args)
    session = TrainingSession(script_args, training_args, model_args, resolved=resolved, eval_args=eval_args)
    preflight.warn_resume_inside_generation(training_args, session.checkpoint)
    train_dataset = load_prompt_dataset(
        script_args, script_args.dataset_train_split, session.tokenizer, script_args.max_train_samples,
        training_args.seed,
    )
    run_checks.check_dataset_fills_a_step(len(train_dataset), training_args)  # else 0 steps, exit 0
    # the module's GRPOTrainer name is the base (the recipe-overhead benchmark instruments it)
    trainer_class = async_trainer_class(async_args, grpo_trainer_class(sampling_args, GRPOTrainer), script_args.step_timeout_s)
    trainer = online_trainer(trainer_class, session, train_dataset, health_args)
    session.train(trainer)
    return trainer
