"""Reading header values leniently: addresses, Message-IDs, dates, automatic mail.

Everything works on the raw header strings (`Message.raw_items()`), not the
`email` package's header objects, whose parser raises on some malformed input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from hub.email.models import Address

from .charsets import decode_header_text, unescape_8bit

MAX_IDS = 100  # References beyond this keep the first (thread root) and the latest
MAX_ID_CHARS = 250
MAX_DISPLAY_CHARS = 500
MAX_ADDRESSES = 500  # per header kind; mass mailings list thousands in To/Cc
MAX_ADDRESS_CHARS = 254  # RFC 5321 path limit

DISPLAY_HEADERS = (
    "from", "to", "cc", "reply-to", "date", "subject", "auto-submitted", "precedence",
    "list-id",
)  # fmt: skip

_FOLD = re.compile(r"\r?\n(?=[ \t])|\r(?=[ \t])")
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
_ADDR_SPEC = re.compile(r"[\w!#$%&'*+/=?^`{|}~.-]+@[\w-]+(?:\.[\w-]+)*\.?")
_BRACKETED_ID = re.compile(r"<([^<>\s]+)>")
_BARE_ID = re.compile(r"[^<>\s,;()\"]+@[^<>\s,;()\"]+")
_AUTOMATIC_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
_AUTOMATIC_ANY_VALUE = (
    "x-autoreply", "x-autorespond", "x-auto-response-suppress", "list-id",
    "list-unsubscribe", "list-post",
)  # fmt: skip


def raw_headers(message: Message) -> dict[str, list[str]]:
    """Header values by lower-case name, unfolded, 8-bit bytes still escaped."""
    found: dict[str, list[str]] = {}
    for name, value in message.raw_items():
        text = value if isinstance(value, str) else str(value)
        found.setdefault(str(name).strip().lower(), []).append(_FOLD.sub("", text).strip())
    return found


def first_text(headers: dict[str, list[str]], name: str) -> str:
    """The first value of a header, decoded to one clean line ("" when absent)."""
    values = headers.get(name)
    return decode_header_text(values[0]) if values else ""


def _valid_addr_spec(addr: str) -> str | None:
    addr = addr.strip().strip("<>").lower()
    if len(addr) > MAX_ADDRESS_CHARS or not _ADDR_SPEC.fullmatch(addr):
        return None
    local, _, domain = addr.rpartition("@")
    if local.startswith(".") or local.endswith(".") or ".." in addr or domain.startswith("-"):
        return None
    return addr


def parse_addresses(values: Iterable[str]) -> tuple[Address, ...]:
    """Valid mailboxes of address headers, in order, without duplicates."""
    found: list[Address] = []
    seen: set[str] = set()
    for value in values:
        # An encoded word may hide a comma (senders break RFC 2047 so); keep it
        # out of the address-list split, decode it with the display name.
        words: list[str] = []

        def protect(match: re.Match[str], words: list[str] = words) -> str:
            words.append(match.group(0))
            return f"zzencodedword{len(words) - 1}zz"

        protected = _ENCODED_WORD.sub(protect, unescape_8bit(value))
        for name, addr in getaddresses([protected]):
            if "zzencodedword" in addr:
                # A non-ASCII local part encoded as a word (RFC 2047 forbids it,
                # some software does it): decode it rather than keep a placeholder.
                for index, word in enumerate(words):
                    addr = addr.replace(f"zzencodedword{index}zz", word)
                addr = decode_header_text(addr).replace(" ", "")
            email = _valid_addr_spec(addr)
            if email is None or email in seen:
                continue
            for index, word in enumerate(words):
                name = name.replace(f"zzencodedword{index}zz", word)
            seen.add(email)
            display = decode_header_text(name).strip("\"' ")
            if display.lower() == email:  # "a@b" <a@b> says nothing more
                display = ""
            found.append(Address(email=email, name=display or None))
            if len(found) >= MAX_ADDRESSES:
                return tuple(found)
    return tuple(found)


def parse_message_ids(values: Iterable[str]) -> tuple[str, ...]:
    """Message-IDs without angle brackets, in order; junk between them ignored."""
    ids: list[str] = []
    for value in values:
        value = unescape_8bit(value)
        found = _BRACKETED_ID.findall(value) or _BARE_ID.findall(value)
        ids.extend(i for i in found if len(i) <= MAX_ID_CHARS and i not in ids)
    if len(ids) > MAX_IDS:
        ids = [ids[0], *ids[-(MAX_IDS - 1) :]]
    return tuple(ids)


def parse_date(value: str) -> datetime | None:
    """An aware datetime (UTC when the header has no zone), or None."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def is_automatic(headers: dict[str, list[str]]) -> bool:
    """Sent by a program (auto-reply, list, bulk): never auto-acknowledge it."""
    auto_submitted = first_text(headers, "auto-submitted").lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return True
    precedence = first_text(headers, "precedence").lower().strip()
    if precedence in _AUTOMATIC_PRECEDENCE:
        return True
    return any(name in headers for name in _AUTOMATIC_ANY_VALUE)


def display_headers(headers: dict[str, list[str]]) -> dict[str, str]:
    """A few decoded headers for showing and debugging, each at most 500 chars."""
    shown: dict[str, str] = {}
    for name in DISPLAY_HEADERS:
        text = first_text(headers, name)
        if text:
            shown[name] = text[:MAX_DISPLAY_CHARS]
    return shown
