"""Web chat's visitor messages: group commit into the one inbound pipeline.

Callers queue, one writer task stores everything queued in one transaction
with a savepoint per message (a bad message rolls back alone), and each caller
hears back only after that transaction has committed. A message to the
visitor's going conversation is the common case and takes a fast path: the
append's rules (hub/conversations/log.py) in two prepared statements, and on
SQLite a run of such messages in one hop to aiosqlite's thread each
(hub/conversations/chat_ingest_sqlite.py). Everything else (a first message,
an away form, a campaign reply, a resend) goes through the pipeline
(hub/conversations/pipeline.py) like every other channel; tests compare the
two paths' rows and answers.

Longer than ~400 lines on purpose: the queue, the writer task, the batch's
transaction and the fast path share one queued item's state and its failure
handling; the SQLite run is in chat_ingest_sqlite.py, the statements in
storage/repositories/chat_appends.py.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sqlite3
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.conversations.chat_ingest_sqlite import Appended, CommonAppends
from hub.conversations.log import PREVIEW_CHARS, Entry, conversation_of
from hub.conversations.pipeline import InboundPipeline, Received, Thread
from hub.errors import Forbidden, InvalidInput, NotFound, Unavailable, from_store
from hub.events.domain import ConversationUpdated, DomainEvent, MessageCreated
from hub.events.publisher import Publisher
from hub.models import (
    AuthorType,
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
from storage.db import Database
from storage.errors import StoreError, short_reason
from storage.repositories import contacts as contact_rows
from storage.repositories.chat_appends import visitor_message_statements

MAX_INBOUND_CHARS = 5000
# Visitor messages stored per write transaction at most (group commit). A batch
# is whatever queued while the previous transaction ran, so a lone message goes
# at once; the cap bounds how long the first caller of a full batch waits.
INGEST_BATCH_MAX = 200

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Posted:
    """Result of storing a message: `duplicate` when its client id was seen before."""

    message: Message
    conversation: Conversation
    duplicate: bool = False


# The statements of web chat's hot path (storage/repositories/chat_appends.py),
# built once with the values the hub stores.
STATEMENTS = visitor_message_statements(
    open_status=Status.OPEN.value,
    inbound=Direction.IN.value,
    text_kind=Kind.TEXT.value,
    visitor_author=AuthorType.VISITOR.value,
)
# The same three on SQLite's raw connection, a run of messages per thread hop.
_SQLITE_COMMON = CommonAppends(
    STATEMENTS.visitor_and_target, STATEMENTS.append, STATEMENTS.insert, PREVIEW_CHARS
)


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
    """A visitor message stored inside the writer's transaction, not yet
    committed, and what it tells once committed."""

    posted: Posted
    told: list[DomainEvent]


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
    assert driver is not None  # an open connection has its driver's

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
        conversation = conversation_of(row, names=target)
    told: list[DomainEvent] = [MessageCreated(conversation, message)]
    if target.status != Status.OPEN.value:
        told.append(ConversationUpdated(conversation))
    return _Stored(Posted(message, conversation), told)


def _maybe_common(queued: _Queued) -> bool:
    """Whether a message may be the common case (the store decides the rest)."""
    return not queued.contact_values and queued.inbound.campaign_id is None


def _set_appended(queued: Sequence[_Queued], done: Sequence[Appended]) -> None:
    """Each of the leading messages of `queued` that `done` says were stored."""
    for each, (target, row, now) in zip(queued, done, strict=False):
        each.stored = _appended(target, row, each.inbound.client_id, each.text, now)


def _not_stored(exc: Exception) -> Exception:
    """The caller's error for a batch whose transaction failed: the hub's own."""
    if isinstance(exc, StoreError):
        return from_store(exc)
    if isinstance(exc, (sqlite3.Error, SQLAlchemyError)):
        return Unavailable(f"The message was not stored ({short_reason(exc)}); send again.")
    return exc


def _fail(queued: _Queued, error: BaseException) -> None:
    if not queued.future.done():
        queued.future.set_exception(error)


class ChatIngest:
    """The group-commit writer of visitors' messages (`ConversationService.ingest`)."""

    def __init__(self, db: Database, publisher: Publisher, pipeline: InboundPipeline) -> None:
        self._db = db
        self._publisher = publisher
        self._pipeline = pipeline
        # Run inside the transaction of a chat message that carries the away form's
        # email address (email may continue the conversation): with the address
        # typed, or None when the form changed nothing (a verified identity's contact).
        self.away_form_hooks: list[
            Callable[[AsyncConnection, Conversation, str | None], Awaitable[None]]
        ] = []
        self._queue: deque[_Queued] = deque()
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closed = False

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
            refused = _not_stored(exc)
            for queued in batch:
                _fail(queued, refused)
            return
        for queued in batch:
            if queued.stored is None:
                _fail(queued, queued.error or Unavailable("The message was not stored."))
                continue
            try:
                await self._publisher.publish(queued.stored.told)
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
        """Store one visitor message inside the writer's transaction: the fast path
        when it goes to the visitor's going conversation, else the pipeline."""
        inbound, text, contact_values = queued.inbound, queued.text, queued.contact_values
        assert inbound.visitor_id is not None  # checked by ingest
        target = await self._visitor_and_target(conn, inbound)
        if (
            target.conversation_id is not None
            and not contact_values
            and inbound.campaign_id is None
            and target.earlier_seq is None
        ):
            return await self._append_to_going(conn, target, inbound, text)
        labelled = False
        if contact_values:  # the away form: a claim, never over a verified identity's details
            labelled = await contact_rows.label_unverified(conn, target.contact_id, contact_values)

        async def record(conn: AsyncConnection, thread: Thread, message: Message) -> list[Message]:
            if contact_values.get("email"):
                conversation = await self._pipeline.log.get(conn, thread.conversation_id)
                typed = contact_values["email"] if labelled else None
                for hook in self.away_form_hooks:
                    await hook(conn, conversation, typed)
            return []

        entry = Entry.from_customer(text, AuthorType.VISITOR, client_id=inbound.client_id)
        received: Received = await self._pipeline.receive(conn, inbound, entry, record)
        posted = Posted(received.message, received.conversation, received.duplicate)
        return _Stored(posted, received.events())

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
                STATEMENTS.append,
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
            STATEMENTS.insert,
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
            conversation = await self._pipeline.log.get(conn, row.id)
        return _appended(target, row, inbound.client_id, text, now, conversation)

    async def _visitor_and_target(self, conn: AsyncConnection, inbound: Inbound) -> sa.Row:
        """The visitor's contact, and the conversation the message goes to with its
        status (None for a first message), in one query: the hot path of web chat."""
        row = (
            await conn.execute(
                STATEMENTS.visitor_and_target,
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
