"""`rl-math plan CONFIG.yaml`: the GPU memory a GRPO config needs per GPU, before renting the GPUs.

    rl-math plan configs/qwen7b.yaml                         # every strategy, the GPU counts in the YAML header
    rl-math plan configs/qwen1.5b.yaml --gpus 8 --zero 2     # one strategy, one GPU count
    rl-math plan configs/qwen7b.yaml --model-config ../shared/model_configs/Qwen2.5-7B-Instruct

The model's shape comes from its `config.json` (the YAML's `model_name_or_path` as a hub id or a
local folder, or `--model-config PATH`); the parameters are counted on the `meta` device, so no
weights are loaded or downloaded. Everything else comes from the YAML (TRL's defaults for what it
leaves out). The estimate is an upper bound for the worst case: every prompt `max_prompt_tokens`
long (`--prompt-tokens` to change) and every completion `max_completion_length` long.

What is counted, per GPU, in GB (10⁹ bytes); Ψ = parameters, N = GPUs, a = bytes per activation
element (2 under bf16), L/h/f = layers/hidden/ffn size, T = prompt + completion tokens:

* **model states** -- DDP: weights, gradients and AdamW m+v all in the model's dtype (`dtype:`,
  TRL's default float32), plus DDP's gradient buckets (a second gradient copy) when N > 1.
  ZeRO (bf16): DeepSpeed's own estimators (`estimate_zero2/3_model_states_mem_needs`): ZeRO-2
  2Ψ + 18Ψ/N (bf16 weights; bf16 + fp32 gradient partitions, fp32 master + Adam m + v), ZeRO-3
  18Ψ/N + 4 × largest layer (the gathered layer and its gradient), ZeRO-3 offload 4 × largest
  layer. LoRA: the frozen base in its dtype (sharded under ZeRO-3), the adapters as above.
* **communication buffers** -- ZeRO-2 4.5 × (reduce + allgather bucket) × 2 bytes, ZeRO-3
  4.5 × (reduce + prefetch bucket) × 2 bytes (the buckets of `ds_configs/*.json`, "auto" = h², 0.9 h²).
* **reference model** (beta > 0, not LoRA): DDP a copy in the model dtype; ZeRO-2 a replicated
  bf16 copy; ZeRO-3 sharded, 2Ψ/N.
* **vLLM colocate**: `vllm_gpu_memory_utilization` × GPU memory, reserved for the whole run.
* **generation** (transformers `generate`, i.e. not vLLM): the KV cache of the whole local
  generation batch, `per_device_train_batch_size × steps_per_generation` sequences × T tokens ×
  2·L·kv_heads·head_dim·a bytes; the last-token logits for sampling (3 fp32 copies of V per
  sequence); one layer of prefill; under ZeRO-3 the gathered full weights, 2Ψ
  (`ds3_gather_for_generation`). In-run evaluation (`eval_accuracy_steps`) generates between
  steps with `eval_generation_batch_size` sequences of prompt + `eval_max_new_tokens`: only what
  its KV cache and logits exceed training generation's by is added (the two never coexist); with
  vLLM it uses the trainer's engine and costs nothing extra.
* **activations** of one training micro-batch (B = `per_device_train_batch_size` sequences × T),
  measured tensor by tensor on transformers' Qwen2 with sdpa (see tests/tools/test_memory_plan.py):
  per layer and token 8h + 8ah + 4af + 4·heads + 8 bytes (two RMSNorms keep an fp32 copy of their
  input, q and the head-repeated k/v, attention output, log-sum-exp, four ffn-sized tensors),
  plus the attention bias B·T²·a per layer; with gradient checkpointing only the layer input
  (a·h per token and layer) stays, plus one layer recomputed during the backward pass.
* **log-probs/loss**: TRL 1.16 never materialises the B × T × V logits: its fused LM head
  (`trl.kernels.ChunkedLogProbFunction`) projects 4096 tokens × 32768 vocabulary at a time.
  What it does hold: that tile, a copy of the completion hidden states, and in the backward an
  fp32 gradient of the LM-head weight (V·h·4 bytes) and of the hidden states.

The allocator peak is the larger of the generation phase (what stays resident, without DDP's
gradients, which the Trainer frees after each step, + generation) and the training phase
(everything resident + one micro-batch); the total adds 5 % allocator fragmentation and the CUDA context (and NCCL
buffers on several GPUs), and is compared with the GPU memory (80 GB by default).
"""

from rl_math.tools.memory_plan.arithmetic import (  # noqa: F401
    MemoryPlan,
    activation_bytes,
    activation_bytes_per_token_per_layer,
    logprob_bytes,
    plan_memory,
)
from rl_math.tools.memory_plan.model import (  # noqa: F401
    CUDA_CONTEXT_GB,
    DS_BUFFER_FACTOR,
    FRAGMENTATION,
    GB,
    LOGPROB_TOKEN_CHUNK,
    LOGPROB_VOCAB_CHUNK,
    NCCL_GB,
    STRATEGIES,
    STRATEGY_NAMES,
    TIGHT_FRACTION,
    ZERO_CHOICES,
    ModelShape,
    PlanError,
    grpo_defaults,
    load_model_config,
    model_shape,
)
from rl_math.tools.memory_plan.report import (  # noqa: F401
    describe,
    format_plans,
    format_report,
    format_summary,
    judged_plans,
    plan_config,
    report_as_json,
)
from rl_math.tools.memory_plan.settings import (  # noqa: F401
    LaunchHeader,
    RunSettings,
    load_yaml_values,
    read_launch_header,
    strategy_of_accelerate_config,
)
