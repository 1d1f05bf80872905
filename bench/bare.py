"""The baseline: a bare `websockets` server with the hub's websocket settings.

Same frame size limit, keepalive pings and compression per route as the hub
(channels/websocket/compression.py: none on the widget socket; permessage-deflate without
server context takeover on the console socket, deflated per socket here, as
`websockets.broadcast` does), and the same JSON frames on the wire, but no
store, no bus, no framework:

    /widget/ws    hello -> welcome (messages after last_seq from a canned
                  conversation), ping -> pong
    /console/ws   ready, then every frame sent to /trigger (websockets.broadcast)
    /trigger      each frame received is broadcast to every /console/ws socket
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.http11 import Request

from bench.procs import raise_fd_limit, run_on_uvloop
from channels.webchat.protocol import WS_MAX_SIZE
from channels.websocket.compression import CONSOLE_COMPRESS_SETTINGS

# What uvicorn's websockets-sansio protocol uses by default (hub/composition/processes.py passes
# ws_max_size; ping interval/timeout and deflate are uvicorn's defaults).
PING_INTERVAL = 20.0
PING_TIMEOUT = 20.0


CONSOLE_DEFLATE = [
    ServerPerMessageDeflateFactory(
        server_no_context_takeover=True,
        server_max_window_bits=12,
        client_max_window_bits=12,
        compress_settings=CONSOLE_COMPRESS_SETTINGS,
    )
]


def compress_per_route(connection: ServerConnection, request: Request) -> None:
    """The hub's choice (channels/websocket/compression.py), made before the handshake."""
    route = request.path.split("?", 1)[0]
    connection.protocol.available_extensions = CONSOLE_DEFLATE if route == "/console/ws" else []


CANNED_SEQS = 3


def canned_message(seq: int) -> dict:
    return {
        "conversation_id": 1,
        "seq": seq,
        "direction": "in",
        "kind": "text",
        "author": {"type": "visitor", "name": None},
        "text": f"message {seq}",
        "client_id": f"c{seq}",
        "created_at": "2026-11-22T18:00:00+00:00",
    }


class Bare:
    def __init__(self) -> None:
        self.consoles: set[ServerConnection] = set()

    async def handler(self, ws: ServerConnection) -> None:
        path = ws.request.path.split("?", 1)[0] if ws.request else ""
        try:
            if path == "/widget/ws":
                await self._widget(ws)
            elif path == "/console/ws":
                await self._console(ws)
            elif path == "/trigger":
                async for frame in ws:
                    broadcast(self.consoles, frame)
        except ConnectionClosed:
            return

    async def _widget(self, ws: ServerConnection) -> None:
        async for text in ws:
            frame = json.loads(text)
            if frame.get("type") == "hello":
                after = int(frame.get("last_seq") or 0)
                welcome = {
                    "type": "welcome",
                    "visitor_token": frame.get("visitor_token") or "t" * 120,
                    "visitor_id": "v_" + "x" * 22,
                    "conversation": {"id": 1, "status": "open", "assignee": None},
                    "messages": [canned_message(s) for s in range(after + 1, CANNED_SEQS + 1)],
                    "agents_online": False,
                }
                await ws.send(json.dumps(welcome, separators=(",", ":")))
            elif frame.get("type") == "ping":
                await ws.send('{"type":"pong"}')

    async def _console(self, ws: ServerConnection) -> None:
        await ws.send('{"type":"ready","agent":{"id":1,"name":"Agent 0"}}')
        self.consoles.add(ws)
        try:
            await ws.wait_closed()
        finally:
            self.consoles.discard(ws)


async def run(port: int) -> None:
    bare = Bare()
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with serve(
        bare.handler,
        "127.0.0.1",
        port,
        max_size=WS_MAX_SIZE,
        ping_interval=PING_INTERVAL,
        ping_timeout=PING_TIMEOUT,
        compression=None,
        process_request=compress_per_route,
        backlog=2048,
    ):
        await stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    raise_fd_limit()
    run_on_uvloop(run(parser.parse_args().port))


if __name__ == "__main__":
    main()
