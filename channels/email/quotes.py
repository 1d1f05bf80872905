"""Fold quoted earlier replies and signatures away, leaving what the sender wrote now.

The reply headers ("On … wrote:", Outlook's "From: … Sent: …" block,
"-----Original Message-----", in a dozen languages) come from mail-parser-reply's
patterns. Its own splitting also cuts at greetings like "Thanks," and at any line
starting with "- ", which loses real content, so only its header patterns are
used here; the cut, `>` blocks and "-- " signatures are handled below.
"""

from __future__ import annotations

import re

from mailparser_reply.constants import MAIL_LANGUAGES
from mailparser_reply.parser import EmailMessage

# Some of the library's patterns backtrack badly on long lines, so they only see
# lines that could be part of a reply header, and only so many of them.
_MAX_HEADER_LINE = 200
_MAX_SCAN_LINES = 2000
_MAX_CANDIDATES = 300

_HEADER_RE = EmailMessage(text="", languages=list(MAIL_LANGUAGES)).HEADER_REGEX

_FORWARD_MARKER = re.compile(
    r"^\s*(?:-{2,}\s*(?:Forwarded message|Forwarded Message|Weitergeleitete Nachricht|"
    r"Message transféré|Mensaje reenviado)\s*-{2,}|Begin forwarded message:)",
    re.IGNORECASE | re.MULTILINE,
)
_WROTE_LINE = re.compile(
    r"^\s*(?:>\s*)*(?:On|Am|Le|El|Il|Op|Den|Dne|W dniu)\b.{0,300}"
    r"(?:wrote|schrieb|a écrit|escribió|ha scritto|schreef|skrev|napsal|napisał)\s*:\s*$",
    re.IGNORECASE,
)
_SEPARATOR_LINE = re.compile(r"^\s*(?:_{10,}|-{10,})\s*$")
_SIGNATURE_DELIMITER = re.compile(r"^-- ?$")
_MOBILE_FOOTER = re.compile(r"^\s*(?:Sent from my \S.{0,60}|Get Outlook for \S.{0,60})$")


def _shadow_line(lines: list[str], index: int) -> str:
    line = lines[index].strip()
    if len(line) > _MAX_HEADER_LINE:
        return ""
    if ":" in line or line.lstrip("> ").startswith(("-", "_")):
        return line
    following = lines[index + 1] if index + 1 < len(lines) else ""
    return line if ":" in following else ""


def _first_header_line(lines: list[str]) -> int | None:
    """Index of the first line of the first reply header, if any."""
    shadow: list[str] = []
    candidates = 0
    for index in range(min(len(lines), _MAX_SCAN_LINES)):
        line = _shadow_line(lines, index)
        candidates += bool(line)
        if candidates > _MAX_CANDIDATES:
            break
        shadow.append(line)
    text = "\n".join(shadow)
    match = _HEADER_RE.search(text)
    found: int | None = None
    if match is not None:
        start = match.start()
        while start < len(text) and text[start] == "\n":
            start += 1
        found = text.count("\n", 0, start)
    for index, line in enumerate(lines[: found if found is not None else _MAX_SCAN_LINES]):
        if len(line) <= _MAX_HEADER_LINE * 2 and _WROTE_LINE.match(line):
            found = index
            break
    return found


def _strip_trailing_quote(lines: list[str]) -> list[str]:
    """Drop a trailing block of `>` lines (and the intro line before it); quotes
    interleaved with answers stay, as the answers need them."""
    end = len(lines)
    while end and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith(">")):
        end -= 1
    if not any(line.lstrip().startswith(">") for line in lines[end:]):
        return lines
    while end and not lines[end - 1].strip():
        end -= 1
    if end and lines[end - 1].rstrip().endswith(":") and len(lines[end - 1]) <= 300:
        end -= 1  # "On …, Name wrote:" in any language
    return lines[:end]


def _strip_signature(lines: list[str]) -> list[str]:
    for index in range(len(lines) - 1, 0, -1):
        if _SIGNATURE_DELIMITER.match(lines[index]):
            return lines[:index]
    while lines and (not lines[-1].strip() or _MOBILE_FOOTER.match(lines[-1])):
        lines = lines[:-1]
    return lines


def visible_text(text: str) -> str:
    """`text` without quoted earlier messages and the signature; `text` itself when
    folding would leave nothing, or when the message forwards another one."""
    lines = text.split("\n")
    cut = _first_header_line(lines)
    if cut is not None:
        while cut and (_SEPARATOR_LINE.match(lines[cut - 1]) or not lines[cut - 1].strip()):
            cut -= 1
        lines = lines[:cut]
    if _FORWARD_MARKER.search("\n".join(lines[:_MAX_SCAN_LINES])):
        return text.strip("\n")
    result = "\n".join(_strip_signature(_strip_trailing_quote(lines))).strip("\n")
    return result if result.strip() else text.strip("\n")
