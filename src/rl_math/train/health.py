"""Run health: catch the GRPO failures that the logged metrics show long before the reward curve does.

Every logging step TRL's GRPOTrainer logs group statistics (``frac_reward_zero_std``, ``reward_std``),
completion lengths (``completions/clipped_ratio``, ``completions/mean_terminated_length``), the
policy's ``entropy`` and ``kl``, the trainer's ``loss`` and ``grad_norm`` and each reward's
``rewards/<name>/mean``. :class:`HealthCallback` reads them in ``on_log`` and raises a named alarm
when a condition holds for ``health_patience`` consecutive logs:

==================  ===============================================================  ==================
condition           fires when                                                       default threshold
==================  ===============================================================  ==================
``reward_trap``     ``groups/no_signal`` (rl-math's float64 count, see                0.9
                    :mod:`rl_math.train.group_signal`; else TRL's ``frac_reward_zero_std``)
                    ≥ threshold (most groups give no signal)
``shape_only``      ``groups/shape_only`` ≥ threshold: most groups are all right or     0.5
                    all wrong yet their shaping rewards differ, so GRPO trains format
                    alone
``all_truncated``   ``completions/clipped_ratio`` ≥ threshold                          0.95
``zero_loss``       ``|loss|`` and ``grad_norm`` both ≤ tolerance                      1e-8
``entropy_blowup``  ``entropy`` > factor × its mean over the first logs                3.0 × first 3 logs
``kl_runaway``      ``kl`` > threshold (only logged when ``beta`` ≠ 0)                 1.0
``format_hacking``  over the last window a format reward (``boxed_format``,            window 5 logs,
                    ``think_format``) rose and ``correctness`` fell, both by ≥ change  change 0.05
``non_finite``      any watched metric is NaN or ±inf (fires at once: patience 1)      —
``accuracy_drop``   held-out ``eval_accuracy`` (in-run evaluation) below the step-0     0.05 (5 points)
                    baseline by more than the threshold, ``health_patience``
                    evaluations in a row
==================  ===============================================================  ==================

An alarm is

* one ``logger.warning`` line, ``HEALTH ALARM [reward_trap] step 30: ... Cure: ...``, with the
  values that tripped it and the usual cure;
* the metric ``health/<condition> = 1.0`` in that step's entry of ``state.log_history`` (so in
  ``trainer_state.json``, where ``rl-math plot`` draws it), in the ``logs`` dict (seen by callbacks
  after this one, e.g. the progress bar) and, when ``report_to`` has ``wandb``, in W&B (the
  Trainer's own W&B callback has already sent this step's logs by the time ``on_log`` reaches us);
* with action ``stop``: ``control.should_save = True`` and ``control.should_training_stop = True``,
  so the Trainer writes ``checkpoint-N`` right after the log and ends training; the recipe then
  saves the model, records the alarm as ``stop_reason`` in ``final_metrics.json`` and exits with
  status ``HEALTH_STOP_EXIT_CODE`` (3).

An alarm fires once per streak and re-arms when the condition clears. In the YAML::

    health_monitor: true               # on by default
    health_patience: 3                 # consecutive logs (× logging_steps optimizer steps)
    health_action: warn                # warn | stop, for every condition ...
    health_actions: {reward_trap: stop, kl_runaway: "off"}   # ... or per condition (warn|stop|off)
    health_zero_std_threshold: 0.9

Multi-process: every rank sees the same (gathered) logs, so all ranks take the same decision and
stop at the same step; only the main process writes the warning.
"""

import dataclasses
import logging
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from rl_math.rewards import reward_name
from rl_math.tasks.formats import FORMAT_REWARDS  # the formats own their reward names

logger = logging.getLogger(__name__)

ACTIONS = ("warn", "stop")
ACTIONS_PER_CONDITION = ("warn", "stop", "off")
CORRECTNESS_REWARD = "correctness"
METRIC_PREFIX = "health/"
# The exit status of a run a `stop` alarm ended (0 is a finished run, 2 a config error), so that
# job scripts can tell it from both; final_metrics.json says which alarm in `stop_reason`.
HEALTH_STOP_EXIT_CODE = 3

