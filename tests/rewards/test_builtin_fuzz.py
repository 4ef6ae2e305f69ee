"""No reward ever raises or hangs, whatever it is given (hypothesis fuzzing plus pathological cases).

The time bounds only catch hangs; they are not speed goals.
"""

import threading
import time
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rl_math.grading import batch
from rl_math.rewards import available_rewards, builtin, get_reward
from rl_math.tasks.gsm8k import GSM8KTask

HANG_SECONDS = 2.0

REWARD_PARAMS = {
    "correctness": {},
    "boxed_format": {},
    "think_format": {"min_words": 3},
    "repetition_penalty": {"ngram_size": 3, "max_penalty": -1.0},
    "termination": {"eos_token_ids": [2, 7], "max_completion_length": 16},
    "coin_flip": {"seed": 3},
    "xml_format": {"min_words": 3},
}


@pytest.fixture(autouse=True)
def quiet_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def test_every_registered_reward_is_fuzzed():
    assert sorted(REWARD_PARAMS) == available_rewards()


def call(name, completions, **columns):
    """Call a reward like GRPOTrainer, check the result's shape, return (result, seconds)."""
    reward = get_reward(name, **REWARD_PARAMS[name])
    start = time.perf_counter()
    result = reward(completions=completions, **columns)
    elapsed = time.perf_counter() - start
    assert isinstance(result, list)
    assert all(value is None or isinstance(value, float) for value in result)
    return result, elapsed


# --------------------------------------------------------------------------------------------
# Hypothesis: random text built from the characters that matter, random shapes, random columns

SPECIAL_PIECES = [
    "\\boxed{", "\\boxed", "\\fbox{", "{", "}", "\\{", "\\}", "\\\\", "<think>", "</think>", "<answer>",
    "</answer>", "\\frac", "\\dfrac", "\\text{", "\\sqrt{", "^", "^{", "\\circ", "\\%", "\\$", "$", "=", " or ",
    ",", ".", "-", "\u2212", "1", "18", "0", "1,080", "e5", "(", ")", "\\left(", "\\right)", "!", " ", "\n",
    "reasoning process here", "x", "\x00", "\ud7ff", "\U0001f600",
]
text = st.lists(st.one_of(st.sampled_from(SPECIAL_PIECES), st.text(max_size=8)), max_size=60).map("".join)
message = st.dictionaries(
    st.sampled_from(["role", "content", "x"]), st.one_of(text, st.none(), st.sampled_from(["assistant", "user", "tool"]))
)
completion = st.one_of(
    text,
    text.map(lambda content: [{"role": "assistant", "content": content}]),
    st.binary(max_size=64),
    st.none(),
    st.integers(),
    st.lists(message, max_size=3),
)
column_value = st.one_of(text, st.none(), st.integers(), st.floats(allow_nan=True), st.binary(max_size=8))
token_ids = st.one_of(st.lists(st.integers(min_value=0, max_value=10), max_size=20), st.none(), text)

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", sorted(REWARD_PARAMS))
@FUZZ
@given(
    completions=st.lists(completion, max_size=6),
    answers=st.lists(column_value, max_size=8),
    ids=st.lists(token_ids, max_size=8),
    prompts=st.one_of(st.none(), text, st.lists(st.one_of(text, st.lists(message, max_size=2)), max_size=8)),
)
def test_reward_never_raises_on_random_input(name, completions, answers, ids, prompts):
    result, elapsed = call(name, completions, answer=answers, completion_ids=ids, prompts=prompts, question=answers)
    assert len(result) == len(completions)
    assert elapsed < HANG_SECONDS


@FUZZ
@given(answer=text, gold=st.one_of(text, st.integers(), st.none()))
def test_correctness_never_raises_on_random_answers_and_golds(answer, gold):
    result, elapsed = call("correctness", [f"\\boxed{{{answer}}}", answer], answer=[gold, gold])
    assert result[0] in (0.0, 1.0, None)
    assert elapsed < HANG_SECONDS


@FUZZ
@given(texts=st.lists(text, min_size=1, max_size=4))
def test_reward_values_stay_in_their_documented_ranges(texts):
    assert set(call("boxed_format", texts)[0]) <= {0.0, 1.0}
    assert set(call("think_format", texts)[0]) <= {0.0, 1.0}
    assert all(-1.0 <= value <= 0.0 for value in call("repetition_penalty", texts)[0])


# --------------------------------------------------------------------------------------------
# Explicit pathological inputs, against every reward

