"""DeepSpeed ZeRO-2/3 through the shipped accelerate configs, 2 CPU processes on gloo.

The shipped `configs/accelerate/*.yaml` and `ds_configs/*.json` are used as users use them (no
test-only copies). `ACCELERATE_USE_CPU` is unset by the helpers: it would silently replace
DeepSpeed by plain DDP, so every test also asserts the model really is a DeepSpeedEngine.
The first run JIT-builds DeepSpeed's CPU comm op (~30 s, cached in ~/.cache/torch_extensions).
"""

import json

import pytest
import torch
from recipe_runs import REPO_ROOT, accelerate_launch, offline_env, run_probe
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

pytestmark = pytest.mark.slow
SMOKE = str(REPO_ROOT / "configs" / "smoke.yaml")


def _run_under(stage: str, recipe: str, config: str, tmp_path, port: int, *overrides: str):
    probe, out = tmp_path / "probe", tmp_path / "out"
    result = run_probe(
        recipe, config, "--output_dir", str(out), "--max_steps", "2", "--save_strategy", "no", *overrides,
        launcher=accelerate_launch(2, port=port, config_file=f"configs/accelerate/{stage}.yaml"),
        env=offline_env(PROBE_DIR=str(probe)),
    )
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    ranks = [json.loads((probe / f"rank{r}.json").read_text()) for r in (0, 1)]
    return out, ranks


def _assert_trained_with_deepspeed(ranks, out, tiny_model_path):
    assert [r["wrapped_model"] for r in ranks] == ["DeepSpeedEngine", "DeepSpeedEngine"]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[0]["checksum"] == ranks[1]["checksum"]
    initial = load_file(f"{tiny_model_path}/model.safetensors")
    saved = load_file(str(out / "model.safetensors"))
    # complete: every tensor, none left as a ZeRO-3 shard stub (ZeRO-2 also writes the tied lm_head)
    assert set(initial) <= set(saved)
    assert all(saved[k].shape == initial[k].shape for k in initial)
    assert max(float((saved[k] - initial[k]).abs().max()) for k in initial) > 0  # the weights changed
    model = AutoModelForCausalLM.from_pretrained(out)  # and the saved folder loads as a model
    assert torch.isfinite(next(model.parameters())).all()


@pytest.mark.parametrize("stage, port", [("zero2", 29631), ("zero3", 29632)])
def test_grpo_trains_under_deepspeed(stage, port, tmp_path, tiny_model_path):
    out, ranks = _run_under(stage, "grpo", SMOKE, tmp_path, port, "--per_device_train_batch_size", "4")
    _assert_trained_with_deepspeed(ranks, out, tiny_model_path)


@pytest.mark.parametrize("stage, port", [("zero2", 29633), ("zero3", 29634)])
def test_sft_trains_under_deepspeed(stage, port, tmp_path, tiny_model_path):
    sft_smoke = str(REPO_ROOT / "configs" / "sft_smoke.yaml")
    out, ranks = _run_under(stage, "sft", sft_smoke, tmp_path, port, "--per_device_train_batch_size", "2")
    _assert_trained_with_deepspeed(ranks, out, tiny_model_path)
