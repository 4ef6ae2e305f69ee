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
