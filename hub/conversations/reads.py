"""Reading conversations and messages: the console's lists and threads, the
widget's history (returning widgets' hellos read together)."""

from __future__ import annotations

import functools
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncConnection

from hub.conversations.log import MESSAGES, conversation_of, message_of
from hub.errors import NotFound, from_the_store
from hub.models import Agent, Conversation, Direction, Message, Status
from storage.batching import GroupRead
from storage.db import Database
from storage.repositories import conversations as rows

DEFAULT_PAGE = 200

Scope = Literal["mine", "unassigned", "all"]

# Returning widgets' hellos (ConversationService.resume), read together: each
# visitor's latest conversation (one query for the batch), then its public
# messages after the seq the widget holds (one query per conversation with
# anything new). A reconnect storm resumes thousands at once.
RESUME_BATCH_MAX = 500


@dataclass(frozen=True)
class _Resume:
    visitor_id: str
    after_seq: int
    limit: int


Resumed = tuple[Conversation | None, list[Message]]


async def _load_resumes(conn: AsyncConnection, wants: list[_Resume]) -> list[Resumed]:
    latest = await rows.latest_rows_of_visitors(conn, [want.visitor_id for want in wants])
    resumed: list[Resumed] = []
    for want in wants:
        row = latest.get(want.visitor_id)
        if row is None:
            resumed.append((None, []))
            continue
        found: list[Message] = []
        if row.last_seq > want.after_seq:  # (a reconnect with nothing new asks nothing more)
            found = [
                message_of(message)
                for message in await MESSAGES.after(
                    conn, row.id, want.after_seq, want.limit, public_only=True
                )
            ]
        resumed.append((conversation_of(row), found))
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
            row = await rows.latest_row_of_visitor(conn, visitor_id)
        return conversation_of(row) if row else None

    async def for_contact(self, contact_id: int, limit: int = DEFAULT_PAGE) -> list[Conversation]:
        """A contact's conversations in every inbox, newest activity first."""
        async with self._db.read() as conn:
            found = await rows.rows_of_contact(conn, contact_id, limit)
        return [conversation_of(row) for row in found]

    async def messages(
        self,
        conversation_id: int,
        after_seq: int = 0,
        include_private: bool = True,
        limit: int = DEFAULT_PAGE,
    ) -> list[Message]:
        """Messages after `after_seq`, oldest first."""
        async with self._db.read() as conn:
            found = await MESSAGES.after(
                conn, conversation_id, after_seq, limit, public_only=not include_private
            )
        return [message_of(row) for row in found]

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
            found = await MESSAGES.newest(conn, conversation_id, limit)
        return [message_of(row) for row in reversed(found)]

    async def list_for_agent(
        self,
        agent: Agent,
        status: Status | None = Status.OPEN,
        scope: Scope = "all",
        limit: int = DEFAULT_PAGE,
        inbox_ids: Collection[int] | None = None,
    ) -> list[Conversation]:
        """Conversations across inboxes (`inbox_ids` only, unless None), newest
        activity first, with unread counts."""
        async with self._db.read() as conn:
            found = await rows.rows_for_agent(
                conn,
                agent.id,
                Direction.IN.value,
                limit,
                status=Status(status).value if status is not None else None,
                assigned_to_agent=scope == "mine",
                unassigned=scope == "unassigned",
                inbox_ids=inbox_ids,
            )
        return [conversation_of(row, unread=row.unread) for row in found]

    async def counts_by_status(self, inbox_ids: Collection[int] | None = None) -> dict[str, int]:
        async with self._db.read() as conn:
            found = await rows.counts_by_status(conn, inbox_ids)
        return {status.value: found.get(status.value, 0) for status in Status}
