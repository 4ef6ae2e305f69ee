"""Every input mistake a new user makes is one sentence naming the problem and the fix, before any model loads.

Each case runs a recipe's `main` in-process with model loading forbidden and expects a one-line
ConfigError naming the problem (the recipes print it as `recipe.py: error: ...` and exit 2, checked
by a few subprocess runs at the end). Before these checks, 26 of these cases ended in a traceback
and 9 only after the model had loaded.
"""

import importlib.util
import json

import pytest
import transformers
from recipe_runs import REPO_ROOT, offline_env, run_recipe

from rl_math.errors import ConfigError

GRPO = ("grpo", "configs/smoke.yaml", "--max_steps", "1")
SFT = ("sft", "configs/sft_smoke.yaml")
EVAL = ("evaluate", "configs/eval_smoke.yaml")
EI = ("expert_iteration", "configs/ei_smoke.yaml")
NO_MODEL_YAML = "dtype: float32\ndataset_name: rl-math:synthetic\nnum_generations: 4\nper_device_train_batch_size: 8\n"

# (id, recipe and arguments ({tmp} is the test's folder), the problem the sentence must name, environment)
MISTAKES = [
    ("model-path-typo", (*GRPO, "--model_name_or_path", "{tmp}/sft-smok"), r"model path .*sft-smok' does not exist \(did you mean .*sft-smoke'", {}),
    ("hub-model-offline", (*GRPO, "--model_name_or_path", "Qwen/No-Such-Model"), r"'Qwen/No-Such-Model'.*hub is unreachable \(HF_HUB_OFFLINE=1\)", {}),
    ("no-model", ("grpo", "{tmp}/no_model.yaml"), r"no model given: set model_name_or_path", {}),
    ("model-folder-without-config", (*GRPO, "--model_name_or_path", "{tmp}/empty_folder"), r"holds no config.json", {}),
    ("missing-dataset-file", (*GRPO, "--dataset_name", "{tmp}/nope.jsonl"), r"dataset file .*nope.jsonl' does not exist", {}),
    ("wrong-columns", (*GRPO, "--dataset_name", "{tmp}/columns.jsonl"), r"lacks column\(s\) \['question', 'answer'\].*rename", {}),
    ("missing-split", (*GRPO, "--dataset_name", "{tmp}", "--dataset_train_split", "trian"), r"split 'trian' not found.*test, train\)", {}),
    ("empty-dataset", (*GRPO, "--dataset_name", "{tmp}/empty.jsonl"), r"empty.jsonl' is empty", {}),
    ("null-question", (*GRPO, "--dataset_name", "{tmp}/null_question.jsonl"), r"row 1 .* has no question \(None\)", {}),
    ("corrupt-jsonl-line", (*GRPO, "--dataset_name", "{tmp}/corrupt.jsonl"), r"line 2 is not valid JSON", {}),
    ("hub-dataset-offline", (*GRPO, "--dataset_name", "nobody/no-such-set"), r"'nobody/no-such-set'.*HF_HUB_OFFLINE=1", {}),
    ("unparseable-golds", (*GRPO, "--dataset_name", "{tmp}/bad_golds.jsonl"), r"none of the 2 problems has a gold answer task 'gsm8k' can read", {}),
    ("binary-config-file", ("grpo", "{tmp}/binary.yaml"), r"binary.yaml' is not text", {}),
    ("missing-resume-path", (*GRPO, "--resume_from_checkpoint", "{tmp}/checkpoint-5"), r"resume_from_checkpoint .* is not a checkpoint folder", {}),
    ("logging-steps-0", (*GRPO, "--logging_steps", "0"), r"logging_steps is 0", {}),
    ("health-actions-typo", (*GRPO, "--health_actions", "{{reward_trp: stop}}"), r"unknown condition 'reward_trp'.*reward_trap", {}),
    ("health-action-typo", (*GRPO, "--health_action", "stopp"), r"health_action must be one of warn, stop", {}),
    ("max-completion-length-0", (*GRPO, "--max_completion_length", "0"), r"max_completion_length is 0; set it to at least 1", {}),
    ("max-train-samples-0", (*GRPO, "--max_train_samples", "0"), r"max_train_samples is 0; set it to at least 1", {}),
    ("max-prompt-tokens-0", (*GRPO, "--max_prompt_tokens", "0"), r"max_prompt_tokens is 0", {}),
    ("negative-temperature", (*GRPO, "--temperature", "-1"), r"temperature is -1; .* above 0", {}),
    ("top-p-0", (*GRPO, "--top_p", "0"), r"top_p is 0", {}),
    ("negative-learning-rate", (*GRPO, "--learning_rate", "-1e-4"), r"learning_rate is -0.0001; a learning rate is positive", {}),
    ("unwritable-output-dir", (*GRPO, "--output_dir", "/proc/rl-math-out"), r"output_dir '/proc/rl-math-out' cannot be written", {}),
    ("output-dir-is-a-file", (*GRPO, "--output_dir", "{tmp}/a_file"), r"a_file' is a file", {}),
    ("output-dir-inside-a-file", (*GRPO, "--output_dir", "{tmp}/a_file/run"), r"is inside the file", {}),
    ("tensorboard-not-installed", (*GRPO, "--report_to", "tensorboard"), r"tensorboard package is not installed", {}),
    ("wandb-without-key", (*GRPO, "--report_to", "wandb"), r"no W&B key was found.*WANDB_MODE=offline", {"WANDB_MODE": None, "WANDB_API_KEY": None, "NETRC": "{tmp}/netrc"}),
    ("push-to-hub-offline", (*GRPO, "--push_to_hub"), r"push_to_hub is true but HF_HUB_OFFLINE=1", {}),
    ("sft-max-length-0", (*SFT, "--max_length", "0"), r"max_length is 0", {}),
    ("sft-missing-dataset-file", (*SFT, "--dataset_name", "{tmp}/nope.jsonl"), r"nope.jsonl' does not exist", {}),
    ("eval-model-path-typo", (*EVAL, "--model_name_or_path", "{tmp}/sft-smok"), r"model path .*sft-smok' does not exist", {}),
    ("eval-missing-split", (*EVAL, "--dataset_name", "{tmp}", "--dataset_test_split", "tset"), r"split 'tset' not found", {}),
    ("ei-model-path-typo", (*EI, "--model_name_or_path", "{tmp}/sft-smok"), r"model path .*sft-smok' does not exist", {}),
    ("ei-output-dir-is-a-file", (*EI, "--output_dir", "{tmp}/a_file"), r"a_file' is a file", {}),
    ("ei-top-p-0", (*EI, "--ei_top_p", "0"), r"ei_top_p is 0; it must be in \(0, 1\]", {}),
    ("ei-negative-temperature", (*EI, "--ei_temperature", "-1"), r"ei_temperature is -1; it must be >= 0 \(0 is greedy\)", {}),
    ("eval-top-p-above-1", (*EVAL, "--top_p", "1.5"), r"top_p is 1.5; it must be in \(0, 1\]", {}),
]


