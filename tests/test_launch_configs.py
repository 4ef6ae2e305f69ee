"""configs/accelerate/*.yaml and ds_configs/*.json are consistent with each other and with the
HF DeepSpeed integration (every value the Trainer fills must be "auto")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ACCEL = sorted((ROOT / "configs" / "accelerate").glob("*.yaml"))
DS = sorted((ROOT / "ds_configs").glob("*.json"))

# Filled by transformers.integrations.deepspeed.HfTrainerDeepSpeedConfig from TrainingArguments /
# the model: a literal value here would have to match the recipe YAML for every model and batch.
AUTO_TOP = ["train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "gradient_clipping"]
AUTO_ZERO = ["reduce_bucket_size"]
AUTO_ZERO3 = ["stage3_prefetch_bucket_size", "stage3_param_persistence_threshold"]


def _load_yaml(p: Path) -> dict:
    return yaml.safe_load(p.read_text())


def test_expected_files_exist():
    assert {p.name for p in ACCEL} >= {"ddp.yaml", "zero2.yaml", "zero3.yaml", "zero3_offload.yaml"}
    assert {p.name for p in DS} >= {"zero2.json", "zero3.json", "zero3_offload.json"}


@pytest.mark.parametrize("path", ACCEL, ids=lambda p: p.name)
def test_accelerate_config(path):
    cfg = _load_yaml(path)
    assert cfg["compute_environment"] == "LOCAL_MACHINE"
    assert cfg["num_machines"] == 1 and cfg["machine_rank"] == 0
    assert cfg["num_processes"] == 8  # multi-GPU default; `--num_processes N` overrides it
    assert cfg.get("use_cpu", False) is False
    assert cfg["distributed_type"] in {"MULTI_GPU", "DEEPSPEED"}
    if cfg["distributed_type"] == "DEEPSPEED":
        # accelerate raises "When using deepspeed_config_file, the following accelerate config
        # variables will be ignored: [... 'mixed_precision']" even for 'no'.
        assert "mixed_precision" not in cfg
        ds = cfg["deepspeed_config"]
        rel = ds["deepspeed_config_file"]
        assert not Path(rel).is_absolute(), "paths are relative to the repo root (launch from there)"
        assert (ROOT / rel).is_file(), f"{path.name} names a missing {rel}"
        stage = json.loads((ROOT / rel).read_text())["zero_optimization"]["stage"]
        assert ds["zero3_init_flag"] is (stage == 3)
        # multi-node via one `accelerate launch` per node (slurm/train.sbatch) needs torchrun, not pdsh
        assert ds["deepspeed_multinode_launcher"] == "standard"
        # only keys accelerate accepts next to a config file
        assert set(ds) <= {"deepspeed_config_file", "zero3_init_flag", "deepspeed_multinode_launcher"}
    else:
        assert cfg["mixed_precision"] in {"bf16", "no"}


def test_each_json_has_an_accelerate_config():
    named = {
        _load_yaml(p)["deepspeed_config"]["deepspeed_config_file"]
        for p in ACCEL
        if _load_yaml(p)["distributed_type"] == "DEEPSPEED"
    }
    assert named == {f"ds_configs/{p.name}" for p in DS}


@pytest.mark.parametrize("path", DS, ids=lambda p: p.name)
def test_deepspeed_json_auto_fields(path):
    cfg = json.loads(path.read_text())
    assert cfg["bf16"] == {"enabled": "auto"} and cfg["fp16"] == {"enabled": "auto"}
    for key in AUTO_TOP:
        assert cfg[key] == "auto", key
    zero = cfg["zero_optimization"]
    assert zero["stage"] in (2, 3)
    for key in AUTO_ZERO:
        assert zero[key] == "auto", key
    if zero["stage"] == 3:
        for key in AUTO_ZERO3:
            assert zero[key] == "auto", key
        assert zero["stage3_gather_16bit_weights_on_model_save"] is True
    else:
        assert not any(k.startswith("stage3_") for k in zero)
    # every other string value must be "auto" too (a typo like "atuo" would reach DeepSpeed)
    def strings(node, prefix=""):
        if isinstance(node, dict):
            for k, v in node.items():
                yield from strings(v, f"{prefix}{k}.")
        elif isinstance(node, str):
            yield prefix[:-1], node

    allowed = {"zero_optimization.offload_optimizer.device", "zero_optimization.offload_param.device", "optimizer.type"}
    for key, value in strings(cfg):
        assert value == "auto" or key in allowed, f"{key}={value!r}"


def test_offload_json():
    cfg = json.loads((ROOT / "ds_configs" / "zero3_offload.json").read_text())
    zero = cfg["zero_optimization"]
    assert zero["offload_optimizer"] == {"device": "cpu", "pin_memory": True}
    assert zero["offload_param"] == {"device": "cpu", "pin_memory": True}
    # ZeRO-Offload refuses a client (torch) optimizer: let DeepSpeed build DeepSpeedCPUAdam, with
    # the hyper-parameters filled from the recipe YAML.
    assert cfg["optimizer"]["type"] == "AdamW"
    assert set(cfg["optimizer"]["params"].values()) == {"auto"}
    assert "scheduler" not in cfg  # the recipe's lr_scheduler_type still applies
    for name in ("zero2.json", "zero3.json"):
        plain = json.loads((ROOT / "ds_configs" / name).read_text())
        assert "optimizer" not in plain and "offload_optimizer" not in plain["zero_optimization"]
