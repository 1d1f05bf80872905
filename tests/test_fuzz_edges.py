"""Property-based fuzzing of every edge, over real sockets on loopback: random
and mutated websocket frames on the widget and console sockets, random forms,
JSON, raw bodies and headers on every POST route of the app (console forms as a
logged-in admin, the login form, the HTTP mail intake, the CTI and provider
webhooks). For each example: no 5xx and no internal close code, the socket
still answers, a refusal (4xx or an `error` frame) leaves every table's row
count as it was, and nothing is logged as an error or with a traceback.

Examples are derandomized with no example database (tests/fuzz_inputs.py), so
a run is the same on every machine; SQLite only, the engines' own tests cover
PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.routing import Mount, Route
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from agent_console.auth import CSRF_HEADER
from channels.webchat.protocol import CLIENT_TYPES
from hub.core import Hub
from hub.email.inboxes import EmailInboxConfig
from hub.models import Inbox
from hub.ratelimit import LocalLimiter
from tests.conftest import LiveServer
from tests.console_client import Console, new_http
from tests.frames import next_event
from tests.fuzz_inputs import (
    FUZZ,
    FUZZ_HTTP,
    http_requests,
    mutated_frames,
    origins,
    row_counts,
    server_log,
    tracebacks,
)

ORIGIN = "http://shop.test"
WAIT_SECONDS = 5
# 1000 normal, 1009 too big (the transport's limit), 4xxx the hub's refusals; 1011 is a crash.
CLEAN_CLOSES = {1000, 1009}

WIDGET_FRAMES = [
    {"type": "hello", "visitor_token": None, "last_seq": 0},
    {"type": "message", "client_id": "c-1", "text": "hi", "conversation_id": 1},
    {"type": "typing", "conversation_id": 1, "text": "h"},
    {"type": "read", "conversation_id": 1, "seq": 1},
    {"type": "identify", "user_id": "u-1", "user_hash": "00", "name": "Ada", "email": "a@b.c"},
    {"type": "attributes", "attributes": {"plan": "pro"}},
    {"type": "page", "url": "http://shop.test/", "title": "Shop", "referrer": ""},
    {"type": "visibility", "visible": False},
    {"type": "ping"},
]
CONSOLE_FRAMES = [
    {"type": "typing", "conversation_id": 1},
    {"type": "read", "conversation_id": 1, "seq": 1},
    {"type": "ping"},
]
CONSOLE_TYPES = ("typing", "read", "ping", "reply", "assign", "subscribe")
FIELD_NAMES = [
    "email", "password", "csrf_token", "next", "name", "text", "status", "numbers",
    "region", "event", "callId", "from", "to", "direction", "cause", "CallSid",
    "CallStatus", "From", "To", "address", "allowed_origins", "role", "body",
]  # fmt: skip


@pytest.fixture
def open_limits(live_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every example's socket comes from 127.0.0.1: lift the per-address shares."""
    limits = live_server.app.state.webchat_limits
    monkeypatch.setattr(limits, "handshakes", LocalLimiter(rate=10000.0, burst=10000))
    monkeypatch.setattr(limits.connections, "limit", 10000)


HELLO = '{"type": "hello", "visitor_token": null, "last_seq": 0}'


async def answers_until(
    ws: ClientConnection, probe: str = '{"type": "ping"}', reply: str = "pong"
) -> list[dict[str, Any]] | int:
    """The frames answering what was sent, up to the `reply` to a `probe` sent
    after it (the socket still serves); or the close code when the hub closed it."""
    try:
        await ws.send(probe)
        frames = []
        while (frame := await next_event(ws, WAIT_SECONDS))["type"] != reply:
            frames.append(frame)
        return frames
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, "the hub dropped the socket without a close frame"
        return closed.rcvd.code


def assert_refusal_kept_the_store(
    answer: list[dict[str, Any]] | int, before: dict, after: dict
) -> None:
    if isinstance(answer, int):
        assert answer in CLEAN_CLOSES or 4000 <= answer < 5000, f"closed with {answer}"
        assert after == before, "a refused frame wrote"
    elif any(f["type"] == "error" for f in answer) and not any(f["type"] == "ack" for f in answer):
        assert not any(f.get("code") == "internal" for f in answer), answer
        assert after == before, f"a refused frame wrote: {answer}"


@FUZZ
@given(frame=mutated_frames(WIDGET_FRAMES, CLIENT_TYPES), greet=st.booleans())
async def test_fuzzed_widget_frames_are_refused_cleanly(
    hub: Hub,
    live_server: LiveServer,
    website: Inbox,
    open_limits: None,
    frame: str | bytes,
    greet: bool,
) -> None:
    url = f"{live_server.ws_url}/widget/ws?site={website.site_token}"
    with server_log() as log:
        await widget_example(hub, url, frame, greet)
    assert tracebacks(log) == []


