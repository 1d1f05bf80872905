"""Client sockets as the widget and the console open them, shared by every benchmark.

The hub admits at most `MAX_CONNECTIONS_PER_IP` widget sockets per address,
as a real site would see from distinct visitors; the generator therefore
spreads its widget sockets over loopback source addresses (127.0.0.0/8 is
all loopback on Linux), `PER_ADDRESS` to each.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Origin

from bench.procs import AGENT_PASSWORD, SITE_ORIGIN, SITE_TOKEN
from channels.webchat.protocol import MAX_CONNECTIONS_PER_IP

PER_ADDRESS = MAX_CONNECTIONS_PER_IP // 2
# Opening many sockets: this many handshakes in flight at once.
CONNECT_CONCURRENCY = 200
# A connection storm waits longer than the default 10 s for its handshake.
OPEN_TIMEOUT = 120.0
FRAME_TIMEOUT = 30.0

_slots = itertools.count()
T = TypeVar("T")


def next_source_address() -> str:
    """A loopback address no more than PER_ADDRESS of our sockets have used."""
    index = next(_slots) // PER_ADDRESS
    return f"127.{1 + index // 62_500}.{index // 250 % 250}.{index % 250 + 2}"


def _options() -> dict[str, Any]:
    # Browsers send no websocket-level pings (the widget sends JSON pings), and
    # they offer permessage-deflate, as the websockets client does by default.
    return {"ping_interval": None, "proxy": None, "open_timeout": OPEN_TIMEOUT, "max_size": None}


async def open_widget(ws_url: str) -> ClientConnection:
    return await connect(
        f"{ws_url}/widget/ws?site={SITE_TOKEN}",
        origin=Origin(SITE_ORIGIN),
        local_addr=(next_source_address(), 0),
        **_options(),
    )


async def open_console(ws_url: str, origin: str, cookie: str | None) -> ClientConnection:
    """A console socket (the hub's wants the agent's session cookie), after its `ready`."""
    headers = {"Cookie": f"hub_session={cookie}"} if cookie else {}
    ws = await connect(
        f"{ws_url}/console/ws", origin=Origin(origin), additional_headers=headers, **_options()
    )
    ready = json.loads(await asyncio.wait_for(ws.recv(), FRAME_TIMEOUT))
    if ready.get("type") != "ready":
        raise RuntimeError(f"console socket refused: {ready}")
    return ws


async def open_plain(url: str) -> ClientConnection:
    return await connect(url, **_options())


def events_in(frame: dict[str, Any]) -> list[dict[str, Any]]:
    """The events a frame carries: several in a `batch` frame, else the frame itself."""
    if frame.get("type") == "batch":
        return list(frame.get("events", ()))
    return [frame]


async def recv_type(ws: ClientConnection, kind: str) -> dict[str, Any]:
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), FRAME_TIMEOUT))
        for event in events_in(frame):
            if event.get("type") == kind:
                return event


async def hello(ws: ClientConnection, token: str | None = None, last_seq: int = 0) -> dict:
    await ws.send(
        json.dumps(
            {
                "type": "hello",
                "visitor_token": token,
                "last_seq": last_seq,
                "page": {"url": f"{SITE_ORIGIN}/shoes", "title": "Shoes"},
            }
        )
    )
    return await recv_type(ws, "welcome")


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def log_in(http_url: str, email: str) -> str:
    """An agent's session cookie, by logging in like a browser."""
    async with httpx.AsyncClient(base_url=http_url, timeout=30) as http:
        page = await http.get("/console/login")
        match = _CSRF.search(page.text)
        if not match:
            raise RuntimeError("no CSRF token on the login page")
        response = await http.post(
            "/console/login",
            data={"email": email, "password": AGENT_PASSWORD, "csrf_token": match.group(1)},
        )
        cookie = http.cookies.get("hub_session")
        if response.status_code != 303 or not cookie:
            raise RuntimeError(f"login as {email} failed: HTTP {response.status_code}")
        return cookie


async def gather_limited(
    items: Iterable[T], work: Callable[[T], Awaitable[Any]], limit: int = CONNECT_CONCURRENCY
) -> list[Any]:
    """`work(item)` for every item, at most `limit` at once, results in order."""
    gate = asyncio.Semaphore(limit)

    async def one(item: T) -> Any:
        async with gate:
            return await work(item)

    return await asyncio.gather(*(one(item) for item in items))


async def close_all(sockets: Iterable[ClientConnection]) -> None:
    await gather_limited(sockets, lambda ws: ws.close(), limit=500)


def negotiated_extensions(ws: ClientConnection) -> str:
    response = ws.response
    value = response.headers.get("Sec-WebSocket-Extensions") if response else None
    return value or "none"
