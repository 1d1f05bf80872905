"""A minimal widget-protocol client for tests, over a real websocket."""

from __future__ import annotations

import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from tests.frames import next_event

# Generous: a frame that does not come within this is a failure, not a wait.
FRAME_TIMEOUT = 5.0


class WidgetClient:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    def connect(cls, ws_url: str, site: str, origin: str):  # type: ignore[no-untyped-def]
        return _Connector(f"{ws_url}/widget/ws?site={site}", origin)

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def recv(self) -> dict[str, Any]:
        """The next event (a `batch` frame's events come one by one)."""
        return await next_event(self.ws, FRAME_TIMEOUT)

    async def recv_type(self, kind: str) -> dict[str, Any]:
        """The next frame of this type, skipping others (presence, conversation…)."""
        while True:
            frame = await self.recv()
            if frame["type"] == kind:
                return frame

    async def hello(self, token: str | None = None, last_seq: int = 0) -> dict[str, Any]:
        await self.send({"type": "hello", "visitor_token": token, "last_seq": last_seq})
        return await self.recv_type("welcome")

    async def say(self, text: str, client_id: str, **extra: Any) -> dict[str, Any]:
        """Send a message; return the ack (or the error answering it)."""
        await self.send({"type": "message", "client_id": client_id, "text": text, **extra})
        while True:
            frame = await self.recv()
            if frame["type"] in {"ack", "error"} and frame.get("client_id") == client_id:
                return frame

    async def ping(self) -> None:
        """Round-trip: every frame the hub sent before the pong has arrived."""
        await self.send({"type": "ping"})
        await self.recv_type("pong")


class _Connector:
    def __init__(self, url: str, origin: str) -> None:
        self._connect = connect(url, origin=origin, max_size=None)

    async def __aenter__(self) -> WidgetClient:
        return WidgetClient(await self._connect.__aenter__())

    async def __aexit__(self, *exc: object) -> None:
        await self._connect.__aexit__(*exc)
