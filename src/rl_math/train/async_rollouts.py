"""Asynchronous GRPO: a sampler process generates the next batches while the trainer trains this one.

With ``async_generation: true`` the GRPO recipe keeps TRL's GRPOTrainer (its loss, rewards, DeepSpeed
ZeRO-2/3, checkpoints, in-run evaluation, health) and moves generation into a separate process,
:mod:`rl_math.sampler`. The trainer side is :class:`AsyncRolloutsMixin`, a mixin over
three methods of the trainer (like :mod:`rl_math.train.dynamic_sampling`):

* ``get_batch_samples`` — where the Trainer takes each optimizer step's batches from the data
  loader. The mixin reads ``max_staleness`` optimizer steps further ahead, and submits each new
  generation round's prompts (tokenized by TRL's own ``_tokenize_prompts``) to the sampler right
  after sending it the current weights. The data order is the data loader's, untouched: the same
  prompts, in the same order, as a synchronous run with the same seed.
* ``_generate_single_turn`` — TRL's one call that turns prompt ids into completion ids: the mixin
  hands back the sampler's completions (checking they answer these very prompts) and its
  per-token log-probs. Everything after (decoding, rewards, gates, advantages, metrics) is TRL's.
* ``_generate_and_score_completions`` — after TRL scored the batch, the importance-sampling
  correction is folded into the advantages (see :func:`importance_weights`).

Why not GRPOTrainer's ``rollout_func`` hook: it is called *when* the batch is needed, with that
batch's prompts, so it cannot start generating the next batch earlier without the trainer's data
position (which it does not get), and with it TRL skips its own tokenization and completion
checks; it also needs ``use_vllm`` for weight syncing. Reading ahead in the data loader needs the
Trainer's loop, which the mixin has.

**Staleness.** A round consumed at optimizer step *k* is submitted at step ``k - max_staleness``,
right after the weights of that step; the sampler handles messages in order, so it generates the
round with exactly those weights. Every batch is therefore exactly ``max_staleness`` steps old
(younger in the first steps), never older: the trainer blocks waiting for a rollout instead of ever
training on an older one, and no rollout is discarded. ``max_staleness: 0`` is synchronous
generation in the sampler process. Each batch's age, wait times and importance ratios are logged
(``async/*`` metrics) and written to ``output_dir/async_rollouts.jsonl``.

**Off-policy correction.** The loss's PPO ratio is taken against the trainer's own log-probs at
the step (TRL's ``old_per_token_logps``, or the current ones when generation and optimizer steps
align), and the gap between those and the sampler's is corrected by importance sampling, as TRL's
vLLM path does (``vllm_importance_sampling_correction``; the same GRPOConfig fields set the mode and
caps). With async generation the recipe's default mode is ``token_truncate`` with cap 2 (each
token's weight min(π_trainer/π_sampler, 2)), not TRL's ``sequence_mask``: a sequence's ratio is
the product over its tokens, which policy lag pushes past any cap on long completions, masking
whole sequences; truncating per token keeps every token (nothing discarded) with bounded variance
— the choice of Yao et al.'s truncated IS and verl's rollout correction. The weight multiplies the
advantage, which for every loss TRL's ``_compute_loss`` computes from the advantage linearly
(grpo, bnpo, dr_grpo, dapo, luspo, cispo, sapo) is the same as multiplying the per-token loss,
what TRL's vLLM path does; vespo is refused.

**Failures.** Rank 0 waits at most ``step_timeout_s`` (the recipe's, shared with the step watchdog of
:mod:`rl_math.train.watchdog`) for a rollout; a sampler that died or sent an
error ends the run at once, every rank with exit status ``exit_status.STALLED`` and one sentence.

**Resume.** A checkpoint also stores the rollouts already submitted for the steps after it
(``async_rollouts.pt``), so a resumed run trains on exactly the batches the killed one would have:
no batch twice, none dropped, and the same weights as an uninterrupted run. The sampler outlives a
killed trainer (``output_dir/.async_sampler/address.json``) and serves the resumed one; an
orphaned sampler exits after ``step_timeout_s`` without a trainer.

Dynamic sampling refuses to combine with it (its refills are generated after a batch is scored,
which would serialise generation again), as do PEFT, ``use_vllm`` and tools.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import math
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import torch
from trl import GRPOTrainer

from rl_math import exit_status, sampler
from rl_math.errors import ConfigError

logger = logging.getLogger(__name__)

SAMPLER_DIR = ".async_sampler"
RECORD_FILE = "async_rollouts.jsonl"
CHECKPOINT_FILE = "async_rollouts.pt"
ASYNC_IS_DEFAULTS = {"vllm_importance_sampling_mode": "token_truncate", "vllm_importance_sampling_clip_max": 2.0}
# settings that make the sampler draw from another distribution than the trainer's softmax(logits / T)
_DISTORTING = {"top_p": 1.0, "top_k": 0, "min_p": None, "repetition_penalty": 1.0}


@dataclasses.dataclass
class AsyncGenerationArguments:
    """Decoupled generation: a sampler process generates while the trainer trains (off by default)."""

    async_generation: bool = dataclasses.field(
        default=False,
        metadata={"help": "Generate in a separate sampler process, max_staleness optimizer steps ahead of training."},
    )
    max_staleness: int = dataclasses.field(
        default=1,
        metadata={"help": "How many optimizer steps older than the trainer's weights a rollout may be (0: in step)."},
    )
    async_sampler_address: str | None = dataclasses.field(
        default=None,
        metadata={"help": "host:port of a sampler started on its own (python -m rl_math.sampler); "
                          "null: the trainer starts one on this machine. The key is $RL_MATH_SAMPLER_AUTHKEY."},
    )
    async_sampler_backend: str = dataclasses.field(
        default="transformers",
        metadata={"help": "The sampler's generator: transformers (tested) or vllm (GPU; a sketch, untested)."},
    )

    def __post_init__(self) -> None:
        if self.max_staleness < 0:
            raise ConfigError(f"max_staleness must be 0 or more, got {self.max_staleness}")
        if self.async_sampler_backend not in sampler.BACKENDS:
            raise ConfigError(
                f"async_sampler_backend {self.async_sampler_backend!r} is not one of {sorted(sampler.BACKENDS)}"
            )


def check_async_generation(values: dict[str, Any], explicit: set[str]) -> None:
    """What async generation cannot combine with, in one sentence; its importance-sampling defaults."""
    if not values.get("async_generation"):
        return
    refused = {
        "dynamic_sampling": "dynamic sampling's refills are generated after a batch is scored, which would "
                            "serialise generation again",
        "use_vllm": "TRL's vLLM generates inside the trainer; the async sampler has its own backend "
                    "(async_sampler_backend)",
        "use_peft": "the sampler loads full weights, not adapters",
    }
    for key, why in refused.items():
        if values.get(key):
            raise ConfigError(f"async_generation cannot be combined with {key}: {why}; turn one of them off")
    if values.get("loss_type") == "vespo":
        raise ConfigError("async_generation cannot be combined with loss_type vespo, whose weights are not linear in "
                          "the advantage the importance correction scales; choose another loss_type")
    for key, value in ASYNC_IS_DEFAULTS.items():
        if key not in explicit:
            values[key] = value


# --------------------------------------------------------------------------------------------
# Pure pieces: the schedule and the importance weights


def round_schedule(micro_step: int, generate_every: int, accumulation: int) -> tuple[int, int] | None:
    """(generation round, optimizer step that trains on it) when micro-batch `micro_step` starts a round, else None.

    TRL generates once every ``steps_per_generation × num_iterations`` micro-batches.

    >>> [round_schedule(m, generate_every=2, accumulation=2) for m in range(5)]
    [(0, 0), None, (1, 1), None, (2, 2)]
    >>> round_schedule(6, generate_every=4, accumulation=2)
    """
    if micro_step % generate_every:
        return None
    return micro_step // generate_every, micro_step // accumulation


def importance_weights(trainer_logps: torch.Tensor, sampler_logps: torch.Tensor, mask: torch.Tensor,
                       mode: str = "token_truncate", clip_min: float | None = None,
                       clip_max: float | None = 2.0) -> tuple[torch.Tensor, dict[str, float]]:
    """Importance weights π_trainer/π_sampler as TRL's vLLM correction computes them, and their statistics.

    `mode` is TRL's ``vllm_importance_sampling_mode``: ``token_truncate``/``sequence_truncate`` clamp
    the ratio into [clip_min, clip_max], ``token_mask``/``sequence_mask`` set it to 0 outside. Token
    modes give (B, T) weights, sequence modes (B, 1) (the ratio of the sequence: the product over its
    tokens). NaN sampler log-probs weigh 1, as in TRL. The statistics are over the masked tokens:
    ``log_ratio_mean`` (signed), ``log_ratio_max`` (absolute) and ``clipped_frac``, the share of
    tokens (or sequences) truncated or masked.

    >>> lp = torch.tensor([[-1.0, -2.0]])
    >>> w, stats = importance_weights(lp, lp - torch.tensor([[0.0, 1.0]]), torch.ones(1, 2))
    >>> [round(x, 3) for x in w[0].tolist()], stats["clipped_frac"]
    ([1.0, 2.0], 0.5)
    >>> w, _ = importance_weights(lp, lp, torch.ones(1, 2), mode="sequence_mask", clip_max=3.0)
    >>> w.tolist()
    [[1.0]]
    """
    diff = torch.nan_to_num((trainer_logps - sampler_logps) * mask, nan=0.0)
    sequence = mode.startswith("sequence")
    log_ratio = diff.sum(dim=-1, keepdim=True) if sequence else diff
    ratio = torch.exp(log_ratio)
    low = -math.inf if clip_min is None else clip_min
    high = math.inf if clip_max is None else clip_max
    outside = (ratio < low) | (ratio > high)
    if mode.endswith("truncate"):
        weights = ratio.clamp(min=clip_min, max=clip_max)
    elif mode.endswith("mask"):
        weights = ratio.masked_fill(outside, 0.0)
    else:
        raise ValueError(f"unknown importance sampling mode {mode!r}")
    tokens = mask.bool()
    per_token = diff[tokens]
    counted = outside.squeeze(-1) if sequence else outside[tokens]
    stats = {
        "log_ratio_mean": per_token.mean().item() if per_token.numel() else 0.0,
        "log_ratio_max": per_token.abs().max().item() if per_token.numel() else 0.0,
        "clipped_frac": counted.float().mean().item() if counted.numel() else 0.0,
        "weight_mean": (weights.expand_as(diff)[tokens].mean().item() if tokens.any() else 1.0),
    }
    return weights, stats


def weigh_advantages(advantages: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Advantages scaled by importance weights: (B,) by (B, 1) stays (B,); by (B, T) becomes (B, T).

    >>> weigh_advantages(torch.tensor([1.0, -2.0]), torch.tensor([[0.5], [1.0]])).tolist()
    [0.5, -2.0]
    >>> weigh_advantages(torch.tensor([1.0]), torch.tensor([[0.5, 2.0]])).tolist()
    [[0.5, 2.0]]
    """
    if weights.size(-1) == 1:
        return advantages * weights.squeeze(-1).to(advantages.dtype)
    return advantages.unsqueeze(-1) * weights.to(advantages.dtype)


