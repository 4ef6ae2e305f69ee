"""The README stays true: its commands match CI, and every field rl-math adds is documented."""

import dataclasses
import re
from pathlib import Path

import pytest

from rl_math.methods import available_methods, recipe_dataclasses

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


# every dataclass a recipe parses that rl-math defines (TRL's own fields are TRL's to document)
RL_MATH_DATACLASSES = sorted(
    {cls for method in available_methods() for cls in recipe_dataclasses(method)
     if cls.__module__.startswith("rl_math")},
    key=lambda cls: cls.__name__,
)


@pytest.mark.parametrize("dataclass", RL_MATH_DATACLASSES, ids=lambda cls: cls.__name__)
def test_every_rl_math_field_is_in_the_readme(dataclass):
    missing = [f.name for f in dataclasses.fields(dataclass) if f"`{f.name}`" not in README]
    assert not missing, f"README does not document {missing}"


def test_ci_runs_the_readme_test_command():
    command = re.search(r"```bash\n(python -m pytest[^\n]*)\n```", README).group(1)
    assert command in (ROOT / ".ci" / "run").read_text()


def test_readme_install_pins_the_cpu_torch():
    assert "pip install torch==2.13.0 && pip install -e \".[dev]\" && python recipes/grpo.py configs/smoke.yaml" in README


@pytest.mark.parametrize("path", sorted(set(re.findall(r"(?:configs|recipes|slurm|docs)/[\w./-]+\.(?:yaml|py|sbatch|md)", README))))
def test_every_file_the_readme_names_exists(path):
    assert (ROOT / path).is_file(), path


def _smoke_chain(text: str) -> str:
    return re.search(r"```bash\n(python recipes/sft.py configs/sft_smoke.yaml.*?)```", text, re.S).group(1)


def test_readme_and_pipeline_doc_give_the_same_smoke_chain():
    assert _smoke_chain(README) == _smoke_chain((ROOT / "docs" / "pipeline.md").read_text())
