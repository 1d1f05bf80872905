"""Raw MIME bytes to an `InboundEmail`, for every way mail comes in.

This module reads the headers and addresses and puts the message together; the
MIME walk is `bodies`, one part's fields `mime_parts`, the files `attachments`.

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
from email.message import Message
from email.parser import BytesParser
from typing import TypeVar

from hub.email.filenames import make_safe_filename
from hub.email.models import Address, InboundEmail

from .attachments import Attachments, inline_where_shown
from .bodies import Segment, Walk, join_html, join_text, one_line, segments
from .bounces import find_bounce
from .charsets import clean_text, decode_header_text
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
from .mail_policy import READING_POLICY
from .not_mail import as_attachment, not_mail
from .quotes import visible_text
from .sanitize import sanitize_html

__all__ = ["make_safe_filename", "parse_email"]

MAX_TEXT_CHARS = 200_000
MAX_SUBJECT_CHARS = 1_000
MAX_DROPPED_NOTE_CHARS = 500

_T = TypeVar("_T")
_NO_ADDRESSES: tuple[Address, ...] = ()  # an unreadable address header (typed: `()` is `tuple[()]`)
_SUBJECT_IN_RAW = re.compile(rb"^Subject:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.M)


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
            return unreadable(b"", f"not bytes: {one_line(exc)}")
    if (kind := not_mail(raw)) is not None:
        return as_attachment(raw, kind, max_attachment_bytes)
    try:
        message = BytesParser(policy=READING_POLICY).parsebytes(raw)
        return _build(raw, message, max_attachment_bytes, max_total_attachment_bytes)
    except Exception as exc:  # a parser bug on hostile input must not lose the mail
        return unreadable(raw, f"unreadable message: {one_line(exc)}")


def _build(raw: bytes, message: Message, max_attachment: int, max_total: int) -> InboundEmail:
    headers = raw_headers(message)
    walk = Walk(Attachments(max_attachment=max_attachment, max_total=max_total))
    errors = walk.errors

    def guarded(what: str, read: Callable[[], _T], default: _T) -> _T:
        try:
            return read()
        except Exception as exc:  # one unreadable header must not cost the message
            errors.append(f"{what}: {one_line(exc)}")
            return default

    found: list[Segment] = guarded("body", lambda: segments(message, walk), [])
    text = _cap_text(join_text(found))
    if not text.strip() and walk.calendar:
        text = walk.calendar
    html_source = join_html(found)
    html = guarded("html", lambda: sanitize_html(html_source), None) if html_source else None
    if html_source and html is None:
        walk.files.dropped.append("html (too large)")

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
    if walk.files.dropped:
        shown["x-hub-dropped"] = ", ".join(walk.files.dropped)[:MAX_DROPPED_NOTE_CHARS]
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
        attachments=inline_where_shown(walk.files.kept, html),
        automatic=automatic,
        authentication_results=authentication_results(headers),
        bounce=bounce,
        parse_error="; ".join(errors)[:500] or None,
        headers=shown,
    )


def _addresses(headers: dict[str, list[str]], name: str) -> tuple[Address, ...]:
    return parse_addresses(headers.get(name, []))
