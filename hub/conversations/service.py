"""Conversations and messages: the only place that writes them.

Every change runs in one transaction; its events go out after the commit.
Messages are numbered per conversation (`seq` 1, 2, 3 …) by incrementing the
conversation row's counter inside the same transaction, which serializes
writers to one conversation on every engine and leaves no gaps.

Web chat messages from visitors (`ingest`) are stored by group commit: callers
queue, one writer task stores everything queued in one transaction with a
savepoint per message (a bad message rolls back alone), and each caller hears
back only after that transaction has committed. On SQLite, runs of messages to
a visitor's going conversation are stored in one hop to aiosqlite's thread each
(hub/conversations/chat_ingest_sqlite.py).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.conversations.chat_ingest_sqlite import Appended, CommonAppends
from hub.errors import Forbidden, InvalidInput, NotFound, Unavailable, from_the_store
from hub.events import topics
from hub.events.domain import (
    Assigned,
    ConversationCreated,
    ConversationUpdated,
    DomainEvent,
    MessageCreated,
    StatusChanged,
    VisitorStartedChat,
)
from hub.events.unit_of_work import UnitOfWork, Writes
from hub.models import (
    Agent,
    AuthorType,
    Channel,
    ContactDetails,
    Conversation,
    Direction,
    Inbound,
    Kind,
    Message,
    Status,
    utcnow,
)
from hub.text import clean_email, clean_optional, clean_text
from storage.batching import GroupRead
from storage.tables import (
    agent_reads,
    agents,
    campaign_deliveries,
    campaigns,
    contacts,
    conversations,
    inboxes,
    messages,
    visitors,
)

MAX_INBOUND_CHARS = 5000
# Visitor messages stored per write transaction at most (group commit). A batch
# is whatever queued while the previous transaction ran, so a lone message goes
# at once; the cap bounds how long the first caller of a full batch waits.
INGEST_BATCH_MAX = 200
MAX_REPLY_CHARS = 20000
PREVIEW_CHARS = 140
DEFAULT_PAGE = 200

Scope = Literal["mine", "unassigned", "all"]

_assignees = agents.alias("assignee")
_authors = agents.alias("author")
_contact_authors = contacts.alias("contact_author")  # an email's sender


@dataclass(frozen=True)
class Posted:
    """Result of storing a message: `duplicate` when its client id was seen before."""

    message: Message
    conversation: Conversation
    duplicate: bool = False


def _conversation_query() -> sa.Select:
    return sa.select(
        conversations,
        inboxes.c.name.label("inbox_name"),
        inboxes.c.channel.label("channel"),
        contacts.c.name.label("contact_name"),
        contacts.c.email.label("contact_email"),
        contacts.c.phone.label("contact_phone"),
        _assignees.c.name.label("assignee_name"),
    ).select_from(
        conversations.join(inboxes, inboxes.c.id == conversations.c.inbox_id)
        .join(contacts, contacts.c.id == conversations.c.contact_id)
        .outerjoin(_assignees, _assignees.c.id == conversations.c.assignee_id)
    )


def _conversation(row: sa.Row, unread: int = 0, names: sa.Row | None = None) -> Conversation:
    """A conversation from its row; `names` (inbox, contact, assignee, channel) may
    come from another row when `row` is the bare table row (UPDATE … RETURNING)."""
    names = row if names is None else names
    return Conversation(
        id=row.id,
        inbox_id=row.inbox_id,
        inbox_name=names.inbox_name,
        contact_id=row.contact_id,
        contact_name=names.contact_name,
        contact_email=names.contact_email,
        visitor_id=row.visitor_id,
        status=Status(row.status),
        assignee_id=row.assignee_id,
        assignee_name=names.assignee_name,
        last_seq=row.last_seq,
        visitor_read_seq=row.visitor_read_seq,
        preview=row.preview,
        created_at=row.created_at,
        last_activity_at=row.last_activity_at,
        unread=unread,
        call_back=bool(row.call_back),
        contact_phone=names.contact_phone,
        channel=Channel(names.channel),
        subject=row.subject,
    )


def _message_query() -> sa.Select:
    author_name = sa.func.coalesce(
        _authors.c.name, campaigns.c.sender_name, _contact_authors.c.name, _contact_authors.c.email
    )
    return sa.select(messages, author_name.label("author_name")).select_from(
        messages.outerjoin(
            _authors,
            sa.and_(
                messages.c.author_type == AuthorType.AGENT.value,
                _authors.c.id == messages.c.author_id,
            ),
        )
        .outerjoin(
            campaigns,
            sa.and_(
                messages.c.author_type == AuthorType.CAMPAIGN.value,
                campaigns.c.id == messages.c.author_id,
            ),
        )
        .outerjoin(
            _contact_authors,
            sa.and_(
                messages.c.author_type == AuthorType.CONTACT.value,
                _contact_authors.c.id == messages.c.author_id,
            ),
        )
    )


def _message(row: sa.Row) -> Message:
    return Message(
        conversation_id=row.conversation_id,
        seq=row.seq,
        direction=Direction(row.direction),
        kind=Kind(row.kind),
        author_type=AuthorType(row.author_type),
        author_id=row.author_id,
        author_name=row.author_name,
        text=row.text,
        client_id=row.client_id,
        created_at=row.created_at,
    )


_PUBLIC_KINDS = (Kind.TEXT.value,)

# The statements of web chat's hot path, built once (building a Select per call
# cost about a third of ingest's CPU). Parameters are named b_* because
# SQLAlchemy reserves column names as parameter names in INSERT and UPDATE.
_theirs = conversations.alias("theirs")
_target_id = sa.func.coalesce(
    sa.bindparam("b_conversation_id", type_=sa.Integer),
    sa.select(_theirs.c.id)
    .where(_theirs.c.visitor_id == visitors.c.id)
    .order_by(_theirs.c.id.desc())
    .limit(1)
    .correlate(visitors)
    .scalar_subquery(),
)
_earlier_seq = (
    sa.select(messages.c.seq)
    .where(messages.c.conversation_id == conversations.c.id)
    .where(messages.c.client_id == sa.bindparam("b_client_id", type_=sa.String))
    .correlate(conversations)
    .scalar_subquery()
)
# The visitor's contact, and the conversation the message goes to (the one
# named, else the visitor's latest; none for a first message) with what a
# Conversation shows besides its own columns, and the seq of an earlier message
# with the same client id: one query.
_VISITOR_AND_TARGET = (
    sa.select(
        visitors.c.contact_id,
        visitors.c.inbox_id,
        conversations.c.id.label("conversation_id"),
        conversations.c.status,
        conversations.c.visitor_id.label("owner"),
        conversations.c.contact_id.label("conversation_contact_id"),
        conversations.c.assignee_id,
        inboxes.c.name.label("inbox_name"),
        inboxes.c.channel.label("channel"),
        contacts.c.name.label("contact_name"),
        contacts.c.email.label("contact_email"),
        contacts.c.phone.label("contact_phone"),
        _assignees.c.name.label("assignee_name"),
        _earlier_seq.label("earlier_seq"),
    )
    .select_from(
        visitors.outerjoin(conversations, conversations.c.id == _target_id)
        .outerjoin(inboxes, inboxes.c.id == conversations.c.inbox_id)
        .outerjoin(contacts, contacts.c.id == conversations.c.contact_id)
        .outerjoin(_assignees, _assignees.c.id == conversations.c.assignee_id)
    )
    .where(visitors.c.id == sa.bindparam("b_visitor_id"))
)
# A visitor's message: next seq, reopened, previewed; returns the whole row.
_APPEND_VISITOR_MESSAGE = (
    conversations.update()
    .where(conversations.c.id == sa.bindparam("b_conversation_id"))
    .values(
        last_seq=conversations.c.last_seq + 1,
        last_in_seq=conversations.c.last_seq + 1,
        last_activity_at=sa.bindparam("b_now"),
        preview=sa.bindparam("b_preview"),
        status=Status.OPEN.value,
        snoozed_until=None,
        resolved_at=None,
    )
    .returning(*conversations.c)
)
# A visitor's chat message.
_INSERT_VISITOR_MESSAGE = messages.insert().values(
    conversation_id=sa.bindparam("b_conversation_id"),
    seq=sa.bindparam("b_seq"),
    direction=Direction.IN.value,
    kind=Kind.TEXT.value,
    author_type=AuthorType.VISITOR.value,
    author_id=None,
    text=sa.bindparam("b_text"),
    client_id=sa.bindparam("b_client_id"),
    created_at=sa.bindparam("b_created_at"),
)
# The same three on SQLite's raw connection, a run of messages per thread hop.
_SQLITE_COMMON = CommonAppends(
    _VISITOR_AND_TARGET, _APPEND_VISITOR_MESSAGE, _INSERT_VISITOR_MESSAGE, PREVIEW_CHARS
)

log = logging.getLogger(__name__)


def _contact_values(details: ContactDetails | None) -> dict[str, Any]:
    """Validated contact fields a visitor typed (the away form), before any write."""
    if details is None:
        return {}
    values: dict[str, Any] = {}
    if details.name:
        values["name"] = clean_optional(details.name, 200, "name")
    if details.email:
        values["email"] = clean_email(details.email)
    return values


@dataclass
class _Stored:
    """A visitor message stored inside the writer's transaction, not yet committed."""

    posted: Posted
    opener: Message | None = None  # the campaign message that opened the conversation
    changed: bool = False  # opened or reopened: the conversation's event goes out too
    opened: bool = False

    def events(self) -> list[DomainEvent]:
        """What this message tells once committed (nothing for a duplicate)."""
        if self.posted.duplicate:
            return []
        conversation = self.posted.conversation
        told: list[DomainEvent] = []
        if self.opener is not None:
            told.append(MessageCreated(conversation, self.opener))
        told.append(MessageCreated(conversation, self.posted.message))
        if self.opened:
            told += [ConversationCreated(conversation), VisitorStartedChat(conversation)]
        elif self.changed:
            told.append(ConversationUpdated(conversation))
        return told


