"""Checks that run on the merged config values before any dataclass or model is built.

Each check has the `parse_config(checks=...)` signature `(values, explicit) -> None`: `values`
holds every field (defaults included), `explicit` the names the user set. A failure is one
sentence that says what is wrong and how to fix it.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from rl_math.errors import ConfigError, nearest_key
from rl_math.models import resolve_model
from rl_math.run_checks import check_grpo_data_fills_a_step, check_some_reward_weight, ownership_check, ownership_record
from rl_math.runtime import (
    VLLM_MISSING,
    cuda_available,
    deepspeed_launch,
    extensions_dir,
    generation_batch,
    hub_offline,
    model_source_problem,
    on_generation_boundary,
    similar_paths,
    world_size_from_env,
)
from rl_math.sampling import check_sampling
from rl_math.train.lifecycle import (
    RESUME_FRESH_WORDS,
    RESUME_LAST_WORDS,
    checkpoint_step,
    previous_run_files,
    resume_requested,
)
from rl_math.versions import check_versions

logger = logging.getLogger(__name__)


def grpo_batch_problems(
    per_device_train_batch_size: int,
    gradient_accumulation_steps: int,
    num_generations: int,
    generation_batch_size: int | None,
    steps_per_generation: int | None,
    world_size: int,
) -> list[str]:
    """The batch rules GRPOTrainer enforces, as one sentence per violation with its fix.

    >>> grpo_batch_problems(4, 1, 8, None, None, world_size=1)  # doctest: +NORMALIZE_WHITESPACE
    ['generation batch (per_device_train_batch_size 4 × 1 processes × steps_per_generation 1 = 4)
      must be divisible by num_generations 8 so that every prompt gets its whole group; make
      per_device_train_batch_size × gradient_accumulation_steps × processes a multiple of 8
      (e.g. per_device_train_batch_size 8), or lower num_generations.']
    """
    problems = []
    if num_generations < 2:
        return [f"num_generations is {num_generations}; GRPO compares completions within a group, so it needs at least 2"]
    if per_device_train_batch_size < 1 or gradient_accumulation_steps < 1:
        return ["per_device_train_batch_size and gradient_accumulation_steps must be at least 1"]
    global_batch = per_device_train_batch_size * world_size
    if generation_batch_size is not None and steps_per_generation is not None:
        return [
            "generation_batch_size and steps_per_generation are two ways to say the same thing; set only one "
            f"(generation_batch_size = per_device_train_batch_size × processes × steps_per_generation = "
            f"{global_batch} × steps_per_generation)"
        ]
    derived = generation_batch(per_device_train_batch_size, gradient_accumulation_steps, generation_batch_size,
                               steps_per_generation, world_size)
    if generation_batch_size is not None:
        if generation_batch_size % global_batch:
            problems.append(
                f"generation_batch_size {generation_batch_size} must be divisible by the global batch "
                f"(per_device_train_batch_size {per_device_train_batch_size} × {world_size} processes = "
                f"{global_batch}); use a multiple of {global_batch}"
            )
        how = f"generation_batch_size {generation_batch_size}"
    else:
        steps = steps_per_generation or gradient_accumulation_steps
        name = "steps_per_generation" if steps_per_generation else "steps_per_generation (= gradient_accumulation_steps)"
        how = (
            f"generation batch (per_device_train_batch_size {per_device_train_batch_size} × {world_size} "
            f"processes × {name.split(' ')[0]} {steps} = {derived})"
        )
    if derived % num_generations:
        problems.append(
            f"{how} must be divisible by num_generations {num_generations} so that every prompt gets its whole "
            f"group; make per_device_train_batch_size × gradient_accumulation_steps × processes a multiple of "
            f"{num_generations} (e.g. per_device_train_batch_size {_next_multiple(per_device_train_batch_size, num_generations, world_size)}), "
            f"or lower num_generations."
        )
    return problems


def _next_multiple(per_device: int, num_generations: int, world_size: int) -> int:
    size = per_device
    while (size * world_size) % num_generations:
        size += 1
    return size


def check_grpo_batch(values: dict[str, Any], explicit: set[str], world_size: int | None = None) -> None:
    """Raise ConfigError when GRPOTrainer would reject the batch arithmetic for this world size."""
    world_size = world_size or world_size_from_env()
    problems = grpo_batch_problems(
        values["per_device_train_batch_size"],
        values["gradient_accumulation_steps"],
        values["num_generations"],
        values.get("generation_batch_size"),
        values.get("steps_per_generation"),
        world_size,
    )
    if problems:
        raise ConfigError(f"batch sizes for {world_size} process(es): " + "; ".join(problems))


def check_training_length(values: dict[str, Any], explicit: set[str]) -> None:
    """Step counts the Trainer would take silently: a negative max_steps means "epochs", 0 trains a step."""
    max_steps = values["max_steps"]
    if max_steps == 0 or max_steps < -1:
        raise ConfigError(
            f"max_steps is {max_steps}; give a positive number of optimizer steps, or -1 to train for "
            "num_train_epochs epochs"
        )
    if max_steps == -1 and values["num_train_epochs"] <= 0:
        raise ConfigError(
            f"num_train_epochs is {values['num_train_epochs']} and max_steps is -1, so nothing would be trained; "
            "set num_train_epochs above 0 or a positive max_steps"
        )
    if values.get("save_strategy") == "steps" and values["save_steps"] <= 0:
        raise ConfigError(
            f"save_steps is {values['save_steps']}, so no checkpoint would ever be written; give a positive "
            "number of steps (a float below 1 is a fraction of the run), or save_strategy: 'no'"
        )


def check_output_dir(values: dict[str, Any], explicit: set[str]) -> None:
    """A new run never mixes its checkpoints with an earlier run's in the same output_dir.

    A later `--resume_from_checkpoint true` would pick whichever checkpoint is newest, from either
    run. So: resume it, replace it (`overwrite_output_dir`: its checkpoints are deleted), or refuse.
    """
    import shutil


    output_dir = values["output_dir"]
    found = previous_run_files(output_dir)
    if not found or resume_requested(values.get("resume_from_checkpoint")):
        return
    if not values.get("overwrite_output_dir"):
        shown = ", ".join(found[:3]) + (", ..." if len(found) > 3 else "")
        raise ConfigError(
            f"output_dir {output_dir} already holds a run ({shown}); pass --resume_from_checkpoint true to "
            "continue it, --overwrite_output_dir true to replace it, or another --output_dir"
        )
    for name in found:
        path = Path(output_dir) / name
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    logger.warning("overwrite_output_dir: deleted the earlier run's %s in %s", ", ".join(found), output_dir)


def warn_resume_inside_generation(training_args, checkpoint: str | None) -> None:
    """A checkpoint written inside a generation (a preemption or a health stop) resumes, but not exactly."""

    step = checkpoint_step(checkpoint)
    generate_every = training_args.steps_per_generation * training_args.num_iterations
    if step is not None and not on_generation_boundary(step, training_args.gradient_accumulation_steps, generate_every):
        logger.warning(
            "%s was written inside a generation (a new one starts every %d micro-batches); the resumed run "
            "generates anew there, so it will not reproduce the uninterrupted run exactly", checkpoint, generate_every,
        )


def check_checkpoints_at_generation_boundaries(
    values: dict[str, Any], explicit: set[str], world_size: int | None = None
) -> None:
    """GRPO with buffered generations must checkpoint where a new generation starts.

    GRPOTrainer generates once per steps_per_generation × num_iterations micro-batches and trains on
    the buffer; the buffer is not in a checkpoint, so a resume from a step inside it generates anew
    and drifts from the uninterrupted run. Checkpoints on generation boundaries resume exactly.
    """
    if values.get("save_strategy") != "steps":
        return
    world_size = world_size or world_size_from_env()
    accumulation = values["gradient_accumulation_steps"]
    steps_per_generation = values.get("steps_per_generation")
    if steps_per_generation is None and values.get("generation_batch_size"):
        steps_per_generation = values["generation_batch_size"] // (values["per_device_train_batch_size"] * world_size)
    generate_every = (steps_per_generation or accumulation) * values.get("num_iterations", 1)  # micro-batches
    save_steps = values["save_steps"]
    if save_steps < 1:
        if values["max_steps"] <= 0:
            return  # a fraction of a length known only once the data is loaded
        save_steps = math.ceil(values["max_steps"] * save_steps)
    if not on_generation_boundary(save_steps, accumulation, generate_every):
        every = generate_every // math.gcd(generate_every, accumulation)
        raise ConfigError(
            f"save_steps {values['save_steps']} puts checkpoints inside a generation (one is trained on for "
            f"steps_per_generation × num_iterations = {generate_every} micro-batches, gradient_accumulation_steps "
            f"{accumulation} per step), and a resume from one would not reproduce the run; use a save_steps that "
            f"is a multiple of {every}"
        )


def check_vllm(values: dict[str, Any], explicit: set[str]) -> None:
    """`use_vllm: true` needs the optional vllm extra; say so before an ImportError mid-setup."""
    if values.get("use_vllm") and importlib.util.find_spec("vllm") is None:
        raise ConfigError(VLLM_MISSING)
    if values.get("use_vllm") and "vllm_mode" in values and values["vllm_mode"] not in ("colocate", "server"):
        raise ConfigError(f"vllm_mode must be 'colocate' or 'server', got {values['vllm_mode']!r}")


def apply_cpu_defaults(values: dict[str, Any], explicit: set[str]) -> None:
    """Make a CPU-only machine work without hand-editing a GPU config.

    - `bf16` (TRL's default) fails on a machine with no GPU: turned off unless the user set it.
    - Several CPU processes need `use_cpu` for a real data-parallel group (without it each process
      trains alone); under DeepSpeed they need `ddp_backend: gloo` instead (use_cpu disables DeepSpeed).
    """
    if cuda_available():
        return
    if "bf16" not in explicit and values.get("bf16") is not False and "bf16" in values:
        values["bf16"] = False
        logger.info("no GPU: bf16 turned off (set bf16 explicitly to override)")
    if world_size_from_env() > 1:
        if "ddp_backend" in values and values.get("ddp_backend") is None:
            values["ddp_backend"] = "gloo"
            logger.info("no GPU: ddp_backend set to gloo for %d CPU processes", world_size_from_env())
        if not deepspeed_launch() and "use_cpu" in values and "use_cpu" not in explicit:
            values["use_cpu"] = True
            logger.info("no GPU: use_cpu set to true, so the %d processes train as one data-parallel group",
                        world_size_from_env())


def init_cpu_process_group(values: dict[str, Any], explicit: set[str]) -> None:
    """Form the CPU data-parallel group with `ddp_timeout`, which transformers 5.23 passes on every
    backend but `use_cpu` (where a frozen rank then blocks the others for torch's default 30 min).

    accelerate and the Trainer reuse a process group that already exists.
    """
    import torch.distributed as dist

    if not values.get("use_cpu") or world_size_from_env() <= 1 or not dist.is_available() or dist.is_initialized():
        return
    if not all(name in os.environ for name in ("RANK", "MASTER_ADDR", "MASTER_PORT")):
        return  # not a torchrun-style launch: leave it to accelerate
    dist.init_process_group(backend=values.get("ddp_backend") or "gloo", timeout=timedelta(seconds=values["ddp_timeout"]))


# A torch JIT build (DeepSpeed's ops on CPU) holds this file while it compiles; one left behind by a
# killed build makes every later build of that op wait for it forever, silently. A younger one may
# be another job's build in progress (a first build takes ~30 s on 2 cores): only a warning.
_BUILD_LOCK = "lock"
_NEW_LOCK_S = 60  # a build writes its sources for a moment after taking the lock, before ninja starts


def build_processes(directory: Path, proc: Path = Path("/proc")) -> list[int]:
    """Processes of this host working in `directory` (torch runs ninja and the compiler there); [] if none.

    A JIT build lock carries no process id, so the lock's own directory is how a live build is told
    from a dead one. Processes this user cannot inspect are skipped.
    """
    target = os.path.realpath(directory)
    pids = []
    for entry in proc.glob("[0-9]*"):
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if cwd == target or cwd.startswith(target + os.sep):
            pids.append(int(entry.name))
    return sorted(pids)


def check_stale_build_locks(values: dict[str, Any], explicit: set[str]) -> None:
    """Under DeepSpeed (any launcher), refuse to start on a JIT op build lock that nobody will ever release.

    A lock is stale when no process of this host builds in its directory and it is older than a
    minute; slurm/train.sbatch gives each job its own TORCH_EXTENSIONS_DIR, so a build killed with
    another job never blocks this one.
    """
    if not (deepspeed_launch() or values.get("deepspeed")):
        return
    root = extensions_dir()
    locks = [*root.glob(f"*/{_BUILD_LOCK}"), *root.glob(f"*/*/{_BUILD_LOCK}")]
    stale = []
    for lock in locks:
        builders = build_processes(lock.parent)
        if builders or time.time() - lock.stat().st_mtime < _NEW_LOCK_S:
            logger.warning("a torch extension is being built in %s (pids %s); waiting for it", lock.parent,
                           ", ".join(map(str, builders)) or "starting")
        else:
            stale.append(lock)
    if stale:
        paths = " ".join(str(lock) for lock in stale)
        raise ConfigError(
            f"stale torch extension build lock(s) {paths}, left by a build that was killed (no process on this "
            f"host builds there), would make this DeepSpeed launch wait forever; delete them (rm {paths}) and "
            "launch again"
        )


def warn_negative_correctness(values: dict[str, Any], explicit: set[str]) -> None:
    """A negative weight on correctness trains the model to answer wrong: say so, unless the YAML says it is meant."""
    for spec in values.get("rewards") or []:
        if isinstance(spec, dict) and spec.get("name") == "correctness" and spec.get("weight", 1.0) < 0:
            if not spec.get("negative_weight_ok"):
                logger.warning(
                    "correctness has weight %g: GRPO will train the model to answer WRONG; if that is meant (a "
                    "control run), add negative_weight_ok: true to that reward, else make the weight positive",
                    spec["weight"],
                )


def check_no_reward_weights(values: dict[str, Any], explicit: set[str]) -> None:
    """Weights live beside each reward in `rewards:`; TRL's own list would silently be replaced."""
    if values.get("reward_weights") is not None:  # a saved config's `reward_weights: null` is fine
        raise ConfigError(
            "reward_weights is set, but rl-math takes each reward's weight from the rewards list; "
            "write e.g. rewards: [{name: correctness, weight: 1.0}, {name: boxed_format, weight: 0.2}] "
            "and remove reward_weights"
        )


def warn_pure_bf16_training(values: dict[str, Any], explicit: set[str]) -> None:
    """bf16 weights trained without DeepSpeed have no fp32 master copy: small updates round away.

    At lr 1e-6 most AdamW updates are below bf16's resolution (measured: 10 steps changed 1.9 % of
    a bf16 weight matrix vs 99.99 % in fp32). DeepSpeed keeps fp32 masters, so ZeRO runs are fine.
    """
    if values.get("dtype") == "bfloat16" and not deepspeed_launch() and not values.get("use_peft"):
        logger.warning(
            "dtype bfloat16 without DeepSpeed trains the bf16 weights directly (no fp32 master copy), "
            "so updates smaller than bf16's resolution are lost; use dtype: float32 with bf16: true "
            "(mixed precision), a ZeRO config (configs/accelerate/zero2.yaml), or use_peft: true"
        )


# --------------------------------------------------------------------------------------------
# Values, paths, trackers: every input mistake is one sentence before any model loads

def check_grpo_sampling(values: dict[str, Any], explicit: set[str]) -> None:
    """GRPO's sampling settings as the sampler checks them (temperature's range: rl_math.field_checks)."""

    try:
        check_sampling({"top_p": values["top_p"]})
    except ValueError as err:
        raise ConfigError(str(err)) from None


def check_model_path(values: dict[str, Any], explicit: set[str]) -> None:
    """A wrong model path is named before the hub is tried (which offline means a minute of retries)."""
    if "model_name_or_path" not in values:
        return
    names = values["model_name_or_path"]
    if not names:
        raise ConfigError("no model given: set model_name_or_path in the config or pass --model_name_or_path PATH_OR_HUB_ID")
    for name in names if isinstance(names, list) else [names]:
        if (problem := model_source_problem(name, values.get("model_revision"))) is not None:
            raise ConfigError(problem)


def check_output_dir_writable(values: dict[str, Any], explicit: set[str]) -> None:
    """output_dir must be (or become) a folder this process can write, known before hours of training."""
    import tempfile

    if not values.get("output_dir"):
        return
    output_dir = str(values["output_dir"])
    existing = Path(output_dir).expanduser().absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "is a file" if existing == Path(output_dir).expanduser().absolute() else f"is inside the file {existing}"
        raise ConfigError(f"output_dir {output_dir!r} {where}; choose a folder path for the run's outputs")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise ConfigError(
            f"output_dir {output_dir!r} cannot be written (creating a file in {existing} failed: {err.strerror}); "
            "choose a folder you can write to"
        ) from None


def check_resume_path(values: dict[str, Any], explicit: set[str]) -> None:
    """A resume_from_checkpoint path must exist (true/false and friends are resolved by the recipe)."""

    value = values.get("resume_from_checkpoint")
    if value is None or str(value).lower() in RESUME_FRESH_WORDS + RESUME_LAST_WORDS:
        return
    if not os.path.isdir(value):
        raise ConfigError(
            f"resume_from_checkpoint {value!r} is not a checkpoint folder{similar_paths(Path(value))}; give an "
            "existing checkpoint-N folder, or true to resume from the last checkpoint in output_dir"
        )


def _wandb_logged_in() -> bool:
    """W&B can log: a key in the environment or in netrc (`wandb login`), or a mode that needs none."""
    import netrc
    from urllib.parse import urlparse

    if os.environ.get("WANDB_MODE", "").lower() in ("offline", "disabled", "dryrun"):
        return True
    if os.environ.get("WANDB_DISABLED", "").lower() in ("1", "true", "yes") or os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


DEFAULT_WANDB_PROJECT = "rl-math"


def check_trackers(values: dict[str, Any], explicit: set[str]) -> None:
    """report_to and push_to_hub fail only after the model loaded (or at the end of the run): check them now."""
    report_to = values.get("report_to")
    trackers = [report_to] if isinstance(report_to, str) else list(report_to or [])
    if "tensorboard" in trackers and not any(importlib.util.find_spec(m) for m in ("tensorboard", "tensorboardX")):
        raise ConfigError(
            "report_to has tensorboard but the tensorboard package is not installed; "
            "`pip install tensorboard`, or remove tensorboard from report_to"
        )
    if "wandb" in trackers:
        os.environ.setdefault("WANDB_PROJECT", DEFAULT_WANDB_PROJECT)  # not the integration's "huggingface"
        if importlib.util.find_spec("wandb") is None:
            raise ConfigError("report_to has wandb but wandb is not installed; `pip install wandb`, or remove it from report_to")
        if not _wandb_logged_in():
            raise ConfigError(
                "report_to has wandb but no W&B key was found; run `wandb login` (or export WANDB_API_KEY), "
                "or export WANDB_MODE=offline to log locally and `wandb sync` later"
            )
    if values.get("push_to_hub"):
        if hub_offline():
            raise ConfigError(
                "push_to_hub is true but HF_HUB_OFFLINE=1 keeps the hub unreachable; unset HF_HUB_OFFLINE, "
                "or set push_to_hub: false"
            )
        from huggingface_hub import get_token

        if not (values.get("hub_token") or get_token()):
            raise ConfigError(
                "push_to_hub is true but no Hugging Face token was found; run `hf auth login` (or export HF_TOKEN), "
                "or set push_to_hub: false"
            )


# --------------------------------------------------------------------------------------------
# Launches and models that fail only deep inside a library: one sentence first


def _cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def check_launch(values: dict[str, Any], explicit: set[str]) -> None:
    """`--deepspeed` under plain `python`, or more CPU processes than cores, refused before anything starts.

    Without a launcher DeepSpeed looks for MPI (an mpi4py ModuleNotFoundError on every machine
    without it); an accelerate config written for 8 GPUs starts 8 ranks on a 2-core CPU machine.
    """
    if values.get("deepspeed") and "LOCAL_RANK" not in os.environ and not deepspeed_launch():
        raise ConfigError(
            f"--deepspeed needs a launcher, but this is plain python (DeepSpeed would look for MPI); run "
            f"`accelerate launch --config_file configs/accelerate/zero2.yaml recipes/<method>.py ...` (or torchrun), "
            f"or drop deepspeed: {values['deepspeed']}"
        )
    world_size, cores = world_size_from_env(), _cpu_cores()
    if world_size > cores and not cuda_available():
        raise ConfigError(
            f"{world_size} processes were launched on a machine with no GPU and {cores} CPU core(s) (an accelerate "
            f"config's num_processes?); pass --num_processes {cores} (or fewer) to accelerate launch"
        )


def _module_names(model_path: str, trust_remote_code: bool) -> set[str] | None:
    """Every module name of the model, built on the meta device from its config (no weights read); None if unknown."""
    try:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        config = AutoConfig.from_pretrained(model_path, trust_remote_code=trust_remote_code)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
        return {name for name, _ in model.named_modules() if name}
    except Exception:  # noqa: BLE001 - an unreadable or remote config: PEFT reports it as before
        return None


def check_lora_targets(values: dict[str, Any], explicit: set[str]) -> None:
    """A LoRA target module the model does not have, named before the model loads (PEFT finds it after)."""
    targets = values.get("lora_target_modules")
    if not values.get("use_peft") or not targets or targets == "all-linear" or not values.get("model_name_or_path"):
        return
    targets = [targets] if isinstance(targets, str) else list(targets)
    names = _module_names(resolve_model(values["model_name_or_path"]), bool(values.get("trust_remote_code")))
    if names is None:
        return
    leaves = sorted({name.rsplit(".", 1)[-1] for name in names})
    for target in targets:
        if target == "all-linear" or any(name == target or name.endswith("." + target) for name in names):
            continue
        hint = nearest_key(target, leaves)
        raise ConfigError(
            f"lora_target_modules {target!r} names no module of {values['model_name_or_path']}"
            + (f"; did you mean {hint!r}?" if hint else "")
            + f" (its layers have {', '.join(n for n in leaves if n.endswith('proj')) or ', '.join(leaves[:8])})"
        )


# The checks every recipe runs on its inputs (each looks only at the fields the recipe has).
INPUT_CHECKS = (
    check_versions, check_model_path, check_output_dir_writable, check_resume_path, check_trackers, check_launch,
    check_lora_targets,
)

# The checks of every online RL method (GRPO, RLOO), after its batch checks.
ONLINE_RL_CHECKS = (
    check_checkpoints_at_generation_boundaries,
    check_vllm,
    check_no_reward_weights,
    check_some_reward_weight,  # all weights 0: no completion is better than another
    check_grpo_data_fills_a_step,  # max_train_samples below one generation's prompts: 0 steps
    warn_negative_correctness,
    warn_pure_bf16_training,
    check_grpo_sampling,
)


def training_output_checks(recipe: str) -> tuple:
    """A training method's last checks, in their one safe order: refuse another recipe's or another run's
    output_dir; clear it (with overwrite_output_dir it deletes the earlier run, so only after every other
    check passed); claim it for this run; then join the CPU process group."""
    return (ownership_check(recipe), check_output_dir, ownership_record(recipe), init_cpu_process_group)
