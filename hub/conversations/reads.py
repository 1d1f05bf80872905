"""Reading conversations and messages: the console's lists and threads, the
widget's history (returning widgets' hellos read together)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.conversations.log import MESSAGE_QUERY, PUBLIC_KINDS, conversation_of, message_of
from hub.errors import NotFound, from_the_store
from hub.models import Agent, Conversation, Direction, Message, Status
from storage.batching import GroupRead
from storage.db import Database
from storage.repositories import conversations as rows
from storage.tables import agent_reads, conversations, messages

DEFAULT_PAGE = 200

Scope = Literal["mine", "unassigned", "all"]

_conversation_query = rows.conversation_query
_conversation = conversation_of
_message = message_of

# Returning widgets' hellos (ConversationService.resume), read together: each
# visitor's latest conversation (one query for the batch), then its public
# messages after the seq the widget holds (one query per conversation with
# anything new). A reconnect storm resumes thousands at once.
RESUME_BATCH_MAX = 500
_LATEST_OF_VISITORS = _conversation_query().where(
    conversations.c.id.in_(
        sa.select(sa.func.max(conversations.c.id))
        .where(conversations.c.visitor_id.in_(sa.bindparam("b_visitor_ids", expanding=True)))
        .group_by(conversations.c.visitor_id)
    )
)
_PUBLIC_AFTER = (
    MESSAGE_QUERY.where(messages.c.conversation_id == sa.bindparam("b_conversation_id"))
    .where(messages.c.seq > sa.bindparam("b_after_seq"))
    .where(messages.c.kind.in_(PUBLIC_KINDS))
    .order_by(messages.c.seq)
    .limit(sa.bindparam("b_limit", type_=sa.Integer))
)


@dataclass(frozen=True)
class _Resume:
    visitor_id: str
    after_seq: int
    limit: int


Resumed = tuple[Conversation | None, list[Message]]


async def _load_resumes(conn: AsyncConnection, wants: list[_Resume]) -> list[Resumed]:
    ids = sorted({want.visitor_id for want in wants})
    latest = {
        row.visitor_id: row
        for row in await conn.execute(_LATEST_OF_VISITORS, {"b_visitor_ids": ids})
    }
    resumed: list[Resumed] = []
    for want in wants:
        row = latest.get(want.visitor_id)
        if row is None:
            resumed.append((None, []))
            continue
        found: list[Message] = []
        if row.last_seq > want.after_seq:  # (a reconnect with nothing new asks nothing more)
            found = [
                _message(message)
                for message in await conn.execute(
                    _PUBLIC_AFTER,
                    {
                        "b_conversation_id": row.id,
                        "b_after_seq": want.after_seq,
                        "b_limit": want.limit,
                    },
                )
            ]
        resumed.append((_conversation(row), found))
    return resumed


class ConversationReads:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, conversation_id: int) -> Conversation:
        async with self._db.read() as conn:
            found = await rows.row(conn, conversation_id)
        if found is None:
            raise NotFound(f"no conversation {conversation_id}")
        return conversation_of(found)

    async def latest_for_visitor(self, visitor_id: str) -> Conversation | None:
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    _conversation_query()
                    .where(conversations.c.visitor_id == visitor_id)
                    .order_by(conversations.c.id.desc())
                    .limit(1)
                )
            ).first()
        return _conversation(row) if row else None

    async def for_contact(self, contact_id: int, limit: int = DEFAULT_PAGE) -> list[Conversation]:
        """A contact's conversations in every inbox, newest activity first."""
        async with self._db.read() as conn:
            rows = (
                await conn.execute(
                    _conversation_query()
                    .where(conversations.c.contact_id == contact_id)
                    .order_by(conversations.c.last_activity_at.desc())
                    .limit(limit)
                )
            ).all()
        return [_conversation(row) for row in rows]

    async def messages(
        self,
        conversation_id: int,
        after_seq: int = 0,
        include_private: bool = True,
        limit: int = DEFAULT_PAGE,
    ) -> list[Message]:
        """Messages after `after_seq`, oldest first."""
        query = (
            MESSAGE_QUERY.where(messages.c.conversation_id == conversation_id)
            .where(messages.c.seq > after_seq)
            .order_by(messages.c.seq)
            .limit(limit)
        )
        if not include_private:
            query = query.where(messages.c.kind.in_(PUBLIC_KINDS))
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [_message(row) for row in rows]

    async def resume(self, visitor_id: str, after_seq: int, limit: int = DEFAULT_PAGE) -> Resumed:
        """What a returning widget is shown: the visitor's latest conversation
        (None before their first message) and its public messages after
        `after_seq`, oldest first, at most `limit` (page on with `messages`).
        One read for both, shared by the resumes that arrive together."""
        return await from_the_store(self._resumes.submit(_Resume(visitor_id, after_seq, limit)))

    @functools.cached_property
    def _resumes(self) -> GroupRead[_Resume, Resumed]:
        return GroupRead(self._db, _load_resumes, what="conversation", max_batch=RESUME_BATCH_MAX)

    async def recent_messages(
        self, conversation_id: int, limit: int = DEFAULT_PAGE
    ) -> list[Message]:
        """The newest `limit` messages (all kinds), oldest first."""
        async with self._db.read() as conn:
            rows = (
                await conn.execute(
                    MESSAGE_QUERY.where(messages.c.conversation_id == conversation_id)
                    .order_by(messages.c.seq.desc())
                    .limit(limit)
                )
            ).all()
        return [_message(row) for row in reversed(rows)]

    async def list_for_agent(
        self,
        agent: Agent,
        status: Status | None = Status.OPEN,
        scope: Scope = "all",
        limit: int = DEFAULT_PAGE,
    ) -> list[Conversation]:
        """Conversations across inboxes, newest activity first, with unread counts."""
        read_seq = (
            sa.select(agent_reads.c.read_seq)
            .where(agent_reads.c.agent_id == agent.id)
            .where(agent_reads.c.conversation_id == conversations.c.id)
            .scalar_subquery()
        )
        unread = (
            sa.select(sa.func.count())
            .select_from(messages)
            .where(messages.c.conversation_id == conversations.c.id)
            .where(messages.c.direction == Direction.IN.value)
            .where(messages.c.seq > sa.func.coalesce(read_seq, 0))
            .scalar_subquery()
            .label("unread")
        )
        query = _conversation_query().add_columns(unread)
        if status is not None:
            query = query.where(conversations.c.status == Status(status).value)
        if scope == "mine":
            query = query.where(conversations.c.assignee_id == agent.id)
        elif scope == "unassigned":
            query = query.where(conversations.c.assignee_id.is_(None))
        query = query.order_by(
            conversations.c.last_activity_at.desc(), conversations.c.id.desc()
        ).limit(limit)
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [_conversation(row, unread=row.unread) for row in rows]

    async def counts_by_status(self) -> dict[str, int]:
        async with self._db.read() as conn:
            found = await rows.counts_by_status(conn)
        return {status.value: found.get(status.value, 0) for status in Status}
