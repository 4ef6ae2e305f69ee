"""How a completion is scored.

    registry.py   names and import paths → reward callables; custom rewards checked and bounded
    builtin.py    the built-in rewards (correctness, each format's shape, repetition, termination,
                  the coin-flip null) and gating on correctness
    mix.py        the YAML reward list: checked at parse time, then TRL's reward_funcs and weights
    isolation.py  the worker process a custom reward runs in, with a time limit per call

The public names are re-exported here, as the README documents them:

>>> from rl_math.rewards import get_reward
>>> get_reward("correctness")(["so \\\\boxed{72}"], answer=["72"])
[1.0]
"""

from rl_math.grading.grader import completion_text
from rl_math.rewards.builtin import (
    boxed_format,
    coin_flip,
    correctness,
    gate_on_correct,
    repetition_penalty,
    termination,
    think_format,
)
from rl_math.rewards.mix import build_rewards, reward_mix, validate_reward_specs
from rl_math.rewards.registry import (
    REWARDS,
    available_rewards,
    check_reward_columns,
    get_reward,
    required_columns,
    reward_call,
    reward_name,
)

__all__ = [
    "REWARDS",
    "available_rewards",
    "boxed_format",
    "build_rewards",
    "check_reward_columns",
    "coin_flip",
    "completion_text",
    "correctness",
    "gate_on_correct",
    "get_reward",
    "repetition_penalty",
    "required_columns",
    "reward_call",
    "reward_mix",
    "reward_name",
    "termination",
    "think_format",
    "validate_reward_specs",
]
