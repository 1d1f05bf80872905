"""Phone numbers in E.164, read with the `phonenumbers` library.

A phone system hands us numbers as people type them: `+44 20 7946 0018`,
`(020) 7946-0018`, `0044 20 7946 0018`, `020.7946.0018`. All of them are one
number, and matching a caller to a contact must not depend on punctuation or
on national versus international form, so every number is stored and
compared in E.164 (`+442079460018`), with the inbox's default region for
numbers written without a country code.
"""

from __future__ import annotations

import re
from typing import TypeGuard

import phonenumbers

from hub.errors import InvalidInput

# The longest E.164 number is 15 digits; with spaces, dashes, brackets and an
# international prefix a written number stays well below this.
MAX_NUMBER_CHARS = 40
# What callers whose number is hidden are called by phone systems.
WITHHELD = frozenset({"", "anonymous", "unknown", "private", "restricted", "unavailable"})
# Internal extensions (an agent's desk phone, a queue) are short digit strings.
MAX_EXTENSION_DIGITS = 6

_ALLOWED = re.compile(r"^[0-9+()\-. /]*$")


def clean_region(value: object) -> str:
    """A two-letter region phonenumbers knows (`GB`, `US`, `DE` …)."""
    if not isinstance(value, str) or value.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidInput("default_region must be a two-letter country code such as GB or US")
    return value.upper()


def normalize(value: object, region: str, field: str = "number") -> str | None:
    """E.164 for a public number, `ext:NNN` for an internal extension, None if withheld."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_NUMBER_CHARS:
        raise InvalidInput(
            f"{field} must be a phone number of at most {MAX_NUMBER_CHARS} characters"
        )
    text = value.strip()
    if text.lower() in WITHHELD:
        return None
    if text.startswith("sip:"):
        text = text[4:].split("@", 1)[0]
    if not _ALLOWED.match(text):
        raise InvalidInput(f"{field} is not a phone number: {value!r}", field)
    digits = re.sub(r"\D", "", text)
    if digits and len(digits) <= MAX_EXTENSION_DIGITS and not text.startswith("+"):
        return f"ext:{digits}"
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidInput(f"{field} is not a phone number: {value!r}", field) from exc
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidInput(f"{field} is not a possible phone number: {value!r}", field)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def is_public(number: str | None) -> TypeGuard[str]:
    """A number a contact can have (not withheld, not an extension)."""
    return bool(number) and number.startswith("+")  # type: ignore[union-attr]


def display(number: str | None) -> str:
    """How a person reads a stored number: international format, or the extension."""
    if not number:
        return "Withheld number"
    if number.startswith("ext:"):
        return f"Ext. {number[4:]}"
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return number
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
