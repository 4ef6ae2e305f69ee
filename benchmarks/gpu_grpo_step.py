"""One GRPO step on a GPU with the real Qwen2.5 shapes: where the time and the memory go.

    python benchmarks/gpu_grpo_step.py --model-config .bench/Qwen2.5-0.5B-Instruct .bench/Qwen2.5-1.5B-Instruct
    python benchmarks/gpu_grpo_step.py --model-config PATH --completion-tokens 256 512 --checkpointing on off --liger auto
    python benchmarks/gpu_grpo_step.py --cpu-smoke          # the code path on a CPU, tiny model (no numbers)

For every model config (a folder with config.json, or the file) × completion length ×
gradient checkpointing × Liger kernel: a randomly initialised bf16 model with exactly the
config's shapes, `GRPOTrainer` with group size 8 (num_generations), `--prompts` prompts per step,
micro-batches of `--micro-batch` completions, every completion exactly N tokens long
(min_new_tokens = max_completion_length, so the random model cannot stop early), our default
reward mix. After `--warmup` steps, `--steps` steps are timed, split by wrapping TRL 1.16's
methods with CUDA-synchronised timers:

  generation   GRPOTrainer._generate_single_turn   (transformers generate)
  rewards      GRPOTrainer._calculate_rewards
  log-probs    GRPOTrainer._get_per_token_logps_and_entropies   (policy forward in compute_loss,
               plus old/reference log-probs when they are needed)
  backward     Accelerator.backward
  optimizer    on_pre_optimizer_step → on_optimizer_step (clip + AdamW)
  step         on_step_begin → on_step_end

and it reports generated tokens/s, training MFU (model FLOPs of the forward+backward passes,
6·Ψ·tokens + attention, over the time of log-probs + backward, against the bf16 matmul peak
measured on this card by a loop of 8192³ bf16 matmuls), and the peak memory
(torch.cuda.max_memory_allocated) of the generation phase and of the whole step. `--json PATH`
writes every number (benchmarks/plan_vs_measured.py reads it).

On a machine without a CUDA GPU it stops at once with a message (exit 2), unless --cpu-smoke.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_footer, print_header, table  # noqa: E402

GROUP_SIZE = 8
NO_GPU_MESSAGE = (
    "gpu_grpo_step.py needs a CUDA GPU and torch.cuda.is_available() is False on this machine. "
    "Run it where a GPU is lent (see BENCHMARKS.md for the exact command and the wheels to carry), "
    "or pass --cpu-smoke to check the code path with a tiny model on the CPU."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-config", nargs="+", metavar="PATH", help="folder(s) with a model config.json (or the file)")
    parser.add_argument("--completion-tokens", nargs="+", type=int, default=[256, 512], metavar="N", help="completion lengths (default: 256 512)")
    parser.add_argument("--group-size", type=int, default=GROUP_SIZE, help="num_generations (default: 8)")
    parser.add_argument("--prompts", type=int, default=8, help="prompts per optimizer step (default: 8, i.e. 64 completions)")
    parser.add_argument("--micro-batch", type=int, default=16, help="per_device_train_batch_size in completions (default: 16)")
    parser.add_argument("--checkpointing", nargs="+", choices=["on", "off"], default=["on", "off"], help="gradient checkpointing (default: on off)")
    parser.add_argument("--liger", choices=["auto", "on", "off", "both"], default="auto", help="use_liger_kernel: auto = on and off when liger-kernel imports, else off")
    parser.add_argument("--steps", type=int, default=1, help="timed steps per variant (default: 1)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (default: 1)")
    parser.add_argument("--tokenizer", default="rl-math:tiny-qwen2", help="tokenizer folder (default: the offline tiny one; the real Qwen2.5 one gives realistic reward inputs)")
    parser.add_argument("--matmul-size", type=int, default=8192, help="side of the bf16 matmuls that measure the peak (default: 8192)")
    parser.add_argument("--json", metavar="PATH", help="write all measurements as JSON")
    parser.add_argument("--cpu-smoke", action="store_true", help="run the code path on the CPU with a tiny model (checks the script, measures nothing useful)")
    return parser


def check_device(cpu_smoke: bool) -> str | None:
    """'cuda', or 'cpu' for --cpu-smoke, or None: no GPU here."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    return "cpu" if cpu_smoke else None


# --------------------------------------------------------------------------------------------
# peak and FLOPs


