"""Reading one MIME part: its disposition, name, charset, sub-parts and payload.

Each reader is safe on hostile parts: a header the standard library cannot
read gives the default (None, "", 0) rather than an exception.
"""

from __future__ import annotations

from email.message import Message

from .charsets import decode_bytes, decode_header_text
from .headers import raw_headers


def disposition(part: Message) -> str:
    """The part's Content-Disposition type ("attachment", "inline") or ""."""
    values = raw_headers(part).get("content-disposition", [""])
    return values[0].split(";", 1)[0].strip().lower()


def content_id(part: Message) -> str | None:
    """The part's Content-ID without angle brackets, at most 250 characters."""
    values = raw_headers(part).get("content-id", [])
    ids = [value.strip().strip("<>").strip() for value in values]
    return ids[0][:250] if ids and ids[0] else None


def filename(part: Message) -> str | None:
    """The file name the part declares (decoded), or None."""
    try:
        name = part.get_filename() or part.get_param("name")
    except (ValueError, LookupError, TypeError, AttributeError):
        return None
    if isinstance(name, tuple):  # an RFC 2231 value get_param did not decode
        name = decode_bytes(str(name[2]).encode("utf-8", "surrogateescape"), name[0])
    return decode_header_text(str(name)) if name else None


def charset(part: Message) -> str | None:
    """The charset label the part declares, or None."""
    try:
        value = part.get_param("charset")
    except (ValueError, LookupError, TypeError):
        return None
    return value[0] if isinstance(value, tuple) else (str(value) if value else None)


def children(part: Message) -> list[Message] | None:
    """The sub-parts of a multipart or message/* part, None for a leaf.

    Only asked of multiparts: for a leaf with 8-bit content `get_payload()`
    decodes by the declared charset and raises on some labels.
    """
    if not part.is_multipart():
        return None
    payload = part.get_payload()
    return [child for child in payload if isinstance(child, Message)]


def least_size(part: Message) -> int:
    """A lower bound of the decoded size, read from the encoded payload without
    decoding it, so a part over the limits is never decoded into memory."""
    try:
        payload = part.get_payload()
    except (ValueError, TypeError, LookupError):  # 8-bit text under a strange charset label
        return 0
    if not isinstance(payload, str):
        return 0
    encoding = raw_headers(part).get("content-transfer-encoding", [""])[0].strip().lower()
    if encoding == "base64":
        return max(0, (len(payload) - payload.count("\n") - payload.count("\r")) * 3 // 4 - 3)
    if encoding == "quoted-printable":
        return len(payload) // 3
    return len(payload)


def payload_bytes(part: Message) -> bytes:
    """The part's decoded payload (b"" when there is none)."""
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""
