"""The widget's websocket: one `WidgetSession` per connection.

The edge parses and limits frames, the hub decides and stores, the edge
answers in the protocol's words. Every reply to a `message` frame comes after
the hub has committed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from channels.webchat import protocol, tracking
from channels.webchat.echoes import OwnEchoes
from channels.webchat.limits import WebchatLimits
from channels.webchat.prechat import check_prechat
from channels.webchat.protocol import ProtocolError
from channels.websocket.protocol import send_text_now_of
from channels.websocket.sender import SocketSender
from hub.core import Hub
from hub.errors import HubError, InvalidInput, Unavailable
from hub.events import topics
from hub.events.bus import Event, SubscriberDropped, Subscription, batch_frame
from hub.inboxes.widget_settings import WidgetSettings
from hub.models import Conversation, Inbound, Inbox, Visitor, iso
from hub.visitors.service import told_visitor

log = logging.getLogger(__name__)

# Welcome pages through history in chunks so that a long conversation is
# delivered in full without one huge query.
HISTORY_CHUNK = 500
# A site whose inbox an admin archived (read at the handshake, and again before a
# socket's first chat opens): history stays readable.
ARCHIVED_MESSAGE = "This chat is closed: the site no longer takes messages here."


class WidgetSession:
    """States: awaiting hello → live (reader and event forwarder) → closed."""

    def __init__(self, hub: Hub, inbox: Inbox, websocket: WebSocket, limits: WebchatLimits) -> None:
        self.hub = hub
        self.inbox = inbox
        self.ws = websocket
        self.limits = limits
        self.visitor: Visitor | None = None
        self.conversation_id: int | None = None
        self.track = True
        self._token_expired = False  # the hello's token had expired: a new visitor
        self._present = False
        self._verified = False  # this socket proved its identity (identify with a valid hash)
        self._left = False  # said `leave` but the socket stays (a page restored from cache)
        self._sender = SocketSender(websocket, send_text_now_of(websocket.scope))
        self._echoes = OwnEchoes()

    async def run(self) -> None:
        try:
            hello = await self._await_hello()
            if hello is None:
                return
            visitor = await self._visitor_for(hello)
            if visitor is None:
                return
            self.visitor = visitor
            channels = (topics.visitor_channel(visitor.id), topics.WIDGETS)
            # Subscribe before reading the store so nothing falls between the two;
            # the widget de-duplicates by seq.
            async with self.hub.bus.subscribe(*channels) as subscription:
                await self._welcome(hello)
                try:
                    await self._arrive(hello)
                    await self._serve(subscription)
                finally:
                    await self.leave()
        except WebSocketDisconnect:
            return

    async def _arrive(self, hello: protocol.Hello) -> None:
        """Live visitors: the page this socket was opened on (unless not tracked)."""
        assert self.visitor is not None
        self.track = hello.track
        if not self.track:
            return
        self._present = True
        try:
            try:
                await self.hub.tracking.arrive(
                    self.visitor, self.inbox, hello.page_url, hello.page_title, hello.page_referrer
                )
            except InvalidInput as exc:  # a bad page address: online, without a page
                await self._send(ProtocolError(exc.code, exc.message).frame())
                await self.hub.tracking.arrive(self.visitor, self.inbox)
        except Unavailable as exc:  # the chat goes on; the next ping starts the visit again
            log.warning("visitor %s is not shown live: %s", self.visitor.id, exc.message)

    async def leave(self) -> None:
        """The page is going away (a `leave` frame, or the socket closed); once only."""
        if self._present and self.visitor is not None:
            self._present, self._left = False, True
            with contextlib.suppress(HubError):
                await self.hub.tracking.left(self.visitor, self.inbox)

    @property
    def present(self) -> bool:
        """Shown in the live view (tracked, and not gone with `leave`)."""
        return self._present

    async def back(self) -> None:
        """Any frame after `leave` on the same socket: the page is in use again."""
        if self._left and self.visitor is not None:
            self._present, self._left = True, False
            await self.hub.tracking.arrive(self.visitor, self.inbox)

    async def _await_hello(self) -> protocol.Hello | None:
        while True:
            try:
                text = await asyncio.wait_for(
                    self._receive_text(), timeout=protocol.HELLO_TIMEOUT_SECONDS
                )
            except TimeoutError:
                await self._close(protocol.CLOSE_HELLO_TIMEOUT, "hello expected")
                return None
            if text is None:
                continue
            try:
                frame = protocol.decode(text)
                if frame["type"] != "hello":
                    raise ProtocolError("not_ready", "Send hello first.")
                return protocol.parse_hello(frame)
            except ProtocolError as exc:
                await self._send(exc.frame())

    async def _visitor_for(self, hello: protocol.Hello) -> Visitor | None:
        checked = self.hub.tokens.verify(hello.visitor_token or "", self.inbox.id)
        # No token, or one that expired (ordinary: the visitor stayed away): a new
        # visitor, told so in the welcome.
        self._token_expired = checked.expired
        if hello.visitor_token is None or checked.expired:  # (created now: seen now)
            return await self.hub.visitors.create(self.inbox, self.ws.headers.get("user-agent"))
        visitor_id = checked.visitor_id
        visitor = await self.hub.visitors.lookup(visitor_id) if visitor_id else None
        if visitor is None or visitor.inbox_id != self.inbox.id:
            await self._send(
                ProtocolError("bad_token", "Visitor token not valid for this site.").frame()
            )
            await self._close(protocol.CLOSE_BAD_TOKEN, "bad visitor token")
            return None
        if not hello.track:
            # A tracked hello is stamped by the visit it begins or continues
            # (hub.tracking), which must find the last-seen time as this hello
            # found it: stamped here first, every return looked like a reload.
            try:
                await self.hub.visitors.seen(visitor.id)
            except Unavailable as exc:  # only bookkeeping: the chat goes on without it
                log.warning("visitor %s: %s", visitor.id, exc.message)
        return visitor

    async def _welcome(self, hello: protocol.Hello) -> None:
        assert self.visitor is not None
        conversation, chunk = await self.hub.conversations.resume(
            self.visitor.id, hello.last_seq, limit=HISTORY_CHUNK
        )
        history = [message.to_wire() for message in chunk]
        if conversation is not None:
            self.conversation_id = conversation.id
            while len(chunk) == HISTORY_CHUNK:
                chunk = await self.hub.conversations.messages(
                    conversation.id, chunk[-1].seq, include_private=False, limit=HISTORY_CHUNK
                )
                history.extend(message.to_wire() for message in chunk)
        welcome = {
            "type": "welcome",
            # A fresh token every welcome: a visitor in use never reaches the expiry.
            "visitor_token": self.hub.tokens.issue(self.visitor.id, self.inbox.id),
            "visitor_id": self.visitor.id,
            "conversation": conversation.to_visitor_wire() if conversation else None,
            "messages": history,
            "agents_online": self.hub.presence.any_online(),
            # The widget's look, words and pre-chat form, as set in the console.
            "settings": WidgetSettings.stored(self.inbox.widget_settings).to_wire(),
        }
        if self.inbox.archived:
            welcome["archived"] = True
        if self._token_expired:
            welcome["token_expired"] = True
        await self._send(welcome)

    async def _serve(self, subscription: Subscription) -> None:
        forward = asyncio.create_task(self._forward(subscription))
        # While nothing is queued, the bus writes events straight to the socket.
        subscription.deliver_directly(self._deliver_now)
        try:
            while True:
                text = await self._receive_text()
                if text is None:
                    continue
                await self._handle(text)
        finally:
            subscription.deliver_directly(None)
            self._sender.cancel()
            forward.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                await forward

    def _deliver_now(self, group: Sequence[Event], frame: str) -> bool:
        echoes = self._echoes.without(group)
        if echoes is not None:
            group, matched = echoes
            if group and not self._sender.try_now(batch_frame(group)):
                return False  # queued as it was; _forward leaves the echoes out then
            self._echoes.delivered(matched)
        elif not self._sender.try_now(frame):
            return False
        self._note(group)
        return True

    def _note(self, group: Sequence[Event]) -> None:
        """Follow the conversation this visitor is in (a new one, after resolve)."""
        for event in group:
            # Only a `conversation` event can name one; skip parsing the rest.
            if event.channel != topics.WIDGETS and '"conversation"' in event.data:
                payload = event.json()
                if payload.get("type") == "conversation":
                    self.conversation_id = payload["conversation"]["id"]

    async def _forward(self, subscription: Subscription) -> None:
        """What the bus queued while a send was in flight, a group per frame."""
        try:
            while True:
                group = await subscription.get_group()
                echoes = self._echoes.without(group)
                if echoes is not None:
                    group, matched = echoes
                    self._echoes.delivered(matched)
                self._note(group)
                if group:
                    await self._send_text(batch_frame(group))
        except SubscriberDropped:
            await self._close(protocol.CLOSE_FELL_BEHIND, "fell behind; reconnect and resume")
        except (WebSocketDisconnect, RuntimeError):
            return

    async def _receive_text(self) -> str | None:
        """The next text frame; None after answering a binary frame."""
        message = await self.ws.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        if message.get("text") is None:
            await self._send(ProtocolError("bad_frame", "Binary frames are not accepted.").frame())
            return None
        return message["text"]

    async def _handle(self, text: str) -> None:
        assert self.visitor is not None
        try:
            if not self.limits.frames.allow(self.visitor.id):
                raise ProtocolError("rate_limited", "Too many frames; slow down.")
            frame = protocol.decode(text)
            handler = _HANDLERS.get(frame["type"])
            if handler is None:
                raise ProtocolError("invalid", "hello was already received.")
            await handler(self, frame)
        except ProtocolError as exc:
            await self._send(exc.frame())
        except HubError as exc:
            client_id = text_client_id(text)
            await self._send(ProtocolError(exc.code, exc.message, client_id).frame())
        except (WebSocketDisconnect, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("widget frame failed for visitor %s", self.visitor.id)
            await self._send(
                ProtocolError(
                    "internal",
                    "The hub failed; nothing was stored. Try again.",
                    text_client_id(text),
                ).frame()
            )

    async def _on_message(self, frame: dict[str, Any]) -> None:
        assert self.visitor is not None
        message = protocol.parse_message(frame)
        if self.conversation_id is None and not self.inbox.archived:
            # A new chat: the site may have been archived since this socket opened.
            fresh = await self.hub.inboxes.by_site_token(self.inbox.site_token or "")
            self.inbox = fresh or self.inbox
        if self.inbox.archived:
            raise ProtocolError("archived", ARCHIVED_MESSAGE, message.client_id)
        if self.conversation_id is None and message.conversation_id is None:
            await check_prechat(self.hub, self.inbox, self.visitor, message)
        if not await self.limits.messages.allow(self.visitor.id):
            raise ProtocolError(
                "rate_limited", "Too many messages; wait a moment.", message.client_id
            )
        self._echoes.expect(message.client_id)  # the ack below tells this socket
        try:
            posted = await self.hub.conversations.ingest(
                Inbound.web_chat(
                    inbox_id=self.inbox.id,
                    text=message.text,
                    client_id=message.client_id,
                    visitor_id=self.visitor.id,
                    conversation_id=message.conversation_id,
                    contact=message.contact,
                    campaign_id=message.campaign_id,
                )
            )
        except HubError as exc:
            self._echoes.forget(message.client_id)
            raise ProtocolError(exc.code, exc.message, message.client_id) from None
        opened = self.conversation_id != posted.conversation.id
        self.conversation_id = posted.conversation.id
        await self._send(
            {
                "type": "ack",
                "client_id": message.client_id,
                "conversation_id": posted.conversation.id,
                "seq": posted.message.seq,
                "created_at": iso(posted.message.created_at),
            }
        )
        if opened or message.contact is not None:
            await self.hub.tracking.refresh(self.visitor.id)  # now chatting, maybe known

    async def _current_conversation(self) -> Conversation | None:
        if self.conversation_id is None:
            return None
        return await self.hub.conversations.get(self.conversation_id)

    async def _on_typing(self, frame: dict[str, Any]) -> None:
        on = protocol.parse_typing(frame)
        conversation = await self._current_conversation()
        if conversation is not None:
            await self.hub.conversations.typing(conversation, on)

    async def _on_read(self, frame: dict[str, Any]) -> None:
        assert self.visitor is not None
        seq = protocol.parse_read(frame)
        if self.conversation_id is not None:
            await self.hub.conversations.mark_read_by_visitor(
                self.visitor.id, self.conversation_id, seq
            )

    async def _on_identify(self, frame: dict[str, Any]) -> None:
        assert self.visitor is not None
        contact = await self.hub.visitors.identify(
            self.visitor,
            self.inbox,
            external_id=frame.get("id"),
            email=frame.get("email"),
            name=frame.get("name"),
            claimed_hash=frame.get("hash"),
        )
        if frame.get("hash"):  # identify refuses every hash that does not match
            self._verified = True
            # A verified identify may move the visitor onto the user's contact.
            self.visitor = await self.hub.visitors.get(self.visitor.id) or self.visitor
        await self._send({"type": "identified", "contact": told_visitor(contact)})
        await self.hub.tracking.refresh(self.visitor.id)

    async def _on_attributes(self, frame: dict[str, Any]) -> None:
        assert self.visitor is not None
        await self.hub.visitors.set_attributes(
            self.visitor, frame.get("attributes"), verified=self._verified
        )

    async def _on_ping(self, frame: dict[str, Any]) -> None:
        # The ping is also the presence heartbeat (hub.visitor_presence).
        await self.back()
        if self._present and self.visitor is not None:
            await self.hub.tracking.heartbeat(self.visitor, self.inbox)
        await self._send({"type": "pong"})

    async def _send(self, frame: dict[str, Any]) -> None:
        await self._send_text(protocol.encode(frame))

    async def _send_text(self, text: str) -> None:
        await self._sender.send(text)

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await self._sender.wait_idle()
            await self.ws.close(code=code, reason=reason)


def text_client_id(text: str) -> str | None:
    """The client id of a message frame, if it has a valid one (for error frames)."""
    try:
        frame = protocol.decode(text)
        return protocol.parse_message(frame).client_id if frame["type"] == "message" else None
    except ProtocolError as exc:
        return exc.client_id


_HANDLERS = {
    "message": WidgetSession._on_message,
    "typing": WidgetSession._on_typing,
    "read": WidgetSession._on_read,
    "identify": WidgetSession._on_identify,
    "attributes": WidgetSession._on_attributes,
    "ping": WidgetSession._on_ping,
    **tracking.HANDLERS,
}
