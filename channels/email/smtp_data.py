"""Reading an SMTP DATA body in buffered chunks, searched in C for its end.

aiosmtpd reads DATA one line at a time, a few microseconds of Python a line:
a message of 30,000 empty MIME parts (about 100 KB) held the event loop for
tens of milliseconds before any parser saw it, and a sender at the
per-sender limit stalled every websocket by a quarter of a second at the
99th percentile (bench/mail_stall.py). Here each chunk the socket delivers
is appended and searched once for the lone-dot line, the body is un-stuffed
with one `replace`, and overlong lines are found by one regular expression:
the cost per message no longer grows with its number of lines.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import re
from dataclasses import dataclass

# The end of DATA: a line holding one dot (RFC 5321 §4.1.1.4), after a CRLF.
_END = b"\r\n.\r\n"
# read() returns at once whatever is buffered, up to this: all of it.
_ALL_BUFFERED = 1 << 30


class Refusal(enum.Enum):
    """Why a body that was read to its end is not accepted."""

    TOO_MUCH = "552 Error: Too much mail data"
    TOO_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"


@dataclass(frozen=True)
class Body:
    """A DATA body read to its end: its bytes (dot-unstuffed), or why it is refused."""

    content: bytes
    refusal: Refusal | None = None


async def read_body(
    reader: asyncio.StreamReader, size_limit: int | None, line_limit: int
) -> Body | None:
    """The body up to its lone-dot line; None if the client went away first.

    Bytes the client sent after the end (pipelined commands) are put back for
    the session's command loop: the buffer was drained, so they go first.
    """
    # The CRLF that ended the DATA command line: an empty body is just ".\r\n".
    data = bytearray(b"\r\n")
    scanned = 0
    too_much = False
    while True:
        chunk = await reader.read(_ALL_BUFFERED)
        if not chunk:
            return None
        data += chunk
        end = data.find(_END, max(0, scanned - len(_END) + 1))
        if end >= 0:
            rest = bytes(data[end + len(_END) :])
            if rest and not reader.at_eof():
                reader.feed_data(rest)
            del data[end + 2 :]  # keep the last line's CRLF
            break
        scanned = len(data)
        if size_limit and len(data) - 2 > size_limit:
            # Keep reading to the end, as RFC 5321 §4.2.5 implies, but not keeping it.
            too_much = True
            del data[: -len(_END)]
            scanned = len(data)
    if too_much or (size_limit and len(data) - 2 > size_limit):
        return Body(b"", Refusal.TOO_MUCH)
    if _overlong(line_limit).search(data):
        return Body(b"", Refusal.TOO_LONG)
    # Transparency (RFC 5321 §4.5.2): a leading dot on any line is removed.
    return Body(bytes(data).replace(b"\r\n.", b"\r\n")[2:])


@functools.cache
def _overlong(line_limit: int) -> re.Pattern[bytes]:
    # A line longer than the limit counting its CRLF has `line_limit` bytes
    # before its LF. Tried only after an LF (the body is read after one), so
    # the search is linear in the body's length.
    return re.compile(rb"\n[^\n]{%d}" % line_limit)
