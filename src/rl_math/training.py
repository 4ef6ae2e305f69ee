"""What every recipe does around its trainer: load the tokenizer, resume, save, shut down cleanly."""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import yaml

from rl_math.tiny import TINY_MODEL_NAME, resolve_model_path

logger = logging.getLogger(__name__)

RESOLVED_CONFIG_FILE = "rl_math_config.yaml"
# resume_from_checkpoint values that are not paths: start fresh, or resume from the last checkpoint.
RESUME_FRESH_WORDS = ("false", "no", "0", "")
RESUME_LAST_WORDS = ("true", "yes", "1", "auto", "last")
FINAL_METRICS_FILE = "final_metrics.json"
MODEL_CARD_FILE = "README.md"


def setup_logging(training_args) -> None:
    """rl-math's own lines at INFO on the logging process (main), WARNING elsewhere."""
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S", handlers=[logging.StreamHandler(sys.stdout)]
    )
    logging.getLogger("rl_math").setLevel(logging.INFO if training_args.should_log else logging.WARNING)
    quiet_library_noise()


class _DropMessages(logging.Filter):
    """Drops the log records whose message starts with one of `prefixes`."""

    def __init__(self, *prefixes: str):
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefixes)


def quiet_library_noise() -> None:
    """Silence library messages printed on every run that are harmless and leave the user nothing to do.

    - DeepSpeed's "Setting accelerator to CPU ... we were unable to detect it" whenever it is
      imported on a machine without a GPU (a CPU run knows it has none);
    - transformers 5's FutureWarning that `is_gradient_checkpointing` is deprecated, raised because
      TRL 1.16 still reads that alias at every generation and save;
    - the second copy of every huggingface_hub warning (its retries while the hub is unreachable):
      it prints them with its own handler and would also pass them on to ours.
    """
    logging.getLogger("DeepSpeed").addFilter(_DEEPSPEED_CPU_NOTICE)  # the same filter once, however often called
    logging.getLogger("huggingface_hub").propagate = False  # without a handler of its own, Python's last resort prints
    warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)


def quiet_tied_weights_warning(trainer) -> None:
    """On resume, transformers reports a tied `lm_head.weight` as missing from the checkpoint; it is
    not (it is the embedding matrix, saved once), so the warning is dropped for models that tie them."""
    if getattr(trainer.model.config, "tie_word_embeddings", False):
        logging.getLogger("transformers.trainer").addFilter(_TIED_LM_HEAD_MISSING)


_DEEPSPEED_CPU_NOTICE = _DropMessages("Setting accelerator to CPU")
_TIED_LM_HEAD_MISSING = _DropMessages("There were missing keys in the checkpoint model loaded: ['lm_head.weight']")


def model_init_kwargs(model_args, training_args) -> dict[str, Any]:
    """How the trainer should load the model: the ModelConfig fields, then the YAML's model_init_kwargs."""
    kwargs = dict(
        revision=model_args.model_revision,
        trust_remote_code=getattr(training_args, "trust_remote_code", False),
        attn_implementation=model_args.attn_implementation,
        dtype=model_args.dtype,
    )
    from trl import get_quantization_config

    if (quantization := get_quantization_config(model_args)) is not None:
        kwargs["quantization_config"] = quantization
    if isinstance(training_args.model_init_kwargs, dict):
        kwargs.update(training_args.model_init_kwargs)
    return {k: v for k, v in kwargs.items() if v is not None}


