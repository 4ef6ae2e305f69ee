"""Saving a trained model so that generation (and the next stage) can load it.

SFT and each expert-iteration round end here: LoRA merged into the weights, and the chat
template's end-of-turn token among the EOS ids, so vLLM, GRPO and the next round stop where the
trained model ends its turn.
"""

from __future__ import annotations

import logging

from rl_math.sampling import end_of_turn_token_id

logger = logging.getLogger(__name__)


def save_for_generation(trainer, tokenizer, path: str) -> str:
    """Save the trainer's model as a full model at `path`: LoRA merged, end-of-turn in the EOS ids.

    vLLM, GRPO and the next expert-iteration round load the result like any checkpoint. Written by
    the main process; call it from every process (it synchronises).
    """
    model = trainer.accelerator.unwrap_model(trainer.model)
    if trainer.accelerator.is_main_process:
        if hasattr(model, "merge_and_unload"):  # a peft model: fold the adapter into the weights
            model = model.merge_and_unload()
        add_stop_tokens(model, tokenizer)
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
    trainer.accelerator.wait_for_everyone()
    logger.info("saved the model for generation to %s", path)
    return path


def add_stop_tokens(model, tokenizer) -> list[int]:
    """Make `model.generation_config.eos_token_id` include the tokenizer EOS and the end-of-turn token.

    A base model's generation config stops on `<|endoftext|>` only; after chat SFT the model ends its
    turn with `<|im_end|>`, and every generator (HF, vLLM, GRPO) must stop there too.
    """
    config = model.generation_config
    current = config.eos_token_id
    ids = list(current) if isinstance(current, (list, tuple)) else ([current] if current is not None else [])
    for extra in (tokenizer.eos_token_id, end_of_turn_token_id(tokenizer)):
        if extra is not None and extra not in ids:
            ids.append(extra)
    config.eos_token_id = ids
    return ids
