"""`rl-math plan`: parameter counts, the memory arithmetic's direction, the shipped configs, the CLI."""

import json
from pathlib import Path

import pytest

from rl_math.tools import memory_plan as mp

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_CONFIGS = REPO_ROOT.parent / "shared" / "model_configs"
SHIPPED = sorted((REPO_ROOT / "configs").glob("qwen*.yaml"))

# /work/shared/model_configs/README.md
EXPECTED_PARAMS = {
    "Qwen2.5-0.5B-Instruct": 494_032_768,
    "Qwen2.5-1.5B-Instruct": 1_543_714_304,
    "Qwen2.5-7B-Instruct": 7_615_616_512,
}
# Qwen2.5-3B-Instruct's public shape (docs/scaling.md gives its 3,085,938,688 parameters); not in ../shared.
QWEN_3B = dict(
    hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
    num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True, max_position_embeddings=32768,
)


def shared_config(name: str) -> Path:
    path = MODEL_CONFIGS / name
    if not (path / "config.json").is_file():
        pytest.skip(f"{path} not found (the ../shared folder beside the repository)")
    return path


@pytest.fixture(scope="module")
def shapes() -> dict:
    return {name: mp.model_shape(str(shared_config(name))) for name in EXPECTED_PARAMS}


@pytest.fixture(scope="module")
def qwen3b_dir(tmp_path_factory) -> Path:
    from transformers import Qwen2Config

    folder = tmp_path_factory.mktemp("qwen3b")
    Qwen2Config(**QWEN_3B).save_pretrained(folder)
    return folder


def config_folder_for(yaml_path: Path, qwen3b_dir: Path) -> Path:
    model = mp.load_yaml_values(yaml_path)["model_name_or_path"].split("/")[-1]
    return qwen3b_dir if model == "Qwen2.5-3B-Instruct" else shared_config(model)


def settings(**overrides) -> mp.RunSettings:
    values = dict(per_device_train_batch_size=8, gradient_accumulation_steps=8, max_completion_length=768, dtype="bfloat16")
    values.update(overrides)
    return mp.RunSettings.from_yaml(values)


# --------------------------------------------------------------------------------------------
# parameter counts


@pytest.mark.parametrize("name", sorted(EXPECTED_PARAMS))
def test_parameter_counts_match_the_shared_table(shapes, name):
    assert shapes[name].params == EXPECTED_PARAMS[name]


def test_parameter_count_from_a_config_object_and_a_config_file(qwen3b_dir):
    assert mp.model_shape(str(qwen3b_dir)).params == 3_085_938_688
    assert mp.model_shape(str(qwen3b_dir / "config.json")).params == 3_085_938_688


def test_lora_parameter_count_matches_peft(shapes):
    shape = shapes["Qwen2.5-0.5B-Instruct"]
    # peft's get_nb_trainable_parameters on the meta model gives these (r=16)
    assert shape.lora_params(16, "all-linear") == 8_798_208
    assert shape.lora_params(16, None) == 1_081_344  # peft's default for qwen2: q_proj, v_proj


def test_unreadable_model_names_the_fix(tmp_path):
    with pytest.raises(mp.PlanError, match="config.json"):
        mp.model_shape(str(tmp_path))


# --------------------------------------------------------------------------------------------
# the defaults and kernel constants the arithmetic relies on


def test_the_plan_reads_the_yaml_as_a_run_would():
    """One reader: the plan's values are the recipe's parse of the YAML (defaults included), not a copy."""
    from rl_math.config import parse_config
    from rl_math.methods import recipe_dataclasses

    path = REPO_ROOT / "configs" / "smoke.yaml"
    values = mp.load_yaml_values(path)
    parsed = parse_config(recipe_dataclasses("grpo"), [str(path)]).values
    for key in ("per_device_train_batch_size", "num_generations", "max_completion_length", "beta", "max_prompt_tokens",
                "gradient_checkpointing", "dtype", "eval_accuracy_steps", "eval_generation_batch_size"):
        assert values[key] == parsed[key], key


