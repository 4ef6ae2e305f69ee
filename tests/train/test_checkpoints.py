"""Checkpoint integrity: marked complete (every file checksummed, fsynced) before older ones are rotated away,
verified on resume, with a fall back to the newest intact checkpoint in one line.

A micro Qwen2 under the plain Trainer (tests/train/test_lifecycle.py's), in this process.
"""

from __future__ import annotations

import json

import pytest
from train.test_lifecycle import _trainer

from rl_math.errors import ConfigError
from rl_math.train.checkpoints import CHECKPOINT_COMPLETE_FILE, checkpoint_problem
from rl_math.train.lifecycle import last_checkpoint, resolve_resume, run_training


@pytest.fixture
def finished_run(tmp_path):
    """4 steps, a checkpoint every 2: checkpoint-2 and checkpoint-4, both complete."""
    run_training(_trainer(tmp_path, max_steps=4), None)
    return tmp_path


def test_a_same_size_corrupted_weight_file_is_not_resumed_from(finished_run, caplog):
    weights = finished_run / "checkpoint-4" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # one flipped byte, same size
    weights.write_bytes(bytes(data))
    assert last_checkpoint(str(finished_run)) == str(finished_run / "checkpoint-2")
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 1 and "model.safetensors does not match its checksum" in skipped[0]


def test_a_marker_with_no_files_and_a_missing_model_is_one_line_not_a_traceback(finished_run, caplog):
    checkpoint = finished_run / "checkpoint-4"
    (checkpoint / CHECKPOINT_COMPLETE_FILE).write_text(json.dumps({"file_sizes": {}}))
    (checkpoint / "model.safetensors").unlink()
    assert last_checkpoint(str(finished_run)) == str(finished_run / "checkpoint-2")
    assert "lists no files" in caplog.text

    class Args:
        resume_from_checkpoint = str(checkpoint)
        output_dir = str(finished_run)

    with pytest.raises(ConfigError, match=r"checkpoint-4 is damaged \(its .* lists no files"):
        resolve_resume(Args())


def test_older_checkpoints_are_rotated_only_after_the_new_one_is_marked_complete(tmp_path):
    trainer = _trainer(tmp_path, max_steps=4, save_steps=2)
    trainer.args.save_total_limit = 1
    write_checkpoint = trainer._save_checkpoint

    def killed_before_the_marker(model, trial):
        write_checkpoint(model, trial)
        if trainer.state.global_step == 4:
            raise KeyboardInterrupt  # the job is killed once the Trainer wrote checkpoint-4, before it is marked

    trainer._save_checkpoint = killed_before_the_marker
    with pytest.raises(KeyboardInterrupt):
        run_training(trainer, None)
    assert last_checkpoint(str(tmp_path)) == str(tmp_path / "checkpoint-2")  # not lost to rotation


def test_rotation_still_keeps_save_total_limit(tmp_path):
    trainer = _trainer(tmp_path, max_steps=6, save_steps=2)
    trainer.args.save_total_limit = 1
    run_training(trainer, None)
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-6"]
    assert checkpoint_problem(tmp_path / "checkpoint-6") is None
    marker = json.loads((tmp_path / "checkpoint-6" / CHECKPOINT_COMPLETE_FILE).read_text())
    assert all(len(entry["xxh3_64"]) == 16 for entry in marker["files"].values())


def test_every_file_and_the_marker_reach_the_disk_before_an_older_checkpoint_is_deleted(tmp_path, monkeypatch):
    import os
    import shutil

    from rl_math.train import checkpoints

    events = []
    fsync = os.fsync
    monkeypatch.setattr(checkpoints.os, "fsync", lambda fd: (events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))),
                                                             fsync(fd)))
    rmtree = shutil.rmtree
    monkeypatch.setattr(shutil, "rmtree", lambda path, *a, **k: (events.append(("delete", str(path))), rmtree(path, *a, **k)))
    trainer = _trainer(tmp_path, max_steps=4, save_steps=2)
    trainer.args.save_total_limit = 1
    run_training(trainer, None)
    deleted = events.index(("delete", str(tmp_path / "checkpoint-2")))
    synced = {path for kind, path in events[:deleted] if kind == "fsync"}
    new = tmp_path / "checkpoint-4"
    files = {str(f) for f in new.rglob("*") if f.is_file() and f.name != CHECKPOINT_COMPLETE_FILE}
    assert files and files <= synced  # every weight, optimizer and state file
    assert {str(new / f".{CHECKPOINT_COMPLETE_FILE}.tmp"), str(new)} <= synced  # the marker, then its rename


def test_a_diverged_model_is_one_sentence_naming_the_learning_rate_not_a_sampling_traceback(tmp_path):
    from rl_math.errors import RunError

    trainer = _trainer(tmp_path, max_steps=4)
    trainer.args.learning_rate = 0.05

    def diverged(**kwargs):
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")

    trainer.train = diverged
    with pytest.raises(RunError, match=r"sampling failed at step 0: .* training diverged \(learning_rate 0.05\); lower"):
        run_training(trainer, None)
