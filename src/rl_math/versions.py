"""The version guard: the libraries rl-math drives, against the versions it is tested with.

rl-math reaches into TRL, transformers, accelerate, DeepSpeed and vLLM (GRPOConfig's fields, the
reward calling convention, the Trainer's callbacks, DeepSpeed's config schema). Their pins live in
one place, setup.cfg; this module reads them from the installed package's metadata and compares
them with what is installed, before any model loads:

* a version outside the tested range: one warning line naming the package, the installed and the
  tested version, and the pip command that installs the tested one;
* a version that is known to break rl-math (``KNOWN_BREAKING``): the same line as a ConfigError
  (exit 2), because the run would otherwise fail far from the cause;
* a package that is not installed (vLLM, DeepSpeed on a laptop) is not checked.

>>> differences({"trl": "trl==1.16.0", "vllm": "vllm>=0.22.0,<=0.31.0"}, {"trl": "1.17.0", "vllm": None})
['trl 1.17.0 is installed, rl-math is tested with trl==1.16.0']
>>> breaking({"trl": "1.15.2", "transformers": "5.23.0"})
['trl 1.15.2 is installed, rl-math needs trl>=1.16']
"""

from __future__ import annotations

import logging
import os
from importlib import metadata

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

from rl_math.errors import ConfigError

logger = logging.getLogger(__name__)

GUARDED = ("trl", "transformers", "accelerate", "deepspeed", "vllm")
"""The libraries whose internals rl-math depends on; the others (datasets, peft) use stable APIs."""
KNOWN_BREAKING = {
    # 1.16 added the log_metric/log_extra reward arguments and renamed GRPOConfig fields rl-math sets
    "trl": "trl>=1.16",
    # 5.x removed warmup_ratio and renamed gradient_checkpointing, both in rl-math's configs
    "transformers": "transformers>=5",
}
"""Ranges outside which rl-math cannot run (not merely untested): a refusal, not a warning."""
ALLOW_UNTESTED_ENV = "RL_MATH_ALLOW_UNTESTED_VERSIONS"
"""Set to 1 to turn the refusals into warnings (trying a new release on purpose)."""


def tested_ranges(distribution: str = "rl-math") -> dict[str, str]:
    """{package: requirement} for the guarded packages, from the installed rl-math's metadata (setup.cfg).

    Extras count too (vLLM's range is the `vllm` extra's). Empty when rl-math is not installed.
    """
    try:
        requirements = metadata.requires(distribution) or []
    except metadata.PackageNotFoundError:
        return {}
    ranges: dict[str, str] = {}
    for line in requirements:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        name = requirement.name.lower()
        if name in GUARDED and requirement.specifier:
            ranges[name] = f"{name}{requirement.specifier}"
    return ranges


def installed_versions(names: tuple[str, ...] = GUARDED) -> dict[str, str | None]:
    """{package: installed version or None}."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _outside(version: str, requirement: str) -> bool:
    try:
        # prereleases count: a dev build of the tested version is still that version's code
        return not Requirement(requirement).specifier.contains(Version(version).base_version, prereleases=True)
    except (InvalidVersion, InvalidRequirement):
        return False


def differences(ranges: dict[str, str], installed: dict[str, str | None]) -> list[str]:
    """One phrase per installed package outside its tested range."""
    return [
        f"{name} {installed[name]} is installed, rl-math is tested with {requirement}"
        for name, requirement in ranges.items()
        if installed.get(name) and _outside(installed[name], requirement)
    ]


def breaking(installed: dict[str, str | None]) -> list[str]:
    """One phrase per installed package in a range known to break rl-math."""
    return [
        f"{name} {installed[name]} is installed, rl-math needs {requirement}"
        for name, requirement in KNOWN_BREAKING.items()
        if installed.get(name) and _outside(installed[name], requirement)
    ]


def check_versions(values: object = None, explicit: object = None) -> None:
    """A recipe check: refuse a version known to break, warn (one line) about an untested one.

    Takes and ignores a check's (values, explicit) arguments, so recipes list it beside the others.
    """
    installed = installed_versions()
    refused = breaking(installed)
    ranges = tested_ranges()
    if refused and os.environ.get(ALLOW_UNTESTED_ENV) != "1":
        pins = " ".join(f"'{ranges.get(name, KNOWN_BREAKING[name])}'" for name in KNOWN_BREAKING if installed.get(name)
                        and _outside(installed[name], KNOWN_BREAKING[name]))
        raise ConfigError(
            f"{'; '.join(refused)}: install the tested version(s) (pip install {pins}), "
            f"or set {ALLOW_UNTESTED_ENV}=1 to try anyway"
        )
    untested = differences(ranges, installed)
    if untested:
        pins = " ".join(f"'{ranges[line.split()[0]]}'" for line in untested)
        logger.warning("untested library versions: %s; if something breaks, pip install %s", "; ".join(untested), pins)
