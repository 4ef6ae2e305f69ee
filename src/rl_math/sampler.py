"""The sampler of asynchronous GRPO: its own process, fed prompts and new weights, returning rollouts.

    python -m rl_math.sampler --dir OUTPUT_DIR/.async_sampler          # started by the trainer
    python -m rl_math.sampler --dir DIR --host 0.0.0.0 --port 29700    # started on its own (SLURM)

The trainer (:mod:`rl_math.train.async_rollouts`) starts it, or connects to one already running
(a resumed trainer finds the one its killed predecessor started: the sampler outlives the trainer).
It listens on a TCP socket (`multiprocessing.connection`, with an auth key: ``$RL_MATH_SAMPLER_AUTHKEY``,
else the key file the trainer wrote in ``--dir``) and serves one trainer at a time. Messages are
pickled dicts, handled strictly in the order they arrive:

=============  =====================================================  ==============================
message        carries                                                the sampler
=============  =====================================================  ==============================
``hello``      model config folder, TRL's generation config, stop    builds the model (kept across
               ids, pad id, a session id                              trainer restarts), replies ready
``weights``    version (the trainer's optimizer step), a file path    loads the weights
``job``        generation round, prompt token ids (one per row),     generates, replies ``rollout``
               seed
``stop``       —                                                      exits
=============  =====================================================  ==============================

A ``rollout`` holds, per row, the completion's token ids (cut after the first stop token, which is
kept, as TRL cuts them) and the log-probability the sampler gave each of those tokens (the
*processed* distribution it drew from: after temperature, top-k/top-p/min-p and repetition
penalty, like vLLM's ``processed_logprobs`` that TRL's vLLM path uses), plus the weight version it
was generated with and how long the sampler generated, loaded weights and sat idle.

Because messages are handled in order and the trainer sends the weights of step *v* before the
jobs it submits at step *v*, a job is always generated with exactly the weights of the step it was
submitted at: the staleness of every rollout is fixed by the trainer's schedule, not by timing, so
an asynchronous run is as reproducible as a synchronous one.

Weights travel as files (``torch.save`` then an atomic rename), not through the socket: measured
on the 2-core CPU machine (2026-12-06, load 2.0), moving a 191 MiB state dict took 1411 ms pickled
through the socket and 449 ms as a file save plus load (19 MiB: 59 ms vs 16 ms; the tiny model:
3 ms vs 2 ms); a file also lets the trainer send without waiting for a busy sampler to read.

Backends: Hugging Face ``generate`` (CPU and tests; what is tested) and vLLM (:class:`VLLMBackend`,
a sketch for GPUs: written against vLLM's offline ``LLM`` API and NOT run here — no GPU and no vLLM
on the machines this was built on).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import secrets
import sys
import threading
import time
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import Any

from rl_math.sampling import finish_completion

logger = logging.getLogger("rl_math.sampler")

ADDRESS_FILE = "address.json"
AUTHKEY_FILE = "authkey"
AUTHKEY_ENV = "RL_MATH_SAMPLER_AUTHKEY"


# --------------------------------------------------------------------------------------------
# Wire format: pickled dicts through send_bytes (plain pickle: torch's ForkingPickler would pass
# tensors as shared-memory handles, which an unrelated process cannot open)


def send(conn: Connection, message: dict[str, Any]) -> None:
    conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))


def receive(conn: Connection) -> dict[str, Any]:
    return pickle.loads(conn.recv_bytes())


def authkey(folder: str | os.PathLike, create: bool = False) -> bytes:
    """The socket's auth key: ``$RL_MATH_SAMPLER_AUTHKEY``, else the run's key file (made with `create`)."""
    if os.environ.get(AUTHKEY_ENV):
        return os.environ[AUTHKEY_ENV].encode()
    path = Path(folder) / AUTHKEY_FILE
    if create and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(16))
    return path.read_text().strip().encode()


def read_address(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The running sampler's ``{"host", "port", "pid"}`` as it wrote them, or None."""
    path = Path(folder) / ADDRESS_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def connect(host: str, port: int, key: bytes, timeout_s: float = 10.0) -> Connection:
    """A connection to the sampler at host:port, retried for `timeout_s` while it starts."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return Client((host, port), authkey=key)
        except (ConnectionRefusedError, FileNotFoundError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# --------------------------------------------------------------------------------------------
# Backends


def completion_logprobs(scores, sequences, prompt_width: int) -> list[list[float]]:
    """Per row, the log-probability of each generated token under the processed scores it was drawn from.

    >>> import torch
    >>> scores = (torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, float("-inf")]]))
    >>> completion_logprobs(scores, torch.tensor([[9, 1, 0]]), prompt_width=1)
    [[-0.6931471824645996, 0.0]]
    """
    import torch

    steps = torch.stack(scores, dim=1).float().log_softmax(dim=-1)  # (B, T, V)
    chosen = sequences[:, prompt_width : prompt_width + steps.size(1)]
    return steps.gather(-1, chosen.unsqueeze(-1)).squeeze(-1).tolist()


def generation_config_of(kwargs: dict[str, Any]):
    """The GenerationConfig GRPOTrainer builds from its `generation_kwargs` (TRL 1.16, grpo_trainer.py)."""
    from transformers import GenerationConfig

    config = GenerationConfig(**kwargs, disable_compile=True)
    config.output_scores = config.return_dict_in_generate = True  # the sampler's log-probs come from the scores
    return config


class HFBackend:
    """Hugging Face ``generate`` on a model rebuilt from the trainer's config; weights come as files."""

    def __init__(self, config_dir: str, generation_config: dict[str, Any], stop_ids: list[int], pad_id: int):
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        config = AutoConfig.from_pretrained(config_dir)
        self.model = AutoModelForCausalLM.from_config(config, dtype=getattr(config, "dtype", None) or torch.float32)
        self.model.eval()
        # a trainer's config says use_cache: false (gradient checkpointing); generate() then takes that as the
        # model's default over GenerationConfig's own and decodes without a KV cache, ~6x slower on the
        # learning benchmark's model (measured 0.90 s vs 0.14 s per 64 completions of 24 tokens)
        self.model.config.use_cache = self.model.generation_config.use_cache = True
        self.generation_config = generation_config_of(generation_config)
        self.stop_ids, self.pad_id = list(stop_ids), pad_id
        self.config_dir = config_dir

    def load_weights(self, path: str) -> None:
        import torch

        state = torch.load(path, map_location="cpu", weights_only=True)
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        tied = set(getattr(self.model, "all_tied_weights_keys", {}) or {}) | {"lm_head.weight"}
        if unexpected or set(missing) - tied:
            raise RuntimeError(f"weights {path} do not fit the model: missing {missing}, unexpected {unexpected}")

    def generate(self, prompt_ids: list[list[int]], seed: int) -> tuple[list[list[int]], list[list[float]]]:
        import torch

        width = max(len(p) for p in prompt_ids)
        input_ids = torch.tensor([[self.pad_id] * (width - len(p)) + p for p in prompt_ids])
        attention = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompt_ids])
        torch.manual_seed(seed)
        with torch.inference_mode():
            out = self.model.generate(input_ids=input_ids, attention_mask=attention,
                                      generation_config=self.generation_config)
        logprobs = completion_logprobs(out.scores, out.sequences, width)
        completions, kept = [], []
        for row, lps in zip(out.sequences[:, width:].tolist(), logprobs):
            ids, _, _ = finish_completion(row, self.stop_ids, self.generation_config.max_new_tokens or len(row))
            completions.append(ids)
            kept.append(lps[: len(ids)])
        return completions, kept


