"""How a completion is scored.

    grader.py     a completion's final answer, and whether it equals the gold answer
    functions.py  the reward functions, their registry, and the YAML reward list → TRL's arguments

The public names are re-exported here, as the README documents them:

>>> from rl_math.rewards import get_reward
>>> get_reward("correctness")(["so \\\\boxed{72}"], answer=["72"])
[1.0]
"""

# the public names are listed once, in functions.__all__
from rl_math.rewards.functions import *  # noqa: F403
from rl_math.rewards.functions import __all__  # noqa: F401
