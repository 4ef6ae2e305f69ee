"""The scoring conventions: lm-eval's own filters and exact match as its pinned YAMLs define them,
math-verify's documented call, Qwen2.5-Math's extraction, rl-math's grader, and which apply where."""

import importlib.metadata
import json
import sys
from pathlib import Path

import pytest

from rl_math.eval import conventions
from rl_math.eval.conventions import (
    LM_EVAL_VERSION,
    conventions_for,
    disagreements,
    flexible_extract,
    lm_eval_task_config,
    math_verify,
    qwen_boxed,
    qwen_extract,
    score_all,
    strict_match,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "regrade" / "gsm8k_conventions.jsonl"
lm_eval = pytest.importorskip("lm_eval", reason="lm-eval is in the dev extra; pip install -e .[dev]")


def test_the_installed_lm_eval_is_the_pinned_one_and_its_gsm8k_task_version_is_3():
    assert importlib.metadata.version("lm-eval") == LM_EVAL_VERSION
    assert lm_eval_task_config("gsm8k")["metadata"]["version"] == 3.0
    assert lm_eval_task_config("gsm8k-cot-zeroshot")["metadata"]["version"] == 3.0


def test_the_pinned_yaml_defines_the_filters_the_issue_quotes():
    filters = {f["name"]: f["filter"][0] for f in lm_eval_task_config("gsm8k")["filter_list"]}
    assert filters["strict-match"]["regex_pattern"] == r"#### (\-?[0-9\.\,]+)"
    assert filters["flexible-extract"] == {"function": "regex", "group_select": -1,
                                           "regex_pattern": r"(-?[$0-9.,]{2,})|(-?[0-9]+)"}
    metric = lm_eval_task_config("gsm8k")["metric_list"][0]
    assert metric["ignore_case"] is True and metric["regexes_to_ignore"] == [",", "\\$", "(?s).*#### ", "\\.$"]


def test_strict_takes_the_first_answer_and_flexible_the_last_number():
    text = "#### 18\nOn second thought 19.\n#### 19"
    assert strict_match(text, "18") and not strict_match(text, "19")
    assert flexible_extract(text, "19") and not flexible_extract(text, "18")


def test_exact_match_compares_strings_after_lm_evals_normalisation():
    assert strict_match("#### 1,080", "1080") and strict_match("#### 18.", "18")
    assert not strict_match("#### 2.50", "2.5")  # no numeric comparison in lm-eval
    assert strict_match("#### 7", "Tom has 3 + 4 = <<3+4=7>>7 apples.\n#### 7")  # a whole GSM8K solution as gold


def test_math_verify_reads_gold_and_completion_with_the_same_call():
    assert math_verify(r"so it is $\frac{1}{2}$", "0.5") and math_verify("#### 1,080", "The total is 1080.")
    assert not math_verify("I give up.", "18")


def test_qwen_takes_the_last_box_then_the_answer_is_then_the_last_number():
    assert qwen_extract(r"\boxed{3} ... \boxed{4}") == "4"
    assert qwen_extract("The answer is 12.\nDone") == "12.Done"  # newlines dropped, as Qwen's parser does
    assert qwen_extract("2 + 3 = 5, then 1,200 more") == "1200"
    assert qwen_boxed(r"\boxed{0.5}", "50") and qwen_boxed(r"\boxed{18.0001}", "18")  # percent, rel. 1e-4
    assert not qwen_boxed(r"\boxed{18.01}", "18")


def test_which_conventions_apply_to_which_task():
    assert [c.name for c in conventions_for("gsm8k")] == [
        "rl_math", "strict_match", "flexible_extract", "cot_strict_match", "math_verify", "qwen_boxed"]
    assert [c.name for c in conventions_for("arithmetic")][:2] == ["rl_math", "strict_match"]
    assert [c.name for c in conventions_for("math")] == ["rl_math", "math_verify", "qwen_boxed"]


def test_without_lm_eval_its_columns_are_left_out_with_one_line(monkeypatch, caplog):
    monkeypatch.setattr(conventions, "lm_eval_installed", lambda: False)
    assert [c.name for c in conventions_for("gsm8k")] == ["rl_math", "math_verify", "qwen_boxed"]
    conventions.warn_if_lm_eval_left_out.cache_clear()
    conventions.warn_if_lm_eval_left_out("gsm8k")
    conventions.warn_if_lm_eval_left_out("gsm8k")
    conventions.warn_if_lm_eval_left_out.cache_clear()
    assert [r.getMessage() for r in caplog.records] == [conventions.LM_EVAL_MISSING]
    assert "pip install 'rl-math[lmeval]'" in conventions.LM_EVAL_MISSING and "\n" not in conventions.LM_EVAL_MISSING


def test_lm_eval_installed_without_its_dependencies_counts_as_missing_not_as_all_wrong(monkeypatch):
    # lm-eval 0.4.13 without sacrebleu: its metrics module does not import, and every exact match would
    # raise (score_all turns that into False: the columns would read 0 %); they are left out instead
    monkeypatch.setitem(sys.modules, "lm_eval.api.metrics", None)
    conventions.lm_eval_import_error.cache_clear()
    try:
        assert not conventions.lm_eval_installed()
        assert "lm_eval.api.metrics" in conventions.lm_eval_import_error()
        assert [c.name for c in conventions_for("gsm8k")] == ["rl_math", "math_verify", "qwen_boxed"]
    finally:
        conventions.lm_eval_import_error.cache_clear()


def test_a_convention_that_raises_scores_false_and_the_others_still_score():
    def broken(completion, gold):
        raise RuntimeError("boom")

    found = score_all(r"\boxed{18}", "18", [conventions.Convention("broken", broken, "test"),
                                            *conventions_for("gsm8k")])
    assert found["broken"] is False and found["rl_math"] is True


def test_the_rl_math_column_is_the_tasks_grader():
    rl_math = conventions_for("math")[0]
    assert rl_math.score(r"\boxed{\dfrac{\pi}{2}}", r"\frac{\pi}{2}") and not rl_math.score(r"\boxed{\pi}", r"\frac{\pi}{2}")


def test_disagreements_count_each_pattern_once_per_row():
    rows = [{"rl_math": True, "strict_match": False}, {"rl_math": True, "strict_match": True},
            {"rl_math": False, "strict_match": True}, {"rl_math": True, "strict_match": False}]
    assert disagreements(rows) == {"rl_math ✓ | strict_match ✗": 2, "strict_match ✓ | rl_math ✗": 1}


def test_every_fixture_row_has_provenance_and_a_hand_written_expectation():
    rows = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
    assert len(rows) >= 20
    assert all(row["source"] and row["expected"] for row in rows)
