"""GRPO on GSM8K with TRL's GRPOTrainer.

    python recipes/grpo.py configs/smoke.yaml                       # CPU, offline
    accelerate launch recipes/grpo.py configs/qwen0.5b.yaml          # one GPU node
    accelerate launch --config_file configs/accelerate/zero3.yaml recipes/grpo.py configs/qwen7b.yaml

Any field can be overridden after the config: `--learning_rate 1e-6 --max_steps 50`.
Exit status: 0 finished (or checkpointed on a preemption signal), 2 a config error, 3 a health
alarm with action `stop` ended the run (`stop_reason` in final_metrics.json).
"""

from __future__ import annotations

import logging
import sys

from trl import GRPOTrainer, get_peft_config

from rl_math import preflight, run_checks
from rl_math.config import exit_on_config_error, parse_config, recipe_dataclasses, to_yaml_dict
from rl_math.eval.in_run import build_in_run_eval, load_best_model
from rl_math.rewards import build_rewards, reward_name
from rl_math.tasks.formats import default_reward_specs
from rl_math.tasks.loading import load_prompt_dataset
from rl_math.testing import resolve_model
from rl_math.train.dynamic_sampling import check_dynamic_sampling, grpo_trainer_class
from rl_math.train.generation import stop_token_ids
from rl_math.train.group_signal import GroupSignalRecorder
from rl_math.train.health import HEALTH_STOP_EXIT_CODE, build_health_callback, health_stop_reason
from rl_math.train.lifecycle import (
    check_data_parallel,
    end_distributed,
    eos_token_ids,
    keep_checkpoint_settings,
    load_tokenizer,
    log_config_to_trackers,
    model_init_kwargs,
    quiet_tied_weights_warning,
    resolve_resume,
    run_training,
    save_run,
    setup_logging,
)
from rl_math.train.preemption import PreemptionCallback

logger = logging.getLogger("rl_math.grpo")


def main(argv: list[str] | None = None) -> GRPOTrainer:
    parsed = parse_config(
        recipe_dataclasses("grpo"),
        argv,
        checks=[
            preflight.apply_cpu_defaults,
            preflight.check_training_length,
            preflight.check_stale_build_locks,
            preflight.check_grpo_batch,
            check_dynamic_sampling,
            preflight.check_checkpoints_at_generation_boundaries,
            preflight.check_vllm,
            preflight.check_no_reward_weights,
            run_checks.check_some_reward_weight,
            run_checks.check_grpo_data_fills_a_step,
            preflight.warn_negative_correctness,
            preflight.warn_pure_bf16_training,
            preflight.check_grpo_sampling,
            *preflight.INPUT_CHECKS,
            run_checks.ownership_check("grpo"),  # another recipe's or another run's output_dir
            preflight.check_output_dir,  # with overwrite_output_dir it deletes the earlier run: after the checks
            run_checks.ownership_record("grpo"),
            preflight.init_cpu_process_group,
        ],
    )
    script_args, training_args, model_args, health_args, eval_args, sampling_args = parsed.instances
    setup_logging(training_args)
    checkpoint = resolve_resume(training_args)
    keep_checkpoint_settings(training_args, checkpoint)
    preflight.warn_resume_inside_generation(training_args, checkpoint)
    # what runs, as the user can give it again: taken before the recipe fills in TRL's own fields
    resolved = to_yaml_dict(script_args, model_args, health_args, eval_args, sampling_args, training_args)

    model_path = resolve_model(model_args.model_name_or_path)
    tokenizer = load_tokenizer(model_args, training_args.trust_remote_code)
    train_dataset = load_prompt_dataset(
        script_args, script_args.dataset_train_split, tokenizer, script_args.max_train_samples, training_args.seed
    )
    run_checks.check_dataset_fills_a_step(len(train_dataset), training_args)  # else 0 steps, exit 0
    specs = script_args.rewards or default_reward_specs(script_args.prompt_format)
    reward_funcs, reward_weights = build_rewards(
        specs,
        context={
            "eos_token_ids": eos_token_ids(tokenizer, model_path),
            "max_completion_length": training_args.max_completion_length,
        },
    )
    preflight.check_reward_columns(reward_funcs, train_dataset.column_names)
    # every step logs which groups carry a signal, and of which kind (groups/no_signal, groups/shape_only)
    reward_funcs = GroupSignalRecorder(
        [reward_name(f) for f in reward_funcs], reward_weights, training_args.num_generations
    ).wrap(reward_funcs)
    training_args.reward_weights = reward_weights
    training_args.model_init_kwargs = model_init_kwargs(model_args, training_args)
    logger.info("rewards: %s", ", ".join(f"{f.__name__}×{w:g}" for f, w in zip(reward_funcs, reward_weights)))

    in_run_eval = build_in_run_eval(
        eval_args, script_args, tokenizer, reward_specs=specs, stop_ids=stop_token_ids(tokenizer, model_path),
        max_new_tokens=training_args.max_completion_length,
    )

    preemption = PreemptionCallback()
    # the module's GRPOTrainer name is the base (the recipe-overhead benchmark instruments it)
    trainer = grpo_trainer_class(sampling_args, GRPOTrainer)(
        model=model_path,
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
        callbacks=[preemption, *in_run_eval, *build_health_callback(health_args, reward_funcs)],
    )
    for callback in in_run_eval:
        callback.attach(trainer)
    check_data_parallel(trainer)
    quiet_tied_weights_warning(trainer)
    resolved["rewards"] = specs
    log_config_to_trackers(trainer, resolved)
    train_metrics = run_training(trainer, checkpoint)
    if preemption.stopped:
        return trainer  # the checkpoint is saved; the requeued job resumes from it
    if in_run_eval and eval_args.eval_load_best_at_end:
        load_best_model(trainer)
    stop_reason = health_stop_reason(trainer)
    save_run(trainer, tokenizer, resolved, train_metrics, stop_reason)
    if stop_reason:
        logger.error("training ended early: %s; exiting with status %d", stop_reason, HEALTH_STOP_EXIT_CODE)
    return trainer


if __name__ == "__main__":
    with exit_on_config_error():
        trainer = main(sys.argv[1:])
    end_distributed()
    if health_stop_reason(trainer):
        sys.exit(HEALTH_STOP_EXIT_CODE)  # job scripts can tell a stopped run from a finished one