def measure_matmul_peak(device: str, size: int, repeats: int = 20) -> float:
    """bf16 matmul FLOP/s of this device: the best of 3 timings of `repeats` size³ products."""
    import torch

    if device != "cuda":
        size, repeats = 256, 3
    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(3):
        sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 * repeats / best


def sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def matmul_params(config, params: int) -> int:
    """Parameters used in matmuls for every token (the embedding lookup is not one; a tied head is)."""
    if getattr(config, "tie_word_embeddings", False):
        return params - config.vocab_size * config.hidden_size  # the head is counted separately (completion tokens only)
    return params - 2 * config.vocab_size * config.hidden_size


def training_flops(config, params: int, sequences: int, tokens: int, completion_tokens: int) -> float:
    """Model FLOPs of forward + backward (3 × forward) for `sequences` padded to `tokens`, TRL's fused head on completions."""
    body = 2 * matmul_params(config, params) * sequences * tokens
    attention = 2 * config.num_hidden_layers * sequences * tokens**2 * config.num_attention_heads * (
        getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    )  # QKᵀ and AV, causal half
    head = 2 * config.vocab_size * config.hidden_size * sequences * completion_tokens
    return 3 * (body + attention + head)


# --------------------------------------------------------------------------------------------
# instrumentation


class Timers:
    """Per-step seconds of each section, CUDA-synchronised, plus token counts and peak memory."""

    def __init__(self, device: str):
        self.device = device
        self.step = -1
        self.sections = defaultdict(lambda: defaultdict(float))
        self.counts = defaultdict(lambda: defaultdict(float))
        self.memory = defaultdict(dict)
        self.flop_shapes: list[tuple[int, int, int, int]] = []  # (step, sequences, padded tokens, completion tokens)

    def wrap(self, owner, name: str, section: str, after=None) -> None:
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            sync(self.device)
            start = time.perf_counter()
            result = original(*args, **kwargs)
            sync(self.device)
            self.sections[self.step][section] += time.perf_counter() - start
            if after is not None:
                after(self, args, kwargs, result)
            return result

        setattr(owner, name, timed)

    def reset_peak(self) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.reset_peak_memory_stats()

    def peak(self) -> float:
        if self.device == "cuda":
            import torch

            return float(torch.cuda.max_memory_allocated())
        return float("nan")


def _after_generation(timers: Timers, args, kwargs, result) -> None:
    completion_ids = result[0]
    timers.counts[timers.step]["generated_tokens"] += sum(len(ids) for ids in completion_ids)
    timers.counts[timers.step]["completions"] += len(completion_ids)


def _after_generate_and_score(timers: Timers, args, kwargs, result) -> None:
    timers.memory[timers.step]["generation_phase_peak"] = timers.peak()
    timers.reset_peak()


def _after_compute_loss(timers: Timers, args, kwargs, result) -> None:
    inputs = args[1] if len(args) > 1 else kwargs["inputs"]
    prompt, completion = inputs["prompt_ids"], inputs["completion_ids"]
    timers.counts[timers.step]["train_sequences"] += prompt.size(0)
    timers.counts[timers.step]["train_tokens_padded"] += prompt.size(0) * (prompt.size(1) + completion.size(1))
    timers.counts[timers.step]["train_completion_tokens"] += int(inputs["completion_mask"].sum())
    timers.counts[timers.step]["max_sequence_tokens"] = max(
        timers.counts[timers.step]["max_sequence_tokens"], prompt.size(1) + completion.size(1)
    )
    timers.counts[timers.step]["micro_batches"] += 1
    timers.flop_shapes.append((timers.step, prompt.size(0), prompt.size(1) + completion.size(1), completion.size(1)))