def test_trl_fused_lm_head_constants():
    from trl.kernels import chunked_logprob
    from trl.trainer import utils

    assert chunked_logprob.TOKEN_CHUNK_SIZE == mp.LOGPROB_TOKEN_CHUNK
    assert utils._CHUNKED_LOGPROB_CHUNK_SIZE == mp.LOGPROB_VOCAB_CHUNK


# --------------------------------------------------------------------------------------------
# the activation formula against what autograd really keeps


def _saved_bytes(layers: int, checkpointing: bool, hidden=256, ffn=640, heads=8, kv_heads=2, batch=2, tokens=48) -> int:
    """Bytes of the distinct non-parameter tensors autograd saves in a bf16 Qwen2 forward (padded batch, sdpa)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=300, hidden_size=hidden, intermediate_size=ffn, num_attention_heads=heads,
        num_key_value_heads=kv_heads, num_hidden_layers=layers, attn_implementation="sdpa",
    )
    model = Qwen2ForCausalLM(config).to(torch.bfloat16).train()
    if checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = max(seen.get(storage.data_ptr(), 0), storage.nbytes())
        return tensor

    mask = torch.ones(batch, tokens, dtype=torch.long)
    mask[0, :5] = 0  # left padding, as GRPO batches have
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model.model(input_ids=torch.randint(0, 300, (batch, tokens)), attention_mask=mask, use_cache=False)
    return sum(seen.values())


def test_activation_formula_matches_saved_tensors_per_layer():
    hidden, ffn, heads, kv_heads, batch, tokens = 256, 640, 8, 2, 2, 48
    shape = mp.ModelShape("probe", 0, 0, 1, hidden, ffn, heads, kv_heads, hidden // heads, 300, True)
    measured = _saved_bytes(2, False) - _saved_bytes(1, False)  # one decoder layer
    predicted = mp.activation_bytes_per_token_per_layer(shape, 2) * batch * tokens + batch * tokens**2 * 2
    assert measured == pytest.approx(predicted, rel=0.03)


def test_checkpointing_keeps_only_the_layer_input():
    hidden, batch, tokens = 256, 2, 48
    measured = _saved_bytes(2, True) - _saved_bytes(1, True)
    assert measured == 2 * hidden * batch * tokens


# --------------------------------------------------------------------------------------------
# the direction of the arithmetic


@pytest.mark.parametrize("name", ["Qwen2.5-1.5B-Instruct", "Qwen2.5-7B-Instruct"])
@pytest.mark.parametrize("gpus", [2, 8, 16])
def test_zero3_below_zero2_below_ddp_on_several_gpus(shapes, name, gpus):
    # like for like: fp32 master weights everywhere (DDP keeps the loaded fp32 model, DeepSpeed its own copy)
    shape, run = shapes[name], settings(dtype="float32")
    ddp, zero2, zero3 = (mp.plan_memory(shape, run, s, gpus) for s in ("ddp", "zero2", "zero3"))
    assert zero3.resident < zero2.resident < ddp.resident
    assert zero3.training_peak + zero3.resident < zero2.peak_allocated < ddp.peak_allocated


def test_more_gpus_never_need_more_memory_under_zero(shapes):
    shape, run = shapes["Qwen2.5-7B-Instruct"], settings()
    for strategy in ("zero2", "zero3"):
        totals = [mp.plan_memory(shape, run, strategy, n).resident for n in (1, 2, 4, 8, 16)]
        assert totals == sorted(totals, reverse=True)


def test_lora_needs_less_than_full_fine_tuning(shapes):
    shape = shapes["Qwen2.5-7B-Instruct"]
    for strategy in mp.STRATEGIES:
        full = mp.plan_memory(shape, settings(), strategy, 8)
        lora = mp.plan_memory(shape, settings(use_peft=True, lora_target_modules=["all-linear"]), strategy, 8)
        if strategy == "zero3_offload":  # the GPU holds one gathered layer either way; the host holds less
            assert lora.resident <= full.resident and lora.host_bytes < full.host_bytes
        else:
            assert lora.resident < full.resident, strategy


def test_checkpointing_lowers_activations(shapes):
    shape = shapes["Qwen2.5-1.5B-Instruct"]
    on = mp.plan_memory(shape, settings(gradient_checkpointing=True), "zero2", 8)
    off = mp.plan_memory(shape, settings(gradient_checkpointing=False), "zero2", 8)
    assert on.training_peak < off.training_peak / 5


def test_activation_checkpointing_spellings(shapes):
    shape = shapes["Qwen2.5-1.5B-Instruct"]
    old = mp.plan_memory(shape, settings(gradient_checkpointing=False), "zero2", 8)
    new = mp.plan_memory(shape, settings(gradient_checkpointing=True, activation_checkpointing=False), "zero2", 8)
    assert new.training_peak == old.training_peak  # transformers 5's name wins
    every = settings(activation_checkpointing=True, activation_checkpointing_kwargs={"every_n_layers": 2})
    on = mp.plan_memory(shape, settings(gradient_checkpointing=True), "zero2", 8)
    assert on.training_peak < mp.plan_memory(shape, every, "zero2", 8).training_peak < old.training_peak


def test_reference_model_vllm_and_long_completions_add_memory(shapes):
    shape = shapes["Qwen2.5-1.5B-Instruct"]
    base = mp.plan_memory(shape, settings(), "zero2", 8)
    assert mp.plan_memory(shape, settings(beta=0.04), "zero2", 8).resident - base.resident == pytest.approx(2 * shape.params)
    assert mp.plan_memory(shape, settings(beta=0.04), "zero3", 8).resident - base.resident < shape.params
    vllm = mp.plan_memory(shape, settings(use_vllm=True, vllm_gpu_memory_utilization=0.3), "zero2", 8)
    assert vllm.items["vLLM colocate reservation"] == pytest.approx(24e9)
    assert vllm.generation_peak == 0  # generation happens inside the reservation
    longer = mp.plan_memory(shape, settings(max_completion_length=2048), "zero2", 8)
    assert longer.peak_allocated > base.peak_allocated


def test_ddp_with_bf16_weights_warns_about_lost_updates(shapes):
    shape = shapes["Qwen2.5-0.5B-Instruct"]
    assert any("master" in note for note in mp.plan_memory(shape, settings(dtype="bfloat16"), "ddp", 1).notes)
    assert not mp.plan_memory(shape, settings(dtype="float32"), "ddp", 1).notes
    fp32 = mp.plan_memory(shape, settings(dtype="float32"), "ddp", 1)
    assert sum(fp32.items.values()) == pytest.approx(16 * shape.params)  # docs/scaling.md's 16 bytes/param


def test_deepspeed_estimator_is_used_for_model_states(shapes):
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

    shape = shapes["Qwen2.5-7B-Instruct"]
    zero2 = mp.plan_memory(shape, settings(), "zero2", 8)
    zero3 = mp.plan_memory(shape, settings(), "zero3", 8)
    assert zero2.deepspeed_states == estimate_zero2_model_states_mem_needs(shape.params, 8, cpu_offload=False)[1]
    ds3 = estimate_zero3_model_states_mem_needs(shape.params, shape.largest_layer_params, 8, cpu_offload=False, cpu_offload_params=False)
    assert zero3.deepspeed_states == ds3[1]
    # states = the estimator; the 16 bytes/param rule of docs/scaling.md is within 25 % of it
    for plan in (zero2, zero3):
        states = sum(v for k, v in plan.items.items() if k != "communication buffers")
        assert states == pytest.approx(plan.deepspeed_states)
        assert plan.rule_of_thumb_states == pytest.approx(plan.deepspeed_states, rel=0.25)


# --------------------------------------------------------------------------------------------
# the shipped configs


def test_every_shipped_config_has_a_launch_header():
    assert SHIPPED
    for path in SHIPPED:
        header = mp.read_launch_header(path)
        assert header.accelerate_config and header.gpus, path


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_config_fits_its_intended_gpus(path, qwen3b_dir):
    header = mp.read_launch_header(path)
    shape, run, _, intended, plans = mp.plan_config(path, model_config=str(config_folder_for(path, qwen3b_dir)))
    assert intended in mp.STRATEGIES
    assert [p.gpus for p in plans[intended]] == list(header.gpus)
    for plan in plans[intended]:
        assert plan.fits, f"{path.name} on {plan.gpus} GPUs under {intended}: {plan.total / 1e9:.1f} GB"
        assert plan.total < 80e9


# --------------------------------------------------------------------------------------------
# the command


def plan(*argv: str) -> int:
    """`rl-math plan ARGV...` through the `rl-math` command; its exit code."""
    from rl_math.cli import main

    return main(["plan", *argv])


def test_plan_command_prints_tables_and_verdicts(capsys):
    folder = shared_config("Qwen2.5-1.5B-Instruct")
    assert plan(str(REPO_ROOT / "configs" / "qwen1.5b.yaml"), "--model-config", str(folder), "--zero", "2", "--gpus", "8") == 0
    out = capsys.readouterr().out
    assert "DeepSpeed ZeRO-2" in out and "8 GPUs" in out and "verdict" in out and "fits" in out
    assert "1,543,714,304 parameters" in out


def test_plan_command_exit_codes(capsys, tmp_path):
    folder = shared_config("Qwen2.5-7B-Instruct")
    assert plan(str(REPO_ROOT / "configs" / "qwen7b.yaml"), "--model-config", str(folder), "--zero", "ddp", "--gpus", "8") == 1  # 7B full fine-tune does not fit replicated
    assert plan(str(tmp_path / "missing.yaml"), "--model-config", str(folder)) == 2
    err = capsys.readouterr().err
    assert err.startswith("rl-math plan: error: ") and "does not exist" in err


def test_plan_json_output(capsys):
    import json

    folder = shared_config("Qwen2.5-0.5B-Instruct")
    assert plan(str(REPO_ROOT / "configs" / "qwen0.5b.yaml"), "--model-config", str(folder), "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["intended"] == "ddp" and set(data["plans"]) == set(mp.STRATEGIES)


def test_in_run_evaluation_adds_only_what_its_generation_exceeds(shapes):
    shape = shapes["Qwen2.5-1.5B-Instruct"]
    item = "in-run evaluation: KV cache beyond training generation's"
    small = mp.plan_memory(shape, settings(eval_accuracy_steps=50, eval_generation_batch_size=8), "zero2", 8)
    large = mp.plan_memory(shape, settings(eval_accuracy_steps=50, eval_generation_batch_size=512), "zero2", 8)
    off = mp.plan_memory(shape, settings(eval_generation_batch_size=512), "zero2", 8)
    assert item not in small.generation_phase and item not in off.generation_phase
    assert large.generation_phase[item] > 0 and large.generation_peak > off.generation_peak


def test_the_xml_config_fits_one_24_gb_gpu(capsys):
    """configs/qwen1.5b-xml.yaml promises the reference recipe's hardware: one 24 GB GPU, plain DDP."""
    folder = shared_config("Qwen2.5-1.5B-Instruct")
    path = REPO_ROOT / "configs" / "qwen1.5b-xml.yaml"
    assert plan(str(path), "--model-config", str(folder), "--gpu-memory-gb", "24", "--zero", "ddp", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    (one_gpu,) = report["plans"]["ddp"]
    assert report["intended"] == "ddp" and one_gpu["gpus"] == 1
    assert one_gpu["verdict"] == "fits" and one_gpu["total"] < 24e9, one_gpu["total"]
