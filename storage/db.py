"""Database engine: one async engine per process, SQLite (WAL) or PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import sqlalchemy.exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from storage.errors import StoreUnavailable, short_reason

# A writer waits this long for SQLite's lock held by another process before
# failing; in-process writers are serialized by `Database.write_lock` instead.
SQLITE_BUSY_TIMEOUT_MS = 5000
# With background checkpoints, how often the WAL is copied back into the
# database file (PASSIVE: never waits for readers or writers).
WAL_CHECKPOINT_SECONDS = 1.0
# Past this many frames (pages) in the WAL, a checkpoint is finished under the
# write turn so that the next commit starts the WAL over (SQLite's own
# automatic checkpoint runs at 1,000 pages).
WAL_RESTART_FRAMES = 1000
# The WAL file is cut back to this size when it starts over.
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024

log = logging.getLogger(__name__)


class Database:
    """The engine plus the write discipline for its dialect.

    SQLite allows one writer at a time; transactions that read and then write
    would otherwise fail with "database is locked" instead of waiting, so
    in-process writers queue on an asyncio lock and begin IMMEDIATE.
    """

    def __init__(self, url: str, background_checkpoints: bool = False) -> None:
        """`background_checkpoints` (SQLite): the WAL is checkpointed by a task of
        this process (`start_checkpoints`) instead of by whichever commit crosses
        SQLite's 1,000-page mark — that commit would otherwise wait for the copy
        and its fsync, stalling every message of its batch for tens of ms."""
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._sqlite_path = _sqlite_path(url) if self.is_sqlite else None
        self._background = background_checkpoints and self._sqlite_path is not None
        if self.is_sqlite:
            prepare_sqlite_file(url)
            self.engine: AsyncEngine = create_async_engine(url)
            _configure_sqlite(self.engine, autocheckpoint=not self._background)
        else:
            self.engine = create_async_engine(url, pool_pre_ping=True)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self._checkpointer: asyncio.Task[None] | None = None
        self._inline: sqlite3.Connection | None = None
        # Set after each background checkpoint, with SQLite's (busy, log, checkpointed).
        self.checkpointed = asyncio.Event()
        self.last_checkpoint: tuple[int, int, int] | None = None

    def start_checkpoints(self) -> None:
        """Run the background checkpointer (a no-op unless it was asked for)."""
        if self._background and self._checkpointer is None:
            self._checkpointer = asyncio.create_task(
                self._checkpoint_forever(), name="sqlite-wal-checkpointer"
            )

    async def _checkpoint_forever(self) -> None:
        assert self._sqlite_path is not None
        raw = await asyncio.to_thread(
            sqlite3.connect, self._sqlite_path, check_same_thread=False, isolation_level=None
        )
        checkpoint: asyncio.Task[tuple[int, int, int]] | None = None
        try:
            while True:
                await asyncio.sleep(WAL_CHECKPOINT_SECONDS)
                # In a task of its own, shielded: cancelling this loop (dispose)
                # does not stop the thread, and closing `raw` while the thread
                # still checkpoints through it crashes the process (segfault).
                checkpoint = asyncio.create_task(asyncio.to_thread(_checkpoint, raw))
                try:
                    row = await asyncio.shield(checkpoint)
                except sqlite3.Error as exc:  # the next turn tries again
                    log.warning("SQLite WAL checkpoint failed: %s", exc)
                    continue
                if self._write_lock is not None and _finishing_helps(row):
                    row = await self._finish_checkpoint(raw, row)
                self.last_checkpoint = row
                self.checkpointed.set()
        finally:
            if checkpoint is not None and not checkpoint.done():
                await asyncio.wait([checkpoint])
            raw.close()

    async def _finish_checkpoint(
        self, raw: sqlite3.Connection, row: tuple[int, int, int]
    ) -> tuple[int, int, int]:
        """Copy what was committed during the last checkpoint, with this
        process's writers held back, so that the copy is complete and the next
        commit starts the WAL from its beginning. Under a steady load a commit
        lands during every checkpoint, the WAL is never wholly copied, and it
        grew without end (36 MB after five seconds of chat at 2,500/s). Held
        for the tail only: the checkpoint just before copied the rest."""
        assert self._write_lock is not None
        async with self._write_lock:
            checkpoint = asyncio.create_task(asyncio.to_thread(_checkpoint, raw))
            try:
                return await asyncio.shield(checkpoint)
            except asyncio.CancelledError:
                await asyncio.wait([checkpoint])  # never close `raw` under it
                raise
            except sqlite3.Error as exc:
                log.warning("SQLite WAL checkpoint failed: %s", exc)
                return row

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A read-write transaction; committed on exit, rolled back on error. A
        COMMIT the database refuses raises StoreUnavailable (nothing was stored)."""
        if self._write_lock is None:
            body_done = False
            try:
                async with self.engine.begin() as conn:
                    yield conn
                    body_done = True
            except sa.exc.SQLAlchemyError as exc:
                if body_done:  # the COMMIT itself failed
                    raise _not_committed(exc) from exc
                raise
            return
        async with self._write_lock, self.engine.connect() as conn:
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                await conn.rollback()
                raise
            try:
                await conn.commit()
            except BaseException as exc:
                # A COMMIT that failed (SQLITE_BUSY, an I/O error) can leave the
                # transaction open: never hand that connection to the next caller.
                await conn.invalidate()
                if isinstance(exc, sa.exc.SQLAlchemyError):
                    raise _not_committed(exc) from exc
                raise

    @property
    def writes_inline(self) -> bool:
        """Whether `write_inline` is possible: SQLite in a file."""
        return self._write_lock is not None and self._sqlite_path is not None

    @asynccontextmanager
    async def write_inline(self) -> AsyncIterator[sqlite3.Connection]:
        """SQLite: this process's write turn, with a `sqlite3` connection used on
        the event loop's own thread; no transaction begun, the caller begins and
        ends one (hub.chat_ingest_sqlite). For short batches of plain statements:
        aiosqlite's thread would cost a hand-over of the GIL at every statement,
        each waiting for the loop to yield it, and the batch would take longer
        than the work it holds. The connection's busy timeout is 0, so the loop
        never waits on another process's lock: BEGIN IMMEDIATE fails at once
        and the caller goes the threaded way instead."""
        if not self.writes_inline:
            raise RuntimeError("write_inline is for SQLite in a file; use write()")
        assert self._write_lock is not None and self._sqlite_path is not None
        async with self._write_lock:
            if self._inline is None:
                self._inline = await asyncio.to_thread(
                    _connect_inline, self._sqlite_path, not self._background
                )
            raw = self._inline
            try:
                yield raw
            finally:
                if raw.in_transaction:  # the caller failed mid-transaction
                    self._inline = None
                    raw.close()  # closing rolls back

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only unit of work (a consistent snapshot on both dialects)."""
        async with self.engine.connect() as conn:
            if self.is_sqlite:
                await conn.exec_driver_sql("BEGIN")
            yield conn
            await conn.rollback()

    async def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            await asyncio.gather(self._checkpointer, return_exceptions=True)
            self._checkpointer = None
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        await self.engine.dispose()


def _not_committed(exc: BaseException) -> StoreUnavailable:
    return StoreUnavailable(
        f"The change was not stored (the database refused it: {short_reason(exc)})."
    )


def _checkpoint(raw: sqlite3.Connection) -> tuple[int, int, int]:
    busy, log_frames, done = raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return busy, log_frames, done


def _finishing_helps(row: tuple[int, int, int]) -> bool:
    """Whether a checkpoint (busy, log frames, frames copied) left a WAL long
    enough to start over, and copied all it saw: when a reader held it back,
    holding the writers back would not let the copy complete either."""
    busy, log_frames, copied = row
    return log_frames >= WAL_RESTART_FRAMES and busy == 0 and copied == log_frames


def _sqlite_path(url: str) -> str | None:
    """The database file of a SQLite URL; None for an in-memory database."""
    database = sa.engine.make_url(url).database
    return database if database and database != ":memory:" else None


def prepare_sqlite_file(url: str) -> None:
    """Make a SQLite file database private before SQLite opens it: its folder is
    created 0700, the file (and any -wal/-shm/-journal beside it) is 0600.
    SQLite gives the files it creates beside a database the database's mode, so
    a file made 0600 here keeps its WAL and shared memory 0600 too."""
    path = _sqlite_path(url) if url.startswith("sqlite") else None
    if path is None:
        return
    database = Path(path)
    folder = database.parent
    if not folder.exists():
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)  # mkdir's mode is narrowed by the umask, never widened
    os.close(os.open(database, os.O_CREAT | os.O_RDWR, 0o600))
    for suffix in ("", "-wal", "-shm", "-journal"):
        sibling = database.with_name(database.name + suffix)
        if sibling.exists() and sibling.stat().st_uid == os.getuid():
            sibling.chmod(0o600)


def _configure_sqlite(engine: AsyncEngine, autocheckpoint: bool) -> None:
    @sa.event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        # Leave transaction control to us (BEGIN / BEGIN IMMEDIATE above).
        dbapi_conn.isolation_level = None
        _set_pragmas(dbapi_conn, autocheckpoint, SQLITE_BUSY_TIMEOUT_MS)

    @sa.event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        # SQLAlchemy's implicit begin would be a no-op with isolation_level None;
        # explicit BEGIN statements are issued by Database.write/read.
        return None


def _set_pragmas(dbapi_conn: Any, autocheckpoint: bool, busy_timeout_ms: int) -> None:
    """The settings of every connection the hub makes to a SQLite file."""
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    if not autocheckpoint:
        cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
    cursor.close()


def _connect_inline(path: str, autocheckpoint: bool) -> sqlite3.Connection:
    # Made in a worker thread, used on the loop's: hence check_same_thread.
    raw = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    _set_pragmas(raw, autocheckpoint, busy_timeout_ms=0)
    return raw
