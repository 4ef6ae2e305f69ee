"""Batched generation on the offline tiny model: order, stop tokens, truncation flags."""

from __future__ import annotations

import dataclasses

import pytest

from rl_math.sampling import (
    Generations,
    HFGenerator,
    SamplingSettings,
    end_of_turn_token_id,
    finish_completion,
    render_prompts,
    resolve_use_vllm,
    stop_token_ids,
)
from rl_math.tasks.formats import build_prompt
from rl_math.train.export import add_stop_tokens


def test_finish_completion_cuts_after_the_first_stop_token():
    assert finish_completion([5, 2, 9, 0], [2, 0], 4) == ([5, 2], True, False)
    assert finish_completion([5, 6, 7, 8], [2], 4) == ([5, 6, 7, 8], False, True)
    assert finish_completion([5], [2], 4) == ([5], False, False)  # neither: e.g. the context ran out


def test_sampling_settings_are_checked():
    assert SamplingSettings(temperature=0.0).greedy
    for bad in (dict(num_samples=0), dict(temperature=-1.0), dict(top_p=0.0), dict(max_new_tokens=0)):
        with pytest.raises(ValueError):
            SamplingSettings(**bad)


def test_stop_tokens_include_eos_generation_config_and_end_of_turn(tiny_tokenizer, tiny_model_path):
    im_end = tiny_tokenizer.convert_tokens_to_ids("<|im_end|>")
    endoftext = tiny_tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert end_of_turn_token_id(tiny_tokenizer) == im_end
    assert stop_token_ids(tiny_tokenizer, tiny_model_path) == sorted({im_end, endoftext})


def test_add_stop_tokens_teaches_a_base_config_to_stop_at_end_of_turn(tiny_tokenizer):
    from transformers import GenerationConfig

    class Model:
        generation_config = GenerationConfig(eos_token_id=tiny_tokenizer.convert_tokens_to_ids("<|endoftext|>"))

    ids = add_stop_tokens(Model, tiny_tokenizer)
    assert tiny_tokenizer.convert_tokens_to_ids("<|im_end|>") in ids and len(ids) == 2


def test_vllm_is_not_used_without_it():
    assert resolve_use_vllm(False) is False
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        assert resolve_use_vllm(None) is False
        with pytest.raises(ImportError, match="not installed"):
            resolve_use_vllm(True)


def test_hf_generation_order_and_flags(tiny_tokenizer, tiny_model_path):
    prompts = [build_prompt("What is 2 + 2?", "Box it."), build_prompt("A much longer question " * 5, None)]
    stops = stop_token_ids(tiny_tokenizer, tiny_model_path)
    generator = HFGenerator(tiny_model_path, tiny_tokenizer, dtype="float32", batch_size=3)
    settings = SamplingSettings(num_samples=3, temperature=1.0, max_new_tokens=12, seed=0)
    try:
        out = generator.generate(render_prompts(tiny_tokenizer, prompts), settings, stops)
        again = generator.generate(render_prompts(tiny_tokenizer, prompts), settings, stops)
        greedy = generator.generate(render_prompts(tiny_tokenizer, prompts), SamplingSettings(2, 0.0, max_new_tokens=12), stops)
    finally:
        generator.close()
    assert isinstance(out, Generations) and len(out) == 6 and out.index(1, 2) == 5
    for ids, eos, truncated, text in zip(out.token_ids, out.eos, out.truncated, out.texts):
        assert eos != truncated  # HF generate either stops or runs to the limit
        assert (ids[-1] in stops) == eos and all(i not in stops for i in ids[:-1])
        assert truncated == (len(ids) == 12)
        assert "<|im_end|>" not in text  # decoded without special tokens, as TRL does
    assert out.token_ids == again.token_ids  # same seed, same samples
    assert greedy.token_ids[0] == greedy.token_ids[1] and greedy.token_ids[2] == greedy.token_ids[3]


def test_docstring_examples():
    import doctest

    from rl_math import sampling as generation

    assert doctest.testmod(generation).failed == 0


def test_sampling_settings_from_config_read_each_setting_under_its_config_key():
    from rl_math.methods.expert_iteration import EI_SAMPLING_KEYS, ExpertIterationArguments

    ei = ExpertIterationArguments(ei_samples_per_question=3, ei_temperature=0.7, ei_top_p=0.9, ei_max_new_tokens=64)
    assert ei.sampling(seed=5) == SamplingSettings(3, 0.7, 0.9, 64, 5)
    assert ei.eval_sampling(seed=5) == SamplingSettings(1, 0.0, 1.0, 64, 5)
    assert set(EI_SAMPLING_KEYS.values()) <= {f.name for f in dataclasses.fields(ExpertIterationArguments)}


def test_eval_arguments_hold_sampling_settings_under_their_own_names():
    from rl_math.eval.evaluate import EvalArguments

    assert EvalArguments(num_samples=8, temperature=1.0, seed=1).sampling() == SamplingSettings(8, 1.0, 1.0, 512, 1)


def test_a_bad_sampling_setting_names_its_config_key():
    with pytest.raises(ValueError, match=r"^ei_samples_per_question is 0; it must be at least 1$"):
        SamplingSettings.from_config({"ei_samples_per_question": 0}, {"num_samples": "ei_samples_per_question"})