def distorting_settings(generation_kwargs: dict[str, Any]) -> list[str]:
    """Sampling settings that make the sampler's distribution differ from softmax(logits / temperature).

    >>> distorting_settings({"top_p": 0.9, "top_k": 0, "min_p": None, "repetition_penalty": 1.0})
    ['top_p=0.9']
    """
    return [f"{key}={generation_kwargs[key]}" for key, neutral in _DISTORTING.items()
            if generation_kwargs.get(key, neutral) not in (neutral, None) and
            not (key == "top_k" and generation_kwargs.get(key) in (0, None))]


def round_seed(seed: int, round_index: int) -> int:
    """The sampler's torch seed for a round: the same in every run with this seed, whatever the timing.

    >>> round_seed(1, 0) != round_seed(1, 1)
    True
    """
    return (seed * 1_000_003 + round_index * 7_919 + 17) % (2**31)


# --------------------------------------------------------------------------------------------
# The connection to the sampler (rank 0 only)


class SamplerFailure(RuntimeError):
    """The sampler died, stalled or reported an error; the message is the one sentence the run ends with."""


class SamplerClient:
    """Rank 0's link to the sampler: starts or finds it, sends in a background thread, receives with a timeout."""

    def __init__(self, folder: str, timeout_s: float, address: str | None = None,
                 backend: str = "transformers") -> None:
        self.folder, self.timeout_s, self.backend = folder, timeout_s, backend
        self.process: subprocess.Popen | None = None
        self.pid: int | None = None
        self.reused = False
        Path(folder).mkdir(parents=True, exist_ok=True)
        if address:
            host, _, port = address.rpartition(":")
            self.where = f"the sampler at {address}"
            self.conn = sampler.connect(host, int(port), sampler.authkey(folder), timeout_s=60)
        else:
            self.conn = self._find_or_start()
            self.where = f"the sampler process (pid {self.pid}, log {Path(folder) / 'sampler.log'})"
        self._outbox: queue.Queue = queue.Queue()
        self._send_error: BaseException | None = None
        self._sender = threading.Thread(target=self._send_loop, daemon=True, name="rl-math-sampler-send")
        self._sender.start()
        self.results: dict[int, dict[str, Any]] = {}
        self.prompts: dict[int, list[list[int]]] = {}  # each submitted round's prompt ids, all ranks'

    def _find_or_start(self):
        key = sampler.authkey(self.folder, create=True)
        known = sampler.read_address(self.folder)
        if known and _alive(known["pid"]):
            try:
                conn = sampler.connect(known["host"], known["port"], key, timeout_s=5)
                self.pid, self.reused = known["pid"], True
                logger.info("async generation: reusing the running sampler (pid %d)", self.pid)
                return conn
            except OSError:
                pass
        (Path(self.folder) / sampler.ADDRESS_FILE).unlink(missing_ok=True)
        log = open(Path(self.folder) / "sampler.log", "ab")  # noqa: SIM115 - the child keeps writing to it
        idle = self.timeout_s if self.timeout_s > 0 else 1800
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rl_math.sampler", "--dir", self.folder,
             "--backend", self.backend, "--idle-timeout", str(idle)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,  # outlives a killed trainer
        )
        self.pid = self.process.pid
        deadline = time.monotonic() + 120
        while (found := sampler.read_address(self.folder)) is None or found["pid"] != self.pid:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SamplerFailure(f"the sampler process did not start (see {Path(self.folder) / 'sampler.log'})")
            time.sleep(0.1)
        logger.info("async generation: started the sampler (pid %d)", self.pid)
        return sampler.connect(found["host"], found["port"], key)

    def _send_loop(self) -> None:
        while (message := self._outbox.get()) is not None:
            try:
                sampler.send(self.conn, message)
            except BaseException as err:  # noqa: BLE001 - surfaced by the next receive
                self._send_error = err
                return

    def send(self, message: dict[str, Any]) -> None:
        self._outbox.put(message)

    def hello(self, config_dir: str, generation_kwargs: dict[str, Any], stop_ids: list[int], pad_id: int) -> None:
        self.send({"type": "hello", "session": uuid.uuid4().hex[:8], "config_dir": config_dir,
                   "generation_config": generation_kwargs, "stop_ids": stop_ids, "pad_id": pad_id})
        self._next(expect="ready")

    def wait_for(self, round_index: int) -> tuple[dict[str, Any], float]:
        """The rollout of a round and how long the trainer waited for it."""
        started = time.monotonic()
        while round_index not in self.results:
            message = self._next(expect="rollout")
            message["prompt_ids"] = self.prompts.pop(message["round"])
            self.results[message["round"]] = message
            self._remove_weights_before(message["version"])
        return self.results.pop(round_index), time.monotonic() - started

    def _remove_weights_before(self, version: int) -> None:
        """Weight files the sampler has moved past (it loads them in order)."""
        for path in Path(self.folder).glob("weights-v*.pt"):
            if int(path.stem.removeprefix("weights-v")) < version:
                path.unlink(missing_ok=True)

    def _next(self, expect: str) -> dict[str, Any]:
        deadline = None if self.timeout_s <= 0 else time.monotonic() + self.timeout_s
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise SamplerFailure(f"{self.where} died with exit status {self.process.returncode}")
            if self._send_error is not None:
                raise SamplerFailure(f"{self.where} closed the connection (it died): {self._send_error!r}")
            try:
                ready = self.conn.poll(1.0)
                message = sampler.receive(self.conn) if ready else None
            except (EOFError, OSError):
                raise SamplerFailure(f"{self.where} closed the connection (it died)") from None
            if message is not None:
                if message["type"] == "error":
                    raise SamplerFailure(f"{self.where} failed: {message['message']}")
                if message["type"] == expect:
                    return message
                raise SamplerFailure(f"{self.where} sent {message['type']!r} where {expect!r} was due")
            if deadline is not None and time.monotonic() > deadline:
                raise SamplerFailure(f"{self.where} sent no {expect} within step_timeout_s={self.timeout_s:g} s")

    def close(self, stop: bool) -> None:
        if stop:
            self.send({"type": "stop"})
        self._outbox.put(None)
        self._sender.join(timeout=10)
        self.conn.close()
        if stop and self.process is not None:
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if stop:  # a finished run needs no weight file (each is a copy of the model)
            for path in Path(self.folder).glob("weights-v*.pt"):
                path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# The trainer mixin


