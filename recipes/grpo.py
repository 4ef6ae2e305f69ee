"""GRPO on GSM8K with TRL's GRPOTrainer.

    python recipes/grpo.py configs/smoke.yaml                       # CPU, offline
    accelerate launch recipes/grpo.py configs/qwen0.5b.yaml          # one GPU node
    accelerate launch --config_file configs/accelerate/zero3.yaml recipes/grpo.py configs/qwen7b.yaml

Any field can be overridden after the config: `--learning_rate 1e-6 --max_steps 50`.
Exit status: 0 finished (or checkpointed on a preemption signal), 2 a config error, 3 a health
alarm with action `stop` ended the run (`stop_reason` in final_metrics.json).
"""

from rl_math.methods.grpo import main
from rl_math.train.session import run_recipe

if __name__ == "__main__":
    run_recipe(main)
