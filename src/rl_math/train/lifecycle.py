"""What every recipe does around its trainer: load the tokenizer, resume, save, shut down cleanly."""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

import yaml
from transformers import TrainerCallback

from rl_math.runtime import is_embedded_model, world_size_from_env

logger = logging.getLogger(__name__)

RESOLVED_CONFIG_FILE = "rl_math_config.yaml"
# resume_from_checkpoint values that are not paths: start fresh, or resume from the last checkpoint.
RESUME_FRESH_WORDS = ("false", "no", "0", "")
RESUME_LAST_WORDS = ("true", "yes", "1", "auto", "last")
FINAL_METRICS_FILE = "final_metrics.json"
# Written into checkpoint-N last, with every file's size: a checkpoint without it (or with a file
# of another size) was cut short by a kill or a full disk and is never resumed from.
CHECKPOINT_COMPLETE_FILE = "rl_math_checkpoint_complete.json"
_CHECKPOINT_DIR = re.compile(r"^checkpoint-(\d+)$")
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


def checkpoint_step(checkpoint: str | os.PathLike | None) -> int | None:
    """N of a `checkpoint-N` folder, else None.

    >>> checkpoint_step("out/checkpoint-20"), checkpoint_step("out/model")
    (20, None)
    """
    match = _CHECKPOINT_DIR.match(Path(checkpoint).name) if checkpoint else None
    return int(match.group(1)) if match else None


def checkpoint_problem(checkpoint: str | os.PathLike) -> str | None:
    """Why a checkpoint folder cannot be resumed from (None when it is complete)."""
    path = Path(checkpoint)
    marker = path / CHECKPOINT_COMPLETE_FILE
    if not marker.is_file():
        return f"it has no {CHECKPOINT_COMPLETE_FILE} (the run was stopped while saving it)"
    try:
        sizes = json.loads(marker.read_text())["file_sizes"]
    except (ValueError, KeyError, TypeError):
        return f"its {CHECKPOINT_COMPLETE_FILE} is unreadable"
    for name, size in sizes.items():
        actual = (path / name).stat().st_size if (path / name).is_file() else None
        if actual != size:
            return f"{name} is {'missing' if actual is None else f'{actual} bytes, not {size}'}"
    return None


def mark_checkpoint_complete(checkpoint: str | os.PathLike) -> None:
    """Record every file of a fully written checkpoint with its size (atomically, last)."""
    path = Path(checkpoint)
    sizes = {
        str(file.relative_to(path)): file.stat().st_size
        for file in sorted(path.rglob("*"))
        if file.is_file() and file.name != CHECKPOINT_COMPLETE_FILE
    }
    tmp = path / f".{CHECKPOINT_COMPLETE_FILE}.tmp"
    tmp.write_text(json.dumps({"file_sizes": sizes}, indent=1))
    os.replace(tmp, path / CHECKPOINT_COMPLETE_FILE)


def last_checkpoint(output_dir: str) -> str | None:
    """The newest complete checkpoint-N in output_dir; newer incomplete ones are skipped with a warning."""
    if not os.path.isdir(output_dir):
        return None
    numbered = [p for p in Path(output_dir).iterdir() if checkpoint_step(p) is not None and p.is_dir()]
    newest_first = sorted(numbered, key=checkpoint_step, reverse=True)
    if newest_first and not any((path / CHECKPOINT_COMPLETE_FILE).is_file() for path in newest_first):
        return _last_unmarked_checkpoint(newest_first)
    for path in newest_first:
        problem = checkpoint_problem(path)
        if problem is None:
            return str(path)
        logger.warning("%s is incomplete and is skipped: %s", path, problem)
    return None


def _last_unmarked_checkpoint(newest_first: list[Path]) -> str | None:
    """Checkpoints written before rl-math marked them: the Trainer writes trainer_state.json last."""
    for path in newest_first:
        try:
            json.loads((path / "trainer_state.json").read_text())
        except (OSError, ValueError):
            logger.warning("%s has no readable trainer_state.json (stopped while saving?) and is skipped", path)
            continue
        logger.warning("%s was written without a completion marker (an older rl-math); resuming from it", path)
        return str(path)
    return None


class CheckpointCompleteMarker(TrainerCallback):
    """Marks each checkpoint complete once the Trainer has written all of it (`on_save` comes after)."""

    def on_save(self, args, state, control, **kwargs):
        path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if args.should_save and path.is_dir():
            mark_checkpoint_complete(path)


class _AlreadyAtMaxSteps(Exception):
    pass


class _StopAtMaxSteps(TrainerCallback):
    """Resuming a checkpoint at max_steps would train one more step (the Trainer only checks after a step)."""

    def on_train_begin(self, args, state, control, **kwargs):
        if state.max_steps > 0 and state.global_step >= state.max_steps:
            raise _AlreadyAtMaxSteps()


def run_training(trainer, checkpoint: str | None) -> dict[str, Any]:
    """`trainer.train(resume_from_checkpoint=checkpoint)`; returns the train metrics.

    Checkpoints are marked complete as they are written; a checkpoint already at max_steps (a
    finished run resubmitted, a kill during the final save) trains nothing and its weights are
    the final model; a full disk says so instead of a bare write error.
    """
    trainer.add_callback(CheckpointCompleteMarker())
    trainer.callback_handler.callbacks.insert(0, _StopAtMaxSteps())  # before any callback starts the run
    try:
        return trainer.train(resume_from_checkpoint=checkpoint).metrics
    except _AlreadyAtMaxSteps:
        logger.info(
            "%s is already at max_steps %d: nothing left to train, its weights are the final model",
            checkpoint, trainer.state.max_steps,
        )
        return {}
    except (OSError, RuntimeError) as err:
        if _disk_full(err, trainer.args.output_dir):
            raise DiskFullError(trainer.args.output_dir, err) from err
        raise


