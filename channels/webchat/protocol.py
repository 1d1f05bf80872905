"""The widget wire protocol (docs/widget-protocol.md): limits, frame parsing, errors.

Pure functions: parse a text frame into a validated value or raise
`ProtocolError` with the code the widget sees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from hub.events import json_text
from hub.events.json_text import compact
from hub.models import ContactDetails

MAX_FRAME_BYTES = 16 * 1024
# The websocket layer itself closes (1009) on frames beyond this, before we parse.
WS_MAX_SIZE = 64 * 1024
MAX_TEXT_CHARS = 5000
MAX_CONNECTIONS_PER_IP = 20  # the default; HUB_WIDGET_SOCKETS_PER_IP overrides it
# Handshakes per client address, counted before the site token is looked up so
# that a flood of handshakes costs no store query: a page that opens every
# socket its address may hold at once gets through, then 5 per second.
HANDSHAKE_BURST = MAX_CONNECTIONS_PER_IP
HANDSHAKES_PER_SECOND = 5.0
HELLO_TIMEOUT_SECONDS = 10.0
# A visitor may send a burst of messages (pasting several lines), then 2/s.
MESSAGE_BURST = 10
MESSAGES_PER_SECOND = 2.0
# Any frame at all (typing, read, ping…): generous, but bounds a runaway client.
FRAME_BURST = 60
FRAMES_PER_SECOND = 20.0

CLOSE_BAD_TOKEN = 4401
CLOSE_HELLO_TIMEOUT = 4408
CLOSE_FELL_BEHIND = 4000

_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

CLIENT_TYPES = (
    "hello",
    "message",
    "typing",
    "read",
    "identify",
    "attributes",
    "ping",
    # navigation (channels/webchat/tracking.py)
    "page",
    "visibility",
    "leave",
)


class ProtocolError(Exception):
    """A frame the hub refuses; `code` is the widget-visible error code."""

    def __init__(self, code: str, message: str, client_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.client_id = client_id

    def frame(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": "error", "code": self.code, "message": self.message}
        if self.client_id is not None:
            body["client_id"] = self.client_id
        return body


@dataclass(frozen=True)
class Hello:
    visitor_token: str | None
    last_seq: int
    page_url: str | None
    page_title: str | None
    page_referrer: str | None = None
    # False when the visitor's browser asks not to be tracked (GPC, DNT) or the
    # site turned tracking off: no page trail is stored, chat works as ever.
    track: bool = True


@dataclass(frozen=True)
class ChatMessage:
    client_id: str
    text: str
    conversation_id: int | None
    contact: ContactDetails | None
    campaign_id: int | None = None


def decode(text: str) -> dict[str, Any]:
    """A text frame as a JSON object with a known `type`."""
    if len(text) > MAX_FRAME_BYTES or len(text.encode("utf-8")) > MAX_FRAME_BYTES:
        raise ProtocolError("too_large", f"Frames are limited to {MAX_FRAME_BYTES} bytes.")
    try:
        frame = json_text.parse(text)
    except ValueError:
        raise ProtocolError("bad_frame", "Frames must be JSON objects.") from None
    if not isinstance(frame, dict):
        raise ProtocolError("bad_frame", "Frames must be JSON objects.")
    kind = frame.get("type")
    if kind not in CLIENT_TYPES:
        raise ProtocolError("unknown_type", f"Unknown frame type {str(kind)[:40]!r}.")
    return frame


# Conversation ids and seqs are the store's 32-bit integers.
MAX_INT = 2**31 - 1


def _int(frame: dict[str, Any], name: str, default: int | None = None) -> int | None:
    value = frame.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > MAX_INT:
        raise ProtocolError("invalid", f"{name} must be a non-negative integer.")
    return value


def parse_str(value: object, name: str, max_chars: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_chars:
        raise ProtocolError(
            "invalid", f"{name} must be a string of at most {max_chars} characters."
        )
    return value


def parse_hello(frame: dict[str, Any]) -> Hello:
    token = parse_str(frame.get("visitor_token"), "visitor_token", 512)
    page = frame.get("page") or {}
    if not isinstance(page, dict):
        raise ProtocolError("invalid", "page must be an object.")
    track = frame.get("track", True)
    if not isinstance(track, bool):
        raise ProtocolError("invalid", "track must be true or false.")
    return Hello(
        visitor_token=token or None,
        last_seq=_int(frame, "last_seq", 0) or 0,
        page_url=parse_str(page.get("url"), "page.url", 2000),
        page_title=parse_str(page.get("title"), "page.title", 300),
        page_referrer=parse_str(page.get("referrer"), "page.referrer", 2000),
        track=track,
    )


def parse_message(frame: dict[str, Any]) -> ChatMessage:
    client_id = frame.get("client_id")
    if not isinstance(client_id, str) or not _CLIENT_ID.match(client_id):
        raise ProtocolError("invalid", "client_id must be 1-64 characters of A-Z a-z 0-9 _ -.")
    text = frame.get("text")
    if not isinstance(text, str):
        raise ProtocolError("invalid", "text must be a string.", client_id)
    if len(text) > MAX_TEXT_CHARS:
        raise ProtocolError(
            "too_large", f"Messages are limited to {MAX_TEXT_CHARS} characters.", client_id
        )
    try:
        conversation_id = _int(frame, "conversation_id")
        campaign_id = _int(frame, "campaign_id")
        contact = frame.get("contact")
        details = None
        if contact is not None:
            if not isinstance(contact, dict):
                raise ProtocolError("invalid", "contact must be an object.")
            details = ContactDetails(
                name=parse_str(contact.get("name"), "contact.name", 200),
                email=parse_str(contact.get("email"), "contact.email", 254),
            )
    except ProtocolError as exc:
        raise ProtocolError(exc.code, exc.message, client_id) from None
    return ChatMessage(client_id, text, conversation_id, details, campaign_id)


def parse_typing(frame: dict[str, Any]) -> bool:
    on = frame.get("on")
    if not isinstance(on, bool):
        raise ProtocolError("invalid", "on must be true or false.")
    return on


def parse_read(frame: dict[str, Any]) -> int:
    seq = _int(frame, "seq")
    if seq is None:
        raise ProtocolError("invalid", "seq is required.")
    return seq


def encode(frame: dict[str, Any]) -> str:
    return compact(frame)
