"""Held-out accuracy during training: every run sees whether its model gets better at math, from step 0.

TRL's GRPOTrainer has no `compute_metrics` (its evaluation logs rewards on an eval split), so a
GRPO run that makes the model worse looks fine until a separate evaluation. With
`eval_accuracy_steps: N` a :class:`HeldOutAccuracyCallback` answers a fixed subset of the test split
(`eval_questions`, shuffled with seed 0, so every run and resume sees the same questions) greedily
with the model being trained — at step 0 (the starting model's baseline), every N optimizer steps
and at the end — and grades it with the same grader, rewards and buckets as
`recipes/evaluate.py` (:func:`rl_math.eval.evaluate.score_generations`, :func:`~rl_math.eval.evaluate.summarize`).

It logs ordinary trainer metrics, so they reach every tracker (W&B and TensorBoard show
`eval/accuracy`), `trainer_state.json`, `rl-math plot` and `final_metrics.json`:

==============================  ==========================================================
metric                          meaning
==============================  ==========================================================
``eval_accuracy``               greedy pass@1 on the held-out questions
``eval_correct`` …              the four buckets of :mod:`rl_math.eval.evaluate`
``eval_eos_rate``               completions that ended with a stop token
``eval_truncation_rate``        completions cut at the token limit
``eval_mean_completion_tokens`` mean completion length
``eval_seconds``                wall time of this evaluation
==============================  ==========================================================

The best evaluation is recorded as the Trainer's ``best_metric`` / ``best_global_step``; when
checkpoints are saved (``save_strategy`` not ``no``), a new best also saves a checkpoint, which
``save_total_limit`` never prunes, and ``eval_load_best_at_end`` makes it the final model.
``eval_stop_at_accuracy`` ends training once accuracy reaches a level (an SFT warm-up that should
leave room for RL, as the learning benchmark does). The health monitor's ``accuracy_drop``
alarm reads ``eval_accuracy`` against the step-0 baseline.

Generation is the fastest at hand: the trainer's own vLLM engine when ``use_vllm`` is on
(colocate or server; greedy, weights synced as TRL syncs them; no second engine), else HF
``generate`` on the trainer's own (unwrapped) model, batched, under ``torch.inference_mode`` and
with the random state restored afterwards, so training and resume stay exact. Under several processes each rank answers its share of the questions and the
results are gathered, so every rank logs the same numbers.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from rl_math.errors import ConfigError
from rl_math.eval.evaluate import score_generations, summarize
from rl_math.runtime import on_generation_boundary
from rl_math.sampling import HFGenerator, SamplingSettings, collect_generations, render_prompts
from rl_math.tasks.loading import dataset_task, load_prompt_dataset

logger = logging.getLogger(__name__)

METRIC = "eval_accuracy"
_SUBSET_SEED = 0  # the held-out subset is the same for every run, seed and resume


@dataclasses.dataclass
class InRunEvalArguments:
    """Held-out accuracy during training (off unless ``eval_accuracy_steps`` is set)."""

    eval_accuracy_steps: int = dataclasses.field(
        default=0,
        metadata={"help": "Evaluate greedy held-out accuracy at step 0, every N optimizer steps and at the end; 0 is off."},
    )
    eval_questions: int = dataclasses.field(
        default=200, metadata={"help": "Held-out questions from dataset_test_split (a fixed subset)."}
    )
    eval_max_new_tokens: int | None = dataclasses.field(
        default=None,
        metadata={"help": "Token limit per answer; null: max_completion_length (GRPO), else 512."},
    )
    eval_generation_batch_size: int = dataclasses.field(
        default=64, metadata={"help": "Questions per generate call on each process."}
    )
    eval_stop_at_accuracy: float | None = dataclasses.field(
        default=None, metadata={"help": "Stop training once held-out accuracy reaches this fraction (null: never)."}
    )
    eval_load_best_at_end: bool = dataclasses.field(
        default=False,
        metadata={"help": "Make the checkpoint with the best held-out accuracy the final model (needs saved checkpoints)."},
    )

    def __post_init__(self) -> None:

        if self.eval_accuracy_steps < 0:
            raise ConfigError(f"eval_accuracy_steps must be 0 (off) or a number of steps, got {self.eval_accuracy_steps}")
        if self.eval_questions < 1:
            raise ConfigError(f"eval_questions must be at least 1, got {self.eval_questions}")
        if self.eval_max_new_tokens is not None and self.eval_max_new_tokens < 1:
            raise ConfigError(f"eval_max_new_tokens must be at least 1, got {self.eval_max_new_tokens}")
        if self.eval_generation_batch_size < 1:
            raise ConfigError(f"eval_generation_batch_size must be at least 1, got {self.eval_generation_batch_size}")
        if self.eval_stop_at_accuracy is not None and not 0 < self.eval_stop_at_accuracy <= 1:
            raise ConfigError(f"eval_stop_at_accuracy must be a fraction in (0, 1], got {self.eval_stop_at_accuracy}")

    @property
    def enabled(self) -> bool:
        return self.eval_accuracy_steps > 0


def accuracy_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """The logged `eval_*` metrics from :func:`rl_math.eval.evaluate.summarize`'s output.

    >>> accuracy_metrics({"accuracy": 0.5, "buckets": {"correct": 0.5, "wrong": 0.5}, "eos_rate": 1.0,
    ...                   "truncation_rate": 0.0, "mean_completion_tokens": 9.0})["eval_accuracy"]
    0.5
    """
    metrics = {METRIC: summary["accuracy"]}
    metrics.update({f"eval_{bucket}": share for bucket, share in summary["buckets"].items()})
    for key in ("eos_rate", "truncation_rate", "mean_completion_tokens"):
        metrics[f"eval_{key}"] = summary[key]
    return metrics


class HeldOutAccuracyCallback(TrainerCallback):
    """Evaluates held-out accuracy with the trainer's model; call :meth:`attach` with the trainer."""

    def __init__(self, args: InRunEvalArguments, dataset, *, prompt_format: str, reward_specs: list[dict],
                 stop_ids: list[int], max_new_tokens: int) -> None:

        self.args = args
        self.prompts = list(dataset["prompt"])
        self.golds = list(dataset["answer"])
        self.task = dataset_task(dataset)
        self.prompt_format = prompt_format
        self.reward_specs = reward_specs
        self.stop_ids = stop_ids
        self.max_new_tokens = max_new_tokens
        self.trainer: Trainer | None = None
        self.last_step: int | None = None

    def attach(self, trainer: Trainer) -> HeldOutAccuracyCallback:
        self.trainer = trainer
        return self

    # -- evaluation ----------------------------------------------------------------------------
    def evaluate(self, state: TrainerState) -> dict[str, float]:
        """Answer every held-out question (this rank's share), gather, log and return the metrics."""
        import torch
        import torch.distributed as dist
        from trl.models.utils import unwrap_model_for_generation


        trainer = self.trainer
        started = time.time()
        world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        rank = dist.get_rank() if world > 1 else 0
        share = list(range(rank, len(self.prompts), world))
        prompts = [self.prompts[i] for i in share]
        golds = [self.golds[i] for i in share]
        settings = SamplingSettings.greedy_once(self.max_new_tokens)
        tokenizer = trainer.processing_class
        prompt_ids = render_prompts(tokenizer, prompts)
        if getattr(trainer, "vllm_generation", None) is not None and getattr(trainer, "use_vllm", False):
            generations = self._generate_with_trainer_vllm(prompt_ids, settings)
        else:
            with unwrap_model_for_generation(trainer.model_wrapped, trainer.accelerator) as model, \
                    torch.random.fork_rng(devices=[]):
                was_training = model.training
                model.eval()
                try:
                    generator = HFGenerator.for_loaded_model(model, tokenizer, self.args.eval_generation_batch_size)
                    generations = generator.generate(prompt_ids, settings, self.stop_ids)
                finally:
                    model.train(was_training)
        results = score_generations(prompts, golds, generations, prompt_format=self.prompt_format,
                                    reward_specs=self.reward_specs, stop_ids=self.stop_ids,
                                    max_new_tokens=self.max_new_tokens, task=self.task)
        for result in results:
            result.question_index = share[result.question_index]
        if world > 1:
            gathered: list[Any] = [None] * world
            dist.all_gather_object(gathered, results)
            results = [r for part in gathered for r in part]
        metrics = accuracy_metrics(summarize(results, self.golds, 1, self.task))
        metrics["eval_seconds"] = round(time.time() - started, 2)
        should_log = trainer.control.should_log
        Trainer.log(trainer, metrics)  # the base Trainer's log: TRL's would flush its training averages early
        trainer.control.should_log = should_log  # on_log clears it, which would drop this step's training log
        self.last_step = state.global_step
        if state.is_world_process_zero:
            logger.info("step %d: held-out accuracy %.1f%% (%d questions, %.1f s)", state.global_step,
                        100 * metrics[METRIC], len(self.prompts), metrics["eval_seconds"])
        return metrics

    def _generate_with_trainer_vllm(self, prompt_ids: list[list[int]], settings):
        """Greedy answers from the trainer's own vLLM engine (colocate or server): no second engine is started.

        TRL's `VLLMGeneration.generate` reads its sampling settings from attributes: they are set
        for greedy decoding with this evaluation's token limit and restored afterwards. Weights are
        synced first when the policy changed since the engine last saw it, as TRL does.
        """

        trainer = self.trainer
        engine = trainer.vllm_generation
        if trainer.state.global_step != getattr(trainer, "_last_loaded_step", None):
            engine.sync_weights()
            trainer._last_loaded_step = trainer.state.global_step
        greedy = {"temperature": 0.0, "repetition_penalty": 1.0, "max_completion_length": settings.max_new_tokens}
        saved = {name: getattr(engine, name) for name in greedy}
        try:
            for name, value in greedy.items():
                setattr(engine, name, value)
            _, completion_ids, _, _ = engine.generate(prompts=prompt_ids, images=None, num_generations=1)
        finally:
            for name, value in saved.items():
                setattr(engine, name, value)
        out_ids = {(i, 0): list(ids) for i, ids in enumerate(completion_ids)}
        return collect_generations(out_ids, len(prompt_ids), settings, self.stop_ids, trainer.processing_class)

    def _after_evaluation(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                          accuracy: float) -> None:
        if state.best_metric is None or accuracy > state.best_metric:
            state.best_metric = accuracy
            state.best_global_step = state.global_step
            if args.save_strategy != "no" and state.global_step > 0 and _resumes_exactly_at(args, state.global_step):
                control.should_save = True  # the best model gets a checkpoint, which rotation keeps
        stop_at = self.args.eval_stop_at_accuracy
        if stop_at is not None and accuracy >= stop_at and state.global_step > 0:
            if state.is_world_process_zero:
                logger.info("held-out accuracy %.1f%% reached eval_stop_at_accuracy %.1f%%: stopping at step %d",
                            100 * accuracy, 100 * stop_at, state.global_step)
            control.should_training_stop = True

    # -- trainer hooks -------------------------------------------------------------------------
    def on_train_begin(self, args, state, control, **kwargs):
        if state.global_step == 0:  # a resumed run has its baseline in log_history already
            self._after_evaluation(args, state, control, self.evaluate(state)[METRIC])
        return control

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.args.eval_accuracy_steps == 0:
            self._after_evaluation(args, state, control, self.evaluate(state)[METRIC])
        return control

    def on_train_end(self, args, state, control, **kwargs):
        if self.last_step != state.global_step:
            self._after_evaluation(args, state, control, self.evaluate(state)[METRIC])
        return control