class DiskFullError(OSError):
    def __init__(self, output_dir: str, cause: BaseException) -> None:
        free = shutil.disk_usage(output_dir).free if os.path.isdir(output_dir) else 0
        super().__init__(
            errno.ENOSPC,
            f"the disk of {output_dir} is full ({free / 2**20:.0f} MiB free) and a write failed ({cause}); free "
            "space (or lower save_total_limit) and rerun with --resume_from_checkpoint true, which resumes "
            "from the last complete checkpoint",
        )


def _disk_full(err: BaseException, output_dir: str) -> bool:
    """ENOSPC anywhere in the chain, or a failed write (torch.save hides the errno) with almost no space left."""
    chain = err
    while chain is not None:
        if getattr(chain, "errno", None) == errno.ENOSPC or "No space left" in str(chain):
            return True
        chain = chain.__cause__ or chain.__context__
    write_failed = "write" in str(err).lower()
    return write_failed and os.path.isdir(output_dir) and shutil.disk_usage(output_dir).free < 2**30


def resume_requested(value: object) -> bool:
    """Whether a `resume_from_checkpoint` value asks to resume (true, or a path) rather than start fresh."""
    return value is not None and str(value).lower() not in RESUME_FRESH_WORDS


def previous_run_files(output_dir: str | os.PathLike) -> list[str]:
    """What in output_dir belongs to an earlier run: checkpoint folders, its trainer state and config."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = sorted(p.name for p in root.iterdir() if _CHECKPOINT_DIR.match(p.name))
    return found + [name for name in ("trainer_state.json", RESOLVED_CONFIG_FILE) if (root / name).is_file()]


def resolve_resume(training_args) -> str | bool | None:
    """`resume_from_checkpoint: true` → the last checkpoint in output_dir, or a fresh start if none.

    A path is used as given (and must exist). Anything else falsy means a fresh start.
    """
    value = training_args.resume_from_checkpoint
    if not resume_requested(value):
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
    if (problem := checkpoint_problem(value)) is not None:
        logger.warning("resume_from_checkpoint: %s may be incomplete (%s); resuming from it as asked", value, problem)
    return value


# What a resume restores from the checkpoint whatever the config says: the optimizer's param groups
# (learning rate, betas, eps, weight decay), the scheduler, the RNG and the data position.
RESUME_FIXED_FIELDS = (
    "learning_rate", "lr_scheduler_type", "lr_scheduler_kwargs", "warmup_steps", "weight_decay", "adam_beta1",
    "adam_beta2", "adam_epsilon", "optim", "seed", "data_seed", "per_device_train_batch_size",
    "gradient_accumulation_steps",
)


def keep_checkpoint_settings(training_args, checkpoint: str | None) -> None:
    """On resume, warn about each field changed since the checkpoint that a resume cannot change, and set
    it back to the checkpoint's value, so that the saved config records what ran."""
    saved = Path(checkpoint or "") / "training_args.bin"
    if not checkpoint or not saved.is_file():
        return
    import torch

    try:
        before = torch.load(saved, weights_only=False)  # written by the Trainer of this run
    except Exception as err:  # noqa: BLE001 - an unreadable file only costs the warning
        logger.warning("cannot read %s (%s); not checking which settings changed since the checkpoint", saved, err)
        return
    for name in RESUME_FIXED_FIELDS:
        old, new = getattr(before, name, None), getattr(training_args, name, None)
        if hasattr(before, name) and old != new:
            logger.warning(
                "resuming from %s: %s %r was given but the checkpoint's %r is what runs (a resume restores the "
                "optimizer, scheduler and data order); start a new run to change it", checkpoint, name, new, old,
            )
            setattr(training_args, name, old)


def save_run(
    trainer, tokenizer, resolved_config: dict[str, Any], train_metrics: dict[str, Any], stop_reason: str | None = None
) -> None:
    """Model, tokenizer, the resolved config and the final metrics into output_dir (main process writes).

    `stop_reason` (a run that ended before max_steps, and why) goes into final_metrics.json.
    """
    output_dir = Path(trainer.args.output_dir)
    trainer.save_model(str(output_dir))
    if trainer.accelerator.is_main_process:
        tokenizer.save_pretrained(output_dir)
        (output_dir / RESOLVED_CONFIG_FILE).write_text(yaml.safe_dump(resolved_config, sort_keys=True))
        trainer.save_metrics("train", train_metrics)
        trainer.save_state()
        final = final_log_metrics(trainer) | ({"stop_reason": stop_reason} if stop_reason else {})
        (output_dir / FINAL_METRICS_FILE).write_text(json.dumps(final, indent=2, sort_keys=True))
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
            return None if is_embedded_model(model) else model
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


def logged_mean_loss(log_history: list[dict[str, Any]]) -> float | None:
    """The mean training loss over every logged step, each log weighted by the steps it covers.

    >>> logged_mean_loss([{"loss": 2.0, "step": 2}, {"loss": 1.0, "step": 3}, {"train_loss": 9.0, "step": 3}])
    1.6666666666666667
    """
    total = steps = 0.0
    previous = 0
    for entry in log_history:
        if "loss" in entry and "step" in entry:
            total += entry["loss"] * (entry["step"] - previous)
            steps += entry["step"] - previous
            previous = entry["step"]
    return total / steps if steps else None


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
