"""Web chat ingest's common case on SQLite: a run of messages in one call.

aiosqlite runs every call in its connection's own thread, and SQLAlchemy's
adapter makes several such hops per statement: about 13 per message of the
group commit (SAVEPOINT, the target query, UPDATE … RETURNING, INSERT,
RELEASE), which were most of ingest's CPU on SQLite. Here messages that each
go to the visitor's going conversation are stored by one synchronous function
on a `sqlite3` connection:

- a busy batch whose messages are all the common case (`store_batch`), in a
  transaction of its own, BEGIN to COMMIT, on the event loop's own thread
  (`Database.write_inline`): no hop at all, and no hand-over of the GIL at
  each statement;
- inside the general path's transaction (`store`), a run at a time in that
  transaction's thread: one hop for the run. It stops at the first message
  that needs more (a first message, a duplicate, an error), having written
  nothing for it; the caller stores that one the general way
  (`ConversationService._store_inbound`) and goes on.

The SQL is the SQLAlchemy statements of `hub.conversations.service`, compiled once for
SQLite and run with SQLAlchemy's own bind and result processors, so the rows
stored and the values read back are those of the SQLAlchemy path.
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.models import Inbound, utcnow
from storage.db import Database

T = TypeVar("T")

_DIALECT = SQLiteDialect_aiosqlite()


async def in_worker(conn: AsyncConnection, call: Callable[[sqlite3.Connection], T]) -> T:
    """`call(raw)` in aiosqlite's worker thread, `raw` being the `sqlite3`
    connection under `conn`: one thread hop, inside `conn`'s transaction.

    aiosqlite has no public API for this: `Connection._execute` queues a call
    for its thread (the one that made the `sqlite3` connection, and the only one
    that may use it) and `Connection._conn` is that connection.
    tests/test_chat_ingest_sqlite.py fails if aiosqlite changes either.
    """
    driver: Any = (await conn.get_raw_connection()).driver_connection  # aiosqlite's Connection
    return await driver._execute(lambda: call(driver._conn))


class RawStatement:
    """A SQLAlchemy statement compiled once for SQLite, run on a `sqlite3` connection.

    Its bind parameters without a value are given per call, by name; the others
    are constants of the statement (`last_seq + 1`, a LIMIT). Values go through
    SQLAlchemy's bind processors, and returned rows through its result
    processors, as on the SQLAlchemy path.
    """

    def __init__(self, statement: sa.Select | sa.Update | sa.Insert) -> None:
        compiled = statement.compile(dialect=_DIALECT)
        if compiled.post_compile_params:
            raise ValueError(f"cannot run raw, it needs SQLAlchemy at run time: {compiled}")
        self.sql = compiled.string
        self._slots: list[tuple[str | None, Callable[[Any], Any] | None, Any]] = []
        for name in compiled.positiontup or ():
            bind = compiled.binds[name]
            process: Callable[[Any], Any] | None  # or _fast_datetimes' wrapper of it
            process = bind.type.dialect_impl(_DIALECT).bind_processor(_DIALECT)
            if bind.required:
                if process is not None and isinstance(bind.type, sa.DateTime):
                    process = _fast_datetimes(process)
                self._slots.append((name, process, None))
            else:
                value = compiled.params[name]
                self._slots.append((None, None, process(value) if process else value))
        columns = list(statement.exported_columns)  # selected or returned; none for an INSERT
        # A named tuple made at run time from the statement's columns, which mypy cannot type.
        self._row: Any = namedtuple("RawRow", [column.key for column in columns])  # type: ignore[misc]
        self._processors = [
            (index, process)
            for index, column in enumerate(columns)
            if (process := column.type.dialect_impl(_DIALECT).result_processor(_DIALECT, None))
        ]

    def args(self, values: Mapping[str, Any]) -> list[Any]:
        """The positional parameters for `values` (by bind name), as sqlite3 takes them."""
        return [
            constant if name is None else process(values[name]) if process else values[name]
            for name, process, constant in self._slots
        ]

    def rows(self, cursor: sqlite3.Cursor, values: Mapping[str, Any]) -> list[Any]:
        """Execute on `cursor` (reused: making one per statement was measurable);
        the rows it returns (named tuples, values as SQLAlchemy reads them)."""
        rows = cursor.execute(self.sql, self.args(values)).fetchall()
        return [self._read(row) for row in rows]

    def _read(self, row: tuple[Any, ...]) -> Any:
        values = list(row)
        for index, process in self._processors:
            values[index] = process(values[index])
        return self._row._make(values)


class Appended(NamedTuple):
    """A message stored the common way: the target row, the updated conversation
    row (as hub.conversations reads them) and the message's time."""

    target: Any
    row: Any
    now: datetime