@dataclass
class _Queued:
    """A validated visitor message waiting for the writer, and its caller's future."""

    inbound: Inbound
    text: str
    contact_values: dict[str, Any]
    future: asyncio.Future[Posted]
    stored: _Stored | None = None
    error: BaseException | None = None


async def _savepoints(
    conn: AsyncConnection, is_sqlite: bool
) -> Callable[[], AbstractAsyncContextManager[Any]]:
    """Savepoints for the messages of a batch. On SQLite they go straight to
    aiosqlite (one hop each instead of SQLAlchemy's two, saving about 0.8 ms a
    message); the transaction around them is SQLAlchemy's, on the same
    connection, and every savepoint is released or rolled back before the next."""
    if not is_sqlite:
        return conn.begin_nested
    driver = (await conn.get_raw_connection()).driver_connection

    @asynccontextmanager
    async def savepoint() -> AsyncIterator[None]:
        await driver.execute("SAVEPOINT ingest")
        try:
            yield
        except BaseException:
            await driver.execute("ROLLBACK TO ingest")
            await driver.execute("RELEASE ingest")
            raise
        await driver.execute("RELEASE ingest")

    return savepoint


def _appended(
    target: Any,
    row: Any,
    client_id: str | None,
    text: str,
    now: datetime,
    conversation: Conversation | None = None,
) -> _Stored:
    """A visitor's message appended to their going conversation, from the target
    row and the conversation's row after the update (`_append_to_going`, or a
    run on SQLite); `conversation` when it had to be read again."""
    message = Message(
        conversation_id=row.id,
        seq=row.last_seq,
        direction=Direction.IN,
        kind=Kind.TEXT,
        author_type=AuthorType.VISITOR,
        author_id=None,
        author_name=None,
        text=text,
        client_id=client_id,
        created_at=now,
    )
    if conversation is None:
        conversation = _conversation(row, names=target)
    return _Stored(Posted(message, conversation), changed=target.status != Status.OPEN.value)


