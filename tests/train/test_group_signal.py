"""Which GRPO groups carry a signal: float64 counts per reward and in total, and the shape-only share."""

import numpy as np
import pytest

from rl_math.rewards import get_reward, reward_name
from rl_math.train.group_signal import GroupSignalRecorder, group_signal, is_constant


def test_identical_completions_under_a_weighted_mix_are_no_signal_despite_float32_rounding():
    # TRL sums weighted rewards in float32: eight identical 1.0/0.2/0.2 completions get a std of ~3e-8
    totals32 = (np.float32(1.0) * 1 + np.float32(0.2) * 1 + np.float32(0.2) * 1) * np.ones(8, dtype=np.float32)
    assert is_constant(list(totals32.astype(float)))
    scores = {"correctness": [1.0] * 8, "boxed_format": [1.0] * 8, "termination": [1.0] * 8}
    assert group_signal(scores, [1.0, 0.2, 0.2], group_size=8)["groups/no_signal"] == 1.0


def test_all_wrong_groups_with_differing_format_are_shape_only():
    scores = {"correctness": [0, 0, 0, 0, 1, 0, 1, 0], "boxed_format": [1, 0, 1, 1, 1, 1, 1, 1]}
    signal = group_signal(scores, [1.0, 0.2], group_size=4)
    assert signal["groups/shape_only"] == 0.5  # the first group: all wrong, format differs
    assert signal["groups/no_signal"] == 0.0
    assert signal["groups/no_signal/correctness"] == 0.5


def test_none_scores_count_as_zero_as_trl_sums_them():
    signal = group_signal({"correctness": [None, 0.0], "termination": [1.0, 1.0]}, [1.0, 0.2], group_size=2)
    assert signal["groups/no_signal"] == 1.0


def test_a_batch_that_is_not_whole_groups_reports_nothing():
    assert group_signal({"correctness": [1.0, 0.0, 1.0]}, [1.0], group_size=2) == {}


def test_recorder_logs_once_every_reward_scored_the_batch_and_keeps_names_and_values():
    funcs = [get_reward("correctness"), get_reward("boxed_format")]
    recorder = GroupSignalRecorder([reward_name(f) for f in funcs], [1.0, 0.2], group_size=2)
    wrapped = recorder.wrap(funcs)
    assert [f.__name__ for f in wrapped] == ["correctness", "boxed_format"]
    logged = {}
    completions = [[{"role": "assistant", "content": text}] for text in ("\\boxed{4}", "no box", "\\boxed{4}", "\\boxed{4}")]
    call = dict(completions=completions, answer=["4", "4", "5", "5"], log_metric=logged.__setitem__)
    first = wrapped[0](**call)
    assert first == funcs[0](**call) and logged == {}  # values untouched; nothing until the batch is complete
    wrapped[1](**call)
    assert logged["groups/shape_only"] == 0.0 and logged["groups/no_signal/correctness"] == 0.5
    assert logged["groups/no_signal"] == 0.5  # the second group: both wrong, both boxed


@pytest.mark.parametrize("weights", [[1.0], [2.5]])
def test_a_single_reward_no_signal_share_is_its_own(weights):
    signal = group_signal({"correctness": [1, 1, 0, 1]}, weights, group_size=2)
    assert signal["groups/no_signal"] == signal["groups/no_signal/correctness"] == 0.5
