"""One write: a transaction, the events it raised, and what to do once it has committed.

    async with writes.begin() as work:
        ... work.conn.execute(...)                  # inside the transaction
        work.emit(MessageCreated(conversation, message))
        work.after_commit(outbox.notify)            # e.g. wake the mail sender
    # COMMIT happened here; then the events went out, then the actions ran.

Nothing leaves before COMMIT, and nothing at all after a rollback (an exception
inside the block, or a COMMIT that fails): the block's exception propagates and
the collected events are dropped. As Zulip's `send_event_on_commit`, but as an
object the services hand down to the helpers that write.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection

from hub.errors import translated
from hub.events.domain import DomainEvent
from hub.events.publisher import Publisher
from storage.db import Database

AfterCommit = Callable[[], Awaitable[None]]


class UnitOfWork:
    """What one transaction collects; `conn` is its connection."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.events: list[DomainEvent] = []
        self.actions: list[AfterCommit] = []

    def emit(self, *events: DomainEvent) -> None:
        """Events to send after commit, in this order."""
        self.events.extend(events)

    def after_commit(self, action: AfterCommit) -> None:
        """Run `action` after commit, after the events; the same action runs once."""
        if action not in self.actions:
            self.actions.append(action)


@asynccontextmanager
async def store_write(db: Database) -> AsyncIterator[AsyncConnection]:
    """A write with no events to tell (settings, bookkeeping): `db.write()`, with
    a COMMIT the store refuses raised as the hub's Unavailable."""
    with translated():
        async with db.write() as conn:
            yield conn


class Writes:
    """Begins units of work on the store and tells their events after commit."""

    def __init__(self, db: Database, publisher: Publisher) -> None:
        self.db = db
        self.publisher = publisher

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[UnitOfWork]:
        with translated():  # a COMMIT the store refuses: Unavailable, nothing told
            async with self.db.write() as conn:
                work = UnitOfWork(conn)
                yield work
        await self.committed(work)

    async def committed(self, work: UnitOfWork) -> None:
        """Tell what `work` collected; for a transaction committed by its owner
        (web chat's group commit), call this only after its COMMIT."""
        await self.publisher.publish(work.events)
        for action in work.actions:
            await action()
