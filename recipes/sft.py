"""Supervised fine-tuning on GSM8K reasoning traces (or any prompt/completion file) with TRL's SFTTrainer.

    python recipes/sft.py configs/sft_smoke.yaml                                   # CPU, offline
    accelerate launch recipes/sft.py configs/sft_qwen0.5b.yaml                      # one GPU
    accelerate launch --config_file configs/accelerate/zero3.yaml recipes/sft.py configs/sft_qwen7b.yaml

The targets are written in the config's `prompt_format` exactly as the RL rewards want them (see
`rl_math.train.sft_data`); the loss covers the completion only and ends with the chat template's
end-of-turn token, so the model learns to stop. With `use_peft: true` the adapter is saved in
output_dir and a merged full model in output_dir/merged (what vLLM, EI and GRPO load).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from trl import SFTTrainer, get_peft_config

from rl_math import preflight, run_checks
from rl_math.config import exit_on_config_error, parse_config, recipe_dataclasses, to_yaml_dict
from rl_math.eval.in_run import build_in_run_eval, load_best_model
from rl_math.tasks.formats import default_reward_specs
from rl_math.testing import resolve_model
from rl_math.train.export import add_stop_tokens, save_for_generation
from rl_math.train.generation import stop_token_ids
from rl_math.train.lifecycle import (
    check_data_parallel,
    end_distributed,
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
from rl_math.train.sft_data import drop_overlong, load_sft_dataset, supervised_text

logger = logging.getLogger("rl_math.sft")
MERGED_DIR = "merged"


def main(argv: list[str] | None = None) -> SFTTrainer:
    parsed = parse_config(
        recipe_dataclasses("sft"),
        argv,
        checks=[
            preflight.apply_cpu_defaults,
            preflight.check_training_length,
            preflight.check_stale_build_locks,
            preflight.warn_pure_bf16_training,
            *preflight.INPUT_CHECKS,
            run_checks.ownership_check("sft"),  # another recipe's or another run's output_dir
            preflight.check_output_dir,  # with overwrite_output_dir it deletes the earlier run: after the checks
            run_checks.ownership_record("sft"),
            preflight.init_cpu_process_group,
        ],
    )
    script_args, training_args, model_args, eval_args = parsed.instances
    setup_logging(training_args)
    checkpoint = resolve_resume(training_args)
    keep_checkpoint_settings(training_args, checkpoint)
    # what runs, as the user can give it again: taken before the recipe fills in TRL's own fields
    resolved = to_yaml_dict(script_args, model_args, eval_args, training_args)

    model_path = resolve_model(model_args.model_name_or_path)
    tokenizer = load_tokenizer(model_args, training_args.trust_remote_code)
    train_dataset = load_sft_dataset(
        script_args, script_args.dataset_train_split, tokenizer, script_args.max_train_samples, training_args.seed
    )
    train_dataset = drop_overlong(train_dataset, tokenizer, training_args.max_length)
    training_args.model_init_kwargs = model_init_kwargs(model_args, training_args)

    in_run_eval = build_in_run_eval(
        eval_args, script_args, tokenizer, reward_specs=script_args.rewards or default_reward_specs(script_args.prompt_format),
        stop_ids=stop_token_ids(tokenizer, model_path), max_new_tokens=None,
    )

    preemption = PreemptionCallback()
    trainer = SFTTrainer(
        model=model_path,
        args=training_args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
        callbacks=[preemption, *in_run_eval],
    )
    for callback in in_run_eval:
        callback.attach(trainer)
    check_data_parallel(trainer)
    quiet_tied_weights_warning(trainer)
    supervised, _ = supervised_text(trainer.train_dataset[0], tokenizer)
    logger.info("%d training rows; the loss of row 0 covers: %r", len(trainer.train_dataset), supervised[-300:])
    log_config_to_trackers(trainer, resolved)
    train_metrics = run_training(trainer, checkpoint)
    if preemption.stopped:
        return trainer  # the checkpoint is saved; the requeued job resumes from it

    if in_run_eval and eval_args.eval_load_best_at_end:
        load_best_model(trainer)
    add_stop_tokens(trainer.accelerator.unwrap_model(trainer.model), tokenizer)  # a base model learns <|im_end|>
    save_run(trainer, tokenizer, resolved, train_metrics)
    if model_args.use_peft:
        if trainer.is_deepspeed_enabled and trainer.accelerator.state.deepspeed_plugin.zero_stage == 3:
            logger.warning("LoRA under ZeRO-3: only the adapter is saved; merge it offline before vLLM/GRPO")
        else:
            save_for_generation(trainer, tokenizer, str(Path(training_args.output_dir) / MERGED_DIR))
    return trainer


if __name__ == "__main__":
    with exit_on_config_error():
        main(sys.argv[1:])
    end_distributed()