class CommonAppends:
    """Visitors' messages to their going conversation, a run at a time, on SQLite.

    `target`, `append` and `insert` are hub.conversations' statements (their
    `b_*` parameters are filled here as there); what counts as the common case
    is what `ConversationService._store_inbound` sends to `_append_to_going`.
    """

    def __init__(
        self, target: sa.Select, append: sa.Update, insert: sa.Insert, preview_chars: int
    ) -> None:
        self._target = RawStatement(target)
        self._append = RawStatement(append)
        self._insert = RawStatement(insert)
        self._preview_chars = preview_chars

    async def store(
        self, conn: AsyncConnection, run: Sequence[tuple[Inbound, str]]
    ) -> list[Appended]:
        """Store (inbound, cleaned text) in order in one hop, up to the first that
        is not the common case; what was stored, one per leading message."""
        return await in_worker(conn, lambda raw: self._store_run(raw, run))

    async def store_batch(
        self, db: Database, batch: Sequence[tuple[Inbound, str]]
    ) -> list[Appended] | None:
        """The whole batch in its own transaction, BEGIN to COMMIT on the event
        loop's thread (`Database.write_inline`), if every message is the common
        case; else None, and nothing is written. None too when another process
        holds SQLite's write lock: the caller's threaded path waits for it."""
        if not db.writes_inline:
            return None
        async with db.write_inline() as raw:
            return self._store_all(raw, batch)

    def _store_all(
        self, raw: sqlite3.Connection, batch: Sequence[tuple[Inbound, str]]
    ) -> list[Appended] | None:
        # No savepoint per message: a message that is not the common case, or
        # that the database refuses, rolls back the whole batch.
        try:
            raw.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode in _LOCKED:
                return None
            raise
        try:
            cursor = raw.cursor()
            stored: list[Appended] = []
            for inbound, text in batch:
                try:
                    appended = self._store_one(cursor, inbound, text)
                except sqlite3.Error:
                    appended = None
                if appended is None:
                    raw.execute("ROLLBACK")
                    return None
                stored.append(appended)
            raw.execute("COMMIT")
            return stored
        except BaseException:
            if raw.in_transaction:
                raw.execute("ROLLBACK")
            raise

    def _store_run(
        self, raw: sqlite3.Connection, run: Sequence[tuple[Inbound, str]]
    ) -> list[Appended]:
        """In aiosqlite's thread: each message in its own savepoint. A message that
        is not the common case, or that the database refuses, is rolled back and
        ends the run; the caller's SQLAlchemy path then stores it or reports its
        error exactly as for any other message."""
        cursor = raw.cursor()
        stored: list[Appended] = []
        for inbound, text in run:
            raw.execute("SAVEPOINT ingest")
            try:
                appended = self._store_one(cursor, inbound, text)
            except sqlite3.Error:
                appended = None
            if appended is None:
                raw.execute("ROLLBACK TO ingest")
                raw.execute("RELEASE ingest")
                break
            raw.execute("RELEASE ingest")
            stored.append(appended)
        return stored

    def _store_one(self, cursor: sqlite3.Cursor, inbound: Inbound, text: str) -> Appended | None:
        """`_visitor_and_target` then `_append_to_going`, or None if the message
        is not the common case (nothing written then)."""
        targets = self._target.rows(
            cursor,
            {
                "b_visitor_id": inbound.visitor_id,
                "b_conversation_id": inbound.conversation_id,
                "b_client_id": inbound.client_id,
            },
        )
        if not targets or not _common(targets[0], inbound):
            return None
        target = targets[0]
        now = utcnow()
        rows = self._append.rows(
            cursor,
            {
                "b_conversation_id": target.conversation_id,
                "b_now": now,
                "b_preview": text[: self._preview_chars],
            },
        )
        if not rows:
            return None
        row = rows[0]
        if (
            row.contact_id != target.conversation_contact_id
            or row.assignee_id != target.assignee_id
        ):
            return None  # cannot happen with one writer; the general path re-reads
        self._insert.rows(
            cursor,
            {
                "b_conversation_id": row.id,
                "b_seq": row.last_seq,
                "b_text": text,
                "b_client_id": inbound.client_id,
                "b_created_at": now,
            },
        )
        return Appended(target, row, now)


_LOCKED = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _fast_datetimes(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """SQLAlchemy's SQLite DATETIME bind processor, with the common case (a
    datetime) formatted by `isoformat` in C: the same text, "YYYY-MM-DD
    HH:MM:SS.ffffff" with any offset left out (tests/test_chat_ingest_sqlite.py
    compares them), in 1.8 µs instead of 4.4."""

    def fast(value: Any) -> Any:
        if type(value) is datetime:
            return value.isoformat(" ", "microseconds")[:26]
        return process(value)

    return fast


def _common(target: Any, inbound: Inbound) -> bool:
    """The visitor's own going conversation, and no earlier message with this
    client id: no Forbidden, no new conversation, no duplicate."""
    return (
        target.inbox_id == inbound.inbox_id
        and (inbound.conversation_id is None or target.owner == inbound.visitor_id)
        and target.conversation_id is not None
        and target.earlier_seq is None
    )
