"""RLOO with TRL's RLOOTrainer: the reward registry, health alarms and in-run accuracy of GRPO.

    python recipes/rloo.py configs/smoke_rloo.yaml                   # CPU, offline
    accelerate launch recipes/rloo.py configs/qwen0.5b.yaml --...    # one GPU node (GRPO configs' fields apply)

Any field can be overridden after the config. Exit status: 0 finished (or checkpointed on a
preemption signal), 2 a config error, 3 a health alarm with action `stop` ended the run.
"""

from rl_math.methods.rloo import main
from rl_math.train.session import run_recipe

if __name__ == "__main__":
    run_recipe(main)
