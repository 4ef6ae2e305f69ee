"""Dynamic sampling for GRPO (DAPO's filter and refill) on TRL's synchronous GRPOTrainer.

A group whose completions all earn the same total reward (all right, or all wrong and equally
shaped) has zero advantage: it carries no gradient, yet it fills a slot of the step and, with
token-level loss normalisation, dilutes the groups that do. With ``dynamic_sampling: true`` each
generation batch is filtered: zero-variance groups are dropped and the batch is refilled with
groups generated from further training questions, up to ``dynamic_sampling_max_rounds`` extra
generation rounds. A batch still short after the last round is filled with the dropped groups (their
advantage is zero, so they change nothing but keep the batch shape), and the shortfall is logged.
TRL has no dynamic sampling (its issue #3708); this is a mixin over the one method of its trainer that
generates and scores a batch (:class:`DynamicSamplingMixin`; :class:`DynamicSamplingGRPOTrainer` is TRL's
trainer with it, for scripts of your own; the recipe applies it with :func:`grpo_trainer_class`).

Why it is correct under several processes and gradient accumulation:

* TRL gathers every process's rewards before normalising them, so every rank sees the same global
  rewards; which groups are informative, on every rank, and how many refill rounds to run are
  decided from those, identically everywhere — each round is a collective generation on all ranks,
  even on a rank whose own share is already full.
* Groups never straddle processes: each process's share of a generation batch must be a whole
  number of groups (checked before loading, :func:`check_dynamic_sampling`), so a rank keeps or
  drops whole groups of its own rows and no tensors move between ranks.
* The filtered batch has the same size as TRL's, and ``num_items_in_batch`` (the loss normaliser
  for the gradient-accumulation slices TRL cuts from it) is recomputed for the rows kept.
* Refill questions are drawn with a generator seeded by (seed, optimizer step, round, rank), so a
  resumed run draws the same ones.

Logged every generation batch (averaged over the logging window), the same on every rank:

=====================================  ===========================================================
metric                                 meaning
=====================================  ===========================================================
``dynamic_sampling/dropped_groups``    share of the batch's groups that had zero reward variance
``dynamic_sampling/refill_rounds``     extra generation rounds run for this batch
``dynamic_sampling/filler_groups``     share of the final batch still made of zero-variance groups
=====================================  ===========================================================

Variance is judged on the weighted total reward, the quantity GRPO normalises, with the
float64 tolerance of :func:`rl_math.train.group_signal.is_constant` (TRL's float32 ``isclose`` misses
zero-variance groups under weighted mixes). Text-only generation: tool calls and images are refused.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from trl import GRPOTrainer

from rl_math.errors import ConfigError
from rl_math.runtime import generation_batch, world_size_from_env
from rl_math.train.group_signal import is_constant

# tensors of the batch that TRL pads on the left (prompts); the other per-token ones are padded on the right
_LEFT_PADDED = ("prompt_ids", "prompt_mask")
_TOKEN_IDS = ("prompt_ids", "completion_ids")
_SUPPORTED_KEYS = {
    "prompt_ids", "prompt_mask", "completion_ids", "completion_mask", "advantages", "num_items_in_batch",
    "old_per_token_logps", "importance_sampling_ratio", "sampling_per_token_logps", "ref_per_token_logps",
}


@dataclasses.dataclass
class DynamicSamplingArguments:
    """Dynamic sampling (DAPO): drop zero-variance groups and refill the batch (off by default)."""

    dynamic_sampling: bool = dataclasses.field(
        default=False,
        metadata={"help": "Drop groups whose completions all earn the same reward and refill the batch "
                          "with groups from further questions."},
    )
    dynamic_sampling_max_rounds: int = dataclasses.field(
        default=3,
        metadata={"help": "Extra generation rounds at most per batch (each costs one batch's generation)."},
    )

    def __post_init__(self) -> None:

        if self.dynamic_sampling_max_rounds < 1:
            raise ConfigError(
                f"dynamic_sampling_max_rounds must be at least 1, got {self.dynamic_sampling_max_rounds}; "
                "set dynamic_sampling: false to turn dynamic sampling off"
            )


def informative_groups(totals: Sequence[float], group_size: int) -> list[bool]:
    """For each group of `group_size` consecutive totals, whether its rewards vary (NaN = unscorable, left out).

    >>> informative_groups([1.2, 1.2, 0.0, 1.2, float("nan"), 0.4], group_size=2)
    [False, True, False]
    """
    flags = []
    for start in range(0, len(totals), group_size):
        scored = [t for t in totals[start:start + group_size] if not math.isnan(t)]
        flags.append(len(scored) > 1 and not is_constant(scored))
    return flags


def choose_groups(informative: Sequence[Sequence[bool]], quota: int) -> tuple[list[tuple[int, int]], int]:
    """Which (round, group) pairs make a batch of `quota` groups, and how many of them are zero-variance fillers.

    Informative groups come first, in generation order; when there are too few, zero-variance groups of
    the first rounds fill the rest.

    >>> choose_groups([[True, False, False], [False, True, True]], quota=3)
    ([(0, 0), (1, 1), (1, 2)], 0)
    >>> choose_groups([[False, False], [False, True]], quota=2)
    ([(1, 1), (0, 0)], 1)
    """
    pairs = [(r, g) for r, flags in enumerate(informative) for g, flag in enumerate(flags)]
    kept = [p for p in pairs if informative[p[0]][p[1]]][:quota]
    fillers = [p for p in pairs if not informative[p[0]][p[1]]][: quota - len(kept)]
    return kept + fillers, len(fillers)


def _fit_width(tensor: torch.Tensor, width: int, left: bool, value: float) -> torch.Tensor:
    missing = width - tensor.size(1)
    if missing <= 0:
        return tensor
    return F.pad(tensor, (missing, 0) if left else (0, missing), value=value)


def merge_rows(batches: Sequence[dict[str, Any]], rows: Sequence[tuple[int, int]], pad_token_id: int) -> dict[str, Any]:
    """One batch of the (batch index, row index) `rows` of several scored batches, re-padded to common widths.

    Prompts are padded on the left, completions and their per-token values on the right, as TRL pads them.
    ``num_items_in_batch`` is left out: it spans all processes, so the caller recomputes it.

    >>> a = {"prompt_ids": torch.tensor([[5, 6]]), "completion_ids": torch.tensor([[7]]), "advantages": torch.tensor([0.5])}
    >>> b = {"prompt_ids": torch.tensor([[8]]), "completion_ids": torch.tensor([[9, 10]]), "advantages": torch.tensor([-1.0])}
    >>> merged = merge_rows([a, b], [(1, 0), (0, 0)], pad_token_id=0)
    >>> merged["prompt_ids"].tolist(), merged["completion_ids"].tolist(), merged["advantages"].tolist()
    ([[0, 8], [5, 6]], [[9, 10], [7, 0]], [-1.0, 0.5])
    """
    merged: dict[str, Any] = {}
    for key, first in batches[0].items():
        if key == "num_items_in_batch":
            continue
        if not isinstance(first, torch.Tensor) or first.dim() == 0:
            merged[key] = first
            continue
        picked = [batches[b][key][i : i + 1] for b, i in rows]
        if first.dim() >= 2:
            width = max(t.size(1) for t in picked)
            value = pad_token_id if key in _TOKEN_IDS else 0
            picked = [_fit_width(t, width, key in _LEFT_PADDED, value) for t in picked]
        merged[key] = torch.cat(picked, dim=0)
    return merged


class DynamicSamplingMixin:
    """Makes a GRPOTrainer (sub)class keep only groups with reward variance in its training batches, while
    enough can be generated; put it before the trainer class in the bases."""

    def __init__(self, *args, dynamic_sampling_max_rounds: int = 3, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.dynamic_sampling_max_rounds = dynamic_sampling_max_rounds
        self._round_rewards: torch.Tensor | None = None

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._round_rewards = rewards_per_func  # gathered: the same on every rank
        return rewards_per_func

    def _global_informative(self) -> list[bool]:
        rewards = self._round_rewards.double().cpu()
        weights = self.reward_weights.double().cpu()
        totals = (rewards * weights).nansum(dim=1)
        totals[torch.isnan(rewards).all(dim=1)] = math.nan
        return informative_groups(totals.tolist(), self.num_generations)

    def _refill_inputs(self, groups: int, round_index: int) -> list[dict[str, Any]]:
        """`groups` further training questions, each repeated num_generations times as TRL's sampler lays them out."""
        seed = [self.args.seed, self.state.global_step, round_index, self.accelerator.process_index]
        generator = torch.Generator().manual_seed(int.from_bytes(repr(seed).encode(), "little") % (2**63))
        indices = torch.randint(len(self.train_dataset), (groups,), generator=generator).tolist()
        return [dict(self.train_dataset[i]) for i in indices for _ in range(self.num_generations)]

    def _generate_and_score_completions(self, inputs):
        if not self.model.training:
            return super()._generate_and_score_completions(inputs)
        size, rank, ranks = self.num_generations, self.accelerator.process_index, self.accelerator.num_processes
        quota = len(inputs) // size  # groups on this rank (whole groups: check_dynamic_sampling)
        batches = [super()._generate_and_score_completions(inputs)]
        unknown = set(batches[0]) - _SUPPORTED_KEYS
        if unknown:
            raise RuntimeError(f"dynamic sampling supports text-only batches; this one also has {sorted(unknown)}")
        flags = [self._global_informative()]  # per round, every rank's groups in rank order

        def shortfall(r: int) -> int:
            """Groups rank `r` still lacks: the same number on every rank, from the gathered rewards."""
            return max(0, quota - sum(sum(f[r * quota:(r + 1) * quota]) for f in flags))

        while len(flags) <= self.dynamic_sampling_max_rounds and any(shortfall(r) for r in range(ranks)):
            batches.append(super()._generate_and_score_completions(self._refill_inputs(quota, len(flags))))
            flags.append(self._global_informative())

        chosen, _ = choose_groups([f[rank * quota:(rank + 1) * quota] for f in flags], quota)
        rows = [(r, g * size + i) for r, g in chosen for i in range(size)]
        batch = merge_rows(batches, rows, self._tokenizer.pad_token_id)
        batch["num_items_in_batch"] = self.accelerator.gather(batch["completion_mask"].sum()).sum()

        fillers = sum(shortfall(r) for r in range(ranks))
        metrics = self._metrics["train"]
        metrics["dynamic_sampling/dropped_groups"].append(1 - sum(flags[0]) / len(flags[0]))
        metrics["dynamic_sampling/refill_rounds"].append(len(flags) - 1)
        metrics["dynamic_sampling/filler_groups"].append(fillers / (quota * ranks))
        return batch


