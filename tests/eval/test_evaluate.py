r"""Evaluation metrics against hand-counted verdicts on a fixed set of completions.

Three questions, k = 4 samples each, rewards correctness (weight 1.0), boxed_format (0.2) and
termination (0.2); stop token id 2, max_new_tokens 8. Every number asserted below is counted by
hand in the comments, not computed by the code under test.
"""

from __future__ import annotations

import json
import math

import pytest

from rl_math.eval.evaluate import (
    BUCKETS,
    ModelEvaluation,
    SampleResult,
    answer_key,
    bucket_of,
    majority_answer,
    pass_at_k,
    score_completions,
    summarize,
    table_rows,
    unique_model_names,
    write_results,
)
from rl_math.rewards import build_rewards
from rl_math.tasks.formats import build_prompt, get_prompt_format

EOS, FILL, MAX_NEW = 2, 7, 8
GOLDS = ["18", "72", "5"]
K = 4

# (text, n_tokens, ended with EOS)           verdict                        bucket              total reward
COMPLETIONS = [
    # Q0, gold 18
    (r"9 * 2 = 18. The answer is \boxed{18}.", 6, True),  # correct, 1 box             correct             1+0.2+0.2 = 1.4
    (r"\boxed{18}. Or \boxed{18.0}.", 5, True),  # both = 18: correct, 2 boxes      correct_malformed   1+0+0.2   = 1.2
    (r"I think \boxed{17}.", 4, True),  # wrong, 1 box                            wrong               0+0.2+0.2 = 0.4
    (r"\boxed{18}", 2, True),  # correct                                         correct             1.4
    # Q1, gold 72
    (r"So \boxed{70}.", 6, True),  # wrong                                       wrong               0.4
    (r"The answer is 72", 4, True),  # no box: not correct, no answer           malformed           0+0+0.2   = 0.2
    (r"48 + 24 = \boxed{72}", 3, True),  # correct                                correct             1.4
    (r"so \boxed{70", 8, False),  # unbalanced box, cut at the limit               malformed           0+0-0.2   = -0.2
    # Q2, gold 5: four identical wrong answers
    (r"\boxed{4}", 3, True),  # wrong                                            wrong               0.4
    (r"\boxed{4}", 3, True),
    (r"\boxed{4}", 3, True),
    (r"\boxed{4}", 3, True),
]
PROMPTS = [build_prompt(f"question {q}", "Box it.") for q in range(3)]
SPECS = [{"name": "correctness", "weight": 1.0}, {"name": "boxed_format", "weight": 0.2},
         {"name": "termination", "weight": 0.2}]


def _ids(n_tokens: int, eos: bool) -> list[int]:
    return [FILL] * (n_tokens - 1) + [EOS] if eos else [FILL] * n_tokens


def _score(completions=COMPLETIONS, golds=GOLDS, prompt_format="boxed", k=K):
    funcs, weights = build_rewards(SPECS, context={"eos_token_ids": [EOS], "max_completion_length": MAX_NEW})
    texts = [c[0] for c in completions]
    ids = [_ids(n, eos) for _, n, eos in completions]
    eos = [e for _, _, e in completions]
    truncated = [not e and n >= MAX_NEW for _, n, e in completions]
    prompts = PROMPTS[: len(golds)]
    return score_completions(prompts, texts, ids, eos, truncated, golds, k, funcs, weights,
                             get_prompt_format(prompt_format))


@pytest.fixture(scope="module")
def results():
    return _score()


@pytest.fixture(scope="module")
def metrics(results):
    return summarize(results, GOLDS, K)


def test_each_sample_lands_in_the_hand_counted_bucket(results):
    assert [r.bucket for r in results] == [
        "correct", "correct_malformed", "wrong", "correct",
        "wrong", "malformed", "correct", "malformed",
        "wrong", "wrong", "wrong", "wrong",
    ]
    assert [r.question_index for r in results] == [0] * 4 + [1] * 4 + [2] * 4
    assert [r.sample_index for r in results] == [0, 1, 2, 3] * 3


def test_accuracy_is_mean_correctness_over_all_samples(metrics):
    # correct: Q0 s0, s1, s3; Q1 s2 → 4 of 12
    assert metrics["accuracy"] == pytest.approx(4 / 12)
    assert metrics["n_questions"] == 3 and metrics["n_samples"] == 12


