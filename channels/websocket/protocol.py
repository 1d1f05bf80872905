"""The hub's websocket server protocol: uvicorn's websockets-sansio, plus two things.

- Compression is chosen per route at the handshake (`channels.websocket.compression`).
- A text frame can be written at once, without the ASGI round trip
  (`send_text_now`). An ASGI `send` goes through Starlette's WebSocket and
  every middleware's send wrapper to uvicorn, which builds a `Frame` and
  serializes it; for the widget's `ack` and each console's batch that path
  cost more than the write itself (py-spy, chat load). The function is offered
  to the app in the scope's extensions (`SEND_TEXT_NOW`, as ASGI intends for
  server-specific additions); `hub.socket_sender.SocketSender` uses it when it
  is there, and the ASGI `send` whenever it declines.

`hub serve` and the tests' servers run this protocol.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State

from channels.websocket.compression import extensions_for

SEND_TEXT_NOW = "hub.send_text_now"
SendTextNow = Callable[[str], bool]

_FIN_TEXT = 0x81  # FIN set, opcode 1 (text); a server never masks (RFC 6455, 5.1)


def text_frame(payload: bytes) -> bytes:
    """An unfragmented, unmasked, uncompressed text frame carrying `payload`."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", _FIN_TEXT, length)
    elif length < 65536:
        header = struct.pack("!BBH", _FIN_TEXT, 126, length)
    else:
        header = struct.pack("!BBQ", _FIN_TEXT, 127, length)
    return header + payload


def send_text_now_of(scope: Mapping[str, Any]) -> SendTextNow | None:
    """The server's `send_text_now` for this websocket, if it offers one."""
    return (scope.get("extensions") or {}).get(SEND_TEXT_NOW)


class HubWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, compressing per route and offering
    `send_text_now`."""

    def handle_connect(self, event: Request) -> None:
        self.conn.available_extensions = extensions_for(event.path)
        super().handle_connect(event)
        if self.response.status_code == 101:
            # ASGI types an extension's value as a dict; this one is the function itself.
            self.scope["extensions"][SEND_TEXT_NOW] = self.send_text_now  # type: ignore[assignment]

    def send_text_now(self, text: str) -> bool:
        """Write a text frame now, as an ASGI `send` of it would; False, having
        written nothing, whenever that `send` would wait or fail (write buffer
        full, handshake not done, closing, disconnected) — the caller then
        sends through ASGI, which waits or raises as it should."""
        if (
            self.disconnected
            or not self.writable.is_set()
            or not self.handshake_complete
            or self.close_sent
            or self.initial_response is not None
            or self.conn.state is not State.OPEN
            or self.transport.is_closing()
        ):
            return False
        payload = text.encode()
        if self.conn.extensions:  # the console's deflate: websockets builds the frame
            self.conn.send_text(payload)
            self.transport.write(b"".join(self.conn.data_to_send()))
        else:
            self.transport.write(text_frame(payload))
        return True
