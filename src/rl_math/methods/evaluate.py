"""Evaluate one or more models on a split, side by side (not a training method, but a recipe like them).

Writes OUTPUT_DIR/metrics.json (every model and the comparison table), completions.jsonl (every
completion with its verdicts) and evaluation.png (answer buckets and completion lengths), and
prints the table. Metrics and bucket definitions: :mod:`rl_math.eval.evaluate`.
"""


from __future__ import annotations

import logging
import sys
import time

from rl_math import preflight
from rl_math.config import RecipeArguments, parse_config, to_yaml_dict
from rl_math.errors import ConfigError
from rl_math.eval.evaluate import (
    FIGURE_FILE,
    EvalArguments,
    evaluate_model,
    headline,
    print_comparison,
    unique_model_names,
    write_results,
)
from rl_math.eval.figures import plot_evaluation
from rl_math.models import load_tokenizer
from rl_math.runtime import world_size_from_env
from rl_math.sampling import SamplingSettings
from rl_math.tasks.formats import default_reward_specs
from rl_math.tasks.loading import load_prompt_dataset

logger = logging.getLogger("rl_math.evaluate")


def check_eval_args(values: dict, explicit: set[str]) -> None:
    if not values.get("model_name_or_path"):
        raise ConfigError("no model to evaluate: give --model_name_or_path PATH [PATH ...] (or set it in the YAML)")
    if world_size_from_env() > 1:
        raise ConfigError("evaluate.py runs as one process (it batches generation itself); launch it with python")
    try:
        SamplingSettings.from_config(values)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if values["num_samples"] > 1 and values["temperature"] == 0:
        logger.warning("num_samples=%d with temperature 0 (greedy): the samples are identical", values["num_samples"])


DATACLASSES = (RecipeArguments, EvalArguments)
CHECKS = (check_eval_args, preflight.check_vllm, *preflight.INPUT_CHECKS)


def main(argv: list[str] | None = None) -> dict:
    parsed = parse_config(
        DATACLASSES, argv, checks=CHECKS
    )
    script_args, eval_args = parsed.instances
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S",
                        handlers=[logging.StreamHandler(sys.stdout)])
    logging.getLogger("rl_math").setLevel(logging.INFO)

    paths = eval_args.model_name_or_path
    names = unique_model_names(paths)
    tokenizer = load_tokenizer(paths[0], trust_remote_code=eval_args.trust_remote_code, padding_side="left")  # for the prompt-length filter
    dataset = load_prompt_dataset(
        script_args, script_args.dataset_test_split, tokenizer, script_args.max_eval_samples, eval_args.seed
    )
    specs = script_args.rewards or default_reward_specs(script_args.prompt_format)
    settings = eval_args.sampling()
    logger.info("%d questions x %d samples, %d model(s): %s", len(dataset), settings.num_samples, len(paths), ", ".join(names))

    evaluations = []
    for name, path in zip(names, paths):
        started = time.time()
        evaluation = evaluate_model(
            path, dataset, name=name, prompt_format=script_args.prompt_format, reward_specs=specs, settings=settings,
            use_vllm=eval_args.use_vllm, dtype=eval_args.dtype, attn_implementation=eval_args.attn_implementation,
            trust_remote_code=eval_args.trust_remote_code, batch_size=eval_args.eval_batch_size,
            vllm_options={"gpu_memory_utilization": eval_args.vllm_gpu_memory_utilization,
                          "tensor_parallel_size": eval_args.vllm_tensor_parallel_size,
                          "max_model_len": eval_args.vllm_max_model_len},
        )
        evaluation.metrics["seconds"] = round(time.time() - started, 1)
        logger.info("%s: %s", name, {k: round(v, 4) for k, v in headline(evaluation.metrics).items()})
        evaluations.append(evaluation)

    title = (f"{script_args.dataset_name} {script_args.dataset_test_split}: {len(dataset)} questions x "
             f"k={settings.num_samples}, temperature {settings.temperature:g}, {script_args.prompt_format} format")
    resolved = to_yaml_dict(script_args, eval_args)
    resolved["rewards"] = specs
    summary = write_results(eval_args.output_dir, evaluations, {"title": title, "config": resolved})
    plot_evaluation(evaluations, f"{eval_args.output_dir}/{FIGURE_FILE}", title, settings.max_new_tokens)
    print_comparison({e.name: e.metrics for e in evaluations}, title)
    logger.info("wrote metrics.json, completions.jsonl and %s to %s", FIGURE_FILE, eval_args.output_dir)
    return summary