def make_callback(timers: Timers):
    from transformers import TrainerCallback

    class StepCallback(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            timers.step += 1
            timers.reset_peak()
            sync(timers.device)
            timers.sections[timers.step]["_begin"] = time.perf_counter()

        def on_pre_optimizer_step(self, args, state, control, **kwargs):
            sync(timers.device)
            timers.sections[timers.step]["_optimizer_begin"] = time.perf_counter()

        def on_optimizer_step(self, args, state, control, **kwargs):
            sync(timers.device)
            timers.sections[timers.step]["optimizer"] += time.perf_counter() - timers.sections[timers.step]["_optimizer_begin"]

        def on_step_end(self, args, state, control, **kwargs):
            sync(timers.device)
            timers.sections[timers.step]["step"] = time.perf_counter() - timers.sections[timers.step]["_begin"]
            timers.memory[timers.step]["rest_of_step_peak"] = timers.peak()

    return StepCallback()


# --------------------------------------------------------------------------------------------
# one variant


def synthetic_prompts(count: int, prompt_format: str = "boxed"):
    from datasets import Dataset

    from rl_math.tasks.arithmetic import generate_problems
    from rl_math.tasks.formats import build_prompt, get_prompt_format
    from rl_math.tasks.gsm8k import TASK as GSM8K

    system = get_prompt_format(prompt_format).system_prompt
    rows = generate_problems(count, seed=7)
    return Dataset.from_list(
        [{"prompt": build_prompt(r["question"], system), "answer": GSM8K.gold(r["answer"])} for r in rows]
    )


def run_variant(config_path: str, completion_tokens: int, checkpointing: bool, liger: bool, args, device: str) -> dict:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from rl_math.models import resolve_model
    from rl_math.rewards import build_rewards
    from rl_math.tasks.formats import default_reward_specs

    config = AutoConfig.from_pretrained(config_path)
    dtype = torch.bfloat16
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation="sdpa")
    params = sum({id(p): p.numel() for p in model.parameters()}.values())
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(args.tokenizer))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    completions = args.prompts * args.group_size
    if completions % args.micro_batch:
        raise SystemExit(f"--prompts × --group-size ({completions}) must be a multiple of --micro-batch ({args.micro_batch})")
    accumulation = completions // args.micro_batch
    steps = args.warmup + args.steps
    funcs, weights = build_rewards(
        default_reward_specs("boxed"),
        context={"eos_token_ids": [tokenizer.eos_token_id], "max_completion_length": completion_tokens},
    )
    training_args = GRPOConfig(
        output_dir=tempfile.mkdtemp(prefix="gpu-grpo-step-"),
        bf16=device == "cuda",
        use_cpu=device != "cuda",
        num_generations=args.group_size,
        per_device_train_batch_size=args.micro_batch,
        gradient_accumulation_steps=accumulation,
        max_completion_length=completion_tokens,
        generation_kwargs={"min_new_tokens": completion_tokens},
        gradient_checkpointing=checkpointing,
        use_liger_kernel=liger,
        learning_rate=1e-6,
        max_steps=steps,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        reward_weights=weights,
        seed=0,
        dataloader_pin_memory=device == "cuda",
        disable_tqdm=True,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=funcs,
        args=training_args,
        train_dataset=synthetic_prompts(args.prompts * steps * 2),
        processing_class=tokenizer,
    )
    timers = Timers(device)
    timers.wrap(trainer, "_generate_single_turn", "generation", _after_generation)
    timers.wrap(trainer, "_generate_and_score_completions", "generate_and_score", _after_generate_and_score)
    timers.wrap(trainer, "_calculate_rewards", "rewards")
    timers.wrap(trainer, "_get_per_token_logps_and_entropies", "log-probs")
    timers.wrap(trainer, "compute_loss", "loss (incl. log-probs)", _after_compute_loss)
    timers.wrap(trainer.accelerator, "backward", "backward")
    trainer.add_callback(make_callback(timers))
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    for quiet in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(quiet)  # one log dict per step would bury the table
    trainer.train()

    measured = [s for s in range(args.warmup, steps)]
    result = {
        "model_config": str(config_path),
        "params": params,
        "completion_tokens": completion_tokens,
        "gradient_checkpointing": checkpointing,
        "liger": liger,
        "completions_per_step": completions,
        "micro_batch": args.micro_batch,
        "gradient_accumulation_steps": accumulation,
        "steps": [],
    }
    for s in measured:
        sec = {k: v for k, v in timers.sections[s].items() if not k.startswith("_")}
        counts = dict(timers.counts[s])
        flops = sum(training_flops(config, params, *shape[1:]) for shape in timers.flop_shapes if shape[0] == s)
        train_seconds = sec.get("loss (incl. log-probs)", 0.0) + sec.get("backward", 0.0)
        result["steps"].append(
            {
                "seconds": sec,
                "counts": counts,
                "training_flops": flops,
                "train_seconds": train_seconds,
                "generation_phase_peak": timers.memory[s].get("generation_phase_peak", float("nan")),
                "rest_of_step_peak": timers.memory[s].get("rest_of_step_peak", float("nan")),
            }
        )
    del trainer, model
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    return result


