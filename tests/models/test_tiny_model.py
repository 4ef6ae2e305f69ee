"""The offline tiny model: Qwen2.5's chat format and special tokens, deterministic, loadable by Auto*."""

from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

from rl_math.models import resolve_model
from rl_math.models.tiny_qwen2 import build_tokenizer, vocab_fingerprint
from rl_math.runtime import TINY_MODEL_NAME


def test_reserved_name_resolves_to_the_built_folder(tiny_model_path):
    assert resolve_model(TINY_MODEL_NAME) == tiny_model_path


def test_other_names_pass_through():
    assert resolve_model("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"


def test_chat_format_is_qwen25_chatml(tiny_tokenizer):
    text = tiny_tokenizer.apply_chat_template(
        [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}], tokenize=False, add_generation_prompt=True
    )
    assert text == "<|im_start|>system\ns<|im_end|>\n<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n"


def test_special_tokens_are_single_ids(tiny_tokenizer):
    for token in ("<|im_start|>", "<|im_end|>", "<|endoftext|>"):
        assert len(tiny_tokenizer(token, add_special_tokens=False)["input_ids"]) == 1


def test_end_of_turn_is_eos_and_pad_is_separate(tiny_tokenizer):
    assert tiny_tokenizer.eos_token == "<|im_end|>"
    assert tiny_tokenizer.pad_token == "<|endoftext|>"


def test_every_loading_path_gives_the_same_ids(tiny_model_path, tiny_tokenizer):
    # transformers 5 rebuilds a Qwen2Tokenizer from vocab+merges; ids must not change with the path.
    text = "Ava has 12 apples. <think> 12+7=19 </think> \\boxed{1,080} é ✓"
    direct = PreTrainedTokenizerFast(tokenizer_file=f"{tiny_model_path}/tokenizer.json")
    assert tiny_tokenizer(text)["input_ids"] == direct(text)["input_ids"] == build_tokenizer()(text)["input_ids"]


def test_decode_round_trips_any_text(tiny_tokenizer):
    text = "Ünïcödé 🙂 \\frac{1}{2}\n\n  spaces"
    assert tiny_tokenizer.decode(tiny_tokenizer(text)["input_ids"]) == text


def test_tokenizer_build_is_deterministic(tiny_tokenizer):
    assert vocab_fingerprint(build_tokenizer()) == vocab_fingerprint(tiny_tokenizer)


def test_model_stops_on_end_of_turn_and_end_of_text(tiny_model_path, tiny_tokenizer):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_path)
    ids = {tiny_tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")}
    assert set(model.generation_config.eos_token_id) == ids
    assert model.config.model_type == "qwen2"


def test_options_select_shape_and_initialisation(tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv("RL_MATH_CACHE", str(tmp_path))
    wide = AutoModelForCausalLM.from_pretrained(resolve_model(f"{TINY_MODEL_NAME}?hidden_size=32&seed=1"))
    again = AutoModelForCausalLM.from_pretrained(resolve_model(f"{TINY_MODEL_NAME}?hidden_size=32&seed=1"))
    other = AutoModelForCausalLM.from_pretrained(resolve_model(f"{TINY_MODEL_NAME}?hidden_size=32&seed=2"))
    assert wide.config.hidden_size == 32 and wide.config.intermediate_size == 64
    weights = lambda m: torch.cat([p.flatten() for p in m.parameters()])  # noqa: E731
    assert torch.equal(weights(wide), weights(again))
    assert not torch.equal(weights(wide), weights(other))


def test_plain_name_keeps_the_default_folder(tiny_model_path):
    from rl_math.runtime import TinyModelOptions, tiny_model_dir

    assert str(tiny_model_dir(TinyModelOptions())) == tiny_model_path


def test_a_bad_model_option_is_a_config_error():
    import pytest

    from rl_math.errors import ConfigError

    with pytest.raises(ConfigError, match="did you mean 'hidden_size'"):
        resolve_model(f"{TINY_MODEL_NAME}?hiden_size=32")
    with pytest.raises(ConfigError, match="divisible"):
        resolve_model(f"{TINY_MODEL_NAME}?hidden_size=30")


def test_the_preflight_accepts_the_tiny_model_with_options_and_names_a_bad_one():
    import pytest

    from rl_math.errors import ConfigError
    from rl_math.runtime import model_source_problem

    assert model_source_problem(f"{TINY_MODEL_NAME}?hidden_size=32&seed=4") is None
    with pytest.raises(ConfigError, match="unknown option 'layers'"):
        model_source_problem(f"{TINY_MODEL_NAME}?layers=3")