def test_buckets_are_hand_counted_and_sum_to_one(metrics):
    # correct 3 (Q0 s0, Q0 s3, Q1 s2); correct_malformed 1 (Q0 s1); wrong 6 (Q0 s2, Q1 s0, Q2 x4);
    # malformed 2 (Q1 s1, Q1 s3)
    assert metrics["buckets"] == pytest.approx(
        {"correct": 3 / 12, "correct_malformed": 1 / 12, "wrong": 6 / 12, "malformed": 2 / 12}
    )
    assert sum(metrics["buckets"].values()) == pytest.approx(1.0)
    # accuracy = correct + correct_malformed
    assert metrics["accuracy"] == pytest.approx(metrics["buckets"]["correct"] + metrics["buckets"]["correct_malformed"])
    assert metrics["well_formed_rate"] == pytest.approx(9 / 12)  # correct + wrong


def test_pass_at_k(metrics):
    # Q0 has 3 correct, Q1 has 1, Q2 has 0 → 2 of 3 questions solved at least once
    assert metrics["pass@4"] == pytest.approx(2 / 3)


def test_majority_at_k_with_deterministic_tie_break(metrics):
    # Q0 votes: 18 (s0), 18.0 (s1, the last box), 17, 18 → 18 by value, three votes → right
    # Q1 votes: 70 (s0), 72 (s2); s1 has no box and s3 an unbalanced one: no vote. 1-1 tie → the
    #    first answer seen, 70 → wrong (a "latest wins" rule would say 72 and be right)
    # Q2 votes: 4 x4 → wrong
    assert [q["majority_answer"] for q in metrics["per_question"]] == ["18", "70", "4"]
    assert metrics["maj@4"] == pytest.approx(1 / 3)


def test_eos_truncation_and_length(metrics):
    # only Q1 s3 ran to the 8-token limit without the stop token
    assert metrics["eos_rate"] == pytest.approx(11 / 12)
    assert metrics["truncation_rate"] == pytest.approx(1 / 12)
    # tokens: Q0 6+5+4+2 = 17, Q1 6+4+3+8 = 21, Q2 4x3 = 12 → 50 / 12
    assert metrics["mean_completion_tokens"] == pytest.approx(50 / 12)


def test_reward_components_and_weighted_total(metrics):
    # correctness: 4 ones / 12; boxed_format: Q0 1,0,1,1 + Q1 1,0,1,0 + Q2 4 = 9 / 12
    # termination: 11 x 1.0 and one -1.0 (Q1 s3) = 10 / 12
    assert metrics["rewards"] == pytest.approx({"correctness": 4 / 12, "boxed_format": 9 / 12, "termination": 10 / 12})
    # totals: Q0 1.4+1.2+0.4+1.4 = 4.4; Q1 0.4+0.2+1.4-0.2 = 1.8; Q2 4 x 0.4 = 1.6 → 7.8 / 12
    assert metrics["reward"] == pytest.approx(7.8 / 12)


def test_per_question_reward_mean_std_and_zero_std_rate(metrics):
    q0, q1, q2 = metrics["per_question"]
    # Q0 [1.4, 1.2, 0.4, 1.4]: mean 1.1; squared deviations .09+.01+.49+.09 = .68, / (4-1) → std sqrt(.68/3)
    assert q0["reward_mean"] == pytest.approx(1.1)
    assert q0["reward_std"] == pytest.approx(math.sqrt(0.68 / 3))
    # Q1 [0.4, 0.2, 1.4, -0.2]: mean 0.45; .0025+.0625+.9025+.4225 = 1.39 → sqrt(1.39/3)
    assert q1["reward_mean"] == pytest.approx(0.45)
    assert q1["reward_std"] == pytest.approx(math.sqrt(1.39 / 3))
    # Q2: four identical samples → std 0, the only zero-std group
    assert q2["reward_mean"] == pytest.approx(0.4) and q2["reward_std"] == pytest.approx(0.0)
    assert metrics["zero_std_rate"] == pytest.approx(1 / 3)
    assert metrics["mean_group_reward_std"] == pytest.approx((math.sqrt(0.68 / 3) + math.sqrt(1.39 / 3)) / 3)
    # all right or all wrong: only Q2 (0 of 4); Q0 has 3/4, Q1 1/4
    assert metrics["zero_std_correctness_rate"] == pytest.approx(1 / 3)
    assert [q["n_correct"] for q in metrics["per_question"]] == [3, 1, 0]


