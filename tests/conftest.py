"""Shared fixtures: the offline tiny model, and the real data in ../shared when present."""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
GSM8K_DIR = SHARED / "data" / "gsm8k"

# Everything offline: tests never reach the hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_MODE", "disabled")


@pytest.fixture(scope="session")
def gsm8k_dir() -> Path:
    if not (GSM8K_DIR / "test.jsonl").is_file():
        pytest.skip(f"real GSM8K not found at {GSM8K_DIR} (the ../shared folder beside the repo)")
    return GSM8K_DIR


@pytest.fixture(scope="session")
def tiny_model_path() -> str:
    from rl_math.models.tiny_qwen2 import ensure_tiny_model

    return str(ensure_tiny_model())


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_path)

# tests/recipe_runs.py is imported by the end-to-end tests as a plain module
import sys  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))


# The learning benchmark's quick SFT model (benchmarks/learning.py, configs/learning/sft.yaml): trained
# once per session from `rl-math:tiny-qwen2?seed=LEARNING_CI_SEED` and shared by every quick run that
# starts from it (the learning benchmark's CI test; RLOO's and asynchronous generation's quick runs).
LEARNING_CI_SEED = 6  # a tuning seed of benchmarks/learning_protocol_v2.json


@pytest.fixture(scope="session")
def learning_sft_model(tmp_path_factory) -> Path:
    """The SFT stage of the learning benchmark for the CI seed: a model stopped at a middle validation level."""
    from recipe_runs import run_recipe

    out = tmp_path_factory.mktemp("learning-sft") / "sft"
    result = run_recipe(
        "sft", str(REPO_ROOT / "configs" / "learning" / "sft.yaml"),
        "--model_name_or_path", f"rl-math:tiny-qwen2?seed={LEARNING_CI_SEED}", "--seed", str(LEARNING_CI_SEED),
        "--output_dir", str(out), timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out
