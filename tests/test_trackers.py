"""Trackers get rl-math's own config, and W&B runs land in a project named after it."""

import os
from types import SimpleNamespace

import pytest

from rl_math.preflight import DEFAULT_WANDB_PROJECT, check_trackers
from rl_math.train.lifecycle import log_config_to_trackers


def test_wandb_run_config_gets_the_resolved_rl_math_fields():
    from transformers.integrations import WandbCallback

    logged = {}
    wandb_callback = WandbCallback()
    wandb_callback._wandb = SimpleNamespace(
        run=object(), config=SimpleNamespace(update=lambda values, allow_val_change: logged.update(values))
    )
    added = []
    trainer = SimpleNamespace(callback_handler=SimpleNamespace(callbacks=[wandb_callback]), add_callback=added.append)
    resolved = {"rewards": [{"name": "correctness", "weight": 1.0}], "prompt_format": "boxed", "health_patience": 3}

    log_config_to_trackers(trainer, resolved)
    (callback,) = added
    callback.on_train_begin(None, SimpleNamespace(is_world_process_zero=True), None)
    assert logged == resolved


@pytest.mark.parametrize(("preset", "expected"), [(None, DEFAULT_WANDB_PROJECT), ("mine", "mine")])
def test_wandb_project_defaults_to_rl_math_unless_set(preset, expected, monkeypatch):
    monkeypatch.setattr(os, "environ", dict(os.environ))  # the check sets a variable: keep it in this test
    monkeypatch.setenv("WANDB_MODE", "offline")
    if preset is None:
        monkeypatch.delenv("WANDB_PROJECT", raising=False)
    else:
        monkeypatch.setenv("WANDB_PROJECT", preset)
    check_trackers({"report_to": ["wandb"]}, set())
    assert os.environ["WANDB_PROJECT"] == expected


def test_model_card_names_a_local_base_model_and_its_hub_origin(tmp_path):
    from rl_math.train.lifecycle import RESOLVED_CONFIG_FILE, name_base_model_in_card

    sft = tmp_path / "sft"
    sft.mkdir()
    (sft / RESOLVED_CONFIG_FILE).write_text("model_name_or_path: Qwen/Qwen2.5-0.5B-Instruct\n")
    grpo = tmp_path / "grpo"
    grpo.mkdir()
    (grpo / "README.md").write_text(
        "This model is a fine-tuned version of [None](https://huggingface.co/None).\n"
        'generator = pipeline("text-generation", model="None")\n'
    )
    name_base_model_in_card(grpo, str(sft))
    card = (grpo / "README.md").read_text()
    assert "None" not in card
    assert f"`{sft}` (trained from [Qwen/Qwen2.5-0.5B-Instruct](https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct))" in card