def _resumes_exactly_at(args: TrainingArguments, step: int) -> bool:
    """GRPO with buffered generations resumes exactly only from a generation boundary (rl_math.preflight)."""

    steps_per_generation = getattr(args, "steps_per_generation", None)
    if not steps_per_generation:
        return True  # SFT: every step is a boundary
    generate_every = steps_per_generation * getattr(args, "num_iterations", 1)
    return on_generation_boundary(step, args.gradient_accumulation_steps, generate_every)


def build_in_run_eval(eval_args: InRunEvalArguments, script_args, tokenizer, *, reward_specs: list[dict],
                      stop_ids: list[int], max_new_tokens: int | None) -> list[HeldOutAccuracyCallback]:
    """The callback for a recipe (an empty list when `eval_accuracy_steps` is 0); attach it to the trainer."""
    if not eval_args.enabled:
        return []

    dataset = load_prompt_dataset(script_args, script_args.dataset_test_split, tokenizer, eval_args.eval_questions,
                                  seed=_SUBSET_SEED)
    limit = eval_args.eval_max_new_tokens or max_new_tokens or 512
    logger.info("in-run evaluation: %d held-out questions from %s every %d steps, up to %d new tokens", len(dataset),
                script_args.dataset_test_split, eval_args.eval_accuracy_steps, limit)
    return [HeldOutAccuracyCallback(eval_args, dataset, prompt_format=script_args.prompt_format,
                                    reward_specs=reward_specs, stop_ids=stop_ids, max_new_tokens=limit)]


