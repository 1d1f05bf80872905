"""Files posted as mail that are not mail: an Outlook `.msg`, a PDF, an archive.

Such bytes have no RFC 5322 header, so the MIME parser would take them all for
a body and show binary as text. `not_mail` recognizes them by the signature a
file format starts with (or by NUL bytes, which no header section holds), and
`as_attachment` makes them an "unreadable message" whose only content is the
file, kept as it arrived.

A file relayed by a mail server arrives with the server's trace header lines
(Return-Path, Received, Delivered-To) in front of it and no blank line after
them: the file is what follows those lines, and is looked at and attached
without them.

The table is ours rather than libmagic's: libmagic is a system library the
hub's machines need not have, and the pure-Python detectors do not know OLE2
compound files (Outlook's `.msg`), the case that matters most here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hub.email.models import Attachment, InboundEmail

# Looked at for NUL bytes: mail headers hold none and a text body hardly any,
# while UTF-16 text and most binary formats are full of them. A stray NUL or
# two in a real message is only dropped from its text.
_SAMPLE_BYTES = 8192
_NUL_SHARE = 0.1
_MIN_NULS = 8
# Header lines put in front of a file (a relay's trace fields) are looked for
# in this many first bytes: a few relays' worth, far more than any adds.
_LEADING_HEADER_BYTES = 16_384
_HEADER_LINE = re.compile(rb"[!-9;-~]{1,100}:[^\r\n]*\r?\n(?:[ \t][^\r\n]*\r?\n)*")


@dataclass(frozen=True)
class FileKind:
    """What a non-mail file is: shown to the agent, and how it is stored."""

    description: str
    content_type: str
    filename: str


_SIGNATURES: tuple[tuple[bytes, FileKind], ...] = (
    (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        FileKind(
            "an Outlook .msg file (OLE2 compound file)", "application/vnd.ms-outlook", "message.msg"
        ),
    ),
    (b"%PDF-", FileKind("a PDF file", "application/pdf", "message.pdf")),
    (b"PK\x03\x04", FileKind("a zip archive", "application/zip", "message.zip")),
    (b"PK\x05\x06", FileKind("a zip archive", "application/zip", "message.zip")),
    (b"\x89PNG\r\n\x1a\n", FileKind("a PNG image", "image/png", "message.png")),
    (b"\xff\xd8\xff", FileKind("a JPEG image", "image/jpeg", "message.jpg")),
    (b"GIF8", FileKind("a GIF image", "image/gif", "message.gif")),
    (b"\x1f\x8b", FileKind("a gzip file", "application/gzip", "message.gz")),
)
_BINARY = FileKind("binary data", "application/octet-stream", "message.bin")


def not_mail(raw: bytes) -> FileKind | None:
    """The kind of file `raw` is when it is no mail message, else None."""
    data = raw[_file_start(raw) :]
    for signature, kind in _SIGNATURES:
        if data.startswith(signature):
            return kind
    sample = data[:_SAMPLE_BYTES]
    if sample.count(0) > max(_MIN_NULS, len(sample) * _NUL_SHARE):
        return _BINARY
    return None


def as_attachment(raw: bytes, kind: FileKind, max_bytes: int) -> InboundEmail:
    """An unreadable message holding the file in `raw` as its one attachment
    (unless it is over `max_bytes`, the attachment limit); `raw` is kept either way."""
    reason = f"not a mail message but {kind.description}"
    data = raw[_file_start(raw) :]
    fits = len(data) <= max_bytes
    text = (
        "The file is attached as it arrived." if fits else "The file is over the attachment limit."
    )
    return InboundEmail(
        raw=raw,
        message_id=None,
        text=text,
        visible_text=text,
        attachments=(Attachment(kind.filename, kind.content_type, data),) if fits else (),
        parse_error=reason,
    )


def _file_start(raw: bytes) -> int:
    """Where the file starts after header lines a relay put in front of it; 0
    when there are none, or when a blank line follows them (a mail message's
    header section, which the MIME parser reads)."""
    head = raw[:_LEADING_HEADER_BYTES]
    start = 0
    while (line := _HEADER_LINE.match(head, start)) is not None:
        start = line.end()
    if start == len(head) or head.startswith((b"\r\n", b"\n"), start):
        return 0
    return start
