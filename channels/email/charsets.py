"""Bytes and header values to text, whatever the sender claimed the charset was.

Order of trust for a body: the declared charset (UTF-8 when none is); the
declared charset with replacement characters when it mostly fits (a stray bad
byte in otherwise good text); UTF-8; then, when the declared charset clearly
does not fit, what charset-normalizer detects; last windows-1252 (a superset
of latin-1 for every printable byte) with replacement. Headers may
hold RFC 2047 encoded words (also malformed ones) or raw 8-bit bytes, which the
`email` package hands over as surrogate escapes.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import quopri
import re

from charset_normalizer import from_bytes

_FALLBACK = "cp1252"

# Charset labels mail clients use that Python does not know by that name.
_ALIASES = {
    "iso-8859-8-i": "iso-8859-8",
    "x-user-defined": _FALLBACK,
    "unicode-1-1-utf-7": "utf-7",
    "ks_c_5601-1987": "cp949",
    "x-gbk": "gbk",
    "gb2312": "gb18030",  # senders label GBK/GB18030 text as gb2312
    "iso-8859-1": _FALLBACK,  # what "latin-1" mail really is (smart quotes, euro)
    "latin1": _FALLBACK,
    "us-ascii": "ascii",
}

# Codecs that decode bytes into text but are not character sets.
_NOT_CHARSETS = frozenset({"idna", "punycode", "unicode_escape", "raw_unicode_escape"})

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"[ \t\r\n]*")


def _codec(charset: str | None) -> str | None:
    """A Python codec name for a MIME charset label, or None when unusable."""
    if not charset:
        return None
    label = charset.strip().strip("\"'").lower().split("*", 1)[0]  # RFC 2231: utf-8*en
    label = _ALIASES.get(label, label)
    try:
        name = codecs.lookup(label).name
    except (LookupError, ValueError):
        return None
    if name in _NOT_CHARSETS or not codecs.lookup(name)._is_text_encoding:
        return None
    return name


# At most one bad sequence per this many well-decoded non-ASCII characters and
# the declared charset still fits: one broken byte in a Cyrillic, Greek or CJK
# body, not a windows-1252 body labelled UTF-8 (where nearly every one is bad).
_GOOD_PER_BAD = 10


def _mostly_fits(data: bytes, name: str) -> str | None:
    """`data` decoded as `name` with replacement characters, when few were needed."""
    try:
        text = data.decode(name, errors="replace")
    except (LookupError, ValueError):
        return None
    bad = text.count("\ufffd")
    good = sum(1 for ch in text if ch > "\x7f") - bad
    return text if bad * _GOOD_PER_BAD <= good else None


def _detected(data: bytes) -> str | None:
    best = from_bytes(data).best()
    return None if best is None else str(best)


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Decode `data` as text, never failing: see the module docstring for the order."""
    declared = _codec(charset) or "utf-8"
    for name in dict.fromkeys((declared, "utf-8")):
        try:
            return data.decode(name)
        except (UnicodeDecodeError, LookupError, ValueError):
            pass
        if name == declared and (text := _mostly_fits(data, name)) is not None:
            return text
    return _detected(data) or data.decode(_FALLBACK, errors="replace")


def clean_text(text: str) -> str:
    """Normalize line ends to \\n and drop control characters other than \\n and \\t."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", text)


def unescape_8bit(value: str) -> str:
    """Turn the surrogate escapes of raw 8-bit header bytes back into characters."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    return decode_bytes(value.encode("utf-8", errors="surrogateescape"))


def _word_bytes(encoding: str, payload: str) -> bytes | None:
    try:
        if encoding in "bB":
            payload = payload.rstrip("=")
            payload += "=" * (-len(payload) % 4)
            return base64.b64decode(payload, validate=True)
        return quopri.decodestring(payload.replace("_", " ").encode("ascii"), header=False)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None


def decode_header_text(value: str) -> str:
    """Decode a header value: RFC 2047 words and raw 8-bit; one line, no control chars.

    A malformed encoded word is kept literally rather than lost. Adjacent words of
    one charset are joined before decoding, so a character split across two words
    survives.
    """
    value = unescape_8bit(value)
    out: list[str] = []
    pending: tuple[str, bytearray] | None = None  # charset and bytes of adjacent words
    position = 0

    def flush() -> None:
        nonlocal pending
        if pending is not None:
            out.append(decode_bytes(bytes(pending[1]), pending[0]))
            pending = None

    for match in _ENCODED_WORD.finditer(value):
        gap = value[position : match.start()]
        charset, data = match.group(1), _word_bytes(match.group(2), match.group(3))
        position = match.end()
        if data is None:
            flush()
            out.append(gap + match.group(0))
            continue
        if pending is not None and _BETWEEN_WORDS.fullmatch(gap):
            # Whitespace between two encoded words is not text (RFC 2047 6.2).
            if pending[0].lower() == charset.lower():
                pending[1].extend(data)
                continue
        else:
            flush()
            out.append(gap)
        flush()
        pending = (charset, bytearray(data))
    flush()
    out.append(value[position:])
    text = "".join(out)
    return " ".join(clean_text(text).split())
