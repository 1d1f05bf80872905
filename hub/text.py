"""Validation of text that arrives from outside."""

from __future__ import annotations

import re

from hub.errors import InvalidInput, TooLarge

# Control characters other than tab and newline have no business in a chat
# message and can confuse terminals, logs and e-mail clients.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean_text(value: object, max_chars: int, field: str = "text") -> str:
    """Trimmed text without control characters; errors name the field."""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string", field)
    if len(value) > max_chars:
        raise TooLarge(f"{field} is longer than {max_chars} characters", field)
    text = _CONTROL.sub("", value.replace("\r\n", "\n")).strip()
    if not text:
        raise InvalidInput(f"{field} must not be empty", field)
    return text


def clean_optional(value: object, max_chars: int, field: str) -> str | None:
    if value is None or value == "":
        return None
    return clean_text(value, max_chars, field)


_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


def clean_email(value: object, field: str = "email") -> str | None:
    if value is None or value == "":
        return None
    text = clean_text(value, 254, field).lower()
    if not _EMAIL.match(text):
        raise InvalidInput(f"{field} is not an email address", field)
    return text
