"""Expert iteration on GSM8K: rounds of sample → keep what the rewards accept → SFT → evaluate.

    python recipes/expert_iteration.py configs/ei_smoke.yaml                  # CPU, offline, 1 round
    python recipes/expert_iteration.py configs/ei_qwen1.5b.yaml               # one GPU
    python recipes/expert_iteration.py configs/ei_qwen1.5b.yaml --ei_rounds 5 # continue a finished run

Each round lives in OUTPUT_DIR/round_N/ (samples.jsonl, accepted.jsonl, model/, metrics.json);
rerunning the same command resumes after the last finished round. Filter and resume semantics:
`rl_math.methods.expert_iteration`. One process: sampling and training take turns on the same GPU.
"""

from rl_math.methods.expert_iteration import main
from rl_math.train.session import run_recipe

if __name__ == "__main__":
    run_recipe(main)
