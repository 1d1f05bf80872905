"""The MIME walk: a message's tree to text and HTML body segments, collecting
its attachments, a calendar invitation's line and the parts it could not read.

A forwarded message (`message/rfc822`) becomes a "Forwarded message" block in
the text, its attachments joining the message's own; inside a delivery report
it is kept as an `.eml` attachment instead. Alternatives give text from the
plainest and HTML from the richest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from html import escape

from .attachments import Attachments
from .charsets import decode_bytes
from .headers import first_text, raw_headers
from .mime_parts import charset, children, disposition, filename, least_size, payload_bytes
from .sanitize import MAX_HTML_CHARS, html_to_text

# Real mail nests a handful of levels; these bound the work hostile input can cause.
MAX_DEPTH = 30
MAX_PARTS = 1_000
# HTML beyond this is not converted to text: Python's HTML parser reads about
# 1 MB a second, and the text is capped far below what 1 MB of markup holds.
MAX_HTML_TO_TEXT_CHARS = MAX_HTML_CHARS
FORWARD_LINE = "---------- Forwarded message ----------"

_ICS_FIELD = re.compile(r"^(SUMMARY|DTSTART)[^:\n]*:(.*)$", re.M)
_BODY_TYPES = ("text/plain", "text/html")
_REPORT_PARTS = ("message/delivery-status", "message/global-delivery-status")
# Writes an attached message back out with its headers as they came.
_VERBATIM = policy.compat32.clone(max_line_length=None)


@dataclass
class Segment:
    """One stretch of body: plain text, HTML, or both (alternatives)."""

    text: str | None = None
    html: str | None = None


@dataclass
class Walk:
    """What walking the MIME tree collects besides the body segments."""

    files: Attachments
    parts: int = 0
    calendar: str | None = None
    errors: list[str] = field(default_factory=list)


def one_line(exc: BaseException) -> str:
    """An exception as one line of at most 300 characters."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


def segments(part: Message, walk: Walk, depth: int = 0, in_report: bool = False) -> list[Segment]:
    """The body segments of `part` and everything below it, in order."""
    walk.parts += 1
    if walk.parts > MAX_PARTS or depth > MAX_DEPTH:
        note = "parts beyond the limit (too many or too deeply nested)"
        if note not in walk.files.dropped:
            walk.files.dropped.append(note)
        return []
    content_type = part.get_content_type().lower()
    subparts = children(part)
    if content_type.startswith("message/") or subparts is None:
        try:
            return _leaf(part, walk, depth, in_report)
        except Exception as exc:  # one unreadable part must not cost the others
            walk.errors.append(f"part {walk.parts} ({content_type}): {one_line(exc)}")
            return []
    in_report = in_report or content_type == "multipart/report"
    groups = [segments(child, walk, depth + 1, in_report) for child in subparts]
    if content_type != "multipart/alternative":
        return [segment for group in groups for segment in group]
    # Alternatives come plainest first: text from the first that has it, HTML from the last.
    text = next((join_text(g, plain_only=True) for g in groups if _has_plain(g)), None)
    html = next((_only_html(g) for g in reversed(groups) if _has_html(g)), None)
    if text is None and html is None:
        return []
    return [Segment(text=text, html=html)]


def join_text(parts: list[Segment], plain_only: bool = False) -> str:
    """The segments as one text; HTML-only ones converted unless `plain_only`."""
    texts: list[str] = []
    for segment in parts:
        if segment.text is not None:
            texts.append(segment.text)
        elif segment.html is not None and not plain_only:
            texts.append(html_to_text(segment.html[:MAX_HTML_TO_TEXT_CHARS]))
    return "\n\n".join(t.strip("\r\n") for t in texts if t.strip())


def join_html(parts: list[Segment]) -> str | None:
    """The segments as one HTML (text ones in `<pre>`), None when none has HTML."""
    if not _has_html(parts):
        return None
    pieces: list[str] = []
    for segment in parts:
        if segment.html is not None:
            pieces.append(segment.html)
        elif segment.text:
            pieces.append(f"<pre>{escape(segment.text, quote=False)}</pre>")
    return "\n".join(pieces)


def _leaf(part: Message, walk: Walk, depth: int, in_report: bool) -> list[Segment]:
    content_type = part.get_content_type().lower()
    name = filename(part)
    if content_type in _REPORT_PARTS:
        return []  # read into `bounce`
    inner = children(part)
    if content_type == "message/rfc822" and not in_report and inner:
        return _forwarded(inner[0], walk, depth)
    if content_type in _BODY_TYPES and disposition(part) != "attachment" and not name:
        text = decode_bytes(payload_bytes(part), charset(part))
        return [Segment(html=text)] if content_type == "text/html" else [Segment(text=text)]
    if content_type.startswith("multipart/"):  # no usable boundary: read it as text
        return [Segment(text=decode_bytes(payload_bytes(part), charset(part)))]
    if content_type.startswith("message/"):
        name = name or "original.eml"
        data = inner[0].as_bytes(policy=_VERBATIM) if inner else payload_bytes(part)
        walk.files.add(part, data, name=name, content_type=content_type)
        return []
    if content_type == "text/calendar":
        name = name or "invite.ics"
    elif content_type == "text/rfc822-headers":
        name = name or "original-headers.txt"
    refused = walk.files.refuse(least_size(part))
    if refused is not None:
        walk.files.drop(name, content_type, refused)
        return []
    data = payload_bytes(part)
    if content_type == "text/calendar":
        walk.calendar = walk.calendar or _calendar_line(data)
    walk.files.add(part, data, name=name, content_type=content_type)
    return []


def _forwarded(inner: Message, walk: Walk, depth: int) -> list[Segment]:
    found = segments(inner, walk, depth + 1, in_report=False)
    header = _forwarded_header(inner)
    body = join_text(found)
    html_parts = [s.html for s in found if s.html is not None]
    html = None
    if html_parts:
        html = f"<p>{escape(header, quote=False).replace(chr(10), '<br>')}</p>" + "".join(
            html_parts
        )
    return [Segment(text=f"{header}\n\n{body}", html=html)]


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


def _only_html(parts: list[Segment]) -> str:
    return "".join(s.html for s in parts if s.html)


def _has_plain(parts: list[Segment]) -> bool:
    return any(s.text is not None for s in parts)


def _has_html(parts: list[Segment]) -> bool:
    return any(s.html is not None for s in parts)
