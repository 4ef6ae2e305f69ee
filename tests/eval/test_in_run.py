"""Held-out accuracy during training: when it is measured, what is logged, best checkpoint, stopping."""

import json

import pytest
from recipe_runs import REPO_ROOT, accelerate_launch, log_history, offline_env, ok, run_probe, run_recipe
from transformers import TrainerControl, TrainerState, TrainingArguments

from rl_math.errors import ConfigError
from rl_math.eval.in_run import HeldOutAccuracyCallback, InRunEvalArguments

SMOKE = str(REPO_ROOT / "configs" / "smoke.yaml")
# a few short steps of the smoke run on the arithmetic task, evaluated every 2 steps
RUN = ["--dataset_name", "rl-math:arithmetic?train_size=64&validation_size=8&test_size=24", "--max_steps", "3",
       "--max_completion_length", "8", "--eval_accuracy_steps", "2", "--eval_questions", "24",
       "--save_strategy", "no", "--health_monitor", "false"]


def _eval_logs(output_dir) -> list[dict]:
    return [e for e in log_history(output_dir) if "eval_accuracy" in e]


@pytest.fixture(scope="module")
def grpo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("in-run-eval") / "grpo"
    ok(run_recipe("grpo", SMOKE, "--output_dir", str(out), *RUN))
    return out


def test_grpo_evaluates_at_start_every_n_steps_and_at_the_end(grpo_run):
    assert [e["step"] for e in _eval_logs(grpo_run)] == [0, 2, 3]


def test_every_evaluation_logs_accuracy_buckets_and_rates(grpo_run):
    entry = _eval_logs(grpo_run)[0]
    buckets = ["eval_correct", "eval_correct_malformed", "eval_wrong", "eval_malformed"]
    for key in ["eval_accuracy", *buckets, "eval_eos_rate", "eval_truncation_rate", "eval_mean_completion_tokens"]:
        assert key in entry
    assert sum(entry[b] for b in buckets) == pytest.approx(1.0)
    # every scoring convention beside rl-math's (issue 24), and where they disagree
    assert entry["eval_accuracy/rl_math"] == entry["eval_accuracy"]
    assert {"eval_accuracy/math_verify", "eval_accuracy/qwen_boxed", "eval_conventions_disagree"} <= set(entry)


def test_final_metrics_hold_the_last_held_out_accuracy(grpo_run):
    final = json.loads((grpo_run / "final_metrics.json").read_text())
    assert final["eval_accuracy"] == _eval_logs(grpo_run)[-1]["eval_accuracy"]


def test_evaluation_leaves_the_training_trajectory_unchanged(grpo_run, tmp_path):
    # generation restores the random state: the same run without evaluation ends with the same loss
    plain = tmp_path / "plain"
    ok(run_recipe("grpo", SMOKE, "--output_dir", str(plain), *RUN[:-6], "--save_strategy", "no",
                   "--health_monitor", "false"))
    losses = lambda out: [e["loss"] for e in log_history(out) if "loss" in e]  # noqa: E731
    assert losses(plain) == losses(grpo_run)


