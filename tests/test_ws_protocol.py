"""The hub's websocket protocol (channels/websocket/protocol.py): frames written without the ASGI
round trip, and the ASGI send taking over whenever that would not be right."""

from __future__ import annotations

import asyncio

import pytest
from websockets.frames import Frame, Opcode

from channels.websocket.protocol import SEND_TEXT_NOW, HubWebSocketProtocol, text_frame
from hub.models import Agent, Inbox
from tests.conftest import LiveServer
from tests.widget_client import WidgetClient

SHOP = "http://shop.test"


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65_535, 65_536, 70_001])
def test_a_text_frame_is_the_bytes_websockets_writes(length: int) -> None:
    payload = ("é" * length).encode()[:length]
    expected = Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])
    assert text_frame(payload) == expected


@pytest.fixture
def protocols(monkeypatch: pytest.MonkeyPatch) -> list[HubWebSocketProtocol]:
    """Each server-side protocol the live server makes, and its sends: (text, written)."""
    made: list[HubWebSocketProtocol] = []
    handle_connect = HubWebSocketProtocol.handle_connect
    send_text_now = HubWebSocketProtocol.send_text_now
    connection_lost = HubWebSocketProtocol.connection_lost

    def noting_connect(self, event):  # type: ignore[no-untyped-def]
        made.append(self)
        self.sent_now = []
        self.tried = asyncio.Event()
        self.lost = asyncio.Event()
        handle_connect(self, event)

    def noting_loss(self, exc):  # type: ignore[no-untyped-def]
        connection_lost(self, exc)
        self.lost.set()

    def noting_send(self, text):  # type: ignore[no-untyped-def]
        written = send_text_now(self, text)
        self.sent_now.append((text, written))
        self.tried.set()
        return written

    monkeypatch.setattr(HubWebSocketProtocol, "handle_connect", noting_connect)
    monkeypatch.setattr(HubWebSocketProtocol, "send_text_now", noting_send)
    monkeypatch.setattr(HubWebSocketProtocol, "connection_lost", noting_loss)
    return made


async def test_the_widgets_frames_are_written_at_once_and_read_as_any_other(
    live_server: LiveServer, website: Inbox, protocols: list[HubWebSocketProtocol]
) -> None:
    async with WidgetClient.connect(live_server.ws_url, website.site_token, SHOP) as widget:
        welcome = await widget.hello()
        ack = await widget.say("Ünïcødé ✓", "c-1")
    [server] = protocols
    assert SEND_TEXT_NOW in server.scope["extensions"]
    kinds = [text[:20] for text, written in server.sent_now if written]
    assert kinds[0].startswith('{"type":"welcome"') and welcome["type"] == "welcome"
    assert any(kind.startswith('{"type":"ack"') for kind in kinds)
    assert ack["type"] == "ack" and ack["client_id"] == "c-1"


async def test_with_the_write_buffer_full_the_asgi_send_waits_for_it_to_drain(
    live_server: LiveServer,
    website: Inbox,
    agent: Agent,
    protocols: list[HubWebSocketProtocol],
) -> None:
    hub = live_server.hub
    async with WidgetClient.connect(live_server.ws_url, website.site_token, SHOP) as widget:
        await widget.hello()
        ack = await widget.say("Hello?", "c-1")
        [server] = protocols
        server.pause_writing()  # what the transport calls past its high-water mark
        server.tried.clear()
        await hub.conversations.reply(agent, ack["conversation_id"], "Held back")
        await server.tried.wait()
        text, written = server.sent_now[-1]
        assert "Held back" in text and written is False  # declined
        arrived = asyncio.ensure_future(widget.recv_type("message"))
        done, _ = await asyncio.wait([arrived], timeout=0.3)  # time to (wrongly) arrive
        assert not done
        server.resume_writing()
        assert (await arrived)["message"]["text"] == "Held back"
        server.tried.clear()
        await hub.conversations.reply(agent, ack["conversation_id"], "And now at once")
        await server.tried.wait()
        assert server.sent_now[-1][1] is True
        assert (await widget.recv_type("message"))["message"]["text"] == "And now at once"


async def test_a_closed_socket_declines(
    live_server: LiveServer, website: Inbox, protocols: list[HubWebSocketProtocol]
) -> None:
    async with WidgetClient.connect(live_server.ws_url, website.site_token, SHOP) as widget:
        await widget.hello()
    [server] = protocols
    async with asyncio.timeout(5):
        await server.lost.wait()
    assert server.send_text_now('{"type":"pong"}') is False
