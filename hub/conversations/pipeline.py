"""The inbound pipeline: how anything a customer sends, on any channel, enters
the conversation store.

    Inbound ─▶ resolve the contact ─▶ find or open the conversation ─▶ append
            (ContactResolver)        (the channel's Locator)          (ConversationLog)
            ─▶ the channel's own record (email rows, call rows) ─▶ domain events

Every step runs inside the caller's unit of work; the events it returns leave
only after that transaction commits. A channel plugs in a `Locator` (how it
threads: a visitor's going chat, an email's references, a caller's voice
conversation); the rest is the same for every channel.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from hub.contacts.resolver import ContactResolver
from hub.conversations.log import ConversationLog, Entry
from hub.events.domain import (
    ContactCreated,
    ConversationCreated,
    ConversationUpdated,
    DomainEvent,
    MessageCreated,
    VisitorStartedChat,
)
from hub.models import AuthorType, Channel, Conversation, Inbound, Message, Status
from storage.repositories import conversations as rows


@dataclass(frozen=True)
class Opening:
    """How a channel opens a conversation when none is found."""

    status: Status = Status.OPEN
    visitor_id: str | None = None
    campaign_id: int | None = None
    subject: str | None = None


class Locator(Protocol):
    """A channel's threading: the conversation an inbound item belongs to."""

    async def locate(
        self, conn: AsyncConnection, inbound: Inbound, contact_id: int
    ) -> int | Opening:
        """The conversation's id, or how to open a new one."""
        ...

    async def opened(
        self, conn: AsyncConnection, inbound: Inbound, conversation_id: int, opening: Opening
    ) -> list[Message]:
        """The channel's rows for a new conversation, and any message that opens it
        (a campaign's) before the customer's own."""
        ...


@dataclass(frozen=True)
class Thread:
    """Where an inbound item goes: its contact and conversation."""

    contact_id: int
    conversation_id: int
    opened: bool
    openers: tuple[Message, ...] = ()
    contact_created: bool = False

    def contact_events(self) -> list[DomainEvent]:
        """A contact the resolver created for this item."""
        return [ContactCreated(self.contact_id)] if self.contact_created else []


@dataclass
class Received:
    """What `receive` stored: the customer's message, the conversation after it,
    and what to tell once committed (nothing for a duplicate)."""

    thread: Thread
    message: Message
    conversation: Conversation
    duplicate: bool = False
    reopened: bool = False
    after: list[Message] = field(default_factory=list)  # the channel's answers (an acknowledgement)

    def events(self) -> list[DomainEvent]:
        if self.duplicate:
            return []
        conversation = self.conversation
        told = self.thread.contact_events()
        told += [MessageCreated(conversation, m) for m in self.thread.openers]
        told.append(MessageCreated(conversation, self.message))
        if self.thread.opened:
            told.append(ConversationCreated(conversation))
            if conversation.channel is Channel.WEBSITE:
                told.append(VisitorStartedChat(conversation))
        elif self.reopened:
            told.append(ConversationUpdated(conversation))
        told += [MessageCreated(conversation, m) for m in self.after]
        return told


# The channel's own record, after the append and before the conversation is read
# back: rows of its own, and any messages it adds (an acknowledgement).
Record = Callable[[AsyncConnection, Thread, Message], Awaitable[list[Message]]]


class InboundPipeline:
    def __init__(self, log: ConversationLog, contacts: ContactResolver) -> None:
        self.log = log
        self.contacts = contacts
        self._locators: dict[Channel, Locator] = {}

    def route(self, channel: Channel, locator: Locator) -> None:
        """Thread `channel`'s inbound items with `locator`."""
        self._locators[channel] = locator

    async def thread(self, conn: AsyncConnection, inbound: Inbound) -> Thread:
        """Resolve the contact, then find the conversation or open one."""
        contact_id, created = await self.contacts.resolve(conn, inbound)
        locator = self._locators[inbound.channel]
        found = await locator.locate(conn, inbound, contact_id)
        if not isinstance(found, Opening):
            return Thread(contact_id, found, opened=False, contact_created=created)
        conversation_id = await self.log.open(
            conn,
            inbound.inbox_id,
            contact_id,
            status=found.status,
            visitor_id=found.visitor_id,
            campaign_id=found.campaign_id,
            subject=found.subject,
        )
        openers = await locator.opened(conn, inbound, conversation_id, found)
        return Thread(
            contact_id,
            conversation_id,
            opened=True,
            openers=tuple(openers),
            contact_created=created,
        )

    async def receive(
        self, conn: AsyncConnection, inbound: Inbound, entry: Entry, record: Record | None = None
    ) -> Received:
        """The whole pipeline for one message; a resend of a message already in
        the conversation (same client id) is answered with the first, unchanged."""
        thread = await self.thread(conn, inbound)
        before = None
        if not thread.opened:
            if entry.client_id is not None:
                earlier = await self.log.by_client_id(conn, thread.conversation_id, entry.client_id)
                if earlier is not None:
                    current = await self.log.get(conn, thread.conversation_id)
                    return Received(thread, earlier, current, duplicate=True)
            before = await rows.column(conn, thread.conversation_id, "status")
        if entry.author_type is AuthorType.CONTACT and entry.author_id is None:
            entry = replace(entry, author_id=thread.contact_id)  # the customer wrote it
        message = await self.log.append(conn, thread.conversation_id, entry)
        after = await record(conn, thread, message) if record is not None else []
        conversation = await self.log.get(conn, thread.conversation_id)
        reopened = before is not None and before != conversation.status.value
        return Received(thread, message, conversation, reopened=reopened, after=after)