def test_two_processes_share_the_questions_and_log_what_one_process_logs(grpo_run, tmp_path):
    probe = tmp_path / "probe"
    result = ok(run_probe("grpo", SMOKE, "--output_dir", str(tmp_path / "out"), *RUN,
                           "--per_device_train_batch_size", "4",
                           launcher=accelerate_launch(2, port=29617), env=offline_env(PROBE_DIR=str(probe))))
    ranks = [json.loads((probe / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2], result.stdout[-2000:]
    strip = lambda logs: [{k: v for k, v in e.items() if k != "eval_seconds"} for e in logs]  # noqa: E731
    assert strip(ranks[0]["eval_logs"]) == strip(ranks[1]["eval_logs"])
    # step 0 is the same starting model: the gathered halves equal one process's whole
    one_process = {k: v for k, v in _eval_logs(grpo_run)[0].items() if k not in ("eval_seconds", "epoch")}
    two_processes = {k: v for k, v in ranks[0]["eval_logs"][0].items() if k in one_process}
    assert two_processes == pytest.approx(one_process)


# -- the callback's decisions, on a bare TrainerState --------------------------------------------


def _decide(accuracies, save_strategy="steps", stop_at=None):
    callback = HeldOutAccuracyCallback(InRunEvalArguments(eval_accuracy_steps=1, eval_stop_at_accuracy=stop_at),
                                       {"prompt": [], "answer": []}, prompt_format="boxed", reward_specs=[],
                                       stop_ids=[0], max_new_tokens=8)
    args = TrainingArguments(output_dir="unused", save_strategy=save_strategy, report_to="none", use_cpu=True)
    state, decisions = TrainerState(), []
    for step, accuracy in enumerate(accuracies):
        state.global_step = step
        control = TrainerControl()
        callback._after_evaluation(args, state, control, accuracy)
        decisions.append((control.should_save, control.should_training_stop))
    return state, decisions


def test_the_best_accuracy_is_the_trainers_best_metric():
    state, _ = _decide([0.2, 0.5, 0.4])
    assert (state.best_metric, state.best_global_step) == (0.5, 1)


def test_a_new_best_saves_a_checkpoint_when_checkpoints_are_saved():
    _, decisions = _decide([0.2, 0.5, 0.4])
    assert [save for save, _ in decisions] == [False, True, False]  # step 0 is the untouched start


def test_a_new_best_saves_nothing_when_saving_is_off():
    _, decisions = _decide([0.2, 0.5], save_strategy="no")
    assert [save for save, _ in decisions] == [False, False]


def test_training_stops_once_accuracy_reaches_the_stop_level():
    _, decisions = _decide([0.35, 0.1, 0.29, 0.31], stop_at=0.3)
    assert [stop for _, stop in decisions] == [False, False, False, True]  # the start never stops a run


@pytest.mark.parametrize(
    ("field", "value"),
    [("eval_accuracy_steps", -1), ("eval_questions", 0), ("eval_stop_at_accuracy", 1.5), ("eval_max_new_tokens", 0)],
)
def test_nonsense_settings_are_config_errors(field, value):
    with pytest.raises(ConfigError, match=field):
        InRunEvalArguments(**{field: value})


def test_field_names_do_not_clash_with_the_trainer_configs():
    import dataclasses

    from trl import GRPOConfig, ModelConfig, SFTConfig

    from rl_math.config import RecipeArguments
    from rl_math.train.health import HealthArguments

    ours = {f.name for f in dataclasses.fields(InRunEvalArguments)}
    for other in (GRPOConfig, SFTConfig, ModelConfig, RecipeArguments, HealthArguments):
        assert ours.isdisjoint(f.name for f in dataclasses.fields(other)), other.__name__


def test_an_evaluation_step_keeps_its_training_log(grpo_run):
    # CallbackHandler.on_log clears should_log: the eval log must not swallow the loss logged at that step
    assert {e["step"] for e in log_history(grpo_run) if "loss" in e} == {1, 2, 3}


def test_with_use_vllm_the_trainers_engine_answers_greedily_and_gets_its_settings_back(tiny_tokenizer):
    import types

    class FakeEngine:
        temperature, repetition_penalty, max_completion_length = 1.0, 1.1, 256
        synced = 0

        def sync_weights(self):
            self.synced += 1

        def generate(self, prompts, images, num_generations):
            self.seen = (self.temperature, self.repetition_penalty, self.max_completion_length, num_generations)
            end = tiny_tokenizer.convert_tokens_to_ids("<|im_end|>")
            return prompts, [[5, 6, end], [7] * self.max_completion_length], None, None

    engine = FakeEngine()
    trainer = types.SimpleNamespace(vllm_generation=engine, use_vllm=True, processing_class=tiny_tokenizer,
                                    state=TrainerState(global_step=10), _last_loaded_step=0)
    callback = HeldOutAccuracyCallback(InRunEvalArguments(eval_accuracy_steps=5), {"prompt": [], "answer": []},
                                       prompt_format="boxed", reward_specs=[], max_new_tokens=8,
                                       stop_ids=[tiny_tokenizer.convert_tokens_to_ids("<|im_end|>")]).attach(trainer)
    from rl_math.sampling import SamplingSettings

    generations = callback._generate_with_trainer_vllm([[1, 2], [3]], SamplingSettings(max_new_tokens=8))
    assert engine.seen == (0.0, 1.0, 8, 1)  # greedy, no repetition penalty, the eval's token limit
    assert (engine.temperature, engine.repetition_penalty, engine.max_completion_length) == (1.0, 1.1, 256)
    assert engine.synced == 1 and trainer._last_loaded_step == 10  # the engine saw the current policy
    assert generations.eos == [True, False] and generations.truncated == [False, True]


def _finished(best_step, last_step=30, checkpoint="out/checkpoint-20"):
    import types

    loaded = []
    state = TrainerState(global_step=last_step, best_metric=0.6, best_global_step=best_step,
                         best_model_checkpoint=checkpoint if best_step else None)
    return types.SimpleNamespace(state=state, _load_best_model=lambda: loaded.append(state.best_model_checkpoint)), loaded


def test_load_best_at_end_loads_the_best_checkpoint_and_says_so(monkeypatch):
    from rl_math.eval import in_run as in_run_eval

    logged = []
    monkeypatch.setattr(in_run_eval.Trainer, "log", lambda trainer, logs: logged.append(logs))
    trainer, loaded = _finished(best_step=20)
    in_run_eval.load_best_model(trainer)
    assert loaded == ["out/checkpoint-20"]
    assert logged == [{"eval_best_accuracy": 0.6, "eval_best_step": 20, "eval_final_is_best": 1.0}]


def test_load_best_at_end_keeps_the_last_model_when_the_start_was_best(monkeypatch, caplog):
    from rl_math.eval import in_run as in_run_eval

    logged = []
    monkeypatch.setattr(in_run_eval.Trainer, "log", lambda trainer, logs: logged.append(logs))
    trainer, loaded = _finished(best_step=0)
    with caplog.at_level("WARNING"):
        in_run_eval.load_best_model(trainer)
    assert loaded == [] and logged[0]["eval_final_is_best"] == 0.0
    assert "the starting model" in caplog.text


def test_load_best_at_end_restores_the_starting_model_when_training_only_made_it_worse(tmp_path):
    """An accuracy_drop stop: the best held-out accuracy is step 0's, so the final model is the starting one."""
    from train.test_lifecycle import _trainer, _weights

    from rl_math.eval import in_run as in_run_eval
    from rl_math.train.lifecycle import run_training

    class ScriptedAccuracy(in_run_eval.HeldOutAccuracyCallback):
        def __init__(self, accuracy_at_step, args):  # no model generation: the accuracies are given
            self.accuracy_at_step, self.args, self.last_step, self.trainer = accuracy_at_step, args, None, None

        def evaluate(self, state):
            self.last_step = state.global_step
            return {in_run_eval.METRIC: self.accuracy_at_step[state.global_step]}

    trainer = _trainer(tmp_path, max_steps=4, save_steps=2)
    trainer.args.save_total_limit = 1
    start = _weights(trainer)
    args = in_run_eval.InRunEvalArguments(eval_accuracy_steps=2, eval_load_best_at_end=True)
    trainer.add_callback(ScriptedAccuracy({0: 0.5, 2: 0.2, 4: 0.1}, args).attach(trainer))
    run_training(trainer, None)
    assert any((start[k] != v).any() for k, v in _weights(trainer).items())  # training moved the weights
    assert in_run_eval.load_best_model(trainer)["eval_final_is_best"] == 1.0
    assert all((start[k] == v).all() for k, v in _weights(trainer).items())