@pytest.fixture
def mistake_files(tmp_path):
    """The broken inputs the cases point at, in one folder (which is also a dataset folder)."""
    rows = {
        "train.jsonl": [{"question": "1+1?", "answer": "#### 2"}],
        "test.jsonl": [{"question": "2+2?", "answer": "#### 4"}],
        "columns.jsonl": [{"q": "1+1?", "a": "2"}],
        "null_question.jsonl": [{"question": "1+1?", "answer": "#### 2"}, {"question": None, "answer": "#### 2"}],
        "bad_golds.jsonl": [{"question": "1+1?", "answer": "two"}, {"question": "2+2?", "answer": "#### "}],
    }
    for name, lines in rows.items():
        (tmp_path / name).write_text("".join(json.dumps(row) + "\n" for row in lines))
    (tmp_path / "corrupt.jsonl").write_text('{"question": "1+1?", "answer": "#### 2"}\n{"question": "2+2?", "answer": \n')
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "binary.yaml").write_bytes(bytes(range(256)))
    (tmp_path / "no_model.yaml").write_text(NO_MODEL_YAML + f"output_dir: {tmp_path}/out\n")
    (tmp_path / "a_file").write_text("not a folder")
    (tmp_path / "netrc").write_text("")
    (tmp_path / "empty_folder").mkdir()
    (tmp_path / "sft-smoke").mkdir()
    return tmp_path


