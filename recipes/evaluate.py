"""Evaluate one or more models on GSM8K test (or any split), side by side.

    python recipes/evaluate.py configs/eval_smoke.yaml                                # CPU, offline
    python recipes/evaluate.py configs/eval.yaml --model_name_or_path Qwen/Qwen2.5-0.5B-Instruct outputs/sft-0.5b
    python recipes/evaluate.py configs/eval_sampled.yaml --model_name_or_path outputs/a   # k=8 at T=1

Writes OUTPUT_DIR/metrics.json (every model and the comparison table), completions.jsonl (every
completion with its verdicts) and evaluation.png (answer buckets and completion lengths), and
prints the table. Metrics and bucket definitions: `rl_math.eval.evaluate`.
"""

from rl_math.methods.evaluate import main
from rl_math.train.session import run_recipe

if __name__ == "__main__":
    run_recipe(main)