def liger_choices(mode: str) -> list[bool]:
    try:
        import liger_kernel  # noqa: F401

        available = True
    except ImportError:
        available = False
    if mode == "on":
        return [True]
    if mode == "off":
        return [False]
    if mode == "both":
        return [False, True]
    return [False, True] if available else [False]


def summarise(result: dict, peak_flops: float) -> list[str]:
    steps = result["steps"]

    def med(f):
        values = [f(s) for s in steps]
        return statistics.median(values) if values else float("nan")

    name = Path(result["model_config"]).name or result["model_config"]
    generation = med(lambda s: s["seconds"].get("generation", 0.0))
    tokens = med(lambda s: s["counts"].get("generated_tokens", 0.0))
    mfu = med(lambda s: s["training_flops"] / s["train_seconds"] / peak_flops if s["train_seconds"] else float("nan"))
    peak = med(lambda s: max(s["generation_phase_peak"], s["rest_of_step_peak"]))
    return [
        name,
        str(result["completion_tokens"]),
        "on" if result["gradient_checkpointing"] else "off",
        "on" if result["liger"] else "off",
        f"{med(lambda s: s['seconds'].get('step', 0.0)):.2f}",
        f"{generation:.2f}",
        f"{med(lambda s: s['seconds'].get('rewards', 0.0)):.3f}",
        f"{med(lambda s: s['seconds'].get('log-probs', 0.0)):.2f}",
        f"{med(lambda s: s['seconds'].get('backward', 0.0)):.2f}",
        f"{med(lambda s: s['seconds'].get('optimizer', 0.0)):.3f}",
        f"{tokens / generation:,.0f}" if generation else "n/a",
        f"{mfu:.1%}",
        f"{med(lambda s: s['generation_phase_peak']) / 1e9:.2f}",
        f"{peak / 1e9:.2f}",
    ]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    device = check_device(args.cpu_smoke)
    if device is None:
        print(NO_GPU_MESSAGE, file=sys.stderr)
        return 2
    if args.cpu_smoke:
        smoke = Path(tempfile.mkdtemp(prefix="gpu-step-smoke-"))
        from transformers import Qwen2Config

        Qwen2Config(
            vocab_size=600, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, tie_word_embeddings=True,
        ).save_pretrained(smoke)
        args.model_config = [str(smoke)]
        args.completion_tokens, args.checkpointing, args.liger = [8], ["on"], "off"
        args.prompts, args.group_size, args.micro_batch, args.matmul_size = 2, 2, 4, 256
    if not args.model_config:
        build_parser().error("--model-config PATH is required (a folder with config.json)")
    import torch

    print("GPU GRPO step: generation / rewards / log-probs / backward, MFU and peak memory")
    print_header()
    if device == "cuda":
        print(f"device       {torch.cuda.get_device_name()}, {torch.cuda.get_device_properties(0).total_memory / 1e9:.1f} GB")
    peak_flops = measure_matmul_peak(device, args.matmul_size)
    print(f"bf16 matmul  {peak_flops / 1e12:.1f} TFLOP/s measured ({args.matmul_size}³, best of 3 × 20)\n")
    sys.stdout.flush()

    results = []
    for config_path in args.model_config:
        path = Path(config_path)
        folder = str(path.parent if path.suffix == ".json" else path)
        for tokens in args.completion_tokens:
            for checkpointing in args.checkpointing:
                for liger in liger_choices(args.liger):
                    result = run_variant(folder, tokens, checkpointing == "on", liger, args, device)
                    results.append(result)
                    print("  done:", " ".join(summarise(result, peak_flops)[:4]))
                    sys.stdout.flush()
    print()
    print(table(
        [summarise(r, peak_flops) for r in results],
        ["model", "completion", "ckpt", "liger", "step s", "generate s", "rewards s", "log-probs s", "backward s",
         "optimizer s", "gen tok/s", "train MFU", "gen peak GB", "step peak GB"],
    ))
    print("\nMFU: model FLOPs of forward+backward (6·Ψ·tokens + attention; recomputation not counted) "
          "over the log-prob forward + backward time, against the measured bf16 matmul peak.")
    print_footer()
    if args.json:
        Path(args.json).write_text(json.dumps({"peak_flops": peak_flops, "device": device, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