def test_a_correct_answer_outside_the_asked_format_is_correct_but_malformed():
    # think_boxed asks for <think>…</think> first: a bare box is correct, yet not well-formed
    completions = [
        (r"<think>Nine times two is eighteen, so the total is 18.</think> The answer is \boxed{18}.", 20, True),
        (r"The answer is \boxed{18}.", 6, True),
        (r"<think>Nine times two is seventeen, I believe.</think> \boxed{17}", 15, True),
        (r"<think>Nine times two is", 8, False),  # truncated in the think block: no answer region
    ]
    results = _score(completions, ["18"], "think_boxed", k=4)
    assert [r.bucket for r in results] == ["correct", "correct_malformed", "wrong", "malformed"]


def test_k1_has_no_pass_or_majority_or_std():
    results = _score(COMPLETIONS[:1], ["18"], k=1)
    metrics = summarize(results, ["18"], 1)
    assert metrics["accuracy"] == 1.0
    assert not any(key.startswith(("pass@", "maj@", "zero_std")) for key in metrics)


def test_a_question_with_the_wrong_number_of_samples_is_an_error():
    sample = SampleResult(0, 0, True, True)
    with pytest.raises(ValueError, match="expected 2"):
        summarize([sample], ["1"], 2)


@pytest.mark.parametrize(("correct", "well_formed", "bucket"), [
    (True, True, "correct"), (True, False, "correct_malformed"), (False, True, "wrong"), (False, False, "malformed"),
])
def test_bucket_of(correct, well_formed, bucket):
    assert bucket_of(correct, well_formed) == bucket and bucket in BUCKETS


def test_pass_at_k_estimator():
    assert pass_at_k(4, 0, 4) == 0.0
    assert pass_at_k(4, 1, 4) == 1.0
    assert pass_at_k(4, 2, 1) == pytest.approx(0.5)
    # n=4, c=1, k=2: 1 - C(3,2)/C(4,2) = 1 - 3/6
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)


def test_votes_are_by_value_and_ties_go_to_the_first_answer():
    assert answer_key("1,080") == answer_key(r"\$1080.00")
    assert majority_answer(["7", "18", "18.0", "7"]) == "7"
    assert majority_answer(["18.0", "7", "18", "7"]) == "18.0"
    assert majority_answer([None, None]) is None


def test_unique_model_names():
    assert unique_model_names(["rl-math:tiny-qwen2", "outputs/sft"]) == ["rl-math:tiny-qwen2", "sft"]
    assert unique_model_names(["a/x/model", "b/x/model"]) == ["a/x/model", "b/x/model"]
    assert unique_model_names(["m", "m"]) == ["m", "m (2)"]


def test_results_files(tmp_path, results, metrics):
    other = [SampleResult(r.question_index, r.sample_index, True, True, "1", {"correctness": 1.0}, 1.0, 3, True, False)
             for r in results]
    evaluations = [
        ModelEvaluation("base", "path/base", metrics, results, [{"model": "base"}] * 12),
        ModelEvaluation("trained", "path/trained", summarize(other, GOLDS, K), other, [{"model": "trained"}] * 12),
    ]
    summary = write_results(tmp_path, evaluations, {"title": "t"})
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert list(saved["models"]) == ["base", "trained"] == list(summary["models"])
    assert saved["models"]["trained"]["accuracy"] == 1.0
    accuracy = next(row for row in saved["table"] if row["metric"] == "accuracy (pass@1) [95% CI]")
    assert accuracy["base"] == "33.3% [6.1, 79.2]" and accuracy["trained"] == "100.0% [43.9, 100.0]"
    assert len((tmp_path / "completions.jsonl").read_text().splitlines()) == 24
    rows = dict(table_rows({e.name: e.metrics for e in evaluations}))
    assert rows["pass@4"] == ["66.7%", "100.0%"] and rows["zero-std groups (reward)"] == ["33.3%", "100.0%"]


def test_docstring_examples():
    import doctest

    from rl_math.eval import evaluate as evaluation

    assert doctest.testmod(evaluation).failed == 0
