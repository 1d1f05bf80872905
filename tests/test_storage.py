"""The store: migrations match the tables, the start-up check, SQLite settings."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

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
        await Hub.start(make_settings(tmp_path))


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


def test_there_is_one_head_revision():
    assert head_revision() == "0006_email"
