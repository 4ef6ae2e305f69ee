"""One training run's ritual, written once for every method.

A method (:mod:`rl_math.methods`) says which trainer it builds and with what; the session does
everything around it, in this order:

1. logging, and where the run resumes from (`--resume_from_checkpoint`, the other-run guard's
   settings kept from the checkpoint);
2. the model (the embedded default built on first use), its tokenizer (the one loader,
   :func:`rl_math.models.load_tokenizer`), the one stop-token set, the reward mix (the YAML's or the
   prompt format's default) and the trainer's model kwargs;
3. the callbacks every method gets: the step watchdog (`step_timeout_s`: a hang → stacks in the
   log, exit status 4), preemption (SIGTERM/SIGUSR1 → checkpoint), in-run held-out accuracy when
   configured, and the method's own (health, …);
4. train (checkpoints marked complete as written), then: preempted → return (the requeued job
   resumes); else the best checkpoint when `eval_load_best_at_end`, the health stop reason, and the
   save (model, tokenizer, resolved config, final metrics).

    session = TrainingSession(script_args, training_args, model_args, resolved=resolved, eval_args=eval_args)
    trainer = SFTTrainer(model=session.model_path, args=training_args, ..., callbacks=session.callbacks())
    result = session.train(trainer)
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trl import get_peft_config

from rl_math.errors import exit_on_config_error
from rl_math.eval.in_run import build_in_run_eval, load_best_model
from rl_math.exit_status import HEALTH_STOP
from rl_math.models import load_tokenizer, resolve_model
from rl_math.rewards import build_rewards, check_reward_columns, reward_mix, reward_name
from rl_math.sampling import stop_token_ids
from rl_math.train.group_signal import GroupSignalRecorder
from rl_math.train.health import build_health_callback, health_stop_reason
from rl_math.train.lifecycle import (
    check_data_parallel,
    end_distributed,
    keep_checkpoint_settings,
    log_config_to_trackers,
    model_init_kwargs,
    quiet_tied_weights_warning,
    resolve_resume,
    run_training,
    save_run,
    setup_logging,
)
from rl_math.train.preemption import PreemptionCallback
from rl_math.train.watchdog import StepWatchdog

logger = logging.getLogger(__name__)


@dataclass
class SessionResult:
    """How a training session ended: `preempted` (checkpointed, to be resumed) or finished, maybe stopped early."""

    trainer: Any
    preempted: bool = False
    stop_reason: str | None = None  # a health or accuracy alarm with action `stop` ended the run
    train_metrics: dict[str, Any] | None = None


class TrainingSession:
    """The ritual around a method's trainer: see the module docstring for the order."""

    def __init__(self, script_args, training_args, model_args, *, resolved: dict[str, Any], eval_args=None,
                 checkpoint: str | bool | None = None, resume: bool = True):
        setup_logging(training_args)
        self.script_args, self.training_args, self.model_args, self.eval_args = (
            script_args, training_args, model_args, eval_args)
        self.checkpoint = resolve_resume(training_args) if resume else checkpoint
        keep_checkpoint_settings(training_args, self.checkpoint)
        self.resolved = resolved
        self.model_path = resolve_model(model_args.model_name_or_path)
        self.tokenizer = load_tokenizer(
            model_args.model_name_or_path, trust_remote_code=training_args.trust_remote_code,
            revision=model_args.model_revision,
        )
        self.stop_ids = stop_token_ids(self.tokenizer, self.model_path)
        self.reward_specs = reward_mix(script_args.rewards, script_args.prompt_format)
        self.resolved["rewards"] = self.reward_specs
        training_args.model_init_kwargs = model_init_kwargs(model_args, training_args)
        self.watchdog = StepWatchdog(script_args.step_timeout_s)
        self.preemption = PreemptionCallback()
        self.in_run_eval = []
        if eval_args is not None:
            self.in_run_eval = build_in_run_eval(
                eval_args, script_args, self.tokenizer, reward_specs=self.reward_specs, stop_ids=self.stop_ids,
                max_new_tokens=getattr(training_args, "max_completion_length", None),
            )

    @property
    def reward_context(self) -> dict[str, Any]:
        """What rewards may bind from the run (the `termination` reward's stop set and length limit)."""
        return {"eos_token_ids": self.stop_ids,
                "max_completion_length": getattr(self.training_args, "max_completion_length", None)}

    def callbacks(self, *method_callbacks) -> list:
        """Every method's callbacks (watchdog, preemption, in-run evaluation) followed by the method's own."""
        return [self.watchdog, self.preemption, *self.in_run_eval, *method_callbacks]

    def train(self, trainer, *, save=None) -> SessionResult:
        """Train `trainer` (built with :meth:`callbacks`), then keep the best model and save the run.

        `save(trainer)` replaces the standard save (model, tokenizer, resolved config, final
        metrics) when a method saves differently; None keeps it.
        """
        for callback in self.in_run_eval:
            callback.attach(trainer)
        check_data_parallel(trainer)
        quiet_tied_weights_warning(trainer)
        log_config_to_trackers(trainer, self.resolved)
        train_metrics = run_training(trainer, self.checkpoint)
        if self.preemption.stopped:
            return SessionResult(trainer, preempted=True, train_metrics=train_metrics)
        if self.in_run_eval and self.eval_args.eval_load_best_at_end:
            load_best_model(trainer)
        stop_reason = health_stop_reason(trainer)
        if save is None:
            save_run(trainer, self.tokenizer, self.resolved, train_metrics, stop_reason)
        else:
            save(trainer, train_metrics, stop_reason)
        if stop_reason:
            logger.error("training ended early: %s", stop_reason)
        return SessionResult(trainer, stop_reason=stop_reason, train_metrics=train_metrics)