async def widget_example(hub: Hub, url: str, frame: str | bytes, greet: bool) -> None:
    async with connect(url, origin=ORIGIN) as ws:  # type: ignore[arg-type]
        if greet:
            await ws.send(HELLO)
            assert (await next_event(ws, WAIT_SECONDS))["type"] == "welcome"
        before = await row_counts(hub)
        try:
            await ws.send(frame)
        except ConnectionClosed:
            pass
        # Before hello only a hello is served: it is the probe then.
        answer = await (answers_until(ws) if greet else answers_until(ws, HELLO, "welcome"))
        if greet or isinstance(answer, int):
            assert_refusal_kept_the_store(answer, before, await row_counts(hub))


@FUZZ
@given(origin=origins)
async def test_fuzzed_origins_on_the_widget_handshake_are_403_or_served(
    hub: Hub, live_server: LiveServer, website: Inbox, open_limits: None, origin: str
) -> None:
    url = f"{live_server.ws_url}/widget/ws?site={website.site_token}"
    with server_log() as log:
        try:
            async with connect(url, origin=origin) as ws:  # type: ignore[arg-type]
                # Served: only an allowed origin, however it was spelled.
                await ws.send(HELLO)
                assert (await next_event(ws, WAIT_SECONDS))["type"] == "welcome"
        except InvalidStatus as refused:
            assert refused.response.status_code == 403, origin
    assert tracebacks(log) == []


@pytest.fixture
async def agent_console(live_server: LiveServer, as_agent: Console) -> Console:
    return as_agent


@FUZZ
@given(frame=mutated_frames(CONSOLE_FRAMES, CONSOLE_TYPES))
async def test_fuzzed_console_frames_are_refused_cleanly(
    hub: Hub, live_server: LiveServer, agent_console: Console, frame: str | bytes
) -> None:
    with server_log() as log:
        await console_example(hub, live_server, agent_console, frame)
    assert tracebacks(log) == []


async def console_example(
    hub: Hub, live_server: LiveServer, console: Console, frame: str | bytes
) -> None:
    async with connect(
        f"{live_server.ws_url}/console/ws",
        origin=live_server.url,  # type: ignore[arg-type]
        additional_headers={"Cookie": f"hub_session={console.cookie}"},
    ) as ws:
        assert (await next_event(ws, WAIT_SECONDS))["type"] == "ready"
        before = await row_counts(hub)
        try:
            await ws.send(frame)
        except ConnectionClosed:
            pass
        answer = await answers_until(ws)
        assert_refusal_kept_the_store(answer, before, await row_counts(hub))


def post_paths(routes: list[Any], prefix: str = "") -> list[str]:
    """Every POST route of the app, its path parameters filled with 1 (ids) or x."""
    paths: list[str] = []
    for route in routes:
        if isinstance(route, Mount):
            paths += post_paths(route.routes, prefix + route.path)
        elif isinstance(route, Route) and "POST" in (route.methods or ()):
            path = re.sub(r"\{[^}:]+:id\}", "1", prefix + route.path)
            paths.append(re.sub(r"\{[^}]+\}", "x", path))
    return paths


@pytest.fixture
async def admin_console(live_server: LiveServer, as_admin: Console) -> AsyncIterator[Console]:
    yield as_admin


@pytest.fixture
async def edges(hub: Hub, live_server: LiveServer, website: Inbox) -> list[str]:
    """Every POST path, with the hub's real tokens where a path carries one."""
    _line, cti_token = await hub.phone_lines.create("Support line", ["020 7946 0000"], "GB")
    _inbox, mail_token = await hub.email_inboxes.create(
        EmailInboxConfig(name="Support", address="support@example.com", auto_ack=False)
    )
    paths = post_paths(live_server.app.routes)
    tokens = {
        "/voice/cti/x": f"/voice/cti/{cti_token}",
        "/email/inbound/x": f"/email/inbound/{mail_token}",
    }
    return sorted({tokens.get(path, path) for path in paths} | set(tokens))


@FUZZ_HTTP
@given(data=st.data())
async def test_fuzzed_posts_to_every_http_edge_are_refused_cleanly(
    hub: Hub,
    live_server: LiveServer,
    admin_console: Console,
    edges: list[str],
    data: st.DataObject,
) -> None:
    path = data.draw(st.sampled_from(edges), label="path")
    headers, body = data.draw(http_requests(FIELD_NAMES), label="request")
    signed_in = data.draw(st.booleans(), label="as the admin, with the CSRF token")
    if signed_in and path.startswith("/console/") and path != "/console/logout":
        headers[CSRF_HEADER] = admin_console.csrf
    before = await row_counts(hub)
    with server_log() as log:
        if signed_in:
            answer = await admin_console.http.post(path, content=body, headers=headers)
        else:
            async with new_http(live_server) as stranger:
                answer = await stranger.post(path, content=body, headers=headers)
    assert answer.status_code < 500, (path, answer.status_code, answer.text[:300])
    if answer.status_code >= 400:
        assert await row_counts(hub) == before, (path, answer.status_code, answer.text[:300])
    assert tracebacks(log) == []