class DynamicSamplingGRPOTrainer(DynamicSamplingMixin, GRPOTrainer):
    """TRL's GRPOTrainer with dynamic sampling."""


def grpo_trainer_class(args: DynamicSamplingArguments, base: type = GRPOTrainer) -> Callable[..., GRPOTrainer]:
    """`base` (TRL's GRPOTrainer or a subclass of it), with dynamic sampling and its settings when ``dynamic_sampling`` is on.

    >>> grpo_trainer_class(DynamicSamplingArguments()) is GRPOTrainer
    True
    >>> grpo_trainer_class(DynamicSamplingArguments(dynamic_sampling=True)).func.__mro__[1].__name__
    'DynamicSamplingMixin'
    """
    if not args.dynamic_sampling:
        return base
    trainer = base if issubclass(base, DynamicSamplingMixin) else type(base.__name__, (DynamicSamplingMixin, base), {})
    return functools.partial(trainer, dynamic_sampling_max_rounds=args.dynamic_sampling_max_rounds)


def check_dynamic_sampling(values: dict[str, Any], explicit: set[str], world_size: int | None = None) -> None:
    """Dynamic sampling keeps or drops whole groups on each process: each process's batch must hold whole groups."""

    if not values.get("dynamic_sampling"):
        return
    world_size = world_size or world_size_from_env()
    generations = values["num_generations"]
    per_process = generation_batch(
        values["per_device_train_batch_size"], values["gradient_accumulation_steps"],
        values.get("generation_batch_size"), values.get("steps_per_generation"), world_size,
    ) // world_size
    if per_process % generations:
        raise ConfigError(
            f"dynamic_sampling needs each process's generation batch ({per_process} completions) to be a whole "
            f"number of groups of num_generations={generations}; make per_device_train_batch_size × "
            "steps_per_generation a multiple of num_generations"
        )