def _maybe_common(queued: _Queued) -> bool:
    """Whether a message may be the common case (the store decides the rest)."""
    return not queued.contact_values and queued.inbound.campaign_id is None


def _set_appended(queued: Sequence[_Queued], done: Sequence[Appended]) -> None:
    """Each of the leading messages of `queued` that `done` says were stored."""
    for each, (target, row, now) in zip(queued, done, strict=False):
        each.stored = _appended(target, row, each.inbound.client_id, each.text, now)


def _fail(queued: _Queued, error: BaseException) -> None:
    if not queued.future.done():
        queued.future.set_exception(error)


# Runs inside an agent's reply's unit of work (conversation, message,
# attachments, agent name) and carries the reply on its channel (email queues
# it); True when it did, False when the conversation is not its channel's.
ReplyHook = Callable[
    [UnitOfWork, Conversation, Message, Sequence[Any], str],
    Awaitable[bool],
]

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
    _message_query()
    .where(messages.c.conversation_id == sa.bindparam("b_conversation_id"))
    .where(messages.c.seq > sa.bindparam("b_after_seq"))
    .where(messages.c.kind.in_(_PUBLIC_KINDS))
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


class ConversationService:
    def __init__(self, writes: Writes) -> None:
        self._writes = writes
        self._db = writes.db
        self._publisher = writes.publisher
        self._bus = writes.publisher.bus  # for what is relayed, not stored (typing)
        self.reply_hooks: list[ReplyHook] = []
        # Run inside the transaction of a chat message that carries the away
        # form's email address (email continues the conversation).
        self.away_form_hooks: list[Callable[[AsyncConnection, Conversation], Awaitable[None]]] = []
        # Group commit for web chat: callers queue, one writer task stores.
        self._queue: deque[_Queued] = deque()
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closed = False

    # ---- incoming -------------------------------------------------------

    async def ingest(self, inbound: Inbound) -> Posted:
        """Store one inbound message from a visitor; publish after commit.

        Validated here, then queued for the writer, which stores it with every
        other message that queued meanwhile in one transaction (group commit) and
        resolves this call only after that transaction has committed.
        """
        text = clean_text(inbound.text, MAX_INBOUND_CHARS)
        if inbound.visitor_id is None:
            raise InvalidInput("inbound web chat message without a visitor")
        contact_values = _contact_values(inbound.contact)
        if self._closed:
            raise Unavailable("The hub is stopping; nothing was stored. Send again.")
        queued = _Queued(inbound, text, contact_values, asyncio.get_running_loop().create_future())
        self._queue.append(queued)
        self._wake.set()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_loop(), name="chat-ingest-writer")
        return await queued.future

    async def close(self) -> None:
        """Refuse new messages, store those already queued, and stop the writer."""
        self._closed = True
        self._wake.set()
        writer, self._writer = self._writer, None
        if writer is not None:
            await asyncio.wait([writer])  # its own failure was logged; not ours to raise
        while self._queue:  # only if the writer died: nobody will store these
            _fail(self._queue.popleft(), Unavailable("The hub stopped; nothing was stored."))

    async def _write_loop(self) -> None:
        """The one writer: each turn takes what queued while the last one ran."""
        while True:
            batch = self._take_batch()
            if not batch:
                if self._closed:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self._write_batch(batch)
            except asyncio.CancelledError:
                for queued in batch:
                    _fail(queued, Unavailable("The hub stopped; nothing was stored."))
                raise
            except Exception as exc:  # a bug: the writer must go on serving
                log.exception("chat ingest batch of %d failed", len(batch))
                for queued in batch:
                    _fail(queued, exc)

    def _take_batch(self) -> list[_Queued]:
        batch: list[_Queued] = []
        while self._queue and len(batch) < INGEST_BATCH_MAX:
            queued = self._queue.popleft()
            if not queued.future.done():  # its caller gave up before it was stored
                batch.append(queued)
        return batch

    async def _write_batch(self, batch: list[_Queued]) -> None:
        """One transaction, a savepoint per message (a bad one rolls back alone),
        messages in order (on SQLite, common ones a run at a time); after the
        commit, each message's events and then its caller's answer."""
        if not self._db.is_sqlite:
            # Several nodes write at once: take row locks in one order (by
            # visitor; a visitor's own messages keep theirs) so two batches
            # cannot deadlock on each other's conversations.
            batch = sorted(batch, key=lambda queued: queued.inbound.visitor_id or "")
        try:
            if not await self._stored_in_one_hop(batch):
                await self._store_each(batch)
        except Exception as exc:  # the commit (or the connection) failed: nothing stored
            for queued in batch:
                _fail(queued, exc)
            return
        for queued in batch:
            if queued.stored is None:
                _fail(queued, queued.error or Unavailable("The message was not stored."))
                continue
            try:
                await self._publisher.publish(queued.stored.events())
            except Exception as exc:
                _fail(queued, exc)
                continue
            if not queued.future.done():
                queued.future.set_result(queued.stored.posted)

    async def _stored_in_one_hop(self, batch: list[_Queued]) -> bool:
        """SQLite, every message of the batch the common case (the usual batch of a
        busy chat): stored in its own transaction, BEGIN to COMMIT, on the loop's
        thread. False (nothing written) when it is not SQLite, a message needs
        more, or another process holds the write lock."""
        if not self._db.is_sqlite or not all(_maybe_common(queued) for queued in batch):
            return False
        done = await _SQLITE_COMMON.store_batch(
            self._db, [(queued.inbound, queued.text) for queued in batch]
        )
        if done is None:
            return False
        _set_appended(batch, done)
        return True

    async def _store_each(self, batch: list[_Queued]) -> None:
        """One transaction, each message in its savepoint (on SQLite, runs of
        common ones in one hop each); a message that fails keeps its error."""
        async with self._db.write() as conn:
            savepoint = await _savepoints(conn, self._db.is_sqlite)
            pending = deque(batch)
            while pending:
                if self._db.is_sqlite:
                    await self._store_common_run(conn, pending)
                    if not pending:
                        break
                queued = pending.popleft()
                try:
                    async with savepoint():
                        queued.stored = await self._store_inbound(conn, queued)
                except Exception as exc:
                    queued.error = exc

    async def _store_common_run(self, conn: AsyncConnection, pending: deque[_Queued]) -> None:
        """SQLite: store the leading messages of `pending` that are the common case
        in one hop to aiosqlite's thread (hub/conversations/chat_ingest_sqlite.py), taking them
        off `pending`; the first that is not stays, for `_store_inbound`."""
        run = list(itertools.takewhile(_maybe_common, pending))
        if not run:
            return
        done = await _SQLITE_COMMON.store(conn, [(queued.inbound, queued.text) for queued in run])
        _set_appended(run, done)
        for _ in done:
            pending.popleft()

    async def _store_inbound(self, conn: AsyncConnection, queued: _Queued) -> _Stored:
        """Store one visitor message inside the writer's transaction."""
        inbound, text, contact_values = queued.inbound, queued.text, queued.contact_values
        assert inbound.visitor_id is not None  # checked by ingest
        visitor_row = await self._visitor_and_target(conn, inbound)
        conversation_id = visitor_row.conversation_id
        before = visitor_row.status
        if (
            conversation_id is not None
            and not contact_values
            and inbound.campaign_id is None
            and visitor_row.earlier_seq is None
        ):
            return await self._append_to_going(conn, visitor_row, inbound, text)
        if contact_values:
            await conn.execute(
                contacts.update()
                .where(contacts.c.id == visitor_row.contact_id)
                .values(contact_values)
            )
        campaign = await self._answered_campaign(conn, inbound, conversation_id)
        if campaign is not None:
            conversation_id = None  # a campaign reply starts its own conversation
        opened = conversation_id is None
        opener: Message | None = None
        if conversation_id is None:
            conversation_id = await self._open(
                conn,
                inbound.inbox_id,
                visitor_row.contact_id,
                inbound.visitor_id,
                campaign_id=campaign.id if campaign else None,
            )
            if campaign is not None:
                opener = await self._open_with_campaign(
                    conn, conversation_id, campaign, inbound.visitor_id
                )
        elif inbound.client_id is not None and visitor_row.earlier_seq is not None:
            earlier = await self._by_client_id(conn, conversation_id, inbound.client_id)
            if earlier is not None:
                current = await self._get(conn, conversation_id)
                return _Stored(Posted(earlier, current, duplicate=True))
        message = await self._append(
            conn,
            conversation_id,
            direction=Direction.IN,
            kind=Kind.TEXT,
            author_type=AuthorType.VISITOR,
            author_id=None,
            text=text,
            client_id=inbound.client_id,
            extra={"status": Status.OPEN.value, "snoozed_until": None, "resolved_at": None},
        )
        conversation = await self._get(conn, conversation_id)
        if contact_values.get("email"):
            for hook in self.away_form_hooks:
                await hook(conn, conversation)
        return _Stored(
            Posted(message, conversation),
            opener=opener,
            changed=opened or before != Status.OPEN.value,
            opened=opened,
        )

    async def _append_to_going(
        self, conn: AsyncConnection, target: sa.Row, inbound: Inbound, text: str
    ) -> _Stored:
        """The common case: a new message in the visitor's conversation, in two
        statements. The names a Conversation shows come from `target` (read in
        this transaction), unless its contact or assignee changed in between
        (another node on PostgreSQL): then the conversation is read again."""
        now = utcnow()
        row = (
            await conn.execute(
                _APPEND_VISITOR_MESSAGE,
                {
                    "b_conversation_id": target.conversation_id,
                    "b_now": now,
                    "b_preview": text[:PREVIEW_CHARS],
                },
            )
        ).first()
        if row is None:
            raise NotFound(f"no conversation {target.conversation_id}")
        await conn.execute(
            _INSERT_VISITOR_MESSAGE,
            {
                "b_conversation_id": row.id,
                "b_seq": row.last_seq,
                "b_text": text,
                "b_client_id": inbound.client_id,
                "b_created_at": now,
            },
        )
        conversation = None
        if (
            row.contact_id != target.conversation_contact_id
            or row.assignee_id != target.assignee_id
        ):
            conversation = await self._get(conn, row.id)
        return _appended(target, row, inbound.client_id, text, now, conversation)

    async def _visitor_and_target(self, conn: AsyncConnection, inbound: Inbound) -> sa.Row:
        """The visitor's contact, and the conversation the message goes to with its
        status (None for a first message), in one query: the hot path of web chat."""
        row = (
            await conn.execute(
                _VISITOR_AND_TARGET,
                {
                    "b_visitor_id": inbound.visitor_id,
                    "b_conversation_id": inbound.conversation_id,
                    "b_client_id": inbound.client_id,
                },
            )
        ).first()
        if row is None or row.inbox_id != inbound.inbox_id:
            raise Forbidden("unknown visitor for this inbox")
        if inbound.conversation_id is not None and row.owner != inbound.visitor_id:
            raise Forbidden("that conversation is not yours")
        return row

    async def _answered_campaign(
        self, conn: AsyncConnection, inbound: Inbound, conversation_id: int | None
    ) -> sa.Row | None:
        """The campaign this message answers, if it was shown to this visitor and is
        not answered yet, and the visitor has no conversation going already."""
        if inbound.campaign_id is None or inbound.conversation_id is not None:
            return None
        if conversation_id is not None:
            status = await conn.scalar(
                sa.select(conversations.c.status).where(conversations.c.id == conversation_id)
            )
            if status != Status.RESOLVED.value:
                return None
        return (
            await conn.execute(
                sa.select(campaigns.c.id, campaigns.c.message, campaigns.c.sender_name)
                .select_from(
                    campaigns.join(
                        campaign_deliveries, campaign_deliveries.c.campaign_id == campaigns.c.id
                    )
                )
                .where(campaigns.c.id == inbound.campaign_id)
                .where(campaigns.c.inbox_id == inbound.inbox_id)
                .where(campaign_deliveries.c.visitor_id == inbound.visitor_id)
                .where(campaign_deliveries.c.replied_at.is_(None))
            )
        ).first()

    async def _open_with_campaign(
        self, conn: AsyncConnection, conversation_id: int, campaign: sa.Row, visitor_id: str
    ) -> Message:
        """The campaign's message opens the conversation; its delivery counts as replied."""
        opener = await self._append(
            conn,
            conversation_id,
            direction=Direction.OUT,
            kind=Kind.TEXT,
            author_type=AuthorType.CAMPAIGN,
            author_id=campaign.id,
            author_name=campaign.sender_name,
            text=campaign.message,
            client_id=None,
        )
        await conn.execute(
            campaign_deliveries.update()
            .where(campaign_deliveries.c.campaign_id == campaign.id)
            .where(campaign_deliveries.c.visitor_id == visitor_id)
            .values(conversation_id=conversation_id, replied_at=utcnow())
        )
        return opener

    async def _open(
        self,
        conn: AsyncConnection,
        inbox_id: int,
        contact_id: int,
        visitor_id: str | None,
        campaign_id: int | None = None,
        assignee_id: int | None = None,
    ) -> int:
        now = utcnow()
        return await conn.scalar(
            conversations.insert()
            .values(
                inbox_id=inbox_id,
                contact_id=contact_id,
                visitor_id=visitor_id,
                campaign_id=campaign_id,
                assignee_id=assignee_id,
                status=Status.OPEN.value,
                last_seq=0,
                last_in_seq=0,
                visitor_read_seq=0,
                created_at=now,
                last_activity_at=now,
            )
            .returning(conversations.c.id)
        )

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
            current = await self._get(conn, conversation_id)
            if client_id is not None:
                earlier = await self._by_client_id(conn, conversation_id, client_id)
                if earlier is not None:
                    return Posted(earlier, current, duplicate=True)
            extra: dict[str, Any] = {}
            if not private:
                extra["first_reply_at"] = sa.func.coalesce(conversations.c.first_reply_at, utcnow())
            message = await self._append(
                conn,
                conversation_id,
                direction=Direction.OUT,
                kind=Kind.NOTE if private else Kind.TEXT,
                author_type=AuthorType.AGENT,
                author_id=agent.id,
                text=body,
                client_id=client_id,
                extra=extra,
                preview=not private,
            )
            await self._mark_agent_read(conn, agent.id, conversation_id, message.seq)
            if not private:
                carried = False
                for hook in self.reply_hooks:
                    carried = await hook(work, current, message, attachments, agent.name) or carried
                if attachments and not carried:
                    raise InvalidInput("attachments can be sent in email conversations only")
            conversation = await self._get(conn, conversation_id)
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
            visitor_row = (
                await conn.execute(
                    sa.select(visitors.c.inbox_id, visitors.c.contact_id).where(
                        visitors.c.id == visitor_id
                    )
                )
            ).first()
            if visitor_row is None:
                raise NotFound(f"no visitor {visitor_id}")
            latest = await conn.scalar(
                sa.select(conversations.c.id)
                .where(conversations.c.visitor_id == visitor_id)
                .where(conversations.c.status != Status.RESOLVED.value)
                .order_by(conversations.c.id.desc())
                .limit(1)
            )
            opened = latest is None
            conversation_id = latest or await self._open(
                conn,
                visitor_row.inbox_id,
                visitor_row.contact_id,
                visitor_id,
                assignee_id=agent.id,
            )
            if opened:
                work.emit(ConversationCreated(await self._get(conn, conversation_id)))
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
            current = await self._get(conn, conversation_id)
            assignee_name = None
            if assignee_id is not None:
                assignee_name = await conn.scalar(
                    sa.select(agents.c.name).where(agents.c.id == assignee_id)
                )
                if assignee_name is None:
                    raise InvalidInput(f"no agent {assignee_id}")
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
            conversation = await self._get(conn, conversation_id)
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
            current = await self._get(conn, conversation_id)
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
            due = (
                await conn.scalars(
                    sa.select(conversations.c.id)
                    .where(conversations.c.status == Status.SNOOZED.value)
                    .where(conversations.c.snoozed_until <= now)
                )
            ).all()
        woken = 0
        for conversation_id in due:
            async with self._writes.begin() as work:
                conn = work.conn
                # Re-check inside the write: a reply may have reopened it meanwhile.
                still = await conn.scalar(
                    sa.select(conversations.c.id)
                    .where(conversations.c.id == conversation_id)
                    .where(conversations.c.status == Status.SNOOZED.value)
                    .where(conversations.c.snoozed_until <= now)
                )
                if still is None:
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
        return activity, await self._get(conn, conversation_id)

    async def _record_activity(
        self, conn: AsyncConnection, conversation_id: int, text: str, changes: dict[str, Any]
    ) -> Message:
        """Apply `changes` to the conversation with an activity line (agents only) saying so."""
        return await self._append(
            conn,
            conversation_id,
            direction=Direction.OUT,
            kind=Kind.ACTIVITY,
            author_type=AuthorType.SYSTEM,
            author_id=None,
            text=text,
            client_id=None,
            extra=changes,
            preview=False,
        )

    async def mark_read_by_agent(self, agent: Agent, conversation_id: int, seq: int) -> None:
        async with self._writes.begin() as work:
            conversation = await self._get(work.conn, conversation_id)
            seq = min(seq, conversation.last_seq)
            await self._mark_agent_read(work.conn, agent.id, conversation_id, seq)
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
            owner = await conn.scalar(
                sa.select(conversations.c.visitor_id).where(conversations.c.id == conversation_id)
            )
            if owner is None or owner != visitor_id:
                raise Forbidden("that conversation is not yours")
            last_seq = await conn.scalar(
                sa.select(conversations.c.last_seq).where(conversations.c.id == conversation_id)
            )
            seq = min(seq, last_seq or 0)
            await conn.execute(
                conversations.update()
                .where(conversations.c.id == conversation_id)
                .where(conversations.c.visitor_read_seq < seq)
                .values(visitor_read_seq=seq)
            )
            work.after_commit(
                functools.partial(
                    self._bus.publish,
                    topics.AGENTS,
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
        if agent is None:
            await self._bus.publish(
                topics.AGENTS,
                {
                    "type": "typing",
                    "conversation_id": conversation.id,
                    "on": on,
                    "author": {"type": "visitor", "name": conversation.display_name},
                },
            )
            return
        await self._bus.publish(
            topics.AGENTS,
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

    # ---- reading ------------------------------------------------------------

    async def get(self, conversation_id: int) -> Conversation:
        async with self._db.read() as conn:
            return await self._get(conn, conversation_id)

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
            _message_query()
            .where(messages.c.conversation_id == conversation_id)
            .where(messages.c.seq > after_seq)
            .order_by(messages.c.seq)
            .limit(limit)
        )
        if not include_private:
            query = query.where(messages.c.kind.in_(_PUBLIC_KINDS))
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
                    _message_query()
                    .where(messages.c.conversation_id == conversation_id)
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
            rows = (
                await conn.execute(
                    sa.select(conversations.c.status, sa.func.count()).group_by(
                        conversations.c.status
                    )
                )
            ).all()
        counts = {status.value: 0 for status in Status}
        counts.update({row[0]: row[1] for row in rows})
        return counts

    # ---- for other hub services, inside their own transaction ----------------

    async def open_in(
        self, conn: AsyncConnection, inbox_id: int, contact_id: int, status: Status
    ) -> int:
        """A new conversation without a visitor (a phone call, later an email)."""
        now = utcnow()
        return await conn.scalar(
            conversations.insert()
            .values(
                inbox_id=inbox_id,
                contact_id=contact_id,
                status=status.value,
                last_seq=0,
                last_in_seq=0,
                visitor_read_seq=0,
                created_at=now,
                last_activity_at=now,
                resolved_at=now if status is Status.RESOLVED else None,
            )
            .returning(conversations.c.id)
        )

    async def append_in(
        self, conn: AsyncConnection, conversation_id: int, **fields: Any
    ) -> Message:
        """`_append` for a service that writes other tables in the same transaction."""
        return await self._append(conn, conversation_id, **fields)

    async def activity_in(
        self,
        conn: AsyncConnection,
        conversation_id: int,
        text: str,
        extra: dict[str, Any] | None = None,
    ) -> Message:
        """A line of activity ("Sam resolved the conversation"), agents only."""
        return await self._record_activity(conn, conversation_id, text, extra or {})

    async def get_in(self, conn: AsyncConnection, conversation_id: int) -> Conversation:
        return await self._get(conn, conversation_id)

    # ---- internals ------------------------------------------------------------

    async def _get(self, conn: AsyncConnection, conversation_id: int) -> Conversation:
        row = (
            await conn.execute(_conversation_query().where(conversations.c.id == conversation_id))
        ).first()
        if row is None:
            raise NotFound(f"no conversation {conversation_id}")
        return _conversation(row)

    async def _by_client_id(
        self, conn: AsyncConnection, conversation_id: int, client_id: str
    ) -> Message | None:
        row = (
            await conn.execute(
                _message_query()
                .where(messages.c.conversation_id == conversation_id)
                .where(messages.c.client_id == client_id)
            )
        ).first()
        return _message(row) if row else None

    async def _append(
        self,
        conn: AsyncConnection,
        conversation_id: int,
        *,
        direction: Direction,
        kind: Kind,
        author_type: AuthorType,
        author_id: int | None,
        text: str,
        client_id: str | None,
        extra: dict[str, Any] | None = None,
        preview: bool = True,
        author_name: str | None = None,
        at: datetime | None = None,
    ) -> Message:
        """Append a message; `at` dates it when it happened earlier (a logged call)."""
        now = utcnow()
        created_at = at or now
        values: dict[str, Any] = {
            "last_seq": conversations.c.last_seq + 1,
            "last_activity_at": now,
            **(extra or {}),
        }
        if direction is Direction.IN:
            values["last_in_seq"] = conversations.c.last_seq + 1
        if preview:
            values["preview"] = text[:PREVIEW_CHARS]
        seq = await conn.scalar(
            conversations.update()
            .where(conversations.c.id == conversation_id)
            .values(values)
            .returning(conversations.c.last_seq)
        )
        if seq is None:
            raise NotFound(f"no conversation {conversation_id}")
        await conn.execute(
            messages.insert().values(
                conversation_id=conversation_id,
                seq=seq,
                direction=direction.value,
                kind=kind.value,
                author_type=author_type.value,
                author_id=author_id,
                text=text,
                client_id=client_id,
                created_at=created_at,
            )
        )
        if author_type is AuthorType.AGENT and author_id is not None:
            author_name = await conn.scalar(
                sa.select(agents.c.name).where(agents.c.id == author_id)
            )
        return Message(
            conversation_id=conversation_id,
            seq=seq,
            direction=direction,
            kind=kind,
            author_type=author_type,
            author_id=author_id,
            author_name=author_name,
            text=text,
            client_id=client_id,
            created_at=created_at,
        )

    async def _mark_agent_read(
        self, conn: AsyncConnection, agent_id: int, conversation_id: int, seq: int
    ) -> None:
        """Raise the agent's read mark (never lower it); one statement, race-free."""
        insert = sqlite_insert if self._db.is_sqlite else postgresql_insert
        statement = insert(agent_reads).values(
            agent_id=agent_id, conversation_id=conversation_id, read_seq=seq
        )
        await conn.execute(
            statement.on_conflict_do_update(
                index_elements=[agent_reads.c.agent_id, agent_reads.c.conversation_id],
                set_={"read_seq": statement.excluded.read_seq},
                where=agent_reads.c.read_seq < statement.excluded.read_seq,
            )
        )