def load_tokenizer(model_args, trust_remote_code: bool = False):
    """The model's tokenizer, with a pad token (the EOS when the model has none)."""
    from transformers import AutoTokenizer

    from rl_math.preflight import model_source_errors

    with model_source_errors(model_args.model_name_or_path):
        tokenizer = AutoTokenizer.from_pretrained(
            resolve_model_path(model_args.model_name_or_path),
            revision=model_args.model_revision,
            trust_remote_code=trust_remote_code,
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def eos_token_ids(tokenizer, model_path: str) -> list[int]:
    """Every id that ends a completion: the tokenizer's EOS plus the generation config's (as TRL stops on)."""
    from transformers import GenerationConfig

    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    try:
        generation = GenerationConfig.from_pretrained(model_path)
        extra = generation.eos_token_id
        ids.update(extra if isinstance(extra, list) else [extra] if extra is not None else [])
    except (OSError, ValueError):
        pass  # no generation_config.json: the tokenizer's EOS is all there is
    return sorted(ids)


def last_checkpoint(output_dir: str) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(output_dir) if os.path.isdir(output_dir) else None


def resolve_resume(training_args) -> str | bool | None:
    """`resume_from_checkpoint: true` → the last checkpoint in output_dir, or a fresh start if none.

    A path is used as given (and must exist). Anything else falsy means a fresh start.
    """
    value = training_args.resume_from_checkpoint
    if value is None or str(value).lower() in RESUME_FRESH_WORDS:
        return None
    if str(value).lower() in RESUME_LAST_WORDS:
        checkpoint = last_checkpoint(training_args.output_dir)
        if checkpoint is None:
            logger.info("resume_from_checkpoint: no checkpoint in %s yet, starting fresh", training_args.output_dir)
        else:
            logger.info("resuming from %s", checkpoint)
        return checkpoint
    if not os.path.isdir(value):
        raise FileNotFoundError(f"resume_from_checkpoint: {value} is not a checkpoint folder")
    return value


def save_run(trainer, tokenizer, resolved_config: dict[str, Any], train_metrics: dict[str, Any]) -> None:
    """Model, tokenizer, the resolved config and the final metrics into output_dir (main process writes)."""
    output_dir = Path(trainer.args.output_dir)
    trainer.save_model(str(output_dir))
    if trainer.accelerator.is_main_process:
        tokenizer.save_pretrained(output_dir)
        (output_dir / RESOLVED_CONFIG_FILE).write_text(yaml.safe_dump(resolved_config, sort_keys=True))
        trainer.save_metrics("train", train_metrics)
        trainer.save_state()
        (output_dir / FINAL_METRICS_FILE).write_text(json.dumps(final_log_metrics(trainer), indent=2, sort_keys=True))
        name_base_model_in_card(output_dir, resolved_config.get("model_name_or_path"))
    logger.info("saved model, tokenizer, %s and %s to %s", RESOLVED_CONFIG_FILE, FINAL_METRICS_FILE, output_dir)


def log_config_to_trackers(trainer, resolved_config: dict[str, Any]) -> None:
    """Put rl-math's resolved config (rewards, prompt_format, dataset_name, health_*) into the trackers' run.

    The trackers' own callbacks log only the trainer's arguments, so W&B runs could not be filtered
    by reward mix. Added after them, this callback's `on_train_begin` sees their runs already open.
    """
    from transformers import TrainerCallback
    from transformers.integrations import TensorBoardCallback, WandbCallback

    callbacks = trainer.callback_handler.callbacks

    class TrackerConfigCallback(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            if not state.is_world_process_zero:
                return
            for callback in callbacks:
                if isinstance(callback, WandbCallback) and callback._wandb is not None and callback._wandb.run:
                    callback._wandb.config.update(resolved_config, allow_val_change=True)
                elif isinstance(callback, TensorBoardCallback) and callback.tb_writer is not None:
                    text = yaml.safe_dump(resolved_config, sort_keys=True)
                    callback.tb_writer.add_text("rl_math_config", f"```yaml\n{text}```")

    trainer.add_callback(TrackerConfigCallback())


def hub_origin(model: str | None, max_hops: int = 10) -> str | None:
    """The hub model a local model was trained from, following each run's saved config; None if none.

    A run's folder (or `round_N/model` below it, for expert iteration) holds the config that names
    the model it started from, which may itself be an earlier run's folder.
    """
    for _ in range(max_hops):
        if not model:
            return None
        path = Path(model)
        if not path.is_dir():
            return None if model == TINY_MODEL_NAME else model
        configs = [folder / RESOLVED_CONFIG_FILE for folder in (path, *path.parents[:2])]
        saved = next((config for config in configs if config.is_file()), None)
        if saved is None:
            return None
        model = (yaml.safe_load(saved.read_text()) or {}).get("model_name_or_path")
    return None


def name_base_model_in_card(output_dir: Path, base_model: str | None) -> None:
    """TRL's model card links only a hub base model and writes `None` for a local one: name it."""
    card = output_dir / MODEL_CARD_FILE
    if not base_model or not card.is_file():
        return
    origin = hub_origin(base_model)
    named = f"`{base_model}`"
    if origin and origin != base_model:
        named += f" (trained from [{origin}](https://huggingface.co/{origin}))"
    text = card.read_text().replace("[None](https://huggingface.co/None)", named)
    card.write_text(text.replace('model="None"', f'model="{output_dir}"'))


def final_log_metrics(trainer) -> dict[str, Any]:
    """The last logged value of each metric (the train summary included)."""
    latest: dict[str, Any] = {}
    for entry in trainer.state.log_history:
        latest.update(entry)
    return latest


def end_distributed() -> None:
    """Barrier and destroy the process group: without it ~1 in 5 multi-process CPU runs abort at exit."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def check_data_parallel(trainer) -> None:
    """Refuse to train when a multi-process launch did not form one data-parallel group.

    `accelerate launch --multi_gpu` on a machine without GPUs and without `use_cpu` starts N
    independent single-process runs that all exit 0; catch that before hours are spent on it.
    """
    from rl_math.preflight import world_size_from_env

    launched = world_size_from_env()
    if launched > 1 and trainer.args.world_size != launched:
        raise RuntimeError(
            f"{launched} processes were launched but the trainer sees world size {trainer.args.world_size} "
            f"({trainer.accelerator.distributed_type}): every process would train its own copy. On CPU set "
            "use_cpu: true (or ddp_backend: gloo under DeepSpeed); on GPUs check the accelerate config."
        )
    logger.info(
        "training on %d process(es), %s, model wrapped as %s",
        trainer.args.world_size,
        trainer.accelerator.distributed_type,
        type(trainer.model_wrapped).__name__,
    )