class VLLMBackend:
    """vLLM's offline engine as the sampler (GPU). A SKETCH, NOT RUN: no GPU or vLLM where this was written.

    Weights are loaded from the trainer's file through the model runner's ``load_weights`` (the call
    TRL's colocate mode makes); on a real cluster TRL's NCCL weight transfer to a ``vllm serve``
    process is the faster path (see the README's SLURM section).
    """

    def __init__(self, config_dir: str, generation_config: dict[str, Any], stop_ids: list[int], pad_id: int):
        from vllm import LLM

        self.llm = LLM(model=config_dir, load_format="dummy", enable_prefix_caching=True,
                       gpu_memory_utilization=float(os.environ.get("RL_MATH_SAMPLER_GPU_MEMORY", "0.85")),
                       logprobs_mode="processed_logprobs")
        self.generation_config, self.stop_ids = generation_config, list(stop_ids)

    def load_weights(self, path: str) -> None:
        import torch

        state = torch.load(path, map_location="cpu", weights_only=True)
        model = self.llm.llm_engine.model_executor.driver_worker.worker.model_runner.model
        model.load_weights(state.items())
        self.llm.reset_prefix_cache()

    def generate(self, prompt_ids: list[list[int]], seed: int) -> tuple[list[list[int]], list[list[float]]]:
        from vllm import SamplingParams

        g = self.generation_config
        params = [
            SamplingParams(n=1, temperature=g.get("temperature") or 1.0, top_p=g.get("top_p") or 1.0,
                           top_k=g.get("top_k") or -1, min_p=g.get("min_p") or 0.0,
                           max_tokens=g["max_new_tokens"], stop_token_ids=self.stop_ids, logprobs=0,
                           seed=seed + i)
            for i in range(len(prompt_ids))
        ]
        outputs = self.llm.generate([{"prompt_token_ids": p} for p in prompt_ids], params, use_tqdm=False)
        completions, logprobs = [], []
        for request in outputs:
            done = request.outputs[0]
            completions.append(list(done.token_ids))
            logprobs.append([next(iter(step.values())).logprob for step in done.logprobs])
        return completions, logprobs


BACKENDS = {"transformers": HFBackend, "vllm": VLLMBackend}