@pytest.fixture
def no_model_loading(monkeypatch):
    def refuse(cls, *args, **kwargs):
        raise AssertionError("a model was loaded before the mistake was reported")

    monkeypatch.setattr(transformers.PreTrainedModel, "from_pretrained", classmethod(refuse))


def recipe_main(name: str):
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", REPO_ROOT / "recipes" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.mark.parametrize(("case", "command", "problem", "env"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_mistake_is_one_sentence_before_any_model_loads(
    case, command, problem, env, mistake_files, no_model_loading, monkeypatch
):
    monkeypatch.chdir(REPO_ROOT)
    for key, value in env.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value.format(tmp=mistake_files))
    recipe, *argv = (arg.format(tmp=mistake_files) for arg in command)
    if "--output_dir" not in argv:
        argv += ["--output_dir", str(mistake_files / "out")]
    with pytest.raises(ConfigError, match=problem) as raised:
        recipe_main(recipe)(argv)
    message = str(raised.value)
    assert "\n" not in message
    assert ";" in message or ":" in message  # the problem, then the fix


def test_unreachable_hub_while_online_is_one_sentence(mistake_files, no_model_loading, monkeypatch):
    """Online, a wrong hub id or an unreachable hub shows only when the tokenizer is fetched."""

    def unreachable(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files.\nCheck your connection.")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", unreachable)
    argv = ["configs/smoke.yaml", "--model_name_or_path", "Qwen/Qwen2.5-0.5B-Instruct", "--output_dir", str(mistake_files)]
    with pytest.raises(ConfigError, match=r"cannot load 'Qwen/Qwen2.5-0.5B-Instruct' \(We couldn't connect.*\); check"):
        recipe_main("grpo")(argv)


@pytest.mark.parametrize(
    "answers", [[18, 4], ["18", "#### 4"]], ids=["json-integers", "text"]
)
def test_integer_and_text_answers_are_both_accepted(answers, tmp_path, tiny_tokenizer):
    from rl_math.config import RecipeArguments
    from rl_math.tasks.loading import load_prompt_dataset

    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"question": f"q{i}?", "answer": a}) + "\n" for i, a in enumerate(answers)))
    dataset = load_prompt_dataset(RecipeArguments(dataset_name=str(path)), "train", tiny_tokenizer)
    assert dataset["answer"] == ["18", "4"]


def test_bare_reward_names_are_weight_one():
    from rl_math.config import RecipeArguments

    assert RecipeArguments(rewards=["correctness", "boxed_format"]).rewards == [
        {"name": "correctness", "weight": 1.0},
        {"name": "boxed_format", "weight": 1.0},
    ]


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("--model_name_or_path", "Qwen/No-Such-Model"), "hub is unreachable"),
        (("--learning_rate", "-1e-4"), "learning_rate is -0.0001"),
        (("--dataset_name", "no/such/file.jsonl"), "does not exist"),
    ],
    ids=["model", "negative-number", "dataset"],
)
def test_recipe_prints_the_sentence_alone_and_exits_2(args, problem, tmp_path):
    result = run_recipe("grpo", "configs/smoke.yaml", "--output_dir", str(tmp_path), *args, env=offline_env(), timeout=120)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("grpo.py: error: ") and problem in result.stderr
