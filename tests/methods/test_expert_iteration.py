"""Expert iteration's pieces: the reward filter, dedup, counts, round folders and resume; its fields."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path

import pytest

from rl_math.config import RecipeArguments
from rl_math.eval.evaluate import EvalArguments
from rl_math.grading import batch
from rl_math.methods.expert_iteration import (
    ExpertIterationArguments,
    apply_filter,
    build_filter,
    default_filter,
    describe_filter,
    finished_rounds,
    resume_point,
    round_counts,
    select_training_samples,
    validate_filter,
)
from rl_math.tasks.formats import build_prompt

EOS = 2
PROMPT = build_prompt("What is 9 * 2?", "Box it.")


def _sample(q, s, text, ids, gold="18"):
    return {"question_index": q, "sample_index": s, "prompt": PROMPT, "completion": text, "completion_ids": ids, "gold": gold}


def test_default_filter_is_correct_well_formed_and_finished():
    assert default_filter("boxed") == [
        {"name": "correctness", "min": 1.0}, {"name": "boxed_format", "min": 1.0}, {"name": "termination", "min": 1.0}
    ]
    assert describe_filter(validate_filter(default_filter("r1"))) == (
        "correctness >= 1 and think_format >= 1 and termination >= 1"
    )


def test_default_filter_accepts_only_correct_boxed_finished_samples():
    samples = [
        _sample(0, 0, r"9 * 2 = 18, so \boxed{18}.", [5, 5, EOS]),  # kept
        _sample(0, 1, r"\boxed{18} or \boxed{18.0}", [5, EOS]),  # correct but two boxes
        _sample(0, 2, r"\boxed{17}", [5, EOS]),  # wrong
        _sample(0, 3, r"9 * 2 = 18, so \boxed{18}.", [5, 5, 5, 5]),  # cut at the limit (4), no EOS
        _sample(1, 0, "18", [5, EOS]),  # no box
    ]
    filters = build_filter(default_filter("boxed"), {"eos_token_ids": [EOS], "max_completion_length": 4})
    apply_filter(samples, filters)
    assert [s["accepted"] for s in samples] == [True, False, False, False, False]
    assert samples[1]["passed"] == {"correctness": True, "boxed_format": False, "termination": True}
    assert samples[3]["scores"]["termination"] == -1.0
    counts = round_counts(samples, select_training_samples(samples), n_questions=2)
    assert counts == {
        "n_questions": 2, "n_samples": 5, "n_accepted": 1, "n_selected": 1, "questions_with_accepted": 1,
        "frac_questions_with_accepted": 0.5,
        "filter_pass_rate": {"correctness": 3 / 5, "boxed_format": 3 / 5, "termination": 4 / 5},
    }


def test_filter_bounds_and_parameters():
    samples = [_sample(0, i, text, [EOS]) for i, text in enumerate(["go go go go go", "a b c d e", "a b"])]
    # repetition_penalty with a parameter, bounded below and above
    apply_filter(samples, build_filter([{"name": "repetition_penalty", "ngram_size": 2, "min": -0.5, "max": -0.1}]))
    assert [s["accepted"] for s in samples] == [False, False, False]  # -0.75, 0.0, 0.0
    apply_filter(samples, build_filter([{"name": "repetition_penalty", "ngram_size": 2, "max": -0.5}]))
    assert [s["accepted"] for s in samples] == [True, False, False]


def test_a_reward_that_cannot_score_rejects_the_sample(monkeypatch):
    # termination without completion_ids/eos ids scores None: None never passes a bound

    monkeypatch.setattr(batch, "_warned", set())  # the warning is once per process: an earlier test may have had it
    samples = [_sample(0, 0, r"\boxed{18}", None)]
    with pytest.warns(RuntimeWarning):
        apply_filter(samples, build_filter([{"name": "termination", "min": -10}]))
    assert samples[0]["accepted"] is False


@pytest.mark.parametrize(("spec", "message"), [
    ([], "non-empty list"),
    (["correctness"], "mapping with a 'name'"),
    ([{"name": "correctness"}], "give a 'min' and/or a 'max'"),
    ([{"name": "correctness", "min": "high"}], "min must be a number"),
    ([{"name": "correctness", "min": 1, "max": 0}], "above max"),
    ([{"name": "correctness", "min": 1, "weight": 1}], "not a weight"),
    ([{"name": "corectness", "min": 1}], "Did you mean 'correctness'"),
    ([{"name": "repetition_penalty", "min": -1, "ngram": 3}], "no parameter 'ngram'"),
    ([{"name": "correctness", "min": 1}, {"name": "correctness", "max": 1}], "twice"),
])
def test_bad_filters_are_refused(spec, message):
    with pytest.raises(ValueError, match=message):
        validate_filter(spec)


def test_dedup_keeps_the_first_of_each_text_per_question_and_caps():
    rows = [
        {"question_index": 1, "sample_index": 0, "completion": "x", "accepted": True},
        {"question_index": 0, "sample_index": 2, "completion": "a\n b", "accepted": True},
        {"question_index": 0, "sample_index": 0, "completion": "a b", "accepted": True},
        {"question_index": 0, "sample_index": 1, "completion": "c", "accepted": False},
        {"question_index": 0, "sample_index": 3, "completion": "d", "accepted": True},
        {"question_index": 1, "sample_index": 1, "completion": "a b", "accepted": True},  # same text, other question
    ]
    assert [(r["question_index"], r["sample_index"]) for r in select_training_samples(rows)] == [(0, 0), (0, 3), (1, 0), (1, 1)]
    assert [(r["question_index"], r["sample_index"]) for r in select_training_samples(rows, 1)] == [(0, 0), (1, 0)]


def _finish(root: Path, index: int, model_path: str, make_model: bool = True) -> None:
    rdir = root / f"round_{index}"
    rdir.mkdir(parents=True)
    if make_model:
        (rdir / "model").mkdir()
    (rdir / "metrics.json").write_text(json.dumps({"round": index, "model_path": model_path}))


def test_resume_starts_after_the_last_finished_round_from_its_model(tmp_path):
    assert resume_point(tmp_path / "none", "base") == (1, "base", [])
    _finish(tmp_path, 1, "/old/place/round_1/model")
    (tmp_path / "round_2").mkdir()  # started, never finished: redone
    (tmp_path / "round_2" / "samples.jsonl").write_text("")
    next_round, model, history = resume_point(tmp_path, "base")
    assert next_round == 2 and [h["round"] for h in history] == [1]
    assert model == str(tmp_path / "round_1" / "model")  # found where it is now, even if the folder moved
    assert finished_rounds(tmp_path) == [1]


def test_resume_stops_at_a_gap_and_uses_metrics_when_there_is_no_model_folder(tmp_path):
    _finish(tmp_path, 1, "Qwen/Qwen2.5-0.5B-Instruct", make_model=False)  # round 1 trained nothing
    _finish(tmp_path, 3, "x")
    assert resume_point(tmp_path, "base")[:2] == (2, "Qwen/Qwen2.5-0.5B-Instruct")


# --------------------------------------------------------------------------------------------
# The recipes' own dataclasses: no clash with the ones they are parsed with, plain field types


def _field_names(*classes) -> list[str]:
    return [f.name for cls in classes for f in dataclasses.fields(cls)]


def test_ei_and_eval_fields_do_not_clash():
    from trl import ModelConfig, SFTConfig

    ei = set(_field_names(ExpertIterationArguments))
    assert not ei & set(_field_names(SFTConfig, ModelConfig, RecipeArguments))
    assert all(name.startswith("ei_") for name in ei)
    assert not set(_field_names(EvalArguments)) & set(_field_names(RecipeArguments))


ALLOWED = {bool, int, float, str, int | None, float | None, str | None, bool | None, list[dict] | None, dict | None,
           list[str]}


@pytest.mark.parametrize("cls", [ExpertIterationArguments, EvalArguments])
def test_field_types_are_ones_hf_argument_parser_reads(cls):
    import inspect

    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        assert hints[f.name] in ALLOWED, f"{cls.__name__}.{f.name}: {hints[f.name]}"
        assert not isinstance(f.type, str), "no `from __future__ import annotations` in this module"
    assert "from __future__ import annotations" not in inspect.getsource(inspect.getmodule(cls))


def test_docstring_examples():
    import doctest

    from rl_math.methods import expert_iteration

    assert doctest.testmod(expert_iteration).failed == 0


def test_a_rerun_never_reports_a_credential_as_a_changed_setting():
    from rl_math.methods.expert_iteration import changed_settings

    saved = {"hub_token": "<redacted>", "wandb_api_key": "old", "learning_rate": 1e-3}
    resolved = {"hub_token": "hf_new", "wandb_api_key": "new", "learning_rate": 1e-3}
    assert changed_settings(saved, resolved) == []
