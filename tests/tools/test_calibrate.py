"""`rl-math calibrate`: the starting model's completion lengths, truncation and step-0 signal, before a run;
and the health monitor's all_truncated alarm, which now fires where most completions are truncated."""

from pathlib import Path

import pytest

from rl_math.cli import main
from rl_math.tools.calibrate import calibrate, cut_at_limit, format_calibration, quantile, suggested_limit
from rl_math.train.health import HealthArguments, HealthMonitor

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def clipped_logs(ratio: float, n: int) -> list[dict]:
    return [{"completions/clipped_ratio": ratio, "loss": 0.1, "grad_norm": 1.0}] * n


def alarms_for(ratio: float, logs: int = 3) -> list[str]:
    monitor = HealthMonitor(HealthArguments())
    return [a.condition for step, log in enumerate(clipped_logs(ratio, logs), 1) for a in monitor.observe(log, step)]


def test_all_truncated_fires_by_default_when_most_completions_are_truncated_for_several_logs():
    assert HealthArguments().health_clipped_ratio_threshold == 0.5
    assert alarms_for(0.57) == ["all_truncated"]  # the public report's share at which GRPO learned nothing
    assert alarms_for(0.57, logs=2) == []  # health_patience (3) logs in a row
    assert alarms_for(0.3, logs=10) == []


def test_the_length_summary():
    assert quantile([3, 1, 2], 0.5) == 2
    assert suggested_limit([10] * 99 + [70], unfinished=0.0) == 64  # p99 is 10: the floor of one multiple
    assert suggested_limit([10] * 100, unfinished=0.02) == 64  # a few loops: no limit fixes those, they are reported
    assert suggested_limit([10] * 100, unfinished=0.2) is None  # the model does not stop
    assert cut_at_limit([1, 2, 3, 4], [9], 2) == ([1, 2], False, True)


@pytest.mark.slow
def test_calibrating_the_smoke_config_measures_truncation_and_the_alarm_fires_at_that_limit(tmp_path, capsys):
    report = calibrate(str(CONFIGS / "smoke.yaml"), questions=2, probe_factor=2)
    assert report["questions"] == 2 and report["num_generations"] == 4 and report["probe_limit"] == 96
    assert report["method"] == "grpo" and report["limit"] == 48 and report["limit_field"] == "max_completion_length"
    assert set(report["lengths"]) == {"p50", "p90", "p99"}
    assert report["lengths"]["p50"] <= report["lengths"]["p90"] <= report["lengths"]["p99"] <= 96
    assert 0 <= report["no_signal_groups"] <= 1 and set(report["reward_means"]) >= {"correctness", "termination"}
    # the random tiny model rarely stops: 48 tokens truncate most of its completions ...
    assert report["truncated_at_limit"] >= 0.5
    # ... and a run at that limit raises all_truncated after health_patience logs
    assert alarms_for(report["truncated_at_limit"]) == ["all_truncated"]
    text = format_calibration(report)
    assert "truncated at max_completion_length=48" in text and "p99" in text and "warning: most completions" in text


@pytest.mark.slow
@pytest.mark.parametrize("config, method, limit, group", [
    ("learning/grpo.yaml", "grpo", 40, 8),
    ("learning/ei.yaml", "expert_iteration", 40, 4),
    ("ei_smoke.yaml", "expert_iteration", 48, 4),
])
def test_calibrating_the_learning_and_ei_configs_uses_each_methods_sampling(config, method, limit, group):
    # the learning configs start from outputs/learning/sft (a benchmark stage): the embedded model stands in
    report = calibrate(str(CONFIGS / config), questions=2, model="rl-math:tiny-qwen2?seed=1", probe_factor=2)
    assert (report["method"], report["limit"], report["num_generations"]) == (method, limit, group)
    assert report["temperature"] == 1.0 and report["probe_limit"] == 2 * limit
    assert 0 <= report["truncated_at_limit"] <= 1
    text = format_calibration(report)
    field = "ei_max_new_tokens" if method == "expert_iteration" else "max_completion_length"
    assert f"truncated at {field}={limit}" in text and "p50" in text


def test_a_config_whose_model_cannot_be_loaded_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["calibrate", str(CONFIGS / "smoke.yaml"), "--model", str(tmp_path / "no-model"), "--questions", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rl-math calibrate: error: ") and err.count("\n") == 1