class AsyncRolloutsMixin:
    """Makes a GRPOTrainer (sub)class train on rollouts from a sampler process; put it before the trainer class."""

    def __init__(self, *args, async_args: AsyncGenerationArguments | None = None, step_timeout_s: float = 1800.0,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.async_args = async_args or AsyncGenerationArguments(async_generation=True)
        self.step_timeout_s = step_timeout_s  # the recipe's one timeout (RecipeArguments), the step watchdog's too
        self._sampler: SamplerClient | None = None
        self._pending: collections.deque = collections.deque()  # (round, optimizer step that trains on it)
        self._restored: set[int] = set()  # rounds a resumed run took from its checkpoint, not to submit again
        self._lookahead: collections.deque = collections.deque()
        self._lookahead_iterator = None
        self._pulled: int | None = None
        self._pushed_version: int | None = None
        self._resume_from: str | None = None
        self._current: dict[str, Any] | None = None
        self._warned_distortion = False

    # ---- life cycle

    def train(self, resume_from_checkpoint=None, *args, **kwargs):
        self._resume_from = resume_from_checkpoint if isinstance(resume_from_checkpoint, str) else None
        finished = False
        try:
            output = super().train(resume_from_checkpoint, *args, **kwargs)
            finished = self.state.global_step >= self.state.max_steps
            return output
        finally:
            if self._sampler is not None:
                self._sampler.close(stop=finished)  # else it waits for the resumed run
                self._sampler = None

    @property
    def _is_main(self) -> bool:
        return self.accelerator.is_main_process

    def _start_sampler(self) -> None:
        folder = os.path.join(self.args.output_dir, SAMPLER_DIR)
        self._record_path = Path(self.args.output_dir) / RECORD_FILE
        if self._is_main:
            self._sampler = SamplerClient(folder, self.step_timeout_s,
                                          self.async_args.async_sampler_address, self.async_args.async_sampler_backend)
            config_dir = os.path.join(folder, "model_config")
            self.accelerator.unwrap_model(self.model).config.save_pretrained(config_dir)
            self._sampler.hello(config_dir, dict(self.generation_kwargs), list(self.eos_token_ids),
                                self._tokenizer.pad_token_id)
            self._keep_records_before(self.state.global_step)
        if distorting := distorting_settings(self.generation_kwargs):
            logger.warning("async generation: %s make the sampler draw from a truncated or penalised distribution; "
                           "its log-probs are of that distribution, the trainer's are of softmax(logits / "
                           "temperature), so importance ratios also absorb that gap", ", ".join(distorting))
        self._pulled = self.state.global_step * self.args.gradient_accumulation_steps
        if self._resume_from:
            self._restore_rounds(self._resume_from)

    def _keep_records_before(self, step: int) -> None:
        """A resumed run rewrites the per-batch records of the steps it trains again."""
        if not self._record_path.exists():
            return
        rows = [line for line in self._record_path.read_text().splitlines()
                if line and json.loads(line)["step"] < step]
        self._record_path.write_text("".join(row + "\n" for row in rows))

    def _stop(self, failure: SamplerFailure | str) -> None:
        message = f"async generation: {failure}; exiting with status {exit_status.STALLED}"
        logger.error(message)
        print(f"\n{message}", file=sys.stderr, flush=True)  # on a line of its own, after any progress bar
        raise SystemExit(exit_status.STALLED)

    # ---- reading ahead and submitting

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        if self._pulled is None:
            self._start_sampler()
        if epoch_iterator is not self._lookahead_iterator:
            self._lookahead_iterator = epoch_iterator  # a new epoch: nothing of the old one is left to read
        step = self.state.global_step
        accumulation = self.args.gradient_accumulation_steps
        horizon = min(step + self.async_args.max_staleness + 1, self.state.max_steps) * accumulation
        horizon = max(horizon, self._pulled - len(self._lookahead) + num_batches)
        generate_every = self.args.steps_per_generation * self.num_iterations
        new_rounds = []
        while self._pulled < horizon:
            try:
                batch = next(epoch_iterator)
            except StopIteration:
                break
            self._lookahead.append(batch)
            due = round_schedule(self._pulled, generate_every, accumulation)
            if due is not None and due[0] not in self._restored:
                new_rounds.append((*due, batch))
            elif due is not None:
                self._restored.discard(due[0])
            self._pulled += 1
        if new_rounds:
            self._submit(new_rounds)
        samples = [self._lookahead.popleft() for _ in range(min(num_batches, len(self._lookahead)))]
        return samples, self._get_num_items_in_batch(samples, device)

    def _submit(self, rounds: list[tuple[int, int, list[dict]]]) -> None:
        version = self.state.global_step
        if self._pushed_version != version:
            self._push_weights(version)
        for round_index, step, batch in rounds:
            prompt_ids, _, _ = self._tokenize_prompts([row["prompt"] for row in batch])
            self._pending.append((round_index, step))
            everyone = _gather_lists(prompt_ids, self.accelerator)
            if self._is_main:
                self._sampler.prompts[round_index] = everyone
                self._sampler.send({"type": "job", "round": round_index, "prompt_ids": everyone,
                                    "seed": round_seed(self.args.seed, round_index)})

    def _push_weights(self, version: int) -> None:
        from trl.models import unwrap_model_for_generation

        with unwrap_model_for_generation(self.model_wrapped, self.accelerator,
                                         gather_deepspeed3_params=self.args.ds3_gather_for_generation) as model:
            if self._is_main:
                folder = Path(self._sampler.folder)
                path = folder / f"weights-v{version}.pt"
                state = {name: tensor.detach().to("cpu", copy=True) for name, tensor in model.state_dict().items()}
                torch.save(state, folder / f".{path.name}.tmp")
                os.replace(folder / f".{path.name}.tmp", path)
                self._sampler.send({"type": "weights", "version": version, "path": str(path)})
        self._pushed_version = version

    # ---- handing rollouts to TRL

    def _take_rollout(self) -> dict[str, Any]:
        """The next round's global rollout, from rank 0 to every rank; a failure stops every rank."""
        round_index, step = self._pending.popleft()
        payload: Any = None
        if self._is_main:
            try:
                rollout, waited = self._sampler.wait_for(round_index)
                payload = {**rollout, "trainer_wait_s": waited}
            except SamplerFailure as failure:
                payload = {"failure": str(failure)}
        payload = _broadcast(payload, self.accelerator)
        if "failure" in payload:
            self._stop(payload["failure"])
        payload["step"] = step
        return payload

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        if not self.model.training:
            return super()._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations, has_tool_images)
        rollout = self._take_rollout()
        rank, size = self.accelerator.process_index, len(prompt_ids)
        rows = slice(rank * size, (rank + 1) * size)
        if [list(p) for p in prompt_ids] != rollout["prompt_ids"][rows]:
            raise RuntimeError(f"async generation: round {rollout['round']}'s rollouts answer other prompts than "
                               "the batch being trained (a data-order bug)")
        age = self.state.global_step - rollout["version"]
        if age > self.async_args.max_staleness:
            raise RuntimeError(f"async generation: round {rollout['round']} is {age} steps old, over max_staleness")
        self._current = {**rollout, "age": age}
        return rollout["completion_ids"][rows], rollout["logprobs"][rows]

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        if not self.model.training or self._current is None:
            return output
        rollout, self._current = self._current, None
        mask = output["completion_mask"]
        trainer_logps = output.get("old_per_token_logps")
        if trainer_logps is None:  # generation and optimizer steps align: the step's weights are the current ones
            trainer_logps = self._trainer_logps(output)
        weights, stats = importance_weights(
            trainer_logps, output["sampling_per_token_logps"], mask, self.args.vllm_importance_sampling_mode,
            self.args.vllm_importance_sampling_clip_min, self.args.vllm_importance_sampling_clip_max,
        )
        output["advantages"] = weigh_advantages(output["advantages"], weights)
        self._log_round(rollout, stats)
        return output

    def _trainer_logps(self, output: dict[str, Any]) -> torch.Tensor:
        from trl.models.utils import disable_gradient_checkpointing

        ids = torch.cat([output["prompt_ids"], output["completion_ids"]], dim=1)
        attention = torch.cat([output["prompt_mask"], output["completion_mask"]], dim=1)
        with torch.no_grad(), disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs):
            logps, _, _ = self._get_per_token_logps_and_entropies(
                self.model, ids, attention, output["completion_ids"].size(1),
                batch_size=self.args.per_device_train_batch_size,
            )
        return logps

    def _log_round(self, rollout: dict[str, Any], stats: dict[str, float]) -> None:
        values = torch.tensor([stats["log_ratio_mean"], stats["clipped_frac"], stats["weight_mean"],
                               stats["log_ratio_max"]], device=self.accelerator.device)
        gathered = self.accelerator.gather(values.unsqueeze(0)).view(-1, 4)
        mean = gathered[:, :3].mean(dim=0).tolist()
        record = {
            "round": rollout["round"], "step": rollout["step"], "version": rollout["version"], "age": rollout["age"],
            "trainer_wait_s": rollout["trainer_wait_s"], "sampler_wait_s": rollout["wait_s"],
            "generate_s": rollout["generate_s"], "weights_load_s": rollout["load_s"],
            "log_ratio_mean": mean[0], "log_ratio_max": gathered[:, 3].max().item(),
            "clipped_frac": mean[1], "weight_mean": mean[2],
        }
        metrics = self._metrics["train"]
        for key in ("age", "trainer_wait_s", "sampler_wait_s", "log_ratio_mean", "log_ratio_max", "clipped_frac",
                    "weight_mean"):
            metrics[f"async/{'staleness' if key == 'age' else key}"].append(record[key])
        if self._is_main:
            with open(self._record_path, "a") as handle:
                handle.write(json.dumps(record) + "\n")

    # ---- checkpoints carry the rounds already submitted

    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

        folder = os.path.join(self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
        pending = [round_index for round_index, _ in self._pending]
        if not self._is_main:
            return
        try:
            rollouts = [self._sampler.wait_for(r)[0] for r in pending]
        except SamplerFailure as failure:
            self._stop(failure)  # noqa: RET503 - a dead sampler on rank 0 ends the run; other ranks stop at the next broadcast
        self._sampler.results.update({r["round"]: r for r in rollouts})
        torch.save({"rounds": rollouts}, os.path.join(folder, CHECKPOINT_FILE))

    def _restore_rounds(self, checkpoint: str) -> None:
        path = os.path.join(checkpoint, CHECKPOINT_FILE)
        if not os.path.exists(path):
            logger.warning("async generation: %s holds no submitted rollouts; the next rounds are generated "
                           "with the checkpoint's weights", checkpoint)
            return
        rollouts = torch.load(path, weights_only=False)["rounds"]
        self._restored = {r["round"] for r in rollouts}
        accumulation = self.args.gradient_accumulation_steps
        generate_every = self.args.steps_per_generation * self.num_iterations
        for rollout in sorted(rollouts, key=lambda r: r["round"]):
            if self._is_main:
                self._sampler.results[rollout["round"]] = rollout
            self._pending.append((rollout["round"], rollout["round"] * generate_every // accumulation))
        logger.info("async generation: restored %d submitted rounds from %s", len(rollouts), checkpoint)


def _gather_lists(items: list, accelerator) -> list:
    if accelerator.num_processes == 1:
        return list(items)
    from accelerate.utils import gather_object

    return gather_object(list(items))


def _broadcast(obj: Any, accelerator) -> Any:
    if accelerator.num_processes == 1:
        return obj
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([obj], from_process=0)[0]


class AsyncGRPOTrainer(AsyncRolloutsMixin, GRPOTrainer):
    """TRL's GRPOTrainer with generation in a sampler process."""


def async_trainer_class(args: AsyncGenerationArguments, base, step_timeout_s: float = 1800.0):
    """`base` (a GRPOTrainer class or a partial of one) with async generation when ``async_generation`` is on.

    `step_timeout_s` is the recipe's (RecipeArguments, shared with the step watchdog): how long rank 0
    waits for a rollout before the run stops with status 4.

    >>> async_trainer_class(AsyncGenerationArguments(), GRPOTrainer) is GRPOTrainer
    True
    """
    import functools

    if not args.async_generation:
        return base
    cls = base.func if isinstance(base, functools.partial) else base
    keywords = base.keywords if isinstance(base, functools.partial) else {}
    trainer = type(cls.__name__, (AsyncRolloutsMixin, cls), {})
    return functools.partial(trainer, async_args=args, step_timeout_s=step_timeout_s, **keywords)
