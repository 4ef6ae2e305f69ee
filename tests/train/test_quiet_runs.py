"""Library messages that are harmless and leave the user nothing to do are not printed on every run."""

import logging
import warnings
from types import SimpleNamespace

from rl_math.train.lifecycle import quiet_library_noise, quiet_tied_weights_warning


def _messages_reaching(logger_name: str, *messages: str) -> list[str]:
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    try:
        for message in messages:
            logger.warning(message)
    finally:
        logger.removeHandler(handler)
    return [record.getMessage() for record in records]


def test_deepspeed_cpu_notice_is_dropped_and_its_other_warnings_kept():
    quiet_library_noise()
    assert _messages_reaching(
        "DeepSpeed", "Setting accelerator to CPU. If you have GPU or other accelerator, we were unable to detect it.", "other"
    ) == ["other"]


def test_trl_reading_a_deprecated_transformers_alias_warns_nothing():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_library_noise()
        warnings.warn("`is_gradient_checkpointing` is deprecated and will be removed in v6.", FutureWarning, stacklevel=1)
    assert caught == []


def test_tied_lm_head_is_not_reported_missing_on_resume():
    quiet_tied_weights_warning(SimpleNamespace(model=SimpleNamespace(config=SimpleNamespace(tie_word_embeddings=True))))
    missing = "There were missing keys in the checkpoint model loaded: "
    assert _messages_reaching("transformers.trainer", missing + "['lm_head.weight'].", missing + "['a.weight'].") == [
        missing + "['a.weight']."
    ]


def test_huggingface_hub_warnings_are_not_passed_on_to_our_handler_too():
    quiet_library_noise()
    assert not logging.getLogger("huggingface_hub").propagate
