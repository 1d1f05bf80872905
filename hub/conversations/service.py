"""Conversations: what agents do in them (reply, note, assign, change status,
read marks, typing) and, through `ChatIngest`, visitors' web chat messages.

Every change runs in one unit of work whose events go out after the commit;
every message enters through the one append (hub/conversations/log.py);
reading is `ConversationReads` (hub/conversations/reads.py).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from hub.conversations.chat_ingest import ChatIngest, Posted
from hub.conversations.log import Entry
from hub.conversations.pipeline import InboundPipeline
from hub.conversations.reads import ConversationReads
from hub.errors import Forbidden, InvalidInput, NotFound
from hub.events import topics
from hub.events.domain import Assigned, ConversationCreated, MessageCreated, StatusChanged
from hub.events.unit_of_work import UnitOfWork, Writes
from hub.models import (
    Agent,
    AuthorType,
    Conversation,
    Direction,
    Inbound,
    Kind,
    Message,
    Status,
    utcnow,
)
from hub.text import clean_text
from storage.repositories import contacts as contact_rows
from storage.repositories import conversations as rows

MAX_REPLY_CHARS = 20000

# Runs inside an agent's reply's unit of work (conversation, message,
# attachments, agent name) and carries the reply on its channel (email queues
# it); True when it did, False when the conversation is not its channel's.
ReplyHook = Callable[
    [UnitOfWork, Conversation, Message, Sequence[Any], str],
    Awaitable[bool],
]


class ConversationService(ConversationReads):
    def __init__(self, writes: Writes, pipeline: InboundPipeline) -> None:
        super().__init__(writes.db)
        self._writes = writes
        self._log = pipeline.log
        self._bus = writes.publisher.bus  # for what is relayed, not stored (typing)
        self.reply_hooks: list[ReplyHook] = []
        self.chat = ChatIngest(writes.db, writes.publisher, pipeline)
        self.away_form_hooks = self.chat.away_form_hooks

    async def ingest(self, inbound: Inbound) -> Posted:
        """Store one visitor's web chat message; answer after it has committed and
        its events are out (group commit: see hub/conversations/chat_ingest.py)."""
        return await self.chat.ingest(inbound)

    async def close(self) -> None:
        """Refuse new visitor messages, store those already queued, stop the writer."""
        await self.chat.close()

    # ---- agents' actions --------------------------------------------------

    async def reply(
        self,
        agent: Agent,
        conversation_id: int,
        text: str,
        client_id: str | None = None,
        private: bool = False,
        attachments: Sequence[Any] = (),
    ) -> Posted:
        """An agent's reply (to the visitor) or private note (agents only).

        Reply hooks (email) run inside the same transaction, so a reply and the
        mail that carries it are stored together or not at all.
        """
        body = clean_text(text, MAX_REPLY_CHARS)
        if private and attachments:
            raise InvalidInput("a private note has no attachments")
        async with self._writes.begin() as work:
            conn = work.conn
            current = await self._log.get(conn, conversation_id)
            if client_id is not None:
                earlier = await self._log.by_client_id(conn, conversation_id, client_id)
                if earlier is not None:
                    return Posted(earlier, current, duplicate=True)
            changes: dict[str, Any] = {}
            if not private:
                changes.update(rows.first_reply(utcnow()))
            message = await self._log.append(
                conn,
                conversation_id,
                Entry(
                    Direction.OUT,
                    Kind.NOTE if private else Kind.TEXT,
                    AuthorType.AGENT,
                    body,
                    author_id=agent.id,
                    client_id=client_id,
                    previews=not private,
                    changes=changes,
                ),
            )
            await rows.raise_agent_read(
                conn, self._db.is_sqlite, agent.id, conversation_id, message.seq
            )
            if not private:
                carried = False
                for hook in self.reply_hooks:
                    carried = await hook(work, current, message, attachments, agent.name) or carried
                if attachments and not carried:
                    raise InvalidInput("attachments can be sent in email conversations only")
            conversation = await self._log.get(conn, conversation_id)
            work.emit(MessageCreated(conversation, message))
        return Posted(message, conversation)

    async def start_proactive(self, agent: Agent, visitor_id: str, text: str) -> Posted:
        """An agent writes first to a visitor on the site (live visitors' "Start chat").

        The message goes to the visitor's open conversation, or opens a new one
        assigned to the agent; the widget is told to open itself.
        """
        body = clean_text(text, MAX_REPLY_CHARS)
        async with self._writes.begin() as work:
            conn = work.conn
            visitor_row = await contact_rows.of_visitor(conn, visitor_id)
            if visitor_row is None:
                raise NotFound(f"no visitor {visitor_id}")
            latest = await rows.latest_of_visitor(
                conn, visitor_id, not_status=Status.RESOLVED.value
            )
            opened = latest is None
            conversation_id = latest or await self._log.open(
                conn,
                visitor_row.inbox_id,
                visitor_row.contact_id,
                visitor_id=visitor_id,
                assignee_id=agent.id,
            )
            if opened:
                work.emit(ConversationCreated(await self._log.get(conn, conversation_id)))
        # The text was checked above, so the conversation never stays empty
        # unless the store itself fails between the two transactions.
        posted = await self.reply(agent, conversation_id, body)
        # An instruction to the widget (open yourself), after both commits.
        await self._bus.publish(topics.visitor_channel(visitor_id), {"type": "open"})
        return posted

    async def assign(
        self, actor: Agent, conversation_id: int, assignee_id: int | None
    ) -> Conversation:
        async with self._writes.begin() as work:
            conn = work.conn
            current = await self._log.get(conn, conversation_id)
            assignee_name = None
            if assignee_id is not None:
                assignee_name = await rows.assignable_agent_name(conn, assignee_id)
                if assignee_name is None:
                    raise InvalidInput(f"no active agent {assignee_id}")
            if current.assignee_id == assignee_id:
                return current
            if assignee_id is None:
                note = f"{actor.name} unassigned the conversation"
            elif assignee_id == actor.id:
                note = f"{actor.name} self-assigned the conversation"
            else:
                note = f"{actor.name} assigned the conversation to {assignee_name}"
            activity = await self._record_activity(
                conn, conversation_id, note, {"assignee_id": assignee_id}
            )
            conversation = await self._log.get(conn, conversation_id)
            work.emit(
                MessageCreated(conversation, activity), Assigned(conversation, current.assignee_id)
            )
        return conversation

    async def set_status(
        self,
        actor: Agent,
        conversation_id: int,
        status: Status,
        snoozed_until: datetime | None = None,
    ) -> Conversation:
        """Change the status; a snooze lasts until `snoozed_until` or the customer's reply."""
        status = Status(status)
        if snoozed_until is not None and status is not Status.SNOOZED:
            raise InvalidInput("only a snooze has an end time")
        if snoozed_until is not None and snoozed_until <= utcnow():
            raise InvalidInput("a snooze must end in the future")
        async with self._writes.begin() as work:
            conn = work.conn
            current = await self._log.get(conn, conversation_id)
            if current.status is status and snoozed_until is None:
                return current
            verb = {
                Status.OPEN: "reopened the conversation",
                Status.PENDING: "marked the conversation pending",
                Status.SNOOZED: "snoozed the conversation",
                Status.RESOLVED: "resolved the conversation",
            }[status]
            if snoozed_until is not None:
                verb += f" until {snoozed_until:%b %d, %H:%M} UTC"
            activity, conversation = await self._change_status(
                conn, conversation_id, status, f"{actor.name} {verb}", snoozed_until
            )
            work.emit(
                MessageCreated(conversation, activity), StatusChanged(conversation, current.status)
            )
        return conversation

    async def wake_snoozed(self, now: datetime | None = None) -> int:
        """Reopen conversations whose snooze has ended (a worker job); how many."""
        now = now or utcnow()
        async with self._db.read() as conn:
            due = await rows.due_snoozes(conn, Status.SNOOZED.value, now)
        woken = 0
        for conversation_id in due:
            async with self._writes.begin() as work:
                conn = work.conn
                # Re-check inside the write: a reply may have reopened it meanwhile.
                if not await rows.still_snoozed(conn, conversation_id, Status.SNOOZED.value, now):
                    continue
                activity, conversation = await self._change_status(
                    conn,
                    conversation_id,
                    Status.OPEN,
                    "Snooze ended; the conversation is open again",
                )
                work.emit(
                    MessageCreated(conversation, activity),
                    StatusChanged(conversation, Status.SNOOZED),
                )
                woken += 1
        return woken

    async def _change_status(
        self,
        conn: AsyncConnection,
        conversation_id: int,
        status: Status,
        text: str,
        snoozed_until: datetime | None = None,
    ) -> tuple[Message, Conversation]:
        now = utcnow()
        changes = {
            "status": status.value,
            "resolved_at": now if status is Status.RESOLVED else None,
            "snoozed_until": snoozed_until if status is Status.SNOOZED else None,
        }
        activity = await self._record_activity(conn, conversation_id, text, changes)
        return activity, await self._log.get(conn, conversation_id)

    async def _record_activity(
        self, conn: AsyncConnection, conversation_id: int, text: str, changes: dict[str, Any]
    ) -> Message:
        """Apply `changes` to the conversation with an activity line (agents only) saying so."""
        return await self._log.append(conn, conversation_id, Entry.activity(text, changes))

    async def mark_read_by_agent(self, agent: Agent, conversation_id: int, seq: int) -> None:
        async with self._writes.begin() as work:
            conversation = await self._log.get(work.conn, conversation_id)
            seq = min(seq, conversation.last_seq)
            await rows.raise_agent_read(
                work.conn, self._db.is_sqlite, agent.id, conversation_id, seq
            )
            if conversation.visitor_id:
                work.after_commit(
                    functools.partial(
                        self._bus.publish,
                        topics.visitor_channel(conversation.visitor_id),
                        {"type": "read", "conversation_id": conversation_id, "seq": seq},
                    )
                )

    async def mark_read_by_visitor(self, visitor_id: str, conversation_id: int, seq: int) -> None:
        async with self._writes.begin() as work:
            conn = work.conn
            owner = await rows.column(conn, conversation_id, "visitor_id")
            if owner is None or owner != visitor_id:
                raise Forbidden("that conversation is not yours")
            last_seq = await rows.column(conn, conversation_id, "last_seq")
            inbox_id = await rows.column(conn, conversation_id, "inbox_id")
            seq = min(seq, last_seq or 0)
            await rows.raise_visitor_read(conn, conversation_id, seq)
            work.after_commit(
                functools.partial(
                    self._bus.publish,
                    topics.inbox_channel(inbox_id),
                    {
                        "type": "read",
                        "by": "visitor",
                        "conversation_id": conversation_id,
                        "seq": seq,
                    },
                )
            )

    async def typing(
        self, conversation: Conversation, on: bool, agent: Agent | None = None
    ) -> None:
        """Relay a typing indicator; nothing is stored."""
        channel = topics.inbox_channel(conversation.inbox_id)
        if agent is None:
            await self._bus.publish(
                channel,
                {
                    "type": "typing",
                    "conversation_id": conversation.id,
                    "on": on,
                    "author": {"type": "visitor", "name": conversation.display_name},
                },
            )
            return
        await self._bus.publish(
            channel,
            {
                "type": "typing",
                "conversation_id": conversation.id,
                "on": on,
                "author": {"type": "agent", "id": agent.id, "name": agent.name},
            },
        )
        if conversation.visitor_id:
            await self._bus.publish(
                topics.visitor_channel(conversation.visitor_id),
                {"type": "typing", "on": on, "agent": {"name": agent.name}},
            )
