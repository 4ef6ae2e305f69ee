"""The evaluate method scores a trained run with the reward mix it was trained with."""

import yaml

from rl_math.methods.evaluate import trained_reward_mix

TRAINED = [{"name": "correctness", "weight": 1.0}, {"name": "termination", "weight": 0.5}]


def _run(folder, **saved):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rl_math_config.yaml").write_text(yaml.safe_dump({"prompt_format": "boxed", "rewards": TRAINED} | saved))
    (folder / "checkpoint-10").mkdir()
    return folder


def test_a_run_and_its_checkpoints_are_scored_with_the_mix_they_were_trained_with(tmp_path):
    run = _run(tmp_path / "run")
    assert trained_reward_mix(str(run), "boxed") == TRAINED  # before: the format's default, "termination 0.000"
    assert trained_reward_mix(str(run / "checkpoint-10"), "boxed") == TRAINED


def test_another_prompt_format_or_a_hub_model_keeps_the_default_mix(tmp_path):
    run = _run(tmp_path / "run", prompt_format="r1")
    assert trained_reward_mix(str(run), "boxed") is None
    assert trained_reward_mix("Qwen/Qwen2.5-0.5B-Instruct", "boxed") is None
