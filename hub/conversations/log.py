"""The one append: every message, note, call item and activity line of every
channel enters a conversation here.

A conversation's messages are numbered (`seq` 1, 2, 3 …) by incrementing its
row's counter in the writer's transaction, which serializes writers to one
conversation on every engine and leaves no gaps. This module owns the rules
that go with each append: the preview, what counts as unread (the customer's
messages), and that a customer writing (or a missed call) reopens the
conversation. Web chat's fast path (hub/conversations/chat_ingest.py) applies
the same rules in fewer statements and is tested against this one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from hub.errors import NotFound
from hub.models import AuthorType, Channel, Conversation, Direction, Kind, Message, Status, utcnow
from hub.records import record_of
from storage.repositories import conversations as rows
from storage.repositories.messages import Messages

PREVIEW_CHARS = 140
PUBLIC_KINDS = (Kind.TEXT.value,)
# Every read of messages, with the author's name (agent, campaign or contact).
MESSAGES = Messages(
    AuthorType.AGENT.value, AuthorType.CAMPAIGN.value, AuthorType.CONTACT.value, PUBLIC_KINDS
)
# What reopens a conversation: the customer wrote, or a call needs calling back.
REOPENED = {"status": Status.OPEN.value, "snoozed_until": None, "resolved_at": None}


@dataclass(frozen=True)
class Entry:
    """One item to append. `reopens` when the customer is waiting again;
    `changes` are other columns of the conversation set in the same statement
    (a status, an assignee); `at` dates it when it happened earlier (a call)."""

    direction: Direction
    kind: Kind
    author_type: AuthorType
    text: str
    author_id: int | None = None
    author_name: str | None = None
    client_id: str | None = None
    reopens: bool = False
    previews: bool = True
    changes: dict[str, Any] | None = None
    at: datetime | None = None

    @classmethod
    def from_customer(
        cls,
        text: str,
        author_type: AuthorType,
        author_id: int | None = None,
        author_name: str | None = None,
        client_id: str | None = None,
    ) -> Entry:
        """What the customer wrote: unread for agents, and it reopens."""
        return cls(
            Direction.IN,
            Kind.TEXT,
            author_type,
            text,
            author_id=author_id,
            author_name=author_name,
            client_id=client_id,
            reopens=True,
        )

    @classmethod
    def activity(cls, text: str, changes: dict[str, Any] | None = None) -> Entry:
        """A line of activity ("Sam resolved the conversation"), agents only."""
        return cls(
            Direction.OUT, Kind.ACTIVITY, AuthorType.SYSTEM, text, previews=False, changes=changes
        )


# What a conversation's row takes from its joins (inbox, contact, assignee).
_NAMES = ("inbox_name", "contact_name", "contact_email", "assignee_name", "contact_phone")


def conversation_of(row: Any, unread: int = 0, names: Any | None = None) -> Conversation:
    """A conversation from its row; `names` (inbox, contact, assignee, channel) may
    come from another row when `row` is the bare table row (UPDATE … RETURNING)."""
    if names is None:
        return record_of(Conversation, row, unread=unread, call_back=bool(row.call_back))
    return record_of(
        Conversation,
        row,
        unread=unread,
        call_back=bool(row.call_back),
        channel=Channel(names.channel),
        **{name: getattr(names, name) for name in _NAMES},
    )


def message_of(row: Any) -> Message:
    return record_of(Message, row)


class ConversationLog:
    """Open conversations, append to them, read one back: inside the caller's
    unit of work (each method takes its connection)."""

    async def open(
        self,
        conn: AsyncConnection,
        inbox_id: int,
        contact_id: int,
        *,
        status: Status = Status.OPEN,
        visitor_id: str | None = None,
        campaign_id: int | None = None,
        assignee_id: int | None = None,
        subject: str | None = None,
    ) -> int:
        now = utcnow()
        return await rows.insert(
            conn,
            {
                "inbox_id": inbox_id,
                "contact_id": contact_id,
                "visitor_id": visitor_id,
                "campaign_id": campaign_id,
                "assignee_id": assignee_id,
                "subject": subject,
                "status": status.value,
                "last_seq": 0,
                "last_in_seq": 0,
                "visitor_read_seq": 0,
                "created_at": now,
                "last_activity_at": now,
                "resolved_at": now if status is Status.RESOLVED else None,
            },
        )

    async def append(self, conn: AsyncConnection, conversation_id: int, entry: Entry) -> Message:
        now = utcnow()
        created_at = entry.at or now
        values: dict[str, Any] = {"last_activity_at": now, **(entry.changes or {})}
        if entry.reopens:
            values.update(REOPENED)
        if entry.previews:
            values["preview"] = entry.text[:PREVIEW_CHARS]
        seq = await rows.advance(conn, conversation_id, values, entry.direction is Direction.IN)
        if seq is None:
            raise NotFound(f"no conversation {conversation_id}")
        await rows.insert_message(
            conn,
            {
                "conversation_id": conversation_id,
                "seq": seq,
                "direction": entry.direction.value,
                "kind": entry.kind.value,
                "author_type": entry.author_type.value,
                "author_id": entry.author_id,
                "text": entry.text,
                "client_id": entry.client_id,
                "created_at": created_at,
            },
        )
        author_name = entry.author_name
        if entry.author_type is AuthorType.AGENT and entry.author_id is not None:
            author_name = await rows.agent_name(conn, entry.author_id)
        return Message(
            conversation_id=conversation_id,
            seq=seq,
            direction=entry.direction,
            kind=entry.kind,
            author_type=entry.author_type,
            author_id=entry.author_id,
            author_name=author_name,
            text=entry.text,
            client_id=entry.client_id,
            created_at=created_at,
        )

    async def get(self, conn: AsyncConnection, conversation_id: int) -> Conversation:
        found = await rows.row(conn, conversation_id)
        if found is None:
            raise NotFound(f"no conversation {conversation_id}")
        return conversation_of(found)

    async def by_client_id(
        self, conn: AsyncConnection, conversation_id: int, client_id: str
    ) -> Message | None:
        """The message sent before with this client id (a resend), if any."""
        found = await MESSAGES.by_client_id(conn, conversation_id, client_id)
        return message_of(found) if found else None


__all__ = ["PUBLIC_KINDS", "ConversationLog", "Entry", "conversation_of", "message_of"]
