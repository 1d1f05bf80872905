"""Which websockets compress, and how: decided per route at the handshake.

Measured with `make bench` (chat load, 1,000 visitors and 20 consoles):
permessage-deflate as uvicorn negotiates it for every socket cost the hub a
third of its CPU at load — each visitor's tiny frames deflated one by one, and
every console batch deflated again for every console, because each socket
keeps its own compression context.

- The widget socket does not compress. Its frames are a few hundred bytes;
  deflate saves little on them and costs the most of anything per message.
- The console socket compresses without context takeover, so a frame's
  compressed bytes depend on the frame alone: a batch that goes to every
  console is deflated once and the bytes reused for the others
  (`SharedDeflate`). Frames under `MIN_COMPRESSED_BYTES` go uncompressed
  (RFC 7692 lets either side send any message uncompressed).
- Every other websocket keeps no extension.

`hub.ws_protocol.HubWebSocketProtocol` makes that choice in its handshake.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

from websockets.extensions.base import ServerExtensionFactory
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import CONT, CTRL_OPCODES, Frame

CONSOLE_SOCKET_PATH = "/console/ws"
MIN_COMPRESSED_BYTES = 256
SHARED_ENTRIES = 64
SHARED_BYTES = 8 * 1024 * 1024
_SYNC_FLUSH_TAIL = b"\x00\x00\xff\xff"
# zlib level 1, as nginx's gzip defaults to: on a console batch of 40 events
# (22.6 KB of JSON) 48 µs instead of level 6's 153 µs, for 2 % more bytes
# (1,233 against 1,207).
CONSOLE_COMPRESS_SETTINGS = {"level": 1, "memLevel": 5}


class CompressedFrames:
    """The deflated bytes of recent frames, by window size and payload.

    Bounded by entries and bytes; the oldest go first. One per process is enough:
    every console socket shares it.
    """

    def __init__(self, entries: int = SHARED_ENTRIES, max_bytes: int = SHARED_BYTES) -> None:
        self._entries = entries
        self._max_bytes = max_bytes
        self._bytes = 0
        self._frames: dict[tuple[int, bytes], bytes] = {}
        self.hits = 0
        self.misses = 0

    def deflate(self, data: bytes, window_bits: int, settings: dict[str, Any]) -> bytes:
        key = (window_bits, data)
        found = self._frames.get(key)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        encoder = zlib.compressobj(wbits=-window_bits, **settings)
        compressed = encoder.compress(data) + encoder.flush(zlib.Z_SYNC_FLUSH)
        compressed = compressed[: -len(_SYNC_FLUSH_TAIL)]
        self._remember(key, compressed)
        return compressed

    def _remember(self, key: tuple[int, bytes], compressed: bytes) -> None:
        size = len(key[1]) + len(compressed)
        if size > self._max_bytes:
            return
        while self._frames and (
            len(self._frames) >= self._entries or self._bytes + size > self._max_bytes
        ):
            oldest = next(iter(self._frames))
            self._bytes -= len(oldest[1]) + len(self._frames.pop(oldest))
        self._frames[key] = compressed
        self._bytes += size


class SharedDeflate(PerMessageDeflate):
    """permessage-deflate without server context takeover, deflating each payload once."""

    def __init__(self, negotiated: PerMessageDeflate, frames: CompressedFrames) -> None:
        super().__init__(
            negotiated.remote_no_context_takeover,
            negotiated.local_no_context_takeover,
            negotiated.remote_max_window_bits,
            negotiated.local_max_window_bits,
            negotiated.compress_settings,
        )
        if not self.local_no_context_takeover:
            raise ValueError("shared deflate needs server_no_context_takeover")
        self._frames = frames

    def encode(self, frame: Frame) -> Frame:
        if frame.opcode in CTRL_OPCODES:
            return frame
        if frame.opcode is CONT or not frame.fin:
            return super().encode(frame)  # fragmented: uvicorn never sends these
        if len(frame.data) < MIN_COMPRESSED_BYTES:
            return frame  # rsv1 unset: this message goes uncompressed
        data = self._frames.deflate(
            bytes(frame.data), self.local_max_window_bits, self.compress_settings
        )
        return Frame(frame.opcode, data, True, True, frame.rsv2, frame.rsv3)


class SharedDeflateFactory(ServerPerMessageDeflateFactory):
    """Offers permessage-deflate with server_no_context_takeover; its sockets share deflates."""

    def __init__(self, frames: CompressedFrames | None = None) -> None:
        super().__init__(
            server_no_context_takeover=True,
            server_max_window_bits=12,
            client_max_window_bits=12,
            compress_settings=CONSOLE_COMPRESS_SETTINGS,
        )
        self.frames = frames or CompressedFrames()

    def process_request_params(
        self, params: Sequence[Any], accepted_extensions: Sequence[Any]
    ) -> tuple[list[Any], PerMessageDeflate]:
        response, negotiated = super().process_request_params(params, accepted_extensions)
        return response, SharedDeflate(negotiated, self.frames)


CONSOLE_DEFLATE = SharedDeflateFactory()


def extensions_for(path: str) -> list[ServerExtensionFactory]:
    """The extensions a websocket handshake to `path` may negotiate."""
    route = path.partition("?")[0].rstrip("/")
    if route.endswith(CONSOLE_SOCKET_PATH):
        return [CONSOLE_DEFLATE]
    return []  # the widget socket and anything else: no compression
