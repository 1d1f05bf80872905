"""The store: migrations match the tables, the start-up check, SQLite settings."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from hub.core import Hub
from hub.errors import NotMigrated
from storage.db import Database
from storage.migrate import head_revision
from storage.tables import metadata
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


def test_there_is_one_head_revision():
    assert head_revision() == "0006_email"
