"""Per-route websocket compression (channels/websocket/): unit and over real sockets."""

from __future__ import annotations

import json
import zlib

import pytest
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode

from channels.websocket import compression
from channels.websocket.compression import CompressedFrames, SharedDeflate, extensions_for
from hub.models import Inbox
from tests.conftest import LiveServer
from tests.console_client import Console, visitor_says
from tests.test_console_socket import ready_socket, receive_until
from tests.widget_client import WidgetClient

SETTINGS = compression.CONSOLE_COMPRESS_SETTINGS
BIG = json.dumps({"type": "message", "text": "a question about my order " * 40}).encode()


def inflate(compressed: bytes, window_bits: int = 12) -> bytes:
    return zlib.decompressobj(wbits=-window_bits).decompress(compressed + b"\x00\x00\xff\xff")


def negotiated(*, server_no_context_takeover: bool = True) -> PerMessageDeflate:
    return PerMessageDeflate(False, server_no_context_takeover, 12, 12, SETTINGS)


# ---- the shared deflate ----------------------------------------------------------------------


def test_a_payload_is_deflated_once_and_inflates_back() -> None:
    frames = CompressedFrames()
    first = frames.deflate(BIG, 12, SETTINGS)
    again = frames.deflate(bytes(BIG), 12, SETTINGS)  # equal bytes, another object
    assert inflate(first) == BIG
    assert again is first
    assert (frames.hits, frames.misses) == (1, 1)
    assert len(first) < len(BIG) / 4


def test_the_window_size_is_part_of_the_key() -> None:
    frames = CompressedFrames()
    frames.deflate(BIG, 12, SETTINGS)
    assert inflate(frames.deflate(BIG, 9, SETTINGS), 9) == BIG
    assert frames.misses == 2


def test_the_oldest_payloads_go_first_when_entries_run_out() -> None:
    frames = CompressedFrames(entries=2)
    for payload in (b"a" * 300, b"b" * 300, b"c" * 300):
        frames.deflate(payload, 12, SETTINGS)
    frames.deflate(b"c" * 300, 12, SETTINGS)
    assert frames.hits == 1
    frames.deflate(b"a" * 300, 12, SETTINGS)
    assert (frames.hits, frames.misses) == (1, 4)


def test_bytes_are_bounded_and_a_payload_over_the_bound_is_not_kept() -> None:
    frames = CompressedFrames(max_bytes=1_000)
    frames.deflate(BIG, 12, SETTINGS)  # over the bound on its own
    frames.deflate(BIG, 12, SETTINGS)
    assert frames.misses == 2
    for payload in (b"x" * 400, b"y" * 400, b"z" * 400):
        frames.deflate(payload, 12, SETTINGS)
    assert frames._bytes <= 1_000
    frames.deflate(b"x" * 400, 12, SETTINGS)  # pushed out by the bytes of y and z
    assert frames.hits == 0


def test_small_and_control_frames_go_uncompressed() -> None:
    deflate = SharedDeflate(negotiated(), CompressedFrames())
    small = Frame(Opcode.TEXT, b'{"type":"pong"}')
    ping = Frame(Opcode.PING, b"x" * 300)
    assert deflate.encode(small) is small
    assert deflate.encode(ping) is ping
    assert not deflate.encode(small).rsv1


def test_a_large_frame_is_compressed_and_a_client_decodes_it() -> None:
    deflate = SharedDeflate(negotiated(), CompressedFrames())
    encoded = deflate.encode(Frame(Opcode.TEXT, BIG))
    assert encoded.rsv1 and encoded.fin and len(encoded.data) < len(BIG)
    client = PerMessageDeflate(True, False, 12, 12)
    assert client.decode(encoded).data == BIG
    # without context takeover the next message decodes on its own as well
    assert client.decode(deflate.encode(Frame(Opcode.TEXT, BIG))).data == BIG


def test_shared_deflate_refuses_context_takeover() -> None:
    with pytest.raises(ValueError, match="server_no_context_takeover"):
        SharedDeflate(negotiated(server_no_context_takeover=False), CompressedFrames())


@pytest.mark.parametrize(
    ("path", "compressed"),
    [
        ("/console/ws", True),
        ("/console/ws?x=1", True),
        ("/hub/console/ws", True),  # behind a proxy that keeps its prefix
        ("/widget/ws?site=abc", False),
        ("/elsewhere", False),
    ],
)
def test_extensions_by_route(path: str, compressed: bool) -> None:
    assert bool(extensions_for(path)) is compressed


# ---- over real sockets -----------------------------------------------------------------------


async def test_the_widget_socket_declines_the_deflate_a_browser_offers(
    live_server: LiveServer, website: Inbox
) -> None:
    shop = "http://shop.test"
    async with WidgetClient.connect(live_server.ws_url, website.site_token, shop) as c:
        assert "Sec-WebSocket-Extensions" in c.ws.request.headers  # offered
        assert "Sec-WebSocket-Extensions" not in c.ws.response.headers
        assert c.ws.protocol.extensions == []
        welcome = await c.hello()
        assert welcome["type"] == "welcome"


async def test_consoles_share_one_deflate_of_each_large_event(
    live_server: LiveServer, as_agent: Console, website: Inbox
) -> None:
    frames = compression.CONSOLE_DEFLATE.frames
    async with (
        ready_socket(live_server, as_agent) as first,
        ready_socket(live_server, as_agent) as second,
    ):
        agreed = first.response.headers["Sec-WebSocket-Extensions"]
        assert "permessage-deflate" in agreed and "server_no_context_takeover" in agreed
        hits, misses = frames.hits, frames.misses
        text = ("Where is my order? " * 60).strip()
        await visitor_says(live_server.hub, website, text)
        for ws in (first, second):
            message = await receive_until(ws, "message")
            assert message["message"]["text"] == text
    assert frames.misses > misses
    assert frames.hits - hits >= frames.misses - misses  # the second console reused them