PATHOLOGICAL = {
    "100kB-text": "The answer is 18. " * 5_600 + "\\boxed{18}",
    "10k-nested-braces": "\\boxed" + "{" * 10_000,
    "10k-nested-closed": "\\boxed" + "{" * 10_000 + "1" + "}" * 10_000,
    "10k-boxes": "\\boxed{1}" * 10_000,
    "10k-nested-boxes": "\\boxed{" * 10_000 + "1" + "}" * 10_000,
    "binary-garbage": bytes(range(256)).decode("latin-1") * 400,
    "deep-think-nesting": "<think>" * 10_000 + "\\boxed{1}" + "</think>" * 10_000,
    "think-then-100kB": "<think>" + "step " * 20_000 + "</think>\\boxed{1}",
    "answer-tags": "<answer>" * 10_000 + "1" + "</answer>" * 10_000,
    "nested-fracs": "\\boxed{" + "\\frac{" * 2_000 + "1" + "}{2}" * 2_000 + "}",
    "power-tower": "\\boxed{" + "9^" * 400 + "9}",
    "huge-number": "\\boxed{" + "9" * 900 + "}",
    "huge-exponent": "\\boxed{10^{999999999}}",
    "sqrt-tower": "\\boxed{" + "\\sqrt{" * 30 + "2" + "}" * 30 + "}",
    "backslashes": "\\" * 100_000,
    "unicode": "\U0001f600\u2212\u00d7" * 30_000,
    "one-megabyte": "x" * 1_000_001 + "\\boxed{1}",
}


@pytest.mark.parametrize("name", sorted(REWARD_PARAMS))
@pytest.mark.parametrize("case", sorted(PATHOLOGICAL))
def test_reward_handles_pathological_text_quickly(name, case):
    completions = [PATHOLOGICAL[case], [{"role": "assistant", "content": PATHOLOGICAL[case]}]]
    result, elapsed = call(
        name, completions, answer=["1", "1"], completion_ids=[[1] * 16, [1, 2]], prompts=[PATHOLOGICAL[case]] * 2
    )
    assert len(result) == 2
    assert elapsed < HANG_SECONDS


@pytest.mark.parametrize("name", sorted(REWARD_PARAMS))
@pytest.mark.parametrize(
    "completions",
    [None, [None, None], [], "\\boxed{1}", [b"\xff\xfe\\boxed{1}"], [[{"role": "assistant", "content": None}]], [3.5]],
    ids=["none", "none-items", "empty", "bare-string", "bytes", "none-content", "number"],
)
def test_reward_handles_malformed_completions(name, completions):
    call(name, completions, answer=["1"], completion_ids=[[2]], prompts=None)


@pytest.mark.parametrize("name", sorted(REWARD_PARAMS))
@pytest.mark.parametrize(
    "columns",
    [
        {"answer": [], "completion_ids": [], "prompts": []},
        {"answer": ["1"] * 9, "completion_ids": [[2]] * 9, "prompts": ["p"] * 9},
        {"answer": None, "completion_ids": None, "prompts": None},
        {"answer": "1", "completion_ids": 5, "prompts": 5},
        {"answer": [object()] * 3, "completion_ids": [object()] * 3, "prompts": [object()] * 3},
    ],
    ids=["too-short", "too-long", "missing", "scalars", "objects"],
)
def test_reward_handles_wrong_length_or_wrong_type_columns(name, columns):
    result, _ = call(name, ["\\boxed{1}", "x", "<think>a b c</think>\\boxed{1}"], **columns)
    assert len(result) == 3


@pytest.mark.parametrize("name", sorted(REWARD_PARAMS))
def test_reward_runs_off_the_main_thread(name):
    outcome = {}

    def work():
        try:
            completions = ["\\boxed{\\sqrt{4}}", "\\boxed{2}"]
            outcome["result"] = call(name, completions, answer=["2", "2"], completion_ids=[[2], [1]])[0]
        except BaseException as error:  # noqa: BLE001 - reported below
            outcome["error"] = error

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=30)
    assert "error" not in outcome
    assert len(outcome["result"]) == 2


def test_correctness_symbolic_fallback_is_right_off_the_main_thread():
    outcome = []
    thread = threading.Thread(
        target=lambda: outcome.append(call("correctness", ["\\boxed{\\sqrt{4}}"], answer=["2"])[0])
    )
    thread.start()
    thread.join(timeout=30)
    assert outcome == [[1.0]]


def test_reward_failure_scores_none_instead_of_raising(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(GSM8KTask, "grade", broken)  # the default task's comparator
    monkeypatch.setattr(batch, "_warned", set())
    assert builtin.correctness(["\\boxed{1}"], answer=["1"]) == [None]
