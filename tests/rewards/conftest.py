"""The rewards' shared fixtures: fresh one-time warnings, an importable module of custom rewards."""

import sys
import textwrap

import pytest

from rl_math.grading import batch


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    """Each test sees the one-time warnings as if the process had just started."""
    monkeypatch.setattr(batch, "_warned", set())


@pytest.fixture
def custom_module(tmp_path, monkeypatch):
    """An importable module `my_rewards_pkg.my_rewards` with custom rewards."""
    package = tmp_path / "my_rewards_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "my_rewards.py").write_text(
        textwrap.dedent(
            """
            def length_bonus(completions, *, target=10, **kwargs):
                return [1.0 if len(str(c)) <= target else 0.0 for c in completions]

            def uses_difficulty(completions, difficulty, **kwargs):
                return [float(d) for d in difficulty]

            async def async_bonus(completions, *, value=1.0, **kwargs):
                return [value for _ in completions]

            NOT_CALLABLE = 3
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_rewards_pkg.my_rewards"
    for name in ("my_rewards_pkg.my_rewards", "my_rewards_pkg"):
        sys.modules.pop(name, None)

