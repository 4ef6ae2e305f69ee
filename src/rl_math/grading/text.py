"""Message text: the one place a prompt or completion, in any shape (string, chat messages, content parts), becomes text."""

from __future__ import annotations

# --------------------------------------------------------------------------------------------
# Message text: the one place a prompt or completion, in any shape, becomes text


def completion_text(completion: object) -> str:
    """The text of a completion, whatever shape TRL (or a user) hands over; never raises.

    A string is itself; a conversational completion (a list of messages) is the content of its
    assistant messages (tool messages are not the model's words); a single message is its
    content; bytes are decoded leniently; anything else (None included) is "".

    >>> completion_text([{"role": "assistant", "content": "The answer is \\\\boxed{18}."}])
    'The answer is \\\\boxed{18}.'
    >>> completion_text(None)
    ''
    """
    return _messages_text(completion, roles=("assistant",))


def prompt_text(prompt: object) -> str:
    """The text of a prompt: a string, or the content of every message of a conversational prompt.

    The same shapes as :func:`completion_text`, all roles kept; never raises.

    >>> prompt_text([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}])
    'Be brief.\\nWhat is 2+2?'
    """
    return _messages_text(prompt, roles=None)


def assistant_message(text: str) -> list[dict[str, str]]:
    """A completion's text as TRL's conversational completion: the inverse of :func:`completion_text`.

    >>> assistant_message("so \\\\boxed{4}")
    [{'role': 'assistant', 'content': 'so \\\\boxed{4}'}]
    """
    return [{"role": "assistant", "content": text}]


def _messages_text(value: object, roles: tuple[str, ...] | None) -> str:
    """The contents of the messages in `value` whose role is in `roles` (None: every role), joined."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, dict):
        return _message_content(value.get("content"))
    if hasattr(value, "tolist") and not isinstance(value, (list, tuple)):  # parquet gives numpy arrays of dicts
        try:
            value = value.tolist()
        except Exception:  # noqa: BLE001 - not an array after all: no text
            return ""
    if isinstance(value, (list, tuple)):
        parts = [
            _message_content(message.get("content"))
            for message in value
            if isinstance(message, dict) and (roles is None or message.get("role", "assistant") in roles)
        ]
        return "\n".join(part for part in parts if part)
    return ""


def _message_content(content: object) -> str:
    """A message's content: a string, or a list of parts like {"type": "text", "text": ...}."""
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        texts = [part.get("text") for part in content if isinstance(part, dict)]
        return "".join(text for text in texts if isinstance(text, str))
    return ""


