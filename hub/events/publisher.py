"""After commit: each domain event as the bus frames its readers know, then to listeners.

The frames are the wire the console and the widget read (docs/widget-protocol.md
for the widget's); which topic a frame goes to is decided here and nowhere else:
agents see an inbox's events on `topics.inbox_channel(inbox_id)` (their consoles
subscribe to the inboxes they may read, hub/agents/access.py), a visitor sees
only the public part of their own conversation on their own topic.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from hub.events import topics
from hub.events.bus import EventBus
from hub.events.domain import (
    Assigned,
    CallUpdated,
    ContactUpdated,
    ConversationCreated,
    ConversationUpdated,
    DomainEvent,
    MessageCreated,
    StatusChanged,
)
from hub.models import Contact, Conversation

log = logging.getLogger(__name__)

Frame = tuple[str, dict[str, Any]]
Listener = Callable[[DomainEvent], Awaitable[None]]


def contact_wire(contact: Contact) -> dict[str, Any]:
    """A contact as the console's `contact` frame shows it: `claimed` holds what a
    visitor only claimed (id, name, email), unverified, beside the verified details."""
    return {
        "id": contact.id,
        "name": contact.name,
        "email": contact.email,
        "external_id": contact.external_id,
        "claimed": dict(contact.claimed),
    }


def _conversation_frames(conversation: Conversation) -> list[Frame]:
    frames: list[Frame] = [
        (
            topics.inbox_channel(conversation.inbox_id),
            {"type": "conversation", "conversation": conversation.to_wire()},
        )
    ]
    if conversation.visitor_id:
        frames.append(
            (
                topics.visitor_channel(conversation.visitor_id),
                {"type": "conversation", "conversation": conversation.to_visitor_wire()},
            )
        )
    return frames


def frames_of(event: DomainEvent) -> list[Frame]:
    """The frames one event is sent as (none for events only listeners hear)."""
    if isinstance(event, MessageCreated):
        conversation, wire = event.conversation, event.message.to_wire()
        frames: list[Frame] = [
            (
                topics.inbox_channel(conversation.inbox_id),
                {"type": "message", "conversation": conversation.to_wire(), "message": wire},
            )
        ]
        if conversation.visitor_id and not event.message.is_private:
            frames.append(
                (
                    topics.visitor_channel(conversation.visitor_id),
                    {"type": "message", "message": wire},
                )
            )
        return frames
    if isinstance(event, ConversationCreated | ConversationUpdated | StatusChanged | Assigned):
        return _conversation_frames(event.conversation)
    if isinstance(event, ContactUpdated):
        frame = {"type": "contact", "contact": contact_wire(event.contact)}
        return [(topics.inbox_channel(inbox_id), frame) for inbox_id in event.inbox_ids]
    if isinstance(event, CallUpdated):
        return [
            (
                topics.inbox_channel(event.call.inbox_id),
                {"type": "call", "call": event.call.to_wire()},
            )
        ]
    return []


class Publisher:
    """Sends committed events: their frames on the bus, then to every listener."""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self._listeners: list[Listener] = []

    def listen(self, listener: Listener) -> None:
        """Call `listener` with every event, after its frames went out."""
        self._listeners.append(listener)

    async def publish(self, events: Iterable[DomainEvent]) -> None:
        for event in events:
            for topic, frame in frames_of(event):
                await self.bus.publish(topic, frame)
            for listener in self._listeners:
                try:
                    await listener(event)
                except Exception:  # a listener's bug must not undo what was told
                    log.exception("a listener of %s failed", event.name)
