"""Raw MIME bytes to an `InboundEmail`, for every way mail comes in.

`parse_email` never raises. A message it cannot read fully still arrives: with
`raw` kept, `parse_error` set to a one-line reason, and whatever could be read.

Choices a helpdesk user sees:

- A forwarded message (`message/rfc822`) is shown in the text under a
  "---------- Forwarded message ----------" block with its From/Date/Subject/To,
  and its attachments join the message's own: the agent reads the customer's
  words without opening a file. Inside a delivery report the returned message
  is kept as an `.eml` attachment instead.
- `text` is capped at 200,000 characters, sanitized HTML at 1,000,000 (beyond
  that only text is kept). Attachments over `max_attachment_bytes`, or beyond
  `max_total_attachment_bytes` together, are dropped; their names and the reason
  are listed in `headers["x-hub-dropped"]`.
- Bytes that are no mail message but a file (an Outlook `.msg`, a PDF, an
  archive; see `not_mail`) are an unreadable message with the file attached.
- A calendar part is kept as an attachment (`invite.ics` unless named); when the
  message has no other body, `text` says "Calendar invitation: <summary> (<start>)".
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from email import policy
from email.message import Message
from email.parser import BytesParser
from html import escape
from typing import TypeVar

from hub.email.filenames import make_safe_filename
from hub.email.models import Address, Attachment, InboundEmail

from .bounces import find_bounce
from .charsets import clean_text, decode_bytes, decode_header_text
from .headers import (
    authentication_results,
    display_headers,
    first_text,
    is_automatic,
    parse_addresses,
    parse_date,
    parse_message_ids,
    raw_headers,
)
from .not_mail import as_attachment, not_mail
from .quotes import visible_text
from .sanitize import MAX_HTML_CHARS, html_to_text, sanitize_html

__all__ = ["make_safe_filename", "parse_email"]

MAX_TEXT_CHARS = 200_000
MAX_SUBJECT_CHARS = 1_000
# Real mail nests a handful of levels; these bound the work hostile input can cause.
MAX_DEPTH = 30
MAX_PARTS = 1_000
MAX_DROPPED_NOTE_CHARS = 500
# HTML beyond this is not converted to text: Python's HTML parser reads about
# 1 MB a second, and the text is capped far below what 1 MB of markup holds.
MAX_HTML_TO_TEXT_CHARS = MAX_HTML_CHARS
FORWARD_LINE = "---------- Forwarded message ----------"

_T = TypeVar("_T")
_NO_ADDRESSES: tuple[Address, ...] = ()  # an unreadable address header (typed: `()` is `tuple[()]`)
_SUBJECT_IN_RAW = re.compile(rb"^Subject:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.M)
_ICS_FIELD = re.compile(r"^(SUMMARY|DTSTART)[^:\n]*:(.*)$", re.M)
_BODY_TYPES = ("text/plain", "text/html")
_REPORT_PARTS = ("message/delivery-status", "message/global-delivery-status")
# Writes an attached message back out with its headers as they came.
_VERBATIM = policy.compat32.clone(max_line_length=None)


@dataclass
class _Segment:
    """One stretch of body: plain text, HTML, or both (alternatives)."""

    text: str | None = None
    html: str | None = None


@dataclass
class _Walk:
    """What walking the MIME tree collects besides the body segments."""

    max_attachment: int
    max_total: int
    attachments: list[Attachment] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    total: int = 0
    parts: int = 0
    calendar: str | None = None
    errors: list[str] = field(default_factory=list)

    def refuse(self, size: int) -> str | None:
        """Why an attachment of `size` bytes cannot be kept, or None if it can."""
        if size > self.max_attachment:
            return "too large"
        if self.total + size > self.max_total:
            return "total limit"
        return None

    def drop(self, name: str | None, content_type: str, reason: str) -> None:
        index = len(self.attachments) + len(self.dropped) + 1
        self.dropped.append(f"{make_safe_filename(name, content_type, index)} ({reason})")

    def add(self, part: Message, data: bytes, *, name: str | None, content_type: str) -> None:
        reason = self.refuse(len(data))
        if reason is not None:
            self.drop(name, content_type, reason)
            return
        self.total += len(data)
        content_id = _content_id(part)
        self.attachments.append(
            Attachment(
                filename=make_safe_filename(name, content_type, len(self.attachments) + 1),
                content_type=content_type,
                data=data,
                content_id=content_id,
                inline=content_id is not None and _disposition(part) != "attachment",
            )
        )


def _disposition(part: Message) -> str:
    values = raw_headers(part).get("content-disposition", [""])
    return values[0].split(";", 1)[0].strip().lower()


def _content_id(part: Message) -> str | None:
    values = raw_headers(part).get("content-id", [])
    ids = [value.strip().strip("<>").strip() for value in values]
    return ids[0][:250] if ids and ids[0] else None


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename() or part.get_param("name")
    except (ValueError, LookupError, TypeError, AttributeError):
        return None
    if isinstance(name, tuple):  # an RFC 2231 value get_param did not decode
        name = decode_bytes(str(name[2]).encode("utf-8", "surrogateescape"), name[0])
    return decode_header_text(str(name)) if name else None


def _charset(part: Message) -> str | None:
    try:
        charset = part.get_param("charset")
    except (ValueError, LookupError, TypeError):
        return None
    return charset[0] if isinstance(charset, tuple) else (str(charset) if charset else None)


def _children(part: Message) -> list[Message] | None:
    """The sub-parts of a multipart or message/* part, None for a leaf.

    Only asked of multiparts: for a leaf with 8-bit content `get_payload()`
    decodes by the declared charset and raises on some labels.
    """
    if not part.is_multipart():
        return None
    children = part.get_payload()
    return [child for child in children if isinstance(child, Message)]


def _least_size(part: Message) -> int:
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


def _payload_bytes(part: Message) -> bytes:
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _forwarded_header(message: Message) -> str:
    headers = raw_headers(message)
    lines = [FORWARD_LINE]
    for name in ("from", "date", "subject", "to", "cc"):
        value = first_text(headers, name)
        if value:
            lines.append(f"{name.capitalize()}: {value}")
    return "\n".join(lines)


def _calendar_line(data: bytes) -> str:
    fields = {k.upper(): v.strip() for k, v in _ICS_FIELD.findall(decode_bytes(data)[:20_000])}
    summary = fields.get("SUMMARY") or "(no title)"
    start = fields.get("DTSTART")
    return f"Calendar invitation: {summary}" + (f" ({start})" if start else "")


def _leaf(part: Message, walk: _Walk, depth: int, in_report: bool) -> list[_Segment]:
    content_type = part.get_content_type().lower()
    name = _filename(part)
    if content_type in _REPORT_PARTS:
        return []  # read into `bounce`
    inner = _children(part)
    if content_type == "message/rfc822" and not in_report and inner:
        return _forwarded(inner[0], walk, depth)
    if content_type in _BODY_TYPES and _disposition(part) != "attachment" and not name:
        text = decode_bytes(_payload_bytes(part), _charset(part))
        return [_Segment(html=text)] if content_type == "text/html" else [_Segment(text=text)]
    if content_type.startswith("multipart/"):  # no usable boundary: read it as text
        return [_Segment(text=decode_bytes(_payload_bytes(part), _charset(part)))]
    if content_type.startswith("message/"):
        name = name or "original.eml"
        data = inner[0].as_bytes(policy=_VERBATIM) if inner else _payload_bytes(part)
        walk.add(part, data, name=name, content_type=content_type)
        return []
    if content_type == "text/calendar":
        name = name or "invite.ics"
    elif content_type == "text/rfc822-headers":
        name = name or "original-headers.txt"
    reason = walk.refuse(_least_size(part))
    if reason is not None:
        walk.drop(name, content_type, reason)
        return []
    data = _payload_bytes(part)
    if content_type == "text/calendar":
        walk.calendar = walk.calendar or _calendar_line(data)
    walk.add(part, data, name=name, content_type=content_type)
    return []


def _forwarded(inner: Message, walk: _Walk, depth: int) -> list[_Segment]:
    segments = _segments(inner, walk, depth + 1, in_report=False)
    header = _forwarded_header(inner)
    body = _join_text(segments)
    html_parts = [s.html for s in segments if s.html is not None]
    html = None
    if html_parts:
        html = f"<p>{escape(header, quote=False).replace(chr(10), '<br>')}</p>" + "".join(
            html_parts
        )
    return [_Segment(text=f"{header}\n\n{body}", html=html)]


def _segments(part: Message, walk: _Walk, depth: int, in_report: bool) -> list[_Segment]:
    walk.parts += 1
    if walk.parts > MAX_PARTS or depth > MAX_DEPTH:
        note = "parts beyond the limit (too many or too deeply nested)"
        if note not in walk.dropped:
            walk.dropped.append(note)
        return []
    content_type = part.get_content_type().lower()
    children = _children(part)
    if content_type.startswith("message/") or children is None:
        try:
            return _leaf(part, walk, depth, in_report)
        except Exception as exc:  # one unreadable part must not cost the others
            walk.errors.append(f"part {walk.parts} ({content_type}): {_reason(exc)}")
            return []
    in_report = in_report or content_type == "multipart/report"
    groups = [_segments(child, walk, depth + 1, in_report) for child in children]
    if content_type != "multipart/alternative":
        return [segment for group in groups for segment in group]
    # Alternatives come plainest first: text from the first that has it, HTML from the last.
    text = next((_join_text(g, plain_only=True) for g in groups if _has_plain(g)), None)
    html = next((_only_html(g) for g in reversed(groups) if _has_html(g)), None)
    if text is None and html is None:
        return []
    return [_Segment(text=text, html=html)]


def _only_html(segments: list[_Segment]) -> str:
    return "".join(s.html for s in segments if s.html)


def _has_plain(segments: list[_Segment]) -> bool:
    return any(s.text is not None for s in segments)


def _has_html(segments: list[_Segment]) -> bool:
    return any(s.html is not None for s in segments)


def _join_text(segments: list[_Segment], plain_only: bool = False) -> str:
    texts: list[str] = []
    for segment in segments:
        if segment.text is not None:
            texts.append(segment.text)
        elif segment.html is not None and not plain_only:
            texts.append(html_to_text(segment.html[:MAX_HTML_TO_TEXT_CHARS]))
    return "\n\n".join(t.strip("\r\n") for t in texts if t.strip())


def _join_html(segments: list[_Segment]) -> str | None:
    if not _has_html(segments):
        return None
    pieces: list[str] = []
    for segment in segments:
        if segment.html is not None:
            pieces.append(segment.html)
        elif segment.text:
            pieces.append(f"<pre>{escape(segment.text, quote=False)}</pre>")
    return "\n".join(pieces)


def _cap_text(text: str) -> str:
    return clean_text(text)[:MAX_TEXT_CHARS].strip("\n")


def unreadable(raw: bytes, reason: str, *, show_raw: bool = True) -> InboundEmail:
    """What can be read without the MIME parser: the subject line and, unless
    `show_raw` is off, the raw text (which is kept in `raw` either way)."""
    subject = ""
    match = _SUBJECT_IN_RAW.search(raw[:65_536])
    if match:
        value = match.group(1).decode("utf-8", errors="surrogateescape")
        subject = decode_header_text(value)[:MAX_SUBJECT_CHARS]
    if show_raw:
        text = _cap_text(raw[: MAX_TEXT_CHARS * 4].decode("utf-8", errors="replace"))
    else:
        text = f"This message could not be read ({reason}). The original is kept as it arrived."
    return InboundEmail(
        raw=raw, message_id=None, subject=subject, text=text, visible_text=text, parse_error=reason
    )


def _reason(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


def parse_email(
    raw: bytes,
    *,
    max_attachment_bytes: int = 10 * 1024 * 1024,
    max_total_attachment_bytes: int = 25 * 1024 * 1024,
) -> InboundEmail:
    """Parse raw RFC 5322 bytes. Never raises; see the module docstring for limits."""
    if not isinstance(raw, bytes):
        try:
            raw = bytes(raw)
        except (TypeError, ValueError) as exc:
            return unreadable(b"", f"not bytes: {_reason(exc)}")
    if (kind := not_mail(raw)) is not None:
        return as_attachment(raw, kind, max_attachment_bytes)
    try:
        message = BytesParser(policy=policy.default).parsebytes(raw)
        return _build(raw, message, max_attachment_bytes, max_total_attachment_bytes)
    except Exception as exc:  # a parser bug on hostile input must not lose the mail
        return unreadable(raw, f"unreadable message: {_reason(exc)}")


def _build(raw: bytes, message: Message, max_attachment: int, max_total: int) -> InboundEmail:
    headers = raw_headers(message)
    walk = _Walk(max_attachment=max_attachment, max_total=max_total)
    errors = walk.errors

    def guarded(what: str, read: Callable[[], _T], default: _T) -> _T:
        try:
            return read()
        except Exception as exc:  # one unreadable header must not cost the message
            errors.append(f"{what}: {_reason(exc)}")
            return default

    segments: list[_Segment] = guarded(
        "body", lambda: _segments(message, walk, 0, in_report=False), []
    )
    text = _cap_text(_join_text(segments))
    if not text.strip() and walk.calendar:
        text = walk.calendar
    html_source = _join_html(segments)
    html = guarded("html", lambda: sanitize_html(html_source), None) if html_source else None
    if html_source and html is None:
        walk.dropped.append("html (too large)")

    sender = guarded("from", lambda: next(iter(_addresses(headers, "from")), None), None)
    to = guarded("to", lambda: _addresses(headers, "to"), _NO_ADDRESSES)
    cc = guarded("cc", lambda: _addresses(headers, "cc"), _NO_ADDRESSES)
    subject = first_text(headers, "subject")[:MAX_SUBJECT_CHARS]
    own = {a.email for a in (*to, *cc)}
    bounce = guarded(
        "bounce", lambda: find_bounce(message, headers, sender, subject, text, own), None
    )
    # A read receipt (report of another type) is automatic too, though not a bounce.
    is_report = message.get_content_type() == "multipart/report"
    automatic = is_automatic(headers) or bounce is not None or is_report

    shown = display_headers(headers)
    if walk.dropped:
        shown["x-hub-dropped"] = ", ".join(walk.dropped)[:MAX_DROPPED_NOTE_CHARS]
    reply_to = guarded("reply-to", lambda: next(iter(_addresses(headers, "reply-to")), None), None)
    message_ids = parse_message_ids(headers.get("message-id", []))
    delivered_to = tuple(
        dict.fromkeys(
            address.email
            for name in ("delivered-to", "x-original-to", "envelope-to")
            for address in guarded(
                name, functools.partial(_addresses, headers, name), _NO_ADDRESSES
            )
        )
    )
    return InboundEmail(
        raw=raw,
        message_id=message_ids[0] if message_ids else None,
        in_reply_to=parse_message_ids(headers.get("in-reply-to", [])),
        references=parse_message_ids(headers.get("references", [])),
        sender=sender,
        reply_to=reply_to,
        to=to,
        cc=cc,
        delivered_to=delivered_to,
        subject=subject,
        date=parse_date(first_text(headers, "date")),
        text=text,
        visible_text=guarded("quotes", lambda: visible_text(text), text) if text else "",
        html=html,
        attachments=_inline_where_shown(walk.attachments, html),
        automatic=automatic,
        authentication_results=authentication_results(headers),
        bounce=bounce,
        parse_error="; ".join(errors)[:500] or None,
        headers=shown,
    )


def _inline_where_shown(attachments: list[Attachment], html: str | None) -> tuple[Attachment, ...]:
    """A part the HTML shows by `cid:` is an inline image, whatever its disposition
    says (Python's own add_related writes "attachment")."""
    if not html:
        return tuple(attachments)
    return tuple(
        replace(a, inline=True)
        if a.content_id and not a.inline and f"cid:{a.content_id}" in html
        else a
        for a in attachments
    )


def _addresses(headers: dict[str, list[str]], name: str) -> tuple[Address, ...]:
    return parse_addresses(headers.get(name, []))
