"""The training run: what happens between a parsed config and a saved model.

    lifecycle.py         logging, tokenizer, resume and checkpoints, the run itself, saving (every recipe)
    generation.py        sampling completions with HF or vLLM (expert iteration, evaluation)
    export.py            saving a trained model so that generation and the next stage can load it
    sft_data.py          GSM8K rows → SFT prompt/completion pairs
    expert_iteration.py  sample, filter, fine-tune, repeat
    health.py            the GRPO health monitor (alarms, stopping a failing run)
    group_signal.py      how many GRPO groups carry a learning signal
    preemption.py        stopping cleanly on SIGTERM/SIGUSR1 and resuming
"""