def load_best_model(trainer) -> dict[str, float]:
    """With `eval_load_best_at_end`: load the best-accuracy checkpoint's weights, and log which model is final.

    Logs `eval_best_accuracy`, `eval_best_step` and `eval_final_is_best` (1.0 when the final model
    is the best evaluated one), so `final_metrics.json` says what was saved.
    """
    state = trainer.state
    record = {"eval_best_accuracy": state.best_metric, "eval_best_step": state.best_global_step}
    if state.best_model_checkpoint and state.best_global_step != state.global_step:
        trainer._load_best_model()  # transformers' own loader (DeepSpeed and PEFT aware)
        record["eval_final_is_best"] = 1.0
        logger.info("eval_load_best_at_end: the final model is %s (held-out accuracy %.1f%%)",
                    state.best_model_checkpoint, 100 * state.best_metric)
    elif state.best_global_step == state.global_step:
        record["eval_final_is_best"] = 1.0
    else:
        record["eval_final_is_best"] = 0.0
        where = "the starting model, still at model_name_or_path" if state.best_global_step == 0 else "not saved as a checkpoint"
        logger.warning("eval_load_best_at_end: the best held-out accuracy (%.1f%%, step %d) is %s; the final model "
                       "is the last step's", 100 * state.best_metric, state.best_global_step, where)
    Trainer.log(trainer, record)
    return record
