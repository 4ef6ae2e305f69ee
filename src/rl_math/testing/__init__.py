"""Test-only names, and the one function that resolves them.

`rl-math:tiny-qwen2[?options]` names the offline tiny Qwen2 model (:mod:`rl_math.testing.tiny_model`)
and works wherever a hub id or a model folder does. Production code never compares model names
with it: the loaders pass every name through :func:`resolve_model`, and the checks ask
:func:`is_test_model`. (The offline *datasets*, `rl-math:synthetic` and `rl-math:arithmetic`, are
tasks: see :mod:`rl_math.tasks.loading`.)
"""

from rl_math.testing.tiny_model import ensure_tiny_model, tiny_model_options


def is_test_model(name_or_path: str) -> bool:
    """Whether `name_or_path` names a test-only model; a ConfigError for bad options of one.

    >>> is_test_model("rl-math:tiny-qwen2?hidden_size=128&seed=3"), is_test_model("Qwen/Qwen2.5-0.5B")
    (True, False)
    """
    return tiny_model_options(name_or_path) is not None


def resolve_model(name_or_path: str) -> str:
    """The folder or hub id to load: a test-only model's built-on-first-use folder, any other name as is.

    >>> resolve_model("Qwen/Qwen2.5-0.5B-Instruct")
    'Qwen/Qwen2.5-0.5B-Instruct'
    """
    options = tiny_model_options(name_or_path)
    return name_or_path if options is None else str(ensure_tiny_model(options))
