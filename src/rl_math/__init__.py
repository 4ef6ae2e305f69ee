"""rl-math: YAML-driven SFT, expert iteration and GRPO recipes for Qwen2.5 on GSM8K."""

__version__ = "0.1.0"
