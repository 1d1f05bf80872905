"""The hub's named domain events: what happened, said once, after commit.

Services emit these into their unit of work (hub/events/unit_of_work.py); once
the transaction has committed the publisher (hub/events/publisher.py) sends
each as the frames the console and the widget read, and hands it to every
in-process listener (automation, webhooks and reports listen here). An event
holds what was true at commit, read inside the same transaction.

    conversation.created        a conversation was opened (any channel)
    conversation.updated        reopened by the customer, or its details changed
    conversation.status_changed an agent, a rule or a timer changed its status
    conversation.assigned       its assignee changed
    message.created             a message, note or activity line was appended
    contact.created             a new contact (a caller, a sender, a visitor)
    contact.updated             a contact's name, email or identity changed
    call.updated                a call's record changed (ringing, answered, ended)
    call.missed                 a call ended unanswered
    visitor.started_chat        a website visitor's first message opened a chat
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from hub.models import Contact, Conversation, Message, Status

if TYPE_CHECKING:
    from hub.voice.models import Call


class DomainEvent:
    """Base of every event; `name` is its stable name (for listeners and logs)."""

    name: ClassVar[str]


@dataclass(frozen=True)
class ConversationCreated(DomainEvent):
    name: ClassVar[str] = "conversation.created"
    conversation: Conversation


@dataclass(frozen=True)
class ConversationUpdated(DomainEvent):
    name: ClassVar[str] = "conversation.updated"
    conversation: Conversation


@dataclass(frozen=True)
class StatusChanged(DomainEvent):
    name: ClassVar[str] = "conversation.status_changed"
    conversation: Conversation
    before: Status


@dataclass(frozen=True)
class Assigned(DomainEvent):
    name: ClassVar[str] = "conversation.assigned"
    conversation: Conversation
    before: int | None  # the previous assignee's id


@dataclass(frozen=True)
class MessageCreated(DomainEvent):
    name: ClassVar[str] = "message.created"
    conversation: Conversation
    message: Message


@dataclass(frozen=True)
class ContactCreated(DomainEvent):
    name: ClassVar[str] = "contact.created"
    contact_id: int


@dataclass(frozen=True)
class ContactUpdated(DomainEvent):
    name: ClassVar[str] = "contact.updated"
    contact: Contact
    # The inboxes the contact is in: their consoles are told (hub/agents/access.py).
    inbox_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class CallUpdated(DomainEvent):
    name: ClassVar[str] = "call.updated"
    call: Call


@dataclass(frozen=True)
class CallMissed(DomainEvent):
    name: ClassVar[str] = "call.missed"
    call: Call


@dataclass(frozen=True)
class VisitorStartedChat(DomainEvent):
    name: ClassVar[str] = "visitor.started_chat"
    conversation: Conversation
