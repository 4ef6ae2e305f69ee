"""The baseline of the benchmarks: a bare GRPOTrainer script, as public GRPO recipes write one.

    python benchmarks/bare_grpo.py configs/smoke.yaml --max_steps 5 --output_dir /tmp/bare

It reads the same YAML as `recipes/grpo.py`, so model, data, rewards and settings are identical,
and does what a hand-written TRL script does with them: tokenizer, `datasets` map, reward
functions bound with `functools.partial`, `GRPOConfig(**yaml)`, `GRPOTrainer(...).train()`.
None of rl-math's plumbing: no config checks or preflight, no health or preemption callbacks,
no reward registry or validation, no resume logic, no saving. The reward functions themselves are
rl-math's (the same rewards on both sides is the point of the comparison), and so are the offline
tiny model and the synthetic problems (nothing else runs offline). Overrides are `--key value`
pairs, parsed as YAML values.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from pathlib import Path

import yaml
from datasets import Dataset, load_dataset
from transformers import AutoTokenizer, GenerationConfig
from trl import GRPOConfig, GRPOTrainer

try:
    import rl_math  # noqa: F401
except ImportError:  # a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from rl_math.models import resolve_model
from rl_math.rewards import REWARDS, gate_on_correct
from rl_math.tasks.arithmetic import synthetic_split
from rl_math.tasks.formats import PROMPT_FORMATS, default_reward_specs
from rl_math.tasks.gsm8k import TASK as GSM8K


def read_config(argv: list[str]) -> dict:
    config = yaml.safe_load(Path(argv[0]).read_text())
    config.pop("env", None)
    rest = argv[1:]
    for key, text in zip(rest[::2], rest[1::2]):
        value = yaml.safe_load(text)
        if isinstance(value, bool) and text.lower() not in ("true", "false"):
            value = text  # `--save_strategy no` is the string "no", not YAML 1.1's false
        config[key.lstrip("-")] = value
    return config


def build_dataset(config: dict) -> Dataset:
    name = config.get("dataset_name", "openai/gsm8k")
    if name == "rl-math:synthetic":
        dataset = Dataset.from_list(synthetic_split("train"))
    else:
        dataset = load_dataset(name, config.get("dataset_config", "main"), split="train")
    if config.get("max_train_samples"):
        dataset = dataset.shuffle(seed=config.get("seed", 42)).select(range(config["max_train_samples"]))
    system = config.get("system_prompt") or PROMPT_FORMATS[config.get("prompt_format", "boxed")].system_prompt
    return dataset.map(
        lambda row: {
            "prompt": [{"role": "system", "content": system}, {"role": "user", "content": row["question"]}],
            "answer": GSM8K.gold(row["answer"]),
            "solution": row["answer"],
        },
        remove_columns=dataset.column_names,
    )


def build_rewards(config: dict, eos_ids: list[int]) -> tuple[list, list[float]]:
    specs = config.get("rewards") or default_reward_specs(config.get("prompt_format", "boxed"))
    funcs, weights = [], []
    for spec in specs:
        spec = {"name": spec} if isinstance(spec, str) else dict(spec)
        name, weight, gate = spec.pop("name"), spec.pop("weight", 1.0), spec.pop("gate", None)
        if name == "termination":
            spec.setdefault("eos_token_ids", eos_ids)
            spec.setdefault("max_completion_length", config.get("max_completion_length", 512))
        func = REWARDS[name].func  # the bare function: no registry checks, as a hand-written script would
        func = functools.partial(func, **spec) if spec else func
        funcs.append(gate_on_correct(func) if gate == "correct" else func)
        weights.append(float(weight))
    return funcs, weights


def main(argv: list[str] | None = None, trainer_class=GRPOTrainer):
    config = read_config(list(sys.argv[1:] if argv is None else argv))
    model_path = resolve_model(config["model_name_or_path"])
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dataset = build_dataset(config)
    generation = GenerationConfig.from_pretrained(model_path)
    eos = generation.eos_token_id if isinstance(generation.eos_token_id, list) else [generation.eos_token_id]
    eos_ids = sorted({tokenizer.eos_token_id, *[e for e in eos if e is not None]})
    reward_funcs, reward_weights = build_rewards(config, eos_ids)

    fields = {f.name for f in dataclasses.fields(GRPOConfig) if f.init}
    args = GRPOConfig(
        **{key: value for key, value in config.items() if key in fields},
        reward_weights=reward_weights,
        model_init_kwargs={"dtype": config.get("dtype", "float32")},
    )
    trainer = trainer_class(
        model=model_path,
        reward_funcs=reward_funcs,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    trainer.train()
    return trainer


if __name__ == "__main__":
    main()