def online_rewards(session: TrainingSession, train_dataset) -> list:
    """The reward functions of an online RL method (GRPO, RLOO), with the run's context bound.

    Built from the session's reward mix, checked against the dataset's columns, and wrapped so
    that every step logs which groups carry a signal (`groups/no_signal`, `groups/shape_only`).
    Sets `reward_weights` on the training arguments, as TRL's trainers read them there.
    """
    args = session.training_args
    reward_funcs, reward_weights = build_rewards(session.reward_specs, context=session.reward_context)
    check_reward_columns(reward_funcs, train_dataset.column_names)
    reward_funcs = GroupSignalRecorder(
        [reward_name(f) for f in reward_funcs], reward_weights, args.num_generations
    ).wrap(reward_funcs)
    args.reward_weights = reward_weights
    logger.info("rewards: %s", ", ".join(f"{f.__name__}×{w:g}" for f, w in zip(reward_funcs, reward_weights)))
    return reward_funcs


def online_trainer(trainer_class: type, session: TrainingSession, train_dataset, health_args):
    """An online RL method's trainer (GRPO's, RLOO's): the session's model, tokenizer and callbacks,
    its :func:`online_rewards`, and the health monitor over them."""
    reward_funcs = online_rewards(session, train_dataset)
    return trainer_class(
        model=session.model_path,
        reward_funcs=reward_funcs,
        args=session.training_args,
        train_dataset=train_dataset,
        processing_class=session.tokenizer,
        peft_config=get_peft_config(session.model_args),
        callbacks=session.callbacks(*build_health_callback(health_args, reward_funcs)),
    )


def run_recipe(main: Callable, argv: list[str] | None = None) -> None:
    """A recipe's `__main__`: a ConfigError is one line and exit 2; a run a health alarm stopped exits 3."""
    with exit_on_config_error():
        result = main(sys.argv[1:] if argv is None else argv)
    end_distributed()
    if hasattr(result, "callback_handler") and health_stop_reason(result):
        sys.exit(HEALTH_STOP)  # job scripts can tell a stopped run from a finished one
