"""The console websocket (`/console/ws`): live events to agents, typing and reads from them.

Handshake: the socket is accepted, then closed at once with

    4403  the Origin header is not this hub's own origin (cross-site hijacking)
    4401  no agent is logged in (or the agent has been deleted since)

Later, when the agent's session ends (logged out, deactivated, password reset or
changed elsewhere) the socket closes with 4401 and a reason the console shows:
`deactivated`, `password_reset`, `password_changed`, `deleted` or `signed_out`.
The hub tells every node on the agent's sessions channel, so this is at once.

Hub → console: `{"type": "ready", "agent": {...}}` once subscribed, then every
event of the `agents` channel, of the inbox and live-visitor channels of every
inbox the agent may read (hub/agents/access.py: no event of another inbox ever
reaches the socket), and of this agent's own channel (a ringing call's screen
pop) as published (already JSON, serialized once;
events published together — a group commit's messages — come as one
`{"type": "batch", "events": [...]}` frame, in order):
live visitors send `visitor` (a snapshot, with the new `page_view` if any) and
`visitor_left`.
If the console falls too far behind the bus drops it and the socket closes
with 4000; the console then reloads what it shows from the server.

Console → hub, JSON text frames up to `MAX_FRAME_BYTES`:

    {"type": "typing", "conversation_id": N, "on": true}
    {"type": "read", "conversation_id": N, "seq": S}
    {"type": "ping"}                                     answered {"type": "pong"}

Anything else is answered `{"type": "error", "code": ..., "message": ...}`
and the socket stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from agent_console import auth
from channels.websocket.protocol import send_text_now_of
from channels.websocket.sender import SocketSender
from hub.agents.access import Access
from hub.core import Hub
from hub.errors import HubError, InvalidInput
from hub.events import json_text, topics
from hub.events.bus import SUBSCRIBER_QUEUE_SIZE, SubscriberDropped, Subscription, batch_frame
from hub.events.json_text import compact
from hub.ratelimit import TokenBucket

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 16 * 1024
# Events buffered for one console before the bus drops it (read at connect
# time, so tests can make it small).
QUEUE_SIZE = SUBSCRIBER_QUEUE_SIZE
# Typing frames come at most every few seconds and reads once per message;
# a console sending more than this is broken or hostile.
FRAME_BURST = 30
FRAMES_PER_SECOND = 10
# An idle socket of a deleted agent closes within this time (frames are
# checked as they come).
AGENT_RECHECK_SECONDS = 30

# Ids and seqs are the store's 32-bit integers; larger ones would fail in the store.
MAX_ID = 2**31 - 1

CLOSE_DROPPED = 4000
CLOSE_UNAUTHENTICATED = 4401
CLOSE_BAD_ORIGIN = 4403


class _AgentGone(Exception):
    """The session behind this socket is over; the argument says why."""

    def __init__(self, reason: str = "signed_out") -> None:
        super().__init__(reason)
        self.reason = reason


# The reasons a session ends that the console puts into words (static/live.js).
SESSION_END_REASONS = {"deactivated", "password_reset", "password_changed", "deleted"}


async def console_socket(websocket: WebSocket) -> None:
    hub: Hub = websocket.app.state.hub
    public_url: str = websocket.app.state.settings.public_url
    # Accept first: a close code reaches the browser only on an open socket.
    await websocket.accept()
    if not auth.origin_allowed(websocket.headers, public_url, required=True):
        await websocket.close(CLOSE_BAD_ORIGIN, "origin not allowed")
        return
    agent = await auth.current_agent(websocket)
    if agent is None:
        await websocket.close(CLOSE_UNAUTHENTICATED, "log in first")
        return
    access = await hub.access.of(agent)
    readable = access.readable
    if readable is None:  # admins and managers: every inbox there is now
        readable = frozenset(inbox.id for inbox in await hub.inboxes.list())
    channels = [topics.AGENTS, topics.agent_channel(agent.id)]
    for inbox_id in sorted(readable):
        channels += [topics.inbox_channel(inbox_id), topics.site_visitors(inbox_id)]
    async with (
        hub.bus.subscribe(*channels, max_queue=QUEUE_SIZE) as subscription,
        hub.bus.subscribe(topics.agent_sessions_channel(agent.id)) as sessions,
    ):
        # Subscribed first: a deactivation between the check above and here is
        # caught by the check the watcher makes as it starts.
        await hub.presence.connected(agent.id)
        try:
            await _ConsoleSocket(websocket, hub, access, subscription, sessions).run()
        finally:
            await hub.presence.disconnected(agent.id)


class _ConsoleSocket:
    def __init__(
        self,
        websocket: WebSocket,
        hub: Hub,
        access: Access,
        subscription: Subscription,
        sessions: Subscription,
    ) -> None:
        self.websocket = websocket
        self.hub = hub
        self.access = access
        self.agent = access.agent
        self.subscription = subscription
        self.sessions = sessions
        self._sender = SocketSender(websocket, send_text_now_of(websocket.scope))
        self._frames = TokenBucket(FRAMES_PER_SECOND, FRAME_BURST)

    async def run(self) -> None:
        await self._send_json(
            {"type": "ready", "agent": {"id": self.agent.id, "name": self.agent.name}}
        )
        tasks = {
            asyncio.create_task(self._forward(), name="console-forward"),
            asyncio.create_task(self._receive(), name="console-receive"),
            asyncio.create_task(self._watch_agent(), name="console-watch"),
            asyncio.create_task(self._watch_sessions(), name="console-sessions"),
        }
        # While nothing is queued, the bus writes events straight to the socket.
        self.subscription.deliver_directly(lambda _group, frame: self._sender.try_now(frame))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.subscription.deliver_directly(None)
            self._sender.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        error = next((t.exception() for t in done if t.exception() is not None), None)
        if error is None or isinstance(error, WebSocketDisconnect):
            return  # the console went away; nobody to tell
        if isinstance(error, SubscriberDropped):
            await self._close(CLOSE_DROPPED, "fell behind; reload")
        elif isinstance(error, _AgentGone):
            await self._close(CLOSE_UNAUTHENTICATED, error.reason)
        else:
            log.error("console socket failed", exc_info=error)
            await self._close(1011, "internal error")

    # ---- hub -> console -------------------------------------------------------

    async def _forward(self) -> None:
        """What the bus queued while a send was in flight, a group per frame."""
        while True:
            await self._send_text(batch_frame(await self.subscription.get_group()))

    async def _watch_agent(self) -> None:
        while True:
            await asyncio.sleep(AGENT_RECHECK_SECONDS)
            await self._check_agent()

    async def _watch_sessions(self) -> None:
        """Some of the agent's sessions ended: close if this socket's is one of them."""
        await self._check_agent()
        while True:
            reason = (await self.sessions.get()).json().get("reason")
            await self._check_agent(reason if reason in SESSION_END_REASONS else "signed_out")

    async def _check_agent(self, reason: str = "signed_out") -> None:
        """The session this socket was opened with is still live (not logged out)."""
        if await auth.current_agent(self.websocket) is None:
            raise _AgentGone(reason)

    # ---- console -> hub ---------------------------------------------------------

    async def _receive(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            reply = await self._answer(message)
            if reply is not None:
                await self._send_json(reply)

    async def _answer(self, message: Mapping[str, Any]) -> dict[str, Any] | None:
        text = message.get("text")
        if text is None:
            return _error("bad_frame", "Send JSON objects in text frames.")
        if len(text) > MAX_FRAME_BYTES or len(text.encode()) > MAX_FRAME_BYTES:
            return _error("too_large", f"Frames are at most {MAX_FRAME_BYTES} bytes.")
        try:
            frame = json_text.parse(text)
        except ValueError:
            return _error("bad_frame", "That frame is not valid JSON.")
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            return _error("bad_frame", 'A frame is a JSON object with a "type".')
        if not self._frames.allow("frames"):
            return _error("rate_limited", "Too many frames; slow down.")
        handler = _HANDLERS.get(frame["type"])
        if handler is None:
            return _error("unknown_type", f"Unknown frame type {frame['type'][:40]!r}.")
        try:
            await self._check_agent()
            return await handler(self, frame)
        except HubError as exc:
            return _error(exc.code, exc.message)
        except _AgentGone:
            raise
        except Exception:
            # One bad frame must not take the agent's live view down with it.
            log.exception("console socket: handling a %s frame failed", frame["type"])
            return _error("internal", "That did not work; try again.")

    async def _typing(self, frame: dict[str, Any]) -> dict[str, Any] | None:
        on = frame.get("on")
        if not isinstance(on, bool):
            raise InvalidInput('"on" must be true or false')
        conversation = await self.hub.conversations.get(_conversation_id(frame))
        self.access.check_act([conversation.inbox_id], "That conversation")
        await self.hub.conversations.typing(conversation, on, agent=self.agent)
        return None

    async def _read(self, frame: dict[str, Any]) -> dict[str, Any] | None:
        seq = frame.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq <= MAX_ID:
            raise InvalidInput('"seq" must be a message seq (a whole number)')
        conversation = await self.hub.conversations.get(_conversation_id(frame))
        self.access.check_read([conversation.inbox_id], "That conversation")
        await self.hub.conversations.mark_read_by_agent(self.agent, conversation.id, seq)
        return None

    async def _ping(self, frame: dict[str, Any]) -> dict[str, Any] | None:
        return {"type": "pong"}

    # ---- sending ------------------------------------------------------------------

    async def _send_text(self, data: str) -> None:
        await self._sender.send(data)

    async def _send_json(self, payload: dict[str, Any]) -> None:
        await self._send_text(compact(payload))

    async def _close(self, code: int, reason: str) -> None:
        # The client may be gone already; then there is nobody to tell.
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await self._sender.wait_idle()
            await self.websocket.close(code, reason)


_HANDLERS = {
    "typing": _ConsoleSocket._typing,
    "read": _ConsoleSocket._read,
    "ping": _ConsoleSocket._ping,
}


def _conversation_id(frame: dict[str, Any]) -> int:
    value = frame.get("conversation_id")
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_ID:
        raise InvalidInput('"conversation_id" must be a conversation id')
    return value


def _error(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}