# The scalar metrics the monitor reads; `rewards/<name>/mean` for every reward is added to these.
WATCHED_METRICS = (
    "frac_reward_zero_std",
    "groups/no_signal",  # rl_math.train.group_signal: robust where TRL's float32 isclose is not
    "groups/shape_only",
    "reward",
    "reward_std",
    "completions/clipped_ratio",
    "completions/mean_terminated_length",
    "entropy",
    "kl",
    "loss",
    "grad_norm",
    "eval_accuracy",  # in-run evaluation (rl_math.eval.in_run): the accuracy_drop condition
)


# ------------------------------------------------------------------------------------------------
# Configuration


@dataclasses.dataclass
class HealthArguments:
    """The health monitor's YAML keys (flat, prefixed ``health_`` so they never clash with TRL's).

    >>> HealthArguments(health_actions={"reward_trap": "stop"}).action_for("reward_trap")
    'stop'
    """

    health_monitor: bool = dataclasses.field(
        default=True, metadata={"help": "Watch the logged metrics for known failure signatures."}
    )
    health_patience: int = dataclasses.field(
        default=3, metadata={"help": "Consecutive logs a condition must hold before it raises an alarm."}
    )
    health_action: str = dataclasses.field(
        default="warn",
        metadata={"help": "What an alarm does: 'warn' (log it) or 'stop' (log it, save a checkpoint, stop)."},
    )
    health_actions: dict | None = dataclasses.field(
        default=None,
        metadata={
            "help": "Per-condition action overriding health_action, e.g. {reward_trap: stop, kl_runaway: 'off'}. "
            "Conditions: reward_trap, shape_only, all_truncated, zero_loss, entropy_blowup, kl_runaway, "
            "format_hacking, accuracy_drop, non_finite; actions: warn, stop, off."
        },
    )
    health_zero_std_threshold: float = dataclasses.field(
        default=0.9, metadata={"help": "reward_trap: fraction of groups whose rewards are all equal."}
    )
    health_clipped_ratio_threshold: float = dataclasses.field(
        default=0.95, metadata={"help": "all_truncated: fraction of completions cut at max_completion_length."}
    )
    health_zero_tolerance: float = dataclasses.field(
        default=1e-8, metadata={"help": "zero_loss: |loss| and grad_norm at or below this count as zero."}
    )
    health_entropy_blowup_factor: float = dataclasses.field(
        default=3.0, metadata={"help": "entropy_blowup: entropy above this multiple of its starting level."}
    )
    health_baseline_logs: int = dataclasses.field(
        default=3, metadata={"help": "entropy_blowup: the starting level is the mean of this many first logs."}
    )
    health_kl_threshold: float = dataclasses.field(
        default=1.0, metadata={"help": "kl_runaway: per-token KL to the reference model (logged when beta != 0)."}
    )
    health_hacking_window: int = dataclasses.field(
        default=5, metadata={"help": "format_hacking: compare the mean of the last N logs with the N before."}
    )
    health_hacking_min_change: float = dataclasses.field(
        default=0.05,
        metadata={"help": "format_hacking: format reward up and correctness down by at least this much."},
    )

    health_shape_only_threshold: float = dataclasses.field(
        default=0.5,
        metadata={"help": "shape_only: fraction of groups whose correctness is constant but whose total reward varies."},
    )
    health_accuracy_drop: float = dataclasses.field(
        default=0.05,
        metadata={"help": "accuracy_drop: held-out accuracy this far (a fraction) below its step-0 baseline."},
    )

    def __post_init__(self) -> None:
        if self.health_action not in ACTIONS:
            raise ValueError(f"health_action must be one of {', '.join(ACTIONS)}; got {self.health_action!r}")
        for condition, action in (self.health_actions or {}).items():
            if condition not in CONDITIONS:
                raise ValueError(
                    f"health_actions: unknown condition {condition!r}; choose from {', '.join(CONDITIONS)}"
                )
            if action not in ACTIONS_PER_CONDITION:
                # YAML 1.1 reads a bare `off` as False: say how to write it
                hint = " (write 'off' in quotes: YAML reads a bare off as false)" if action is False else ""
                raise ValueError(
                    f"health_actions[{condition!r}] must be one of {', '.join(ACTIONS_PER_CONDITION)}; "
                    f"got {action!r}{hint}"
                )
        _require(self.health_patience >= 1, "health_patience", "an integer ≥ 1", self.health_patience)
        for name in ("health_zero_std_threshold", "health_clipped_ratio_threshold", "health_shape_only_threshold"):
            value = getattr(self, name)
            _require(0.0 < value <= 1.0, name, "a fraction in (0, 1]", value)
        _require(self.health_zero_tolerance >= 0.0, "health_zero_tolerance", "a number ≥ 0", self.health_zero_tolerance)
        _require(
            self.health_entropy_blowup_factor > 1.0,
            "health_entropy_blowup_factor",
            "a number > 1",
            self.health_entropy_blowup_factor,
        )
        _require(self.health_baseline_logs >= 1, "health_baseline_logs", "an integer ≥ 1", self.health_baseline_logs)
        _require(self.health_kl_threshold > 0.0, "health_kl_threshold", "a number > 0", self.health_kl_threshold)
        _require(0.0 <= self.health_accuracy_drop < 1.0, "health_accuracy_drop", "a fraction in [0, 1)",
                 self.health_accuracy_drop)
        _require(self.health_hacking_window >= 1, "health_hacking_window", "an integer ≥ 1", self.health_hacking_window)
        _require(
            self.health_hacking_min_change > 0.0,
            "health_hacking_min_change",
            "a number > 0",
            self.health_hacking_min_change,
        )

    def action_for(self, condition: str) -> str:
        """'warn', 'stop' or 'off' for `condition`: its override, else `health_action`."""
        return (self.health_actions or {}).get(condition, self.health_action)


