r"""The bottom of rl-math: the one-sentence error, and the small helpers every layer uses to word one.

Nothing here imports rl_math; everything else may import this.

>>> one_line("a\n  multi-line   message")
'a multi-line message'
>>> nearest_key("learnin_rate", ["learning_rate", "max_steps"])
'learning_rate'
"""

from __future__ import annotations

import contextlib
import difflib
import re
import sys
import typing
from collections.abc import Iterable
from pathlib import Path

# Credentials (hub tokens, API keys, passwords) come from the shell, never from a config file that
# gets committed, and are kept out of every file a run writes. One predicate for config fields and
# environment variables alike, matched on whole words: `max_prompt_tokens` and `eos_token` are not
# credentials, `hub_token`, `HF_TOKEN`, `WANDB_API_KEY` and `db_password` are.
_CREDENTIAL_WORDS = re.compile(r"(^|_)(api_?key|access_key|private_key|password|passwd|secret|credentials?)(_|$)")


_SPECIAL_TOKEN_FIELDS = {"eos_token", "pad_token", "bos_token", "unk_token", "sep_token", "cls_token", "mask_token"}


def is_credential(name: str) -> bool:
    """Whether a config field or environment variable holds a credential.

    >>> [n for n in ("hub_token", "HF_TOKEN", "WANDB_API_KEY", "max_prompt_tokens", "eos_token") if is_credential(n)]
    ['hub_token', 'HF_TOKEN', 'WANDB_API_KEY']
    """
    lowered = name.lower()
    if _CREDENTIAL_WORDS.search(lowered):
        return True
    return (lowered == "token" or lowered.endswith("_token")) and lowered not in _SPECIAL_TOKEN_FIELDS


class ConfigError(ValueError):
    """A configuration problem, raised before anything heavy is loaded."""


def nearest_key(name: str, candidates: Iterable[str]) -> str | None:
    """The closest valid name to a misspelt one, or None when nothing is close.

    The one "did you mean" matcher: config keys, reward names and parameters, task options and
    paths all use it, so a typo is caught (or not) the same way everywhere.

    >>> nearest_key("learnin_rate", ["learning_rate", "lr_scheduler_type"])
    'learning_rate'
    """
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def one_line(message: str) -> str:
    """A multi-line library message as the one line a ConfigError prints."""
    return " ".join(message.split())


@contextlib.contextmanager
def exit_on_config_error() -> typing.Iterator[None]:
    """In a recipe's `__main__`: a ConfigError is one line on stderr and exit code 2, no traceback."""
    try:
        yield
    except ConfigError as err:
        print(f"{Path(sys.argv[0]).name}: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None

