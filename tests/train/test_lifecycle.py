"""What every recipe does around its trainer: checkpoints marked complete, resume, finished runs, full disks.

A micro Qwen2 under the plain Trainer, in this process: a few steps take well under a second.
"""

from __future__ import annotations

import errno

import pytest

from rl_math.train.lifecycle import (
    CHECKPOINT_COMPLETE_FILE,
    DiskFullError,
    keep_checkpoint_settings,
    last_checkpoint,
    resolve_resume,
    run_training,
)


def _trainer(output_dir, max_steps: int, save_steps: int = 2):
    import torch
    from datasets import Dataset
    from transformers import Qwen2Config, Qwen2ForCausalLM, Trainer, TrainingArguments

    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=32,
    )
    rows = [[(i + j) % 64 for i in range(8)] for j in range(64)]
    args = TrainingArguments(
        str(output_dir), per_device_train_batch_size=2, max_steps=max_steps, save_steps=save_steps,
        report_to=[], use_cpu=True, bf16=False, logging_steps=1, disable_tqdm=True, dataloader_pin_memory=False,
        learning_rate=1e-2,
    )
    dataset = Dataset.from_dict({"input_ids": rows, "labels": rows})
    return Trainer(model=Qwen2ForCausalLM(config), args=args, train_dataset=dataset)


def _weights(trainer):
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


@pytest.fixture
def finished_run(tmp_path):
    """4 steps, a checkpoint every 2: checkpoint-2 and checkpoint-4, both complete."""
    trainer = _trainer(tmp_path, max_steps=4)
    run_training(trainer, None)
    return tmp_path, _weights(trainer)


def test_every_checkpoint_is_marked_complete(finished_run):
    out, _ = finished_run
    assert (out / "checkpoint-2" / CHECKPOINT_COMPLETE_FILE).is_file()
    assert last_checkpoint(str(out)) == str(out / "checkpoint-4")


def test_resuming_a_checkpoint_at_max_steps_trains_no_further(finished_run):
    out, final_weights = finished_run
    trainer = _trainer(out, max_steps=4)
    run_training(trainer, str(out / "checkpoint-4"))
    assert trainer.state.global_step == 4
    assert all((final_weights[k] == v).all() for k, v in _weights(trainer).items())


def test_resume_skips_a_half_written_last_checkpoint(finished_run):
    out, _ = finished_run
    (out / "checkpoint-4" / CHECKPOINT_COMPLETE_FILE).unlink()  # killed before the save finished
    assert last_checkpoint(str(out)) == str(out / "checkpoint-2")


def test_a_truncated_file_makes_a_checkpoint_incomplete(finished_run, caplog):
    out, _ = finished_run
    weights = out / "checkpoint-4" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    assert last_checkpoint(str(out)) == str(out / "checkpoint-2")
    assert "checkpoint-4 is incomplete" in caplog.text and "model.safetensors is 100 bytes" in caplog.text


def test_resume_true_after_a_kill_during_the_last_save_ends_at_max_steps_with_the_same_weights(finished_run):
    out, final_weights = finished_run
    (out / "checkpoint-4" / "optimizer.pt").write_bytes(b"")
    trainer = _trainer(out, max_steps=4)
    trainer.args.resume_from_checkpoint = "true"
    run_training(trainer, resolve_resume(trainer.args))
    assert trainer.state.global_step == 4
    assert all(
        (final_weights[k] == v).all() for k, v in _weights(trainer).items()
    )  # the steps from checkpoint-2 replay exactly


def test_a_full_disk_says_so(tmp_path, monkeypatch):
    trainer = _trainer(tmp_path, max_steps=2)

    def write_fails(*args, **kwargs):
        raise RuntimeError("PytorchStreamWriter failed writing file") from OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(trainer, "train", write_fails)
    with pytest.raises(DiskFullError, match="is full .*--resume_from_checkpoint true"):
        run_training(trainer, None)


def test_a_resume_warns_about_a_changed_learning_rate_and_records_the_one_that_runs(finished_run, caplog):
    out, _ = finished_run
    trainer = _trainer(out, max_steps=6)
    trainer.args.learning_rate = 5e-4
    keep_checkpoint_settings(trainer.args, str(out / "checkpoint-4"))
    assert trainer.args.learning_rate == 1e-2
    assert "learning_rate 0.0005 was given but the checkpoint's 0.01 is what runs" in caplog.text


def test_mean_loss_of_a_resumed_run_covers_the_steps_before_the_resume(finished_run):
    from rl_math.train.lifecycle import logged_mean_loss

    out, _ = finished_run
    trainer = _trainer(out, max_steps=6)
    run_training(trainer, str(out / "checkpoint-4"))
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]  # logging_steps 1
    assert len(losses) == 6 and logged_mean_loss(trainer.state.log_history) == pytest.approx(sum(losses) / 6)


def test_checkpoints_from_before_completion_markers_still_resume(finished_run):
    out, _ = finished_run
    for marker in out.glob(f"checkpoint-*/{CHECKPOINT_COMPLETE_FILE}"):
        marker.unlink()
    (out / "checkpoint-4" / "trainer_state.json").write_text("{")  # cut short while saving
    assert last_checkpoint(str(out)) == str(out / "checkpoint-2")


def test_a_test_only_model_has_no_hub_origin():
    from rl_math.train.lifecycle import hub_origin

    assert hub_origin("Qwen/Qwen2.5-0.5B") == "Qwen/Qwen2.5-0.5B"
    assert hub_origin("rl-math:tiny-qwen2") is None
    assert hub_origin("rl-math:tiny-qwen2?hidden_size=32&seed=3") is None  # was named as a hub model