def _require(ok: bool, field: str, allowed: str, value: Any) -> None:
    if not ok:
        raise ValueError(f"{field} must be {allowed}; got {value!r}")


# ------------------------------------------------------------------------------------------------
# Conditions


@dataclasses.dataclass(frozen=True)
class Condition:
    name: str
    summary: str  # what the alarm means, one clause
    cure: str  # the usual fixes, for the alarm line
    patience: int | None = None  # None: health_patience


CONDITIONS: dict[str, Condition] = {
    c.name: c
    for c in (
        Condition(
            "reward_trap",
            "most groups' completions all earn the same reward, so their advantage and gradient are zero",
            "check the reward weights (correctness must dominate a format-only credit every completion gets) "
            "and that the correctness parser accepts the answer shape the prompt asks for; raise temperature "
            "or num_generations so completions in a group differ; drop problems the model always or never solves",
        ),
        Condition(
            "shape_only",
            "most groups' answers are all right or all wrong, yet their shaping rewards differ: GRPO is training "
            "format and length, not answers (the reward trap of shaped mixes under per-group scaling)",
            "make correctness the only reward that counts in such groups (gate the shaping rewards, or drop them), "
            "use data the model sometimes solves, raise num_generations",
        ),
        Condition(
            "all_truncated",
            "nearly every completion hits max_completion_length without EOS (often: the answer repeated forever)",
            "raise max_completion_length; add the `termination` and `repetition_penalty` rewards "
            "(or mask_truncated_completions: true); lower learning_rate if completions used to stop",
        ),
        Condition(
            "zero_loss",
            "loss and grad_norm are exactly zero: the run is training on nothing",
            "see reward_trap (every group has equal rewards); check the rewards can disagree within a group, "
            "that learning_rate > 0 and that trainable parameters exist (LoRA target modules)",
        ),
        Condition(
            "entropy_blowup",
            "the policy's entropy is far above its starting level (reward usually collapses next)",
            "lower learning_rate; lower temperature if it is above 1; raise beta or lower epsilon; "
            "resume from the last checkpoint before the rise",
        ),
        Condition(
            "kl_runaway",
            "the policy has drifted far from the reference model",
            "lower learning_rate; raise beta; lower epsilon; look at samples (`rl-math samples`) for reward hacking",
        ),
        Condition(
            "format_hacking",
            "a format reward is rising while correctness falls: the model learns the shape, not the answer",
            "look at samples (`rl-math samples`); lower the format reward's weight relative to correctness; "
            "check the correctness parser accepts what the format asks for",
        ),
        Condition(
            "accuracy_drop",
            "the model answers fewer held-out questions than it did before training: the run is making it worse",
            "look at samples (`rl-math samples`) for a reward trap or format hacking; lower learning_rate; "
            "check the reward mix pays for correct answers first (and that correctness's weight is positive); "
            "keep the best checkpoint (eval_load_best_at_end: true)",
        ),
        Condition(
            "non_finite",
            "a watched metric is NaN or infinite",
            "lower learning_rate; keep max_grad_norm on; prefer bf16 to fp16; check reward functions "
            "never return inf/NaN (None is the way to abstain)",
            patience=1,  # a NaN is never noise: say so at once
        ),
    )
}

