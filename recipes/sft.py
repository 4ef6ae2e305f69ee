"""Supervised fine-tuning on GSM8K reasoning traces (or any prompt/completion file) with TRL's SFTTrainer.

    python recipes/sft.py configs/sft_smoke.yaml                                   # CPU, offline
    accelerate launch recipes/sft.py configs/sft_qwen0.5b.yaml                      # one GPU
    accelerate launch --config_file configs/accelerate/zero3.yaml recipes/sft.py configs/sft_qwen7b.yaml

The targets are written in the config's `prompt_format` exactly as the RL rewards want them (see
`rl_math.train.sft_data`); the loss covers the completion only and ends with the chat template's
end-of-turn token, so the model learns to stop. With `use_peft: true` the adapter is saved in
output_dir and a merged full model in output_dir/merged (what vLLM, EI and GRPO load).
"""

from rl_math.methods.sft import main
from rl_math.train.session import run_recipe

if __name__ == "__main__":
    run_recipe(main)
