"""Supervised fine-tuning on the task's worked solutions (or any prompt/completion file), TRL's SFTTrainer.

The targets are written in the config's `prompt_format` exactly as the RL rewards want them (see
:mod:`rl_math.train.sft_data`); the loss covers the completion only and ends with the chat
template's end-of-turn token, so the model learns to stop. With `use_peft: true` the adapter is
saved in output_dir and a merged full model in output_dir/merged (what vLLM, EI and GRPO load).
"""

from __future__ import annotations

import logging
from pathlib import Path

from trl import ModelConfig, SFTConfig, SFTTrainer, get_peft_config

from rl_math import preflight
from rl_math.config import RecipeArguments, parse_config, to_yaml_dict
from rl_math.eval.in_run import InRunEvalArguments
from rl_math.train.export import add_stop_tokens, save_for_generation
from rl_math.train.lifecycle import save_run
from rl_math.train.session import TrainingSession
from rl_math.train.sft_data import drop_overlong, load_sft_dataset, supervised_text

logger = logging.getLogger("rl_math.sft")
MERGED_DIR = "merged"

DATACLASSES = (RecipeArguments, SFTConfig, ModelConfig, InRunEvalArguments)
CHECKS = (
    preflight.apply_cpu_defaults,
    preflight.check_training_length,
    preflight.check_stale_build_locks,
    preflight.warn_pure_bf16_training,
    *preflight.INPUT_CHECKS,
    *preflight.training_output_checks("sft"),
)


def main(argv: list[str] | None = None) -> SFTTrainer:
    script_args, training_args, model_args, eval_args = parse_config(DATACLASSES, argv, checks=CHECKS).instances
    # what runs, as the user can give it again: taken before the recipe fills in TRL's own fields
    resolved = to_yaml_dict(script_args, model_args, eval_args, training_args)
    session = TrainingSession(script_args, training_args, model_args, resolved=resolved, eval_args=eval_args)
    tokenizer = session.tokenizer
    train_dataset = load_sft_dataset(
        script_args, script_args.dataset_train_split, tokenizer, script_args.max_train_samples, training_args.seed
    )
    train_dataset = drop_overlong(train_dataset, tokenizer, training_args.max_length)
    trainer = SFTTrainer(
        model=session.model_path,
        args=training_args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
        callbacks=session.callbacks(),
    )
    supervised, _ = supervised_text(trainer.train_dataset[0], tokenizer)
    logger.info("%d training rows; the loss of row 0 covers: %r", len(trainer.train_dataset), supervised[-300:])

    def save(trainer, train_metrics, stop_reason):
        add_stop_tokens(trainer.accelerator.unwrap_model(trainer.model), tokenizer)  # a base model learns <|im_end|>
        save_run(trainer, tokenizer, session.resolved, train_metrics, stop_reason)
        if model_args.use_peft:
            if trainer.is_deepspeed_enabled and trainer.accelerator.state.deepspeed_plugin.zero_stage == 3:
                logger.warning("LoRA under ZeRO-3: only the adapter is saved; merge it offline before vLLM/GRPO")
            else:
                save_for_generation(trainer, tokenizer, str(Path(training_args.output_dir) / MERGED_DIR))

    session.train(trainer, save=save)
    return trainer
