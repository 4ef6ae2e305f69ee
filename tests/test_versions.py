"""The version guard: an untested library version is one warning line, one known to break is refused."""

from __future__ import annotations

import logging

import pytest

from rl_math import preflight, versions
from rl_math.errors import ConfigError

TESTED = {"trl": "1.16.0", "transformers": "5.23.0", "accelerate": "1.15.0", "deepspeed": "0.19.8", "vllm": None}


def _installed(monkeypatch, **changed):
    monkeypatch.setattr(versions, "installed_versions", lambda names=versions.GUARDED: {**TESTED, **changed})


def test_the_tested_ranges_are_setup_cfgs_pins():
    ranges = versions.tested_ranges()
    assert ranges["trl"] == "trl==1.16.0" and ranges["deepspeed"] == "deepspeed==0.19.8"
    assert ranges["vllm"].startswith("vllm") and ">=0.22.0" in ranges["vllm"]  # the vllm extra's range


def test_the_installed_stack_passes_silently(caplog):
    with caplog.at_level(logging.WARNING, logger="rl_math.versions"):
        versions.check_versions()
    assert caplog.records == []


def test_an_untested_version_is_one_warning_line_naming_it(monkeypatch, caplog):
    _installed(monkeypatch, accelerate="1.16.1", vllm="0.40.0")
    with caplog.at_level(logging.WARNING, logger="rl_math.versions"):
        versions.check_versions()
    (record,) = caplog.records
    assert record.getMessage() == (
        "untested library versions: accelerate 1.16.1 is installed, rl-math is tested with accelerate==1.15.0; "
        f"vllm 0.40.0 is installed, rl-math is tested with {versions.tested_ranges()['vllm']}; "
        f"if something breaks, pip install 'accelerate==1.15.0' '{versions.tested_ranges()['vllm']}'"
    )


def test_a_version_known_to_break_is_refused_in_one_sentence(monkeypatch):
    _installed(monkeypatch, trl="0.19.1")
    with pytest.raises(ConfigError) as error:
        versions.check_versions()
    assert str(error.value) == (
        "trl 0.19.1 is installed, rl-math needs trl>=1.16: install the tested version(s) (pip install "
        "'trl==1.16.0'), or set RL_MATH_ALLOW_UNTESTED_VERSIONS=1 to try anyway"
    )
    monkeypatch.setenv("RL_MATH_ALLOW_UNTESTED_VERSIONS", "1")
    versions.check_versions()  # a warning now


def test_every_recipe_checks_versions_before_anything_loads():
    assert preflight.INPUT_CHECKS[0] is versions.check_versions