# A check returns None when it cannot judge this log (metric absent, not enough history yet),
# False when healthy, or the evidence (metric → value) when the condition holds.
Verdict = dict[str, Any] | bool | None


@dataclasses.dataclass(frozen=True)
class Alarm:
    """One raised alarm: which condition, at which step, on which evidence, and what it does."""

    condition: str
    step: int
    evidence: dict[str, Any]
    action: str  # warn | stop
    streak: int  # consecutive logs the condition held

    @property
    def metric(self) -> str:
        return METRIC_PREFIX + self.condition

    def message(self) -> str:
        """The log line: condition, step, values, meaning, cure, and what happens next.

        >>> Alarm("kl_runaway", 40, {"kl": 2.5, "threshold": 1.0}, "warn", 3).message().split(". Cure")[0]
        'HEALTH ALARM [kl_runaway] step 40 (3 logs in a row): kl=2.5, threshold=1; the policy has drifted far from the reference model'
        """
        cond = CONDITIONS[self.condition]
        values = ", ".join(f"{k}={_fmt(v)}" for k, v in self.evidence.items())
        logs = "1 log" if self.streak == 1 else f"{self.streak} logs in a row"
        then = (
            "Saving a checkpoint and stopping (its action is stop)."
            if self.action == "stop"
            else "Training continues (set health_actions: {" + self.condition + ": stop} to stop instead)."
        )
        return (
            f"HEALTH ALARM [{self.condition}] step {self.step} ({logs}): {values}; {cond.summary}. "
            f"Cure: {cond.cure}. {then}"
        )


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _number(value: Any) -> float | None:
    """A metric as a float; None when absent or not a number (TRL logs None for all-None rewards)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _reward_means(metrics: Mapping[str, float | None]) -> dict[str, float]:
    """Each reward's logged mean (`rewards/<name>/mean`): which rewards an alarm's groups were paid by."""
    return {k: v for k, v in metrics.items() if k.startswith("rewards/") and v is not None}


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values)


# ------------------------------------------------------------------------------------------------
# The monitor: pure bookkeeping over log dicts, no trainer needed


class HealthMonitor:
    """Feed it TRL's log dicts in order; it returns the alarms each one raises.

    >>> monitor = HealthMonitor(HealthArguments(health_patience=2), reward_names=["correctness"])
    >>> [a.condition for a in monitor.observe({"frac_reward_zero_std": 1.0}, step=1)]
    []
    >>> [a.condition for a in monitor.observe({"frac_reward_zero_std": 1.0}, step=2)]
    ['reward_trap']
    """

    def __init__(self, args: HealthArguments, reward_names: Iterable[str] = ()) -> None:
        self.args = args
        self.reward_names = list(reward_names)
        self.format_rewards = [n for n in self.reward_names if n in FORMAT_REWARDS]
        self.checks: dict[str, Callable[[dict[str, float | None]], Verdict]] = {
            "reward_trap": self._reward_trap,
            "shape_only": self._shape_only,
            "all_truncated": self._all_truncated,
            "zero_loss": self._zero_loss,
            "entropy_blowup": self._entropy_blowup,
            "kl_runaway": self._kl_runaway,
            "format_hacking": self._format_hacking,
            "accuracy_drop": self._accuracy_drop,
            "non_finite": self._non_finite,
        }
        self.enabled = [name for name in self.checks if args.action_for(name) != "off"]
        self.streaks: dict[str, int] = dict.fromkeys(self.checks, 0)
        self.entropy_start: list[float] = []  # the first finite entropies, for the blow-up baseline
        window = args.health_hacking_window
        self.trend: deque[dict[str, float]] = deque(maxlen=2 * window)  # correctness/format means
        self.observed = 0
        self.accuracy_baseline: float | None = None  # the first eval_accuracy: the starting model's

    # -- public --------------------------------------------------------------------------------
    def observe(self, logs: Mapping[str, Any], step: int) -> list[Alarm]:
        """Update the history with one log and return the alarms that fire on it (each once per streak).

        A log with none of the watched metrics (eval logs, the final summary) is ignored.
        """
        metrics = self._watched(logs)
        if not metrics:
            return []
        self.observed += 1
        self._remember(metrics)
        alarms = []
        for name in self.enabled:
            verdict = self.checks[name](metrics)
            if verdict is None:
                continue  # cannot judge: the streak neither grows nor breaks
            if verdict is False:
                self.streaks[name] = 0
                continue
            self.streaks[name] += 1
            patience = CONDITIONS[name].patience or self.args.health_patience
            if self.streaks[name] == patience:
                evidence = verdict if isinstance(verdict, dict) else {}
                alarms.append(Alarm(name, step, evidence, self.args.action_for(name), self.streaks[name]))
        return alarms

    def replay(self, log_history: Iterable[Mapping[str, Any]]) -> None:
        """Rebuild the baseline and trend windows from a resumed run's history, without alarming.

        Streaks restart at zero, so a condition that was alarmed (or stopped the run) before the
        resume gets `health_patience` logs to show whether the new settings fixed it.
        """
        for entry in log_history:
            self.observe(entry, step=int(entry.get("step", 0)))
        self.streaks = dict.fromkeys(self.checks, 0)

    # -- bookkeeping ---------------------------------------------------------------------------
    def _watched(self, logs: Mapping[str, Any]) -> dict[str, float | None]:
        keys = [k for k in WATCHED_METRICS if k in logs]
        keys += [k for k in logs if k.startswith("rewards/") and k.endswith("/mean")]
        return {k: _number(logs[k]) for k in keys}

    def _remember(self, metrics: dict[str, float | None]) -> None:
        accuracy = metrics.get("eval_accuracy")
        if self.accuracy_baseline is None and accuracy is not None and math.isfinite(accuracy):
            self.accuracy_baseline = accuracy
        entropy = metrics.get("entropy")
        if entropy is not None and math.isfinite(entropy) and len(self.entropy_start) < self.args.health_baseline_logs:
            self.entropy_start.append(entropy)
        point = {}
        for name in [CORRECTNESS_REWARD, *self.format_rewards]:
            value = metrics.get(f"rewards/{name}/mean")
            if value is not None and math.isfinite(value):
                point[name] = value
        if CORRECTNESS_REWARD in point and len(point) > 1:
            self.trend.append(point)

    # -- the checks ----------------------------------------------------------------------------
    def _reward_trap(self, m: dict[str, float | None]) -> Verdict:
        key = "groups/no_signal" if m.get("groups/no_signal") is not None else "frac_reward_zero_std"
        frac = m.get(key)
        if frac is None or not math.isfinite(frac):
            return None
        if frac < self.args.health_zero_std_threshold:
            return False
        evidence = {key: frac, "threshold": self.args.health_zero_std_threshold}
        for key in ("reward", "reward_std"):
            if m.get(key) is not None:
                evidence[key] = m[key]
        # the component means tell which trap: all-fail, all-pass, or a format-only credit
        evidence.update(_reward_means(m))
        return evidence

    def _shape_only(self, m: dict[str, float | None]) -> Verdict:
        share = m.get("groups/shape_only")
        if share is None or not math.isfinite(share):
            return None
        if share < self.args.health_shape_only_threshold:
            return False
        evidence = {"groups/shape_only": share, "threshold": self.args.health_shape_only_threshold}
        evidence.update(_reward_means(m))
        return evidence

    def _all_truncated(self, m: dict[str, float | None]) -> Verdict:
        clipped = m.get("completions/clipped_ratio")
        if clipped is None or not math.isfinite(clipped):
            return None
        if clipped < self.args.health_clipped_ratio_threshold:
            return False
        evidence = {"completions/clipped_ratio": clipped, "threshold": self.args.health_clipped_ratio_threshold}
        if m.get("completions/mean_terminated_length") is not None:
            evidence["completions/mean_terminated_length"] = m["completions/mean_terminated_length"]
        return evidence

    def _zero_loss(self, m: dict[str, float | None]) -> Verdict:
        loss, grad = m.get("loss"), m.get("grad_norm")
        # GRPO's loss alone is near zero on healthy runs (advantages average to ~0); only a zero
        # gradient as well means nothing is learned
        if loss is None or grad is None:
            return None
        tol = self.args.health_zero_tolerance
        if not (abs(loss) <= tol and abs(grad) <= tol):
            return False
        evidence = {"loss": loss, "grad_norm": grad}
        if m.get("frac_reward_zero_std") is not None:
            evidence["frac_reward_zero_std"] = m["frac_reward_zero_std"]
        return evidence

    def _entropy_blowup(self, m: dict[str, float | None]) -> Verdict:
        entropy = m.get("entropy")
        if entropy is None or not math.isfinite(entropy) or len(self.entropy_start) < self.args.health_baseline_logs:
            return None
        start = _mean(self.entropy_start)
        if start <= 0.0:
            return None
        limit = self.args.health_entropy_blowup_factor * start
        if entropy <= limit:
            return False
        return {"entropy": entropy, "start": start, "ratio": entropy / start, "factor": self.args.health_entropy_blowup_factor}

    def _kl_runaway(self, m: dict[str, float | None]) -> Verdict:
        kl = m.get("kl")
        if kl is None or not math.isfinite(kl):
            return None
        if kl <= self.args.health_kl_threshold:
            return False
        return {"kl": kl, "threshold": self.args.health_kl_threshold}

    def _format_hacking(self, m: dict[str, float | None]) -> Verdict:
        window = self.args.health_hacking_window
        if not self.format_rewards or len(self.trend) < 2 * window:
            return None
        # a fresh point must have been added by this log, else the windows are stale
        if m.get(f"rewards/{CORRECTNESS_REWARD}/mean") is None:
            return None
        points = list(self.trend)
        before, recent = points[:window], points[window:]
        change = self.args.health_hacking_min_change

        def delta(name: str) -> float | None:
            if not all(name in p for p in points):
                return None
            return _mean(p[name] for p in recent) - _mean(p[name] for p in before)

        correctness_delta = delta(CORRECTNESS_REWARD)
        for name in self.format_rewards:
            format_delta = delta(name)
            if format_delta is None or correctness_delta is None:
                continue
            if format_delta >= change and correctness_delta <= -change:
                return {
                    f"rewards/{name}/mean": f"{_mean(p[name] for p in before):.3g}→{_mean(p[name] for p in recent):.3g}",
                    f"rewards/{CORRECTNESS_REWARD}/mean": (
                        f"{_mean(p[CORRECTNESS_REWARD] for p in before):.3g}→"
                        f"{_mean(p[CORRECTNESS_REWARD] for p in recent):.3g}"
                    ),
                    "window_logs": window,
                    "min_change": change,
                }
        return False

    def _accuracy_drop(self, m: dict[str, float | None]) -> Verdict:
        accuracy = m.get("eval_accuracy")
        if accuracy is None or not math.isfinite(accuracy) or self.accuracy_baseline is None:
            return None
        drop = self.accuracy_baseline - accuracy
        if drop <= self.args.health_accuracy_drop:
            return False
        return {"eval_accuracy": accuracy, "baseline": self.accuracy_baseline, "drop": drop,
                "threshold": self.args.health_accuracy_drop}

    def _non_finite(self, m: dict[str, float | None]) -> Verdict:
        bad = {k: v for k, v in m.items() if v is not None and not math.isfinite(v)}
        return bad or False


# ------------------------------------------------------------------------------------------------
# The callback


class HealthCallback(TrainerCallback):
    """Runs a :class:`HealthMonitor` on the Trainer's logs and acts on its alarms.

    >>> callback = HealthCallback(HealthArguments(), reward_names=["correctness", "boxed_format"])
    >>> callback.monitor.format_rewards
    ['boxed_format']
    """

    def __init__(self, args: HealthArguments, reward_names: Iterable[str] = ()) -> None:
        self.args = args
        self.monitor = HealthMonitor(args, reward_names)
        self.alarms: list[Alarm] = []  # every alarm raised in this process, in order
        self.stopped = False

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        # On resume the Trainer restores log_history before this hook: recover the entropy
        # baseline and trend windows instead of starting from the resumed (maybe already sick) state.
        if self.monitor.observed == 0 and state.log_history:
            self.monitor.replay(state.log_history)

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs,
    ):
        if not logs:
            return
        alarms = self.monitor.observe(logs, step=state.global_step)
        if not alarms:
            return
        self.alarms.extend(alarms)
        metrics = {alarm.metric: 1.0 for alarm in alarms}
        _record(metrics, logs, state)
        if state.is_world_process_zero:
            for alarm in alarms:
                logger.warning(alarm.message())
            _forward_to_wandb(metrics, args, state)
        if any(alarm.action == "stop" for alarm in alarms):
            # Trainer._maybe_log_save_evaluate saves right after the log when should_save is set,
            # then the training loop ends: the checkpoint holds the step the alarm fired on
            control.should_save = True
            control.should_training_stop = True
            self.stopped = True
        return control


def _record(metrics: dict[str, float], logs: dict[str, Any], state: TrainerState) -> None:
    """Put the alarm metrics into the live logs dict and this log's `state.log_history` entry.

    The Trainer adds this log to `TrainerState.log_history` (what `trainer_state.json` saves)
    before the `on_log` callbacks run, as an entry of its own: updating `logs` alone would not
    reach it. That entry is the last one, at this step, holding every key of `logs`; without one
    (a caller that logs otherwise) the alarms get an entry of their own.
    """
    entry = state.log_history[-1] if state.log_history else None
    if entry is not None and entry.get("step") == state.global_step and logs.keys() <= entry.keys():
        entry.update(metrics)
    else:
        state.log_history.append({**metrics, "step": state.global_step})
    logs.update(metrics)


def _forward_to_wandb(metrics: dict[str, float], args: TrainingArguments, state: TrainerState) -> None:
    """Send the alarms to the active W&B run, which the Trainer's W&B callback logged this step to already."""
    from transformers.integrations import is_wandb_available

    report_to = args.report_to if isinstance(args.report_to, (list, tuple)) else [args.report_to]
    if not ("wandb" in report_to or "all" in report_to) or not is_wandb_available():
        return
    import wandb

    if wandb.run is None:  # no run started (W&B disabled, or not the main process)
        return
    # WandbCallback names train metrics "train/<key>" against the step metric "train/global_step"
    wandb.log({**{f"train/{k}": v for k, v in metrics.items()}, "train/global_step": state.global_step})


def health_stop_reason(trainer) -> str | None:
    """Why a `stop` alarm ended training, e.g. 'health alarm reward_trap at step 30'; None if none did."""
    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, HealthCallback) and callback.stopped:
            stops = [alarm for alarm in callback.alarms if alarm.action == "stop"]
            return f"health alarm {', '.join(a.condition for a in stops)} at step {stops[0].step}"
    return None


def build_health_callback(health_args: HealthArguments, reward_funcs: list) -> list[TrainerCallback]:
    """The callbacks for `GRPOTrainer(callbacks=...)`: one HealthCallback, or none when disabled.

    `reward_funcs` are the trainer's reward callables; their `__name__`s are the names TRL logs
    (`rewards/<__name__>/mean`) and tell the monitor which format and correctness rewards exist.

    >>> def correctness(completions, **kwargs): ...
    >>> [type(c).__name__ for c in build_health_callback(HealthArguments(), [correctness])]
    ['HealthCallback']
    >>> build_health_callback(HealthArguments(health_monitor=False), [correctness])
    []
    """
    if not health_args.health_monitor:
        return []

    names = [reward_name(f) for f in reward_funcs]
    return [HealthCallback(health_args, reward_names=names)]
