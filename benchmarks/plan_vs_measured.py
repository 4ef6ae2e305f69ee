"""`rl-math plan`'s estimate against torch.cuda.max_memory_allocated of real GRPO steps (needs a GPU).

    python benchmarks/plan_vs_measured.py --model-config .bench/Qwen2.5-0.5B-Instruct .bench/Qwen2.5-1.5B-Instruct
    python benchmarks/gpu_grpo_step.py --model-config ... --json steps.json    # measure once ...
    python benchmarks/plan_vs_measured.py --from-json steps.json               # ... compare on any machine

For each measured variant (model × completion length × gradient checkpointing, one GPU, bf16
weights as the shipped configs load them, no DeepSpeed), it builds the same run for
`rl_math.tools.memory_plan` (strategy ddp on 1 GPU; micro-batch, steps per generation, the measured
padded prompt length, the completion length) and compares the predicted allocator peak of the
generation phase, of the training phase and overall with what the step measured. The target is
|error| ≤ 15 % for the overall peak. Without --from-json it runs benchmarks/gpu_grpo_step.py's
measurement itself (same arguments), so it needs a CUDA GPU unless --cpu-smoke.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_footer, print_header, table  # noqa: E402

TOLERANCE = 0.15


def predicted(result: dict):
    """The memory plan of one measured variant."""
    from rl_math.tools import memory_plan

    step = result["steps"][-1]
    counts = step["counts"]
    prompt_tokens = int(counts["max_sequence_tokens"]) - result["completion_tokens"]
    settings = memory_plan.RunSettings.from_yaml(
        {
            "per_device_train_batch_size": result["micro_batch"],
            "gradient_accumulation_steps": result["gradient_accumulation_steps"],
            "max_completion_length": result["completion_tokens"],
            "gradient_checkpointing": result["gradient_checkpointing"],
            "dtype": "bfloat16",
            "bf16": True,
            "num_generations": 8,
        },
        prompt_tokens=prompt_tokens,
    )
    shape = memory_plan.model_shape(result["model_config"])
    return memory_plan.plan_memory(shape, settings, "ddp", 1), prompt_tokens


def compare(results: list[dict]) -> tuple[list[list[str]], list[float]]:
    rows, errors = [], []
    for result in results:
        plan, prompt_tokens = predicted(result)
        gen = statistics.median(s["generation_phase_peak"] for s in result["steps"])
        rest = statistics.median(s["rest_of_step_peak"] for s in result["steps"])
        measured = max(gen, rest)
        error = plan.peak_allocated / measured - 1 if measured == measured and measured > 0 else float("nan")
        errors.append(error)
        rows.append([
            Path(result["model_config"]).name,
            f"{prompt_tokens}+{result['completion_tokens']}",
            "on" if result["gradient_checkpointing"] else "off",
            f"{plan.generation_phase_allocated / 1e9:.2f}", f"{gen / 1e9:.2f}",
            f"{plan.training_phase_allocated / 1e9:.2f}", f"{rest / 1e9:.2f}",
            f"{plan.peak_allocated / 1e9:.2f}", f"{measured / 1e9:.2f}",
            f"{error:+.1%}", "ok" if abs(error) <= TOLERANCE else "OFF",
        ])
    return rows, errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from-json", metavar="PATH", help="gpu_grpo_step.py --json output to compare (no GPU needed)")
    args, rest = parser.parse_known_args(argv)

    if args.from_json:
        data = json.loads(Path(args.from_json).read_text())
    else:
        import tempfile

        import gpu_grpo_step

        step_args = gpu_grpo_step.build_parser().parse_args(rest + ["--liger", "off"])
        if gpu_grpo_step.check_device(step_args.cpu_smoke) is None:
            print(gpu_grpo_step.NO_GPU_MESSAGE.replace("gpu_grpo_step.py", "plan_vs_measured.py"), file=sys.stderr)
            return 2
        json_path = Path(step_args.json or Path(tempfile.mkdtemp()) / "steps.json")
        gpu_grpo_step.main(rest + ["--liger", "off", "--json", str(json_path)])
        data = json.loads(json_path.read_text())
        print()
    print("rl-math plan vs measured peak memory (one GPU, bf16 weights, AdamW, no DeepSpeed)")
    print_header()
    print(f"measurements from {data.get('device', '?')}\n")
    rows, errors = compare(data["results"])
    print(table(rows, ["model", "tokens", "ckpt", "plan gen GB", "measured gen GB", "plan train GB",
                       "measured train GB", "plan peak GB", "measured peak GB", "error", f"±{TOLERANCE:.0%}"]))
    finite = [e for e in errors if e == e]
    if finite:
        print(f"\nlargest |error| {max(abs(e) for e in finite):.1%} (target ≤ {TOLERANCE:.0%})")
    print_footer()
    return 0 if finite and all(abs(e) <= TOLERANCE for e in finite) else 1


if __name__ == "__main__":
    sys.exit(main())
