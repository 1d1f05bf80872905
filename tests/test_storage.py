"""The store: migrations match the tables, the start-up check, SQLite settings."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from hub.composition.assemble import start_hub
from hub.core import Hub
from hub.errors import NotMigrated
from hub.models import utcnow
from storage import db as storage_db
from storage.db import Database
from storage.migrate import head_revision
from storage.tables import contacts, metadata
from tests.conftest import make_settings


async def test_migrations_produce_exactly_the_declared_tables(settings):
    db = Database(settings.database_url)

    def diff(sync_conn):  # type: ignore[no-untyped-def]
        return compare_metadata(MigrationContext.configure(sync_conn), metadata)

    async with db.engine.connect() as conn:
        differences = await conn.run_sync(diff)
    await db.dispose()
    assert differences == []


async def test_the_hub_refuses_an_unmigrated_database_and_says_what_to_run(tmp_path):
    with pytest.raises(NotMigrated, match=r"has no schema.*Run `hub migrate`"):
        await start_hub(make_settings(tmp_path))


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(hub):
    async with hub.db.read() as conn:
        mode = await conn.exec_driver_sql("PRAGMA journal_mode")
        assert mode.scalar() == "wal"
        keys = await conn.exec_driver_sql("PRAGMA foreign_keys")
        assert keys.scalar() == 1


async def test_the_hubs_sqlite_wal_is_checkpointed_in_the_background_not_by_commits(
    hub, monkeypatch
):
    """Commits never stop to checkpoint (autocheckpoint off on the hub's
    connections); the hub's own task copies the WAL back, so it does not grow."""
    if not hub.db.is_sqlite:
        pytest.skip("SQLite only: PostgreSQL has no WAL checkpoints to schedule")
    async with hub.db.read() as conn:
        assert (await conn.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar() == 0
    for n in range(50):
        async with hub.db.write() as conn:
            await conn.execute(
                contacts.insert().values(name=f"Checkpoint {n}", created_at=utcnow())
            )
    hub.db.checkpointed.clear()
    async with asyncio.timeout(10 * storage_db.WAL_CHECKPOINT_SECONDS):
        await hub.db.checkpointed.wait()
    busy, log_frames, copied = hub.db.last_checkpoint
    assert busy == 0
    assert log_frames > 0  # the commits above went to the WAL
    assert copied == log_frames  # and all of it is back in the database file


async def test_a_database_without_background_checkpoints_keeps_sqlites_own(tmp_path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'plain.db'}")
    try:
        db.start_checkpoints()  # not asked for: nothing runs
        async with db.read() as conn:
            assert (await conn.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar() == 1000
        assert db._checkpointer is None
    finally:
        await db.dispose()


async def test_stopping_waits_for_a_checkpoint_in_progress_before_closing_its_connection(
    tmp_path, monkeypatch
):
    """The checkpoint runs in a thread that cancelling the checkpointer does not
    stop; closing its connection under it crashed the whole process (a
    segfault, seen when a loaded machine made the checkpoint slow)."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}", background_checkpoints=True)
    in_thread, finish = threading.Event(), threading.Event()
    after_dispose: list[object] = []

    def slow_checkpoint(raw: sqlite3.Connection) -> tuple[int, int, int]:
        in_thread.set()
        finish.wait(30)
        try:  # still open? (a closed one raises here; closing mid-statement crashes)
            after_dispose.append(raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone())
        except sqlite3.ProgrammingError as exc:
            after_dispose.append(exc)
        return (0, 0, 0)

    monkeypatch.setattr(storage_db, "_checkpoint", slow_checkpoint)
    monkeypatch.setattr(storage_db, "WAL_CHECKPOINT_SECONDS", 0.0)
    db.start_checkpoints()
    assert await asyncio.to_thread(in_thread.wait, 30)
    disposing = asyncio.create_task(db.dispose())
    try:
        # Not done while the checkpoint is: time to (wrongly) close and finish.
        done, _ = await asyncio.wait([disposing], timeout=0.5)
        assert not done
    finally:
        finish.set()
        await disposing
    [outcome] = after_dispose
    assert isinstance(outcome, tuple), outcome


async def test_inline_writes_have_the_hubs_settings_and_never_wait_for_another_process(hub):
    if not hub.db.is_sqlite:
        pytest.skip("SQLite only: PostgreSQL writes never go inline")
    assert hub.db.writes_inline
    async with hub.db.write_inline() as raw:
        settings = {
            name: raw.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("journal_mode", "synchronous", "foreign_keys", "wal_autocheckpoint")
        }
        busy_timeout = raw.execute("PRAGMA busy_timeout").fetchone()[0]
        assert not raw.in_transaction
    async with hub.db.read() as conn:  # the same as the engine's connections
        for name, value in settings.items():
            assert (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar() == value
    assert busy_timeout == 0  # the loop never waits: BEGIN IMMEDIATE fails at once


async def test_inline_writes_hold_the_write_turn(hub):
    if not hub.db.is_sqlite:
        pytest.skip("SQLite only: PostgreSQL writes never go inline")
    order: list[str] = []
    async with hub.db.write_inline():
        other = asyncio.create_task(_write_then_note(hub, order))
        done, _ = await asyncio.wait([other], timeout=0.3)  # time to (wrongly) write
        order.append("inline")
        assert not done
    await other
    assert order == ["inline", "write"]


async def _write_then_note(hub: Hub, order: list[str]) -> None:
    async with hub.db.write():
        order.append("write")


async def test_a_failed_inline_transaction_is_dropped_with_its_connection(tmp_path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}")
    try:
        async with db.write() as conn:
            await conn.run_sync(metadata.create_all)
        with pytest.raises(RuntimeError, match="mid-transaction"):
            async with db.write_inline() as raw:
                raw.execute("BEGIN IMMEDIATE")
                raw.execute("INSERT INTO contacts (attributes, created_at) VALUES ('{}', '2026')")
                raise RuntimeError("mid-transaction")
        with pytest.raises(sqlite3.ProgrammingError):
            raw.execute("SELECT 1")  # closed, which rolled back
        async with db.write_inline() as fresh:
            assert fresh is not raw
            assert fresh.execute("SELECT count(*) FROM contacts").fetchone() == (0,)
        async with db.write():  # the turn was given back
            pass
    finally:
        await db.dispose()
    with pytest.raises(sqlite3.ProgrammingError):
        fresh.execute("SELECT 1")  # dispose closed it


async def test_only_a_sqlite_file_writes_inline(tmp_path):
    for url in ("sqlite+aiosqlite:///:memory:", "postgresql+asyncpg://hub@127.0.0.1/test"):
        db = Database(url)
        try:
            assert not db.writes_inline
            with pytest.raises(RuntimeError, match="use write"):
                async with db.write_inline():
                    pass
        finally:
            await db.dispose()


async def test_under_steady_writes_the_wal_still_starts_over(tmp_path, monkeypatch):
    """A commit landing during every background checkpoint kept the WAL from ever
    being wholly copied, so it never started over and grew without end; the
    checkpointer now finishes the copy with the process's writers held back."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}", background_checkpoints=True)
    path = str(tmp_path / "hub.db")
    async with db.write() as conn:
        await conn.run_sync(metadata.create_all)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    checkpoint = storage_db._checkpoint

    finishing = False
    finish = db._finish_checkpoint

    async def finish_marked(raw: sqlite3.Connection, row: tuple[int, int, int]):  # type: ignore[no-untyped-def]
        nonlocal finishing
        finishing = True
        try:
            return await finish(raw, row)
        finally:
            finishing = False

    def with_a_commit_during_it(raw: sqlite3.Connection) -> tuple[int, int, int]:
        """A writer began before the copy finished and commits after it, as a
        busy hub's next batch does (its frames then go after the copied ones);
        every time but while the checkpointer finishes with the writers held back
        (told by the flag, not by the lock: this process's own writes hold the
        lock too, and under load they did at every turn, so no commit came
        during any copy and the WAL never grew)."""
        if finishing:
            return checkpoint(raw)
        other.execute("BEGIN IMMEDIATE")
        try:
            row = checkpoint(raw)
            other.execute("INSERT INTO contacts (attributes, created_at) VALUES ('{}', '2026')")
        finally:
            other.execute("COMMIT")
        return row

    monkeypatch.setattr(storage_db, "_checkpoint", with_a_commit_during_it)
    monkeypatch.setattr(db, "_finish_checkpoint", finish_marked)
    monkeypatch.setattr(storage_db, "WAL_CHECKPOINT_SECONDS", 0.0)
    monkeypatch.setattr(storage_db, "WAL_RESTART_FRAMES", 20)
    frames: list[int] = []
    try:
        db.start_checkpoints()
        for n in range(40):
            async with db.write() as conn:
                await conn.execute(contacts.insert().values(name=f"n{n}", created_at=utcnow()))
            db.checkpointed.clear()
            async with asyncio.timeout(10):
                await db.checkpointed.wait()
            frames.append(db.last_checkpoint[1])  # frames in the WAL
    finally:
        await db.dispose()
        other.close()
    frames = frames[1:]  # after the tables were made
    assert max(frames) < 40  # bounded: past 20 frames it started over
    assert any(later < earlier for earlier, later in itertools.pairwise(frames)), frames


@pytest.mark.parametrize(
    ("row", "helps"),
    [
        ((0, 1500, 1500), True),  # long, all copied: the tail under the lock completes it
        ((0, 999, 999), False),  # short enough: no reason to hold writers back
        ((0, 1500, 900), False),  # a reader held the copy back: it would again
        ((1, 1500, 1500), False),  # busy
    ],
)
def test_writers_are_held_back_only_when_that_lets_the_wal_start_over(row, helps):
    assert storage_db._finishing_helps(row) is helps


def test_there_is_one_head_revision():
    assert head_revision() == "0016_audit_log"