# --------------------------------------------------------------------------------------------
# The serving loop


class Sampler:
    """Serves trainers one after another; the model survives a trainer's disconnect (a restart)."""

    def __init__(self, backend: str = "transformers"):
        self.backend_name = backend
        self.backend = None
        self.version: int | None = None
        self.last_message = time.monotonic()

    def serve(self, conn: Connection) -> bool:
        """Handle one trainer's messages until it disconnects (False) or says stop (True)."""
        idle_since = time.monotonic()
        load_s = 0.0
        while True:
            try:
                message = receive(conn)
            except (EOFError, OSError):
                logger.info("trainer disconnected; waiting for the next one (a resumed run)")
                return False
            self.last_message = time.monotonic()
            kind = message["type"]
            if kind == "stop":
                return True
            try:
                if kind == "hello":
                    self._hello(message)
                    send(conn, {"type": "ready", "pid": os.getpid()})
                    idle_since = time.monotonic()
                elif kind == "weights":
                    started = time.monotonic()
                    self.backend.load_weights(message["path"])
                    self.version = message["version"]
                    load_s += time.monotonic() - started
                elif kind == "job":
                    wait_s = time.monotonic() - idle_since - load_s
                    started = time.monotonic()
                    completions, logprobs = self.backend.generate(message["prompt_ids"], message["seed"])
                    reply = {
                        "type": "rollout", "round": message["round"], "version": self.version,
                        "completion_ids": completions, "logprobs": logprobs,
                        "generate_s": time.monotonic() - started, "wait_s": wait_s, "load_s": load_s,
                    }
                    try:
                        send(conn, reply)
                    except OSError:  # the trainer went away mid-job (killed): wait for its successor
                        logger.info("trainer disconnected during round %s", message["round"])
                        return False
                    idle_since, load_s = time.monotonic(), 0.0
                else:
                    raise ValueError(f"unknown message type {kind!r}")
            except Exception as err:  # noqa: BLE001 - the trainer reports it in one sentence and stops
                logger.exception("sampler failed on a %s message", kind)
                try:
                    send(conn, {"type": "error", "message": f"{type(err).__name__}: {err}"})
                except OSError:
                    pass
                return True

    def _hello(self, message: dict[str, Any]) -> None:
        same = self.backend is not None and self.backend.config_dir == message["config_dir"]
        if not same:
            self.backend = BACKENDS[self.backend_name](
                message["config_dir"], message["generation_config"], message["stop_ids"], message["pad_id"]
            )
        elif self.backend_name == "transformers":
            self.backend.generation_config = generation_config_of(message["generation_config"])
        logger.info("trainer session %s connected (%s model)", message["session"], "kept the" if same else "built the")


def _exit_when_idle(sampler: Sampler, idle_timeout_s: float) -> None:
    """An orphaned sampler (its trainer killed and never resumed) exits after `idle_timeout_s`."""
    while True:
        time.sleep(min(5.0, idle_timeout_s))
        if time.monotonic() - sampler.last_message > idle_timeout_s:
            logger.warning("no trainer message for %.0f s: exiting", idle_timeout_s)
            os._exit(0)


def run(folder: str, host: str = "127.0.0.1", port: int = 0, backend: str = "transformers",
        idle_timeout_s: float = 1800.0) -> None:
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
    Path(folder).mkdir(parents=True, exist_ok=True)
    listener = Listener((host, port), authkey=authkey(folder))
    address = {"host": "127.0.0.1" if host in ("0.0.0.0", "") else host, "port": listener.address[1], "pid": os.getpid()}
    tmp = Path(folder) / f".{ADDRESS_FILE}.{os.getpid()}"
    tmp.write_text(json.dumps(address))
    os.replace(tmp, Path(folder) / ADDRESS_FILE)
    logger.info("sampler (pid %d) listening on %s:%d", os.getpid(), address["host"], address["port"])
    sampler = Sampler(backend)
    if idle_timeout_s > 0:
        threading.Thread(target=_exit_when_idle, args=(sampler, idle_timeout_s), daemon=True).start()
    while True:
        try:
            conn = listener.accept()
        except Exception as err:  # noqa: BLE001 - a client with a wrong key: refuse it, keep serving
            logger.warning("refused a connection: %r", err)
            continue
        sampler.last_message = time.monotonic()
        with conn:
            if sampler.serve(conn):
                break
    listener.close()
    logger.info("sampler (pid %d) stopped", os.getpid())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, help="folder for the address file, the key and weight files")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (written to DIR/address.json)")
    parser.add_argument("--backend", choices=sorted(BACKENDS), default="transformers")
    parser.add_argument("--idle-timeout", type=float, default=1800.0, help="exit after this long without a trainer")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s sampler %(levelname)s %(message)s", stream=sys.stderr)
    run(args.dir, args.host, args.port, args.backend, args.idle_timeout)


if __name__ == "__main__":
    main()
