"""Checks of a whole run before any model loads: can it train at all, and is output_dir its own.

Each is a `parse_config(checks=...)` check `(values, explicit) -> None` raising ConfigError in one
sentence, or (`check_dataset_fills_a_step`) a call the recipe makes once the data is loaded.

**Ownership of an output_dir.** A recipe writes `rl_math_run.json` into its output_dir when it
starts: the recipe and the settings that decide *what is trained* (`IDENTITY_FIELDS`). A later
run (a resume with `--resume_from_checkpoint`, a requeue, or a new start) into that folder, or
resuming a checkpoint from it, is refused when it is another recipe's or trains something else;
`--overwrite_output_dir true` replaces it. Settings a resume may change (`max_steps`, logging,
the output paths) are not part of the identity; the optimizer settings a resume cannot change
are restored from the checkpoint (`rl_math.train.lifecycle.keep_checkpoint_settings`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from rl_math.errors import ConfigError
from rl_math.eval.evaluate import METRICS_FILE
from rl_math.rewards import reward_mix
from rl_math.runtime import generation_batch, world_size_from_env
from rl_math.train.lifecycle import RESOLVED_CONFIG_FILE, RESUME_FRESH_WORDS, RESUME_LAST_WORDS

logger = logging.getLogger(__name__)

OWNER_FILE = "rl_math_run.json"
# What is trained: a run whose saved values differ in any of these is another run.
IDENTITY_FIELDS = (
    "model_name_or_path", "model_revision", "dataset_name", "dataset_config", "dataset_train_split", "task",
    "prompt_format", "system_prompt", "max_train_samples", "rewards", "use_peft", "lora_r", "lora_alpha",
    "lora_target_modules", "loss_type",
)


# --------------------------------------------------------------------------------------------
# What cannot train


def check_some_reward_weight(values: dict[str, Any], explicit: set[str]) -> None:
    """All reward weights 0 gives every completion the same reward: GRPO or RLOO would learn nothing."""
    specs = values.get("rewards")
    if not specs:
        return  # null: the prompt format's default mix
    weights = [spec.get("weight", 1.0) if isinstance(spec, dict) else 1.0 for spec in specs]
    if all(weight == 0 for weight in weights):
        raise ConfigError(
            "every reward has weight 0, so every completion gets the same reward and the run learns nothing; "
            "give at least one reward (e.g. correctness) a non-zero weight"
        )


def prompts_per_generation(values: dict[str, Any], world_size: int) -> int:
    """Distinct prompts GRPO (or RLOO) takes for one generation (all of one optimizer step's, at least).

    >>> prompts_per_generation({"per_device_train_batch_size": 8, "gradient_accumulation_steps": 1,
    ...                         "num_generations": 4}, world_size=1)
    2
    """
    batch = generation_batch(values["per_device_train_batch_size"], values["gradient_accumulation_steps"],
                             values.get("generation_batch_size"), values.get("steps_per_generation"), world_size)
    return max(1, batch // values["num_generations"])


def _too_little_data(rows: int, needed: int, what: str) -> str:
    return (
        f"{what} holds {rows} prompt(s) but one step needs {needed} (the generation batch / num_generations), "
        "so it would train 0 steps and save the untrained model; use more data (max_train_samples of at least "
        f"{needed}, or null) or a smaller per_device_train_batch_size"
    )


def check_grpo_data_fills_a_step(values: dict[str, Any], explicit: set[str]) -> None:
    """A max_train_samples below one generation's prompts trains 0 steps (TRL's sampler drops the rest)."""
    limit = values.get("max_train_samples")
    if limit is None:
        return
    needed = prompts_per_generation(values, world_size_from_env())
    if limit < needed:
        raise ConfigError(_too_little_data(limit, needed, f"max_train_samples {limit}"))


def check_dataset_fills_a_step(rows: int, training_args) -> None:
    """Once the data is loaded (prompts over max_prompt_tokens dropped), before the model loads."""
    values = {name: getattr(training_args, name) for name in (
        "per_device_train_batch_size", "gradient_accumulation_steps", "generation_batch_size",
        "steps_per_generation", "num_generations")}
    values["generation_batch_size"] = None if values["steps_per_generation"] else values["generation_batch_size"]
    needed = prompts_per_generation(values, training_args.world_size)
    if rows < needed:
        raise ConfigError(_too_little_data(rows, needed, "the training set"))


# --------------------------------------------------------------------------------------------
# Ownership of an output_dir


def _identity(values: dict[str, Any]) -> dict[str, Any]:
    """The identity fields of a run, its rewards as the mix that runs (a null mix is the format's default)."""
    identity = {name: values.get(name) for name in IDENTITY_FIELDS if name in values}
    if "rewards" in identity and values.get("prompt_format"):
        try:
            identity["rewards"] = reward_mix(identity["rewards"], values["prompt_format"])
        except ValueError:
            pass  # a bad mix is refused by RecipeArguments, with its own sentence
    return identity


def recorded_owner(folder: str | os.PathLike) -> tuple[str | None, dict[str, Any]]:
    """(recipe, identity) of the run in `folder`; (None, {}) when it holds no rl-math run.

    Runs from before `rl_math_run.json` are recognised by their saved config.
    """
    root = Path(folder)
    if (root / OWNER_FILE).is_file():
        try:
            data = json.loads((root / OWNER_FILE).read_text())
            return data.get("recipe"), data.get("identity") or {}
        except ValueError:
            return None, {}
    if (root / RESOLVED_CONFIG_FILE).is_file():
        saved = yaml.safe_load((root / RESOLVED_CONFIG_FILE).read_text()) or {}
        recipe = ("rloo" if "reward_clip_range" in saved else "grpo" if "num_generations" in saved
                  else "expert_iteration" if "ei_rounds" in saved else "sft")
        return recipe, _identity(saved)
    if (root / METRICS_FILE).is_file():
        return "evaluate", {}
    return None, {}


def _differences(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """`name: saved → now` for every identity field both know and that differs.

    >>> _differences({"dataset_name": "a", "model_name_or_path": "m"}, {"dataset_name": "b", "model_name_or_path": "m"})
    ["dataset_name: 'a' → 'b'"]
    """
    return [f"{name}: {saved[name]!r} → {now[name]!r}" for name in IDENTITY_FIELDS
            if name in saved and name in now and _plain(saved[name]) != _plain(now[name])]


def _plain(value: Any) -> Any:
    """Compare a saved (YAML) value with a parsed one: lists as lists, numbers as numbers."""
    return json.loads(json.dumps(value, default=str))


def _refuse_foreign(folder: str, recipe: str, values: dict[str, Any], how: str) -> None:
    owner, saved = recorded_owner(folder)
    if owner is None:
        return
    if owner != recipe:
        raise ConfigError(
            f"{folder} holds a {owner} run, and this {recipe} run would {how} it; give another --output_dir, or "
            "--overwrite_output_dir true to replace that run"
        )
    if differences := _differences(saved, _identity(values)):
        raise ConfigError(
            f"{folder} holds a {owner} run that trains something else ({'; '.join(differences)}), and this run "
            f"would {how} it; give another --output_dir, or --overwrite_output_dir true to replace that run"
        )


def ownership_check(recipe: str) -> Callable[[dict[str, Any], set[str]], None]:
    """The check for `recipe` (grpo, sft, expert_iteration, evaluate); put it before `check_output_dir`."""

    def check_output_dir_owner(values: dict[str, Any], explicit: set[str]) -> None:
        output_dir = values.get("output_dir")
        if not output_dir or values.get("overwrite_output_dir"):
            return
        resume = values.get("resume_from_checkpoint")
        if resume is not None and str(resume).lower() not in RESUME_FRESH_WORDS + RESUME_LAST_WORDS:
            _refuse_foreign(str(Path(resume).parent), recipe, values, "resume from")  # a checkpoint-N path
        if recipe == "evaluate" and (Path(output_dir) / METRICS_FILE).is_file():
            raise ConfigError(
                f"output_dir {output_dir} already holds an evaluation ({METRICS_FILE}); give another --output_dir, "
                "or --overwrite_output_dir true to replace it"
            )
        _refuse_foreign(output_dir, recipe, values, "resume or overwrite")

    return check_output_dir_owner


def ownership_record(recipe: str) -> Callable[[dict[str, Any], set[str]], None]:
    """The check that claims output_dir for this run (the last check: after `check_output_dir` cleared it)."""

    def record_output_dir_owner(values: dict[str, Any], explicit: set[str]) -> None:
        if not values.get("output_dir") or os.environ.get("RANK", "0") != "0":
            return
        root = Path(values["output_dir"])
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".{OWNER_FILE}.tmp"
        tmp.write_text(json.dumps({"recipe": recipe, "identity": _plain(_identity(values))}, indent=1))
        os.replace(tmp, root / OWNER_FILE)

    return record_output_dir_owner
